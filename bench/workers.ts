import type { DataConverter } from '@temporalio/common';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { Activities } from '../activities/index.js';
import { loadConfig } from '../core/config.js';
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
