import { pino } from 'pino';
import { systemClock } from '../activities/index.js';
import { createPostgresDirectory } from '../connectors/directory/postgres.js';
import { loadConfig, type TaskQueue } from '../core/config.js';
import { tenureDataConverter } from '../core/payload-codec.js';
import { createPool } from '../db/pool.js';
import { loadPayloadCodec } from '../runtime/payload-keys.js';
import { connectWorker } from '../runtime/temporal.js';
import { installTemporalRuntime } from '../worker/temporal-runtime.js';
import { createTenureWorker, type WorkerTuning } from '../worker/worker.js';
import { noopGrantActivities } from './grants/floor.js';
import { noopPersonActivities } from './lifecycle/floor.js';
import { startFloorWorker, type RunningWorker } from './workers.js';

/**
 * One side's worker in a process of its own (`bench/workers.ts`'s startWorkerProcess spawns it), so
 * each side's resident memory is that worker's alone: `workerRssRatio` compares the real worker's
 * peak RSS with the floor worker's, both measured the same way. The spec comes in BENCH_WORKER
 * (JSON); Temporal's address, namespace and payload keys in the usual variables. It tells its
 * parent `ready` once its worker polls, sends the floor person workflow's steps (the floor's
 * only way to know a person is done), and stops gracefully on `stop` or SIGTERM.
 */
export interface WorkerProcessSpec {
  side: 'real' | 'floor-grants' | 'floor-lifecycle';
  /** Put in front of the real worker's queues. */
  taskQueuePrefix: string;
  /** The real worker's domains. */
  taskQueues?: TaskQueue[];
  /** The floor's queue, prefix included. */
  taskQueue?: string;
  workflowBundlePath: string;
  /** The service's login on the scratch database (real side). */
  appUrl?: string;
  poolMax?: number;
  tuning?: WorkerTuning;
  shutdownGraceSeconds: number;
}

export type WorkerProcessMessage = { ready: true } | { step: { tenantId: string; personId: string; action: string; at: number } };

const send = (message: WorkerProcessMessage) => process.send?.(message);

async function main() {
  const spec = JSON.parse(process.env.BENCH_WORKER ?? '') as WorkerProcessSpec;
  const config = loadConfig();
  const logger = pino({ level: 'warn', base: { service: 'tenure', role: `bench-${spec.side}-worker` } }, pino.destination(2));
  installTemporalRuntime(logger);
  const connection = await connectWorker(config, { address: config.TEMPORAL_ADDRESS!, namespace: config.TEMPORAL_NAMESPACE });
  const dataConverter = tenureDataConverter(await loadPayloadCodec(config, logger, 'refuse'));
  const namespace = config.TEMPORAL_NAMESPACE;
  const closing: (() => Promise<unknown>)[] = [() => connection.close()];
  let worker: RunningWorker;
  if (spec.side === 'real') {
    const pool = (max: number) => {
      const created = createPool({ connectionString: spec.appUrl!, max });
      closing.unshift(() => created.end());
      return created;
    };
    const poolMax = spec.poolMax ?? config.DATABASE_POOL_MAX;
    const tenure = await createTenureWorker({
      connection,
      dataConverter,
      namespace,
      taskQueuePrefix: spec.taskQueuePrefix,
      taskQueues: spec.taskQueues!,
      workflowBundlePath: spec.workflowBundlePath,
      shutdownGraceSeconds: spec.shutdownGraceSeconds,
      ...(spec.tuning ? { tuning: spec.tuning } : {}),
      // The per-queue activity caps as deployed (WORKER_QUEUE_ACTIVITY_SLOTS, or its default).
      activitySlots: config.WORKER_QUEUE_ACTIVITY_SLOTS,
      pool: pool(poolMax),
      // As scratchService splits them: the built-in directory's connections apart from the worker's.
      directory: createPostgresDirectory(pool(Math.max(2, Math.floor(poolMax / 2)))),
      clock: systemClock,
    });
    const running = tenure.run();
    worker = { running, stop: async () => (tenure.shutdown(), await running) };
  } else {
    const activities =
      spec.side === 'floor-grants'
        ? noopGrantActivities
        : noopPersonActivities((tenantId, personId, action) => send({ step: { tenantId, personId, action, at: Date.now() } }));
    worker = await startFloorWorker(
      {
        connection,
        dataConverter,
        namespace,
        taskQueue: spec.taskQueue!,
        workflowBundlePath: spec.workflowBundlePath,
        activities,
        ...(spec.tuning ? { tuning: spec.tuning } : {}),
      },
      closing,
    );
  }
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await worker.stop();
      for (const step of closing) await step().catch(() => undefined);
      process.exit(0);
    })());
  process.on('message', (message) => message === 'stop' && void stop());
  process.on('SIGTERM', () => void stop());
  // The parent gone (a crash, a forced exit): nothing left to work for.
  process.on('disconnect', () => void stop());
  worker.running.catch((error: unknown) => {
    logger.error({ err: error }, 'the worker stopped');
    process.exit(1);
  });
  send({ ready: true });
}

main().catch((error: unknown) => {
  process.stderr.write(`bench worker process: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
