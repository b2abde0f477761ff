import { cpuTotal } from '../cpu.js';
import { quantile } from '../stats.js';
import type { BatchResult } from './measure.js';
import type { GrantsBenchOptions } from './options.js';

/** One side's batches: warm-up, throughput and the expiry burst. */
export interface SideResult {
  warm: BatchResult;
  throughput: BatchResult;
  burst: BatchResult;
  /** Seconds from the burst's first request to its first expiry. */
  expireAfter: number;
  windowPassed: number;
}

/** The summary line: real against floor. */
export function grantsSummary(options: GrantsBenchOptions, real: SideResult, floor: SideResult, workerRssMb: number) {
  const grantsPerSec = real.throughput.completed / real.throughput.seconds;
  const floorPerSec = floor.throughput.completed / floor.throughput.seconds;
  // On a machine where everything shares the CPUs, lifecycles/s tend to this ratio; unlike
  // wall time it barely moves with other load on the machine.
  const realCpu = cpuTotal(real.throughput.cpuMsPerGrant);
  const floorCpu = cpuTotal(floor.throughput.cpuMsPerGrant);
  return {
    bench: 'grants',
    grants: options.grants,
    burst: options.burst,
    burstSpreadSeconds: options.burstSpreadSeconds,
    tenants: options.tenants,
    concurrency: options.concurrency,
    durationSeconds: options.durationSeconds,
    grantsPerSec: Number(grantsPerSec.toFixed(1)),
    floorPerSec: Number(floorPerSec.toFixed(1)),
    ratio: Number((grantsPerSec / floorPerSec).toFixed(3)),
    expiryLagP50Ms: quantile(real.burst.lagsMs, 0.5),
    expiryLagP99Ms: quantile(real.burst.lagsMs, 0.99),
    expiryLagMaxMs: real.burst.lagsMs.at(-1),
    floorExpiryLagP50Ms: quantile(floor.burst.lagsMs, 0.5),
    floorExpiryLagP99Ms: quantile(floor.burst.lagsMs, 0.99),
    burstExpireAfterSeconds: real.expireAfter,
    windowPassed: real.windowPassed,
    floorWindowPassed: floor.windowPassed,
    cpuMsPerGrant: real.throughput.cpuMsPerGrant,
    floorCpuMsPerGrant: floor.throughput.cpuMsPerGrant,
    ...(realCpu && floorCpu ? { cpuRatio: Number((floorCpu / realCpu).toFixed(3)) } : {}),
    workerRssMb,
  };
}
