import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { inject } from 'vitest';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { createApp } from '../../api/app.js';
import { taskQueuePrefixInterceptor } from '../../core/temporal.js';
import type { DirectoryConnector } from '../../core/directory/connector.js';
import { startServer } from '../../api/server.js';
import { createPool, type Pool } from '../../db/pool.js';
import { createLogger } from '../../runtime/logger.js';
import { installTemporalRuntime } from '../../worker/temporal-runtime.js';
import { createTenureWorker, type TenureWorker } from '../../worker/worker.js';
import type { HostResolver } from '../../activities/tenancy/webhook-http.js';
import { createTestDatabase, type TestDatabase } from './db.js';

export const testLogger = createLogger(process.env.TEST_LOG_LEVEL ?? 'error', { role: 'test' });

export interface TestStack {
  baseUrl: string;
  db: TestDatabase;
  /** The pool the service uses (a member of tenure_app, under RLS); `db.pool` connects as the owner. */
  pool: Pool;
  /** The directory the worker and the API use (the built-in one, wrapped when the options say so). */
  directory: DirectoryConnector;
  /** Starts workflows on this stack's own queues. */
  temporal: Client;
  /** Visibility query matching the workflows on this stack's queues. */
  workflowQuery: string;
  worker: TenureWorker;
  stop: () => Promise<void>;
}

/**
 * The real service for one test file: its own database, a worker on its own task queues (a
 * prefix of its own) against the shared Temporal dev server, and the API on a free port.
 */
export interface TestStackOptions {
  /** Wraps the real built-in directory, e.g. to make it fail for a while. */
  directory?: (real: DirectoryConnector) => DirectoryConnector;
  /** WEBHOOK_ALLOW_PRIVATE_NETWORKS for the worker and the API; on by default, as receivers run on 127.0.0.1. */
  allowPrivateWebhooks?: boolean;
  /** Resolves webhook host names for the worker (the system resolver when absent). */
  resolveHost?: HostResolver;
}

export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  installTemporalRuntime(testLogger);
  const db = await createTestDatabase();
  // The service's own pool: the non-owner role under row-level security. `db.pool` is the owner.
  const pool = createPool({ connectionString: db.appUrl, max: 10 });
  const address = inject('temporalAddress');
  const namespace = inject('temporalNamespace');
  const taskQueuePrefix = `test-${randomUUID()}-`;

  const directoryPool = createPool({ connectionString: db.appUrl, max: 5 });
  const directory = options.directory?.(createPostgresDirectory(directoryPool)) ?? createPostgresDirectory(directoryPool);
  const nativeConnection = await NativeConnection.connect({ address });
  const worker = await createTenureWorker({
    connection: nativeConnection,
    namespace,
    taskQueuePrefix,
    pool,
    directory,
    workflowBundlePath: inject('workflowBundlePath'),
    shutdownGraceSeconds: 5,
    allowPrivateWebhooks: options.allowPrivateWebhooks ?? true,
    ...(options.resolveHost ? { resolveHost: options.resolveHost } : {}),
  });
  const running = worker.run();

  const connection = await Connection.connect({ address });
  const temporal = new Client({ connection, namespace, interceptors: { workflow: [taskQueuePrefixInterceptor(taskQueuePrefix)] } });
  const app = createApp({
    config: {
      BODY_LIMIT: '100kb',
      IMPORT_BODY_LIMIT: '10mb',
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: options.allowPrivateWebhooks ?? true,
      TEMPORAL_TASK_QUEUE_PREFIX: taskQueuePrefix,
    },
    pool,
    directory,
    temporal,
    logger: testLogger,
    version: 'test',
  });
  const server = await startServer(app, '127.0.0.1', 0);

  return {
    baseUrl: server.url,
    db,
    pool,
    directory,
    temporal,
    workflowQuery: `TaskQueue IN (${worker.taskQueues.map((q) => `'${q}'`).join(', ')})`,
    worker,
    async stop() {
      await server.stop();
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
      await pool.end();
      await directoryPool.end();
      await db.drop();
    },
  };
}

/** Polls `fn` until it returns a value `until` accepts, or fails after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T>, until: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (until(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
