import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DataConverter } from '@temporalio/common';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { Activities } from '../activities/index.js';
import { loadConfig } from '../core/config.js';
import { projectRoot } from '../runtime/paths.js';
import type { WorkerProcessMessage, WorkerProcessSpec } from './worker-process.js';
import { createTenureWorker, workerOptionsFor, type TenureWorkerOptions, type WorkerTuning } from '../worker/worker.js';

/** A worker running until `stop`; `running` settles when it stops, and rejects if it crashed. */
export interface RunningWorker {
  running: Promise<void>;
  stop(): Promise<void>;
}

/** Short, so a run ends promptly; both sides stop with the same grace. */
const SHUTDOWN_GRACE_SECONDS = 5;

function run(worker: { run(): Promise<void>; shutdown(): void }, cleanup: (() => Promise<unknown>)[]): RunningWorker {
  const running = worker.run();
  running.catch(() => undefined); // awaited by `stop` or the caller; this only keeps a crash from going unhandled
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    worker.shutdown();
    await running;
  };
  cleanup.push(stop);
  return { running, stop };
}

/**
 * The real side: the worker as deployed, built by worker/ from the run's dependencies, with the
 * per-queue activity caps the environment sets (WORKER_QUEUE_ACTIVITY_SLOTS, or its default).
 */
export async function startTenureWorker(options: TenureWorkerOptions, cleanup: (() => Promise<unknown>)[]): Promise<RunningWorker> {
  const activitySlots = loadConfig().WORKER_QUEUE_ACTIVITY_SLOTS;
  return run(await createTenureWorker({ shutdownGraceSeconds: SHUTDOWN_GRACE_SECONDS, activitySlots, ...options }), cleanup);
}

/** The floor: the same workflows with activities that do nothing, on the Worker options worker/ runs with. */
export async function startFloorWorker(
  options: {
    connection: NativeConnection;
    dataConverter: DataConverter;
    namespace: string;
    taskQueue: string;
    workflowBundlePath: string;
    activities: Partial<Activities>;
    tuning?: WorkerTuning;
  },
  cleanup: (() => Promise<unknown>)[],
): Promise<RunningWorker> {
  const worker = await Worker.create(
    workerOptionsFor({
      ...options,
      workflowBundle: { codePath: options.workflowBundlePath },
      shutdownGraceSeconds: SHUTDOWN_GRACE_SECONDS,
    }),
  );
  return run(
    {
      run: () => worker.run(),
      shutdown: () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
      },
    },
    cleanup,
  );
}

/** A side's worker in a process of its own (bench/worker-process.ts). */
export interface WorkerProcess extends RunningWorker {
  pid: number;
  /** The process's peak resident set so far (VmHWM), in MB; undefined without /proc or once it has exited. */
  peakRssMb(): number | undefined;
}

/** Peak resident set (VmHWM) of a process, in MB, from /proc (Linux). */
export function peakRssMbOf(pid: number): number | undefined {
  try {
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Math.round(Number(kb) / 1024);
  } catch {
    return undefined;
  }
}

const READY_TIMEOUT_MS = 120_000;

/**
 * Starts one side's worker as a process of its own (the same Node.js and loader as the bench
 * process), with `env` (Temporal's address, namespace and payload keys) and `spec`; resolves once
 * its worker is created. `onStep` receives the floor person workflow's steps. The process is
 * stopped gracefully by `stop` (and by cleanup); an exit before that rejects `running`.
 */
export async function startWorkerProcess(
  spec: Omit<WorkerProcessSpec, 'shutdownGraceSeconds'>,
  env: Record<string, string>,
  cleanup: (() => Promise<unknown>)[],
  onStep?: (step: { tenantId: string; personId: string; action: string; at: number }) => void,
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot(), 'bench', 'worker-process.ts')], {
    cwd: projectRoot(),
    env: { ...process.env, ...env, BENCH_WORKER: JSON.stringify({ ...spec, shutdownGraceSeconds: SHUTDOWN_GRACE_SECONDS }) },
    // Its stdout goes to our stderr: our stdout's last line is the summary.
    stdio: ['ignore', 2, 'inherit', 'ipc'],
  });
  let stopping = false;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const running = exited.then((code) => {
    if (!stopping) throw new Error(`the ${spec.side} worker process exited (code ${code}) before it was stopped`);
  });
  running.catch(() => undefined);
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the ${spec.side} worker process was not ready within ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    );
    child.on('message', (message: WorkerProcessMessage) => {
      if ('ready' in message) {
        clearTimeout(timer);
        resolve();
      } else onStep?.(message.step);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the ${spec.side} worker process exited (code ${code}) while starting`));
    });
  });
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.send('stop');
      const killer = setTimeout(() => child.kill('SIGKILL'), (SHUTDOWN_GRACE_SECONDS + 10) * 1000);
      await exited;
      clearTimeout(killer);
    }
  };
  cleanup.push(stop);
  // Should we end without stopping it, it must not outlive us.
  const killWithUs = () => child.kill('SIGKILL');
  process.on('exit', killWithUs);
  void exited.then(() => process.off('exit', killWithUs));
  await ready;
  return { pid: child.pid!, running, stop, peakRssMb: () => peakRssMbOf(child.pid!) };
}
