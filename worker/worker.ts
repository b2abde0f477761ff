import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Client, type WorkflowClientInterceptor } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { Sinks } from '@temporalio/workflow';
import {
  Worker,
  bundleWorkflowCode,
  type InjectedSinks,
  type NativeConnection,
  type WorkerInterceptors,
  type WorkerOptions,
} from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/index.js';
import { TASK_QUEUES, type TaskQueue } from '../core/config.js';
import { failureConverterPath } from '../core/payload-codec.js';
import { taskQueueName, taskQueuePrefixInterceptor } from '../core/temporal.js';
import { submitImportedHrEvent } from '../usecases/lifecycle.js';

export interface TenureWorkerOptions extends ActivityDeps {
  connection: NativeConnection;
  namespace: string;
  /** tenureDataConverter(codec): workflow data is encrypted on its way to Temporal. */
  dataConverter: DataConverter;
  /** Put in front of every queue name (TEMPORAL_TASK_QUEUE_PREFIX); the clients that start workflows use the same. */
  taskQueuePrefix: string;
  /** The domains' queues to poll (WORKER_TASK_QUEUES); all of them when absent. */
  taskQueues?: readonly TaskQueue[];
  /** A prebundled workflow file (from `npm run build`); bundles from source when absent. */
  workflowBundlePath?: string;
  shutdownGraceSeconds?: number;
  /** SDK sizing (workflow cache, slots); the SDK's defaults when absent. */
  tuning?: WorkerTuning;
  /** Activities run at once on the queues named (WORKER_QUEUE_ACTIVITY_SLOTS); over `tuning` for those queues. */
  activitySlots?: Partial<Record<TaskQueue, number>>;
  /** OpenTelemetry (runtime/tracing.ts): activity spans and the workflow span sink; none when absent. */
  tracing?: WorkerTracing;
}

/**
 * What a traced worker adds: interceptors (activity spans, and a client that carries the trace into
 * the workflows its activities start) and the sink workflow spans leave the sandbox through. The
 * workflow side is in the bundle (`bundleWorkflows({ tracing: true })`).
 */
export interface WorkerTracing {
  interceptors: Pick<WorkerInterceptors, 'activity'>;
  workflowClientInterceptors: WorkflowClientInterceptor[];
  sinks: InjectedSinks<Sinks>;
}

export type WorkerTuning = Partial<
  Pick<WorkerOptions, 'maxCachedWorkflows' | 'maxConcurrentActivityTaskExecutions' | 'maxConcurrentWorkflowTaskExecutions'>
>;

/**
 * The SDK options every Tenure worker runs with on one queue. Exported so the benchmarks' floor
 * (the same workflows with no-op activities) runs on exactly what production runs on.
 */
export function workerOptionsFor(options: {
  connection: NativeConnection;
  namespace: string;
  dataConverter: DataConverter;
  taskQueue: string;
  activities: object;
  workflowBundle: WorkerOptions['workflowBundle'];
  shutdownGraceSeconds?: number;
  tuning?: WorkerTuning;
  tracing?: WorkerTracing;
}): WorkerOptions {
  return {
    connection: options.connection,
    namespace: options.namespace,
    dataConverter: options.dataConverter,
    taskQueue: options.taskQueue,
    activities: options.activities,
    workflowBundle: options.workflowBundle,
    shutdownGraceTime: `${options.shutdownGraceSeconds ?? 30} seconds`,
    // A worker that dies holds its workflows' next tasks on its sticky queue until this runs out
    // (default 10 s); a short wait lets another worker take over expiries promptly.
    stickyQueueScheduleToStartTimeout: '2 seconds',
    ...(options.tracing ? { interceptors: options.tracing.interceptors, sinks: options.tracing.sinks } : {}),
    ...Object.fromEntries(Object.entries(options.tuning ?? {}).filter(([, value]) => value !== undefined)),
  };
}

/** One Temporal Worker per task queue, run and shut down together. */
export interface TenureWorker {
  /** The queues polled, as the server names them (prefix applied). */
  readonly taskQueues: string[];
  /** Runs every worker; settles once all have stopped. The first failure shuts the others down and is the rejection. */
  run(): Promise<void>;
  /** Graceful shutdown of every worker still running: in-flight activities get the grace time. */
  shutdown(): void;
}

/** The workflows entry point next to this module, in source (.ts) or compiled (.js) form. */
export function workflowsEntryPath(): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`../workflows/index${ext}`, import.meta.url));
}

export interface BundleOptions {
  /**
   * Builds in the OpenTelemetry workflow interceptors (workflow spans, trace context passed on to
   * activities). Left out otherwise, so an untraced worker does no tracing work inside workflows.
   */
  tracing?: boolean;
}

/** The OpenTelemetry workflow interceptors module that traced bundles include. */
export function tracingWorkflowInterceptorsPath(): string {
  return createRequire(import.meta.url).resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');
}

/** The workflow code with Tenure's failure converter (see tenureDataConverter) built in. */
export async function bundleWorkflows(options: BundleOptions = {}): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: workflowsEntryPath(),
    failureConverterPath: failureConverterPath(),
    workflowInterceptorModules: options.tracing ? [tracingWorkflowInterceptorsPath()] : [],
    logger: quietBundlerLogger,
  });
  return code;
}

const noop = () => undefined;
const quietBundlerLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };

/** One queue's SDK sizing: the worker's, with that queue's activity cap over it. */
export function queueTuning(options: Pick<TenureWorkerOptions, 'tuning' | 'activitySlots'>, queue: TaskQueue): WorkerTuning | undefined {
  const slots = options.activitySlots?.[queue];
  return slots === undefined ? options.tuning : { ...options.tuning, maxConcurrentActivityTaskExecutions: slots };
}

/**
 * Every domain has its own queue, so a backlog on one (a campaign fan-out) never delays another
 * (grant expiries); each queue gets its own Worker with its own slots and sticky queue. Each
 * registers every workflow and activity: a workflow's activities run on its queue, and one bundle
 * serves all.
 */
export async function createTenureWorker(options: TenureWorkerOptions): Promise<TenureWorker> {
  // Activities that reach other workflows share the worker's connection unless given a client.
  const temporal =
    options.temporal ??
    new Client({
      connection: options.connection,
      namespace: options.namespace,
      dataConverter: options.dataConverter,
      interceptors: {
        workflow: [...(options.tracing?.workflowClientInterceptors ?? []), taskQueuePrefixInterceptor(options.taskQueuePrefix)],
      },
    });
  const lifecycle = { pool: options.pool, directory: options.directory, temporal };
  const activities = createActivities({
    ...options,
    temporal,
    // An imported row goes the way POST …/hr-events goes: the same use case, on this worker's client.
    submitImportRow:
      options.submitImportRow ??
      ((ctx, tenantId, policyVersion, event) => submitImportedHrEvent(lifecycle, ctx, tenantId, policyVersion, event)),
  });
  const workflowBundle = options.workflowBundlePath
    ? { codePath: options.workflowBundlePath }
    : { code: await bundleWorkflows({ tracing: Boolean(options.tracing) }) };
  const queues = options.taskQueues ?? TASK_QUEUES;
  const taskQueues = queues.map((queue) => taskQueueName(options.taskQueuePrefix, queue));
  const workers = await Promise.all(
    queues.map((queue, i) =>
      Worker.create(
        workerOptionsFor({
          connection: options.connection,
          namespace: options.namespace,
          dataConverter: options.dataConverter,
          taskQueue: taskQueues[i]!,
          activities,
          workflowBundle,
          shutdownGraceSeconds: options.shutdownGraceSeconds,
          tuning: queueTuning(options, queue),
          tracing: options.tracing,
        }),
      ),
    ),
  );
  const shutdown = () => {
    for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
  };
  return {
    taskQueues,
    shutdown,
    async run() {
      const results = await Promise.allSettled(
        workers.map((worker) =>
          worker.run().catch((error: unknown) => {
            shutdown();
            throw error;
          }),
        ),
      );
      const failure = results.find((result) => result.status === 'rejected');
      if (failure) throw failure.reason;
    },
  };
}
