import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { inject } from 'vitest';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { createDirectoryRegistry, type DirectoryRegistry } from '../../connectors/directory/registry.js';
import { sweepScheduleHook } from '../../activities/directory/sweep-schedule.js';
import { sweepScheduleId } from '../../core/directory/sweep.js';
import type { TaskQueue } from '../../core/config.js';
import { createApp, type ApiDeps } from '../../api/app.js';
import type { ConsoleOptions } from '../../api/console.js';
import { parsePayloadKeys, PayloadEncryptionCodec, tenureDataConverter } from '../../core/payload-codec.js';
import { taskQueuePrefixInterceptor } from '../../core/temporal.js';
import type { DirectoryConnector } from '../../core/directory/connector.js';
import { startServer } from '../../api/server.js';
import { createPool, type Pool } from '../../db/pool.js';
import { createLogger } from '../../runtime/logger.js';
import { installTemporalRuntime } from '../../worker/temporal-runtime.js';
import { createTenureWorker, type TenureWorker } from '../../worker/worker.js';
import { cachedWorkflowBundle } from '../../worker/bundle-cache.js';
import { projectRoot } from '../../runtime/paths.js';
import type { Tracing } from '../../runtime/tracing.js';
import type { HostResolver } from '../../activities/tenancy/webhook-http.js';
import { createTestDatabase, type TestDatabase } from './db.js';

export const testLogger = createLogger(process.env.TEST_LOG_LEVEL ?? 'error', { role: 'test' });

/**
 * The tests' payload key (a test-only secret): fixed, so a history recorded as a replay fixture
 * (tests/fixtures/histories) stays readable by tests/replay.test.ts.
 */
export const TEST_PAYLOAD_KEYS = 'test-1:5tgsBEgVQnXgTnnAKGeL+u8MT6+nvrTrdaxyjfLVk5A=';
export const testPayloadCodec = new PayloadEncryptionCodec(parsePayloadKeys(TEST_PAYLOAD_KEYS));
/** What every Temporal client and worker of the tests runs with, as in production: payloads encrypted. */
export const testDataConverter = tenureDataConverter(testPayloadCodec);

export interface TestStack {
  baseUrl: string;
  db: TestDatabase;
  /** The pool the service uses (a member of tenure_app, under RLS); `db.pool` connects as the owner. */
  pool: Pool;
  /** The built-in directory the worker and the API use (wrapped when the options say so). */
  directory: DirectoryConnector;
  /** Each tenant's target, from its policy, as the worker and the API resolve it. */
  directories: DirectoryRegistry;
  /** The queue prefix of this stack's workers. */
  taskQueuePrefix: string;
  /** Starts workflows on this stack's own queues. */
  temporal: Client;
  /** Visibility query matching the workflows on this stack's queues. */
  workflowQuery: string;
  worker: TenureWorker;
  /** Shuts the worker down (in-flight activities are cancelled after the grace time), as a crash or a deploy would. */
  stopWorker: () => Promise<void>;
  /** Starts a new worker on the same queues, as a replacement process would. */
  startWorker: () => Promise<void>;
  /**
   * Another worker of this stack on `taskQueues` (e.g. the queues the main one leaves out, to take
   * one domain down alone); stopped by `stop()` unless stopped before.
   */
  extraWorker(taskQueues: readonly TaskQueue[]): Promise<{ stop: () => Promise<void> }>;
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
  /** The worker's shutdown grace time (5 s when absent); 0 cancels in-flight activities at once, like a crash. */
  shutdownGraceSeconds?: number;
  /** Environment the directory registry reads `TENURE_SECRET_*` references from (none when absent). */
  secretEnv?: Record<string, string>;
  /** DIRECTORY_SWEEP_INTERVAL_SECONDS of this stack's sweep schedules (60 when absent). */
  sweepIntervalSeconds?: number;
  /** The queues the main worker polls (all when absent). */
  taskQueues?: readonly TaskQueue[];
  /** Serve the web console (tests/support/browser.ts builtConsole()) and its sign-in modes. */
  console?: ConsoleOptions;
  /**
   * OpenTelemetry on the client and the workers, as `npm start` wires it when OTEL_* ask for
   * traces; the workers then run the traced bundle (`tracedWorkflowBundlePath()`).
   */
  tracing?: Tracing;
}

/** The run's workflow bundle with the OpenTelemetry workflow interceptors built in (cached, like the plain one). */
export async function tracedWorkflowBundlePath(): Promise<string> {
  return (await cachedWorkflowBundle(inject('workflowBundleCacheDir'), path.join(projectRoot(), 'package-lock.json'), { tracing: true }))
    .path;
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
  const connection = await Connection.connect({ address });
  const temporal = new Client({
    connection,
    namespace,
    dataConverter: testDataConverter,
    interceptors: { workflow: [...(options.tracing?.workflowClientInterceptors ?? []), taskQueuePrefixInterceptor(taskQueuePrefix)] },
  });
  const workflowBundlePath = options.tracing ? await tracedWorkflowBundlePath() : inject('workflowBundlePath');
  const swept = new Set<string>();
  const directories = createDirectoryRegistry({
    pool: directoryPool,
    builtin: directory,
    secrets: { env: options.secretEnv ?? {}, filesDir: null },
    onTarget: sweepScheduleHook({ temporal, taskQueuePrefix, intervalSeconds: options.sweepIntervalSeconds ?? 60 }, (tenantId, outcome) => {
      if (outcome === 'created' || outcome === 'updated') swept.add(tenantId);
    }),
  });
  const nativeConnection = await NativeConnection.connect({ address });
  const newWorker = (taskQueues = options.taskQueues) =>
    createTenureWorker({
      connection: nativeConnection,
      namespace,
      dataConverter: testDataConverter,
      taskQueuePrefix,
      ...(taskQueues ? { taskQueues } : {}),
      pool,
      directory,
      directories,
      workflowBundlePath,
      ...(options.tracing ? { tracing: options.tracing.worker } : {}),
      shutdownGraceSeconds: options.shutdownGraceSeconds ?? 5,
      allowPrivateWebhooks: options.allowPrivateWebhooks ?? true,
      ...(options.resolveHost ? { resolveHost: options.resolveHost } : {}),
    });
  let worker: TenureWorker | undefined = await newWorker();
  let running: Promise<void> | undefined = worker.run();
  const workerQueues = worker.taskQueues;
  const stopWorker = async () => {
    if (!worker || !running) return;
    worker.shutdown();
    await running;
    worker = undefined;
    running = undefined;
  };
  const extraWorkers: (() => Promise<void>)[] = [];
  const extraWorker: TestStack['extraWorker'] = async (taskQueues) => {
    const extra = await newWorker(taskQueues);
    const extraRunning = extra.run();
    let stopped: Promise<void> | undefined;
    const stop = () =>
      (stopped ??= (async () => {
        extra.shutdown();
        await extraRunning;
      })());
    extraWorkers.push(stop);
    return { stop };
  };

  const app = createApp({
    config: {
      BODY_LIMIT: '100kb',
      IMPORT_BODY_LIMIT: '10mb',
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: options.allowPrivateWebhooks ?? true,
      TEMPORAL_TASK_QUEUE_PREFIX: taskQueuePrefix,
    },
    pool,
    directory,
    directories,
    temporal,
    payloadCodec: testPayloadCodec,
    logger: testLogger,
    version: 'test',
    ...(options.console ? { console: options.console } : {}),
  });
  const server = await startServer(app, '127.0.0.1', 0);

  return {
    baseUrl: server.url,
    db,
    pool,
    directory,
    directories,
    taskQueuePrefix,
    temporal,
    workflowQuery: `TaskQueue IN (${workerQueues.map((q) => `'${q}'`).join(', ')})`,
    get worker() {
      if (!worker) throw new Error('the worker is stopped');
      return worker;
    },
    stopWorker,
    async startWorker() {
      if (worker) throw new Error('the worker is running');
      worker = await newWorker();
      running = worker.run();
    },
    extraWorker,
    async stop() {
      await server.stop();
      for (const tenantId of swept) {
        await temporal.schedule
          .getHandle(sweepScheduleId(tenantId))
          .delete()
          .catch(() => undefined);
      }
      await stopWorker();
      await Promise.all(extraWorkers.map((stop) => stop()));
      await directories.close();
      await nativeConnection.close();
      await connection.close();
      await pool.end();
      await directoryPool.end();
      await db.drop();
    },
  };
}

/** What a second API on a test stack is built from (e.g. with another config): the stack's own, with `overrides`. */
export function apiDepsOf(stack: TestStack, overrides: Partial<ApiDeps> = {}): ApiDeps {
  return {
    config: { BODY_LIMIT: '100kb', IMPORT_BODY_LIMIT: '10mb' },
    pool: stack.pool,
    directory: stack.directory,
    temporal: stack.temporal,
    payloadCodec: testPayloadCodec,
    logger: testLogger,
    version: 'test',
    ...overrides,
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
