import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time (ms) of a process by pid, read from /proc (Linux); undefined once the process has ended.
 * Undefined itself where /proc is not there.
 */
function cpuReader(): ((pid: number) => number | undefined) | undefined {
  let ticksPerSecond: number;
  try {
    ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    readFileSync('/proc/self/stat');
  } catch {
    return undefined;
  }
  return (pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
    } catch {
      return undefined;
    }
  };
}

/** The PostgreSQL backends serving `database` (their process title names it). */
function backendsOf(database: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(` ${database} `)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/**
 * CPU ms spent by the bench process (its client, and its worker when that runs in it), the side's
 * worker process when it has one of its own, the Temporal dev server and PostgreSQL.
 */
export interface CpuMs {
  benchProcess: number;
  /** The side's worker process (bench/worker-process.ts); absent when the worker runs in the bench process. */
  worker?: number;
  /** Absent when Temporal is not a process of this run, or /proc is not there. */
  temporalServer?: number;
  postgres?: number;
}

/**
 * Starts counting CPU time; the returned function gives the ms spent since then. PostgreSQL is
 * counted over the backends serving `database`: backends that end in between are missed, so the
 * pools keep theirs open through a measurement.
 */
export function cpuMeter(temporalPid: number | undefined, database: string, workerPid?: number): () => CpuMs {
  const readCpu = cpuReader();
  const self = process.cpuUsage();
  const temporalBefore = temporalPid !== undefined ? readCpu?.(temporalPid) : undefined;
  const workerBefore = workerPid !== undefined ? readCpu?.(workerPid) : undefined;
  const postgresBefore = new Map(readCpu ? backendsOf(database).map((pid) => [pid, readCpu(pid) ?? 0]) : []);
  return () => {
    const { user, system } = process.cpuUsage(self);
    const temporalAfter = temporalPid !== undefined ? readCpu?.(temporalPid) : undefined;
    const workerAfter = workerPid !== undefined ? readCpu?.(workerPid) : undefined;
    const postgres = readCpu
      ? backendsOf(database).reduce((sum, pid) => sum + (readCpu(pid) ?? 0) - (postgresBefore.get(pid) ?? 0), 0)
      : undefined;
    return {
      benchProcess: (user + system) / 1000,
      ...(workerBefore !== undefined && workerAfter !== undefined ? { worker: workerAfter - workerBefore } : {}),
      ...(temporalBefore !== undefined && temporalAfter !== undefined ? { temporalServer: temporalAfter - temporalBefore } : {}),
      ...(postgres !== undefined ? { postgres } : {}),
    };
  };
}

/** Total CPU ms over the bench process (and worker process), Temporal and PostgreSQL, when all were measured. */
export const cpuTotal = (cpu: CpuMs | undefined) =>
  cpu?.temporalServer !== undefined && cpu.postgres !== undefined
    ? cpu.benchProcess + (cpu.worker ?? 0) + cpu.temporalServer + cpu.postgres
    : undefined;
