import { cpuTotal } from '../cpu.js';
import { quantile } from '../stats.js';
import type { BatchResult } from './measure.js';
import type { GrantsBenchOptions } from './options.js';

/** One side's batches: warm-up, throughput and the expiry burst (absent where only throughput is compared). */
export interface SideResult {
  warm: BatchResult;
  throughput: BatchResult;
  burst?: BatchResult;
  /** Seconds from the burst's first request to its first expiry. */
  expireAfter: number;
  windowPassed: number;
}

const perSec = (side: SideResult) => side.throughput.completed / side.throughput.seconds;

/**
 * The summary line: real against floor. With `--target`, "real" is the tenants on that target,
 * and `builtin` the same lifecycles on the built-in directory in the same run: `targetRatio` =
 * the target's grants/s ÷ the built-in directory's.
 */
export function grantsSummary(
  options: GrantsBenchOptions,
  real: SideResult,
  floor: SideResult,
  rss: { workerRssMb: number; floorWorkerRssMb: number | undefined },
  builtin?: SideResult,
) {
  const grantsPerSec = perSec(real);
  const floorPerSec = perSec(floor);
  // On a machine where everything shares the CPUs, lifecycles/s tend to this ratio; unlike
  // wall time it barely moves with other load on the machine.
  const realCpu = cpuTotal(real.throughput.cpuMsPerGrant);
  const floorCpu = cpuTotal(floor.throughput.cpuMsPerGrant);
  const expiryLagP99Ms = quantile(real.burst!.lagsMs, 0.99);
  const floorExpiryLagP99Ms = quantile(floor.burst!.lagsMs, 0.99);
  return {
    bench: 'grants',
    target: options.target,
    grants: options.grants,
    burst: options.burst,
    burstSpreadSeconds: options.burstSpreadSeconds,
    tenants: options.tenants,
    concurrency: options.concurrency,
    durationSeconds: options.durationSeconds,
    grantsPerSec: Number(grantsPerSec.toFixed(1)),
    floorPerSec: Number(floorPerSec.toFixed(1)),
    ratio: Number((grantsPerSec / floorPerSec).toFixed(3)),
    ...(builtin
      ? {
          builtinPerSec: Number(perSec(builtin).toFixed(1)),
          targetRatio: Number((grantsPerSec / perSec(builtin)).toFixed(3)),
          builtinCpuMsPerGrant: builtin.throughput.cpuMsPerGrant,
          builtinWindowPassed: builtin.windowPassed,
        }
      : {}),
    expiryLagP50Ms: quantile(real.burst!.lagsMs, 0.5),
    expiryLagP99Ms,
    expiryLagMaxMs: real.burst!.lagsMs.at(-1),
    floorExpiryLagP50Ms: quantile(floor.burst!.lagsMs, 0.5),
    floorExpiryLagP99Ms,
    // Real ÷ floor (goal ≤ 1.1); the floor's lag is Temporal's own timer and task latency.
    ...(expiryLagP99Ms !== null && floorExpiryLagP99Ms
      ? { expiryLagP99Ratio: Number((expiryLagP99Ms / floorExpiryLagP99Ms).toFixed(3)) }
      : {}),
    burstExpireAfterSeconds: real.expireAfter,
    windowPassed: real.windowPassed,
    floorWindowPassed: floor.windowPassed,
    cpuMsPerGrant: real.throughput.cpuMsPerGrant,
    floorCpuMsPerGrant: floor.throughput.cpuMsPerGrant,
    ...(realCpu && floorCpu ? { cpuRatio: Number((floorCpu / realCpu).toFixed(3)) } : {}),
    // The real worker's peak RSS; with the floor's (each worker in a process of its own) their ratio (goal ≤ 1.25).
    workerRssMb: rss.workerRssMb,
    ...(rss.floorWorkerRssMb !== undefined
      ? { floorWorkerRssMb: rss.floorWorkerRssMb, workerRssRatio: Number((rss.workerRssMb / rss.floorWorkerRssMb).toFixed(3)) }
      : {}),
  };
}
