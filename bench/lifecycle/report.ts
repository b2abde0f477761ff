import { cpuTotal, type CpuMs } from '../cpu.js';
import { quantile } from '../stats.js';
import type { PhaseResult } from './context.js';
import type { LifecycleBenchOptions } from './options.js';

/** Two phases' CPU ms, per event. */
function perEvent(a: CpuMs, b: CpuMs, events: number): CpuMs {
  const per = (x: number | undefined, y: number | undefined) =>
    x === undefined || y === undefined ? undefined : Number(((x + y) / events).toFixed(1));
  const temporalServer = per(a.temporalServer, b.temporalServer);
  const postgres = per(a.postgres, b.postgres);
  const worker = per(a.worker, b.worker);
  return {
    benchProcess: per(a.benchProcess, b.benchProcess)!,
    ...(worker !== undefined ? { worker } : {}),
    ...(temporalServer !== undefined ? { temporalServer } : {}),
    ...(postgres !== undefined ? { postgres } : {}),
  };
}

export interface SidePhases {
  join: PhaseResult;
  leave: PhaseResult;
}

/** The summary line: real against floor. */
export function lifecycleSummary(
  options: LifecycleBenchOptions,
  measured: {
    roleCount: number;
    real: SidePhases;
    floor: SidePhases;
    residualEntitlements: number;
    workerRssMb: number;
    floorWorkerRssMb: number;
  },
) {
  const { real, floor } = measured;
  const n = options.people;
  const events = 2 * n;
  const eventsPerSec = events / (real.join.seconds + real.leave.seconds);
  const floorEventsPerSec = events / (floor.join.seconds + floor.leave.seconds);
  const realCpu = perEvent(real.join.cpu, real.leave.cpu, events);
  const floorCpu = perEvent(floor.join.cpu, floor.leave.cpu, events);
  const realCpuTotal = cpuTotal(realCpu);
  const floorCpuTotal = cpuTotal(floorCpu);
  return {
    bench: 'lifecycle',
    people: n,
    tenants: options.tenants,
    concurrency: options.concurrency,
    events,
    birthrightRoles: measured.roleCount,
    eventsPerSec: Number(eventsPerSec.toFixed(1)),
    floorEventsPerSec: Number(floorEventsPerSec.toFixed(1)),
    ratio: Number((eventsPerSec / floorEventsPerSec).toFixed(3)),
    joinerSeconds: Number(real.join.seconds.toFixed(1)),
    leaverSeconds: Number(real.leave.seconds.toFixed(1)),
    floorJoinerSeconds: Number(floor.join.seconds.toFixed(1)),
    floorLeaverSeconds: Number(floor.leave.seconds.toFixed(1)),
    joinerP50Ms: quantile(real.join.latenciesMs, 0.5),
    joinerP99Ms: quantile(real.join.latenciesMs, 0.99),
    leaverP50Ms: quantile(real.leave.latenciesMs, 0.5),
    leaverP99Ms: quantile(real.leave.latenciesMs, 0.99),
    leaverMaxMs: real.leave.latenciesMs.at(-1),
    floorJoinerP99Ms: quantile(floor.join.latenciesMs, 0.99),
    floorLeaverP50Ms: quantile(floor.leave.latenciesMs, 0.5),
    floorLeaverP99Ms: quantile(floor.leave.latenciesMs, 0.99),
    cpuMsPerEvent: realCpu,
    floorCpuMsPerEvent: floorCpu,
    ...(realCpuTotal && floorCpuTotal ? { cpuRatio: Number((floorCpuTotal / realCpuTotal).toFixed(3)) } : {}),
    residualEntitlements: measured.residualEntitlements,
    // Peak RSS of each side's worker process, and real ÷ floor (goal ≤ 1.25).
    workerRssMb: measured.workerRssMb,
    floorWorkerRssMb: measured.floorWorkerRssMb,
    ...(measured.floorWorkerRssMb > 0 ? { workerRssRatio: Number((measured.workerRssMb / measured.floorWorkerRssMb).toFixed(3)) } : {}),
  };
}
