import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { Worker, bundleWorkflowCode, type NativeConnection } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/index.js';

export interface TenureWorkerOptions extends ActivityDeps {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  /** A prebundled workflow file (from `npm run build`); bundles from source when absent. */
  workflowBundlePath?: string;
  shutdownGraceSeconds?: number;
}

/** The workflows entry point next to this module, in source (.ts) or compiled (.js) form. */
export function workflowsEntryPath(): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`../workflows/index${ext}`, import.meta.url));
}

export async function bundleWorkflows(): Promise<string> {
  const { code } = await bundleWorkflowCode({ workflowsPath: workflowsEntryPath(), logger: quietBundlerLogger });
  return code;
}

const noop = () => undefined;
const quietBundlerLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };

export async function createTenureWorker(options: TenureWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    // Activities that reach other workflows share the worker's connection unless given a client.
    activities: createActivities({
      ...options,
      temporal: options.temporal ?? new Client({ connection: options.connection, namespace: options.namespace }),
    }),
    workflowBundle: options.workflowBundlePath ? { codePath: options.workflowBundlePath } : { code: await bundleWorkflows() },
    shutdownGraceTime: `${options.shutdownGraceSeconds ?? 30} seconds`,
    // A worker that dies holds its workflows' next tasks on its sticky queue until this runs out
    // (default 10 s); a short wait lets another worker take over expiries promptly.
    stickyQueueScheduleToStartTimeout: '2 seconds',
  });
}
