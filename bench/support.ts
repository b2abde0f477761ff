import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { pino, type Logger } from 'pino';
import type { Config } from '../core/config.js';
import { migrate } from '../db/migrate.js';
import { createPool, type Pool } from '../db/pool.js';
import { ensureServiceLogin, withLogin } from '../db/roles.js';
import { startEmbeddedPostgres } from '../runtime/embedded-postgres.js';
import { freePort } from '../runtime/ports.js';
import { generatePayloadKey, tenureDataConverter } from '../core/payload-codec.js';
import { loadPayloadCodec } from '../runtime/payload-keys.js';
import { connectClient, connectWorker } from '../runtime/temporal.js';
import { startTemporalDevServer } from '../runtime/temporal-dev-server.js';
import { installTemporalRuntime } from '../worker/temporal-runtime.js';
import { bundleWorkflows } from '../worker/worker.js';

/** The same PostgreSQL URL pointing at another database. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** One statement on a short-lived connection (CREATE/DROP DATABASE cannot run in a pool's transaction). */
export async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Runs `task(0..count-1)` on `concurrency` workers; stops handing out work once `signal` aborts. */
export async function runConcurrently(
  count: number,
  concurrency: number,
  signal: AbortSignal,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      signal.throwIfAborted();
      await task(next++);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Rejects after `ms`; its timer keeps the process alive until then, unlike AbortSignal.timeout. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`gave up after ${ms} ms`)), ms)));
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

export interface ScratchService {
  /** Random per run; names the scratch database, the login and the benchmark's own tenants. */
  suffix: string;
  database: string;
  /** The scratch database as its owner (outside row-level security), for checks. */
  owner: Pool;
  /** As in a deployment: the API and the worker have pools of their own, and the built-in
   * directory one apart from the worker's (ledger steps hold a connection while calling it). */
  apiPool: Pool;
  workerPool: Pool;
  directoryPool: Pool;
  /** The service's login on the scratch database, for a worker in a process of its own. */
  appUrl: string;
}

/** A migrated scratch database and the service's own non-owner login on it, both dropped by `cleanup`. */
export interface ScratchDatabase {
  /** Random per run; names the database, the login and the benchmark's own tenants. */
  suffix: string;
  database: string;
  /** As its owner (outside row-level security). */
  url: string;
  /** As the service's login, the way runtime/stack.ts wires the API and worker. */
  appUrl: string;
}

/**
 * A scratch database (on DATABASE_URL, or an embedded PostgreSQL when unset), migrated, with the
 * service's own non-owner login as runtime/stack.ts wires it. Everything is undone by `cleanup`.
 */
export async function scratchDatabase(options: {
  databaseUrl: string | undefined;
  logger: Logger;
  cleanup: (() => Promise<unknown>)[];
  progress: (message: string) => void;
}): Promise<ScratchDatabase> {
  const { cleanup } = options;
  let adminUrl = options.databaseUrl;
  if (!adminUrl) {
    options.progress('DATABASE_URL is not set: starting embedded PostgreSQL');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-bench-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const postgres = await startEmbeddedPostgres({ dir, port: await freePort(), database: 'tenure', logger: options.logger });
    cleanup.push(postgres.stop);
    adminUrl = postgres.adminUrl;
  }
  const admin = adminUrl;
  const suffix = randomBytes(4).toString('hex');
  const database = `tenure_bench_${suffix}`;
  await adminQuery(admin, `CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  cleanup.push(() => adminQuery(admin, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`));
  const url = withDatabase(admin, database);
  await migrate(url);
  const login = `tenure_bench_${suffix}`;
  const password = randomBytes(18).toString('base64url');
  await ensureServiceLogin(url, login, password);
  cleanup.push(() => adminQuery(admin, `DROP ROLE IF EXISTS ${pg.escapeIdentifier(login)}`));
  return { suffix, database, url, appUrl: withLogin(url, login, password) };
}

/** A scratch database (see scratchDatabase) with the pools a benchmark's API, worker and directory use. */
export async function scratchService(options: {
  databaseUrl: string | undefined;
  poolMax: number;
  logger: Logger;
  cleanup: (() => Promise<unknown>)[];
  progress: (message: string) => void;
}): Promise<ScratchService> {
  const { cleanup } = options;
  const { suffix, database, url, appUrl } = await scratchDatabase(options);

  const pool = (connectionString: string, max: number) => {
    const created = createPool({ connectionString, max });
    cleanup.push(() => created.end());
    return created;
  };
  return {
    suffix,
    database,
    owner: pool(url, 2),
    apiPool: pool(appUrl, options.poolMax),
    workerPool: pool(appUrl, options.poolMax),
    directoryPool: pool(appUrl, Math.max(2, Math.floor(options.poolMax / 2))),
    appUrl,
  };
}

/**
 * Temporal for a benchmark: TEMPORAL_ADDRESS, or an in-memory dev server (its pid returned, for
 * CPU accounting); a client and a worker connection; the workflow bundle, built once into a file
 * that every worker of the run loads.
 */
export async function benchTemporal(options: {
  config: Config;
  logger: Logger;
  cleanup: (() => Promise<unknown>)[];
  progress: (message: string) => void;
}) {
  const { config, logger, cleanup } = options;
  let address = config.TEMPORAL_ADDRESS;
  const external = Boolean(address);
  let temporalPid: number | undefined;
  if (!address) {
    options.progress('TEMPORAL_ADDRESS is not set: starting a Temporal dev server (in memory)');
    const devServer = await startTemporalDevServer({
      cliPath: config.TEMPORAL_CLI_PATH,
      namespace: config.TEMPORAL_NAMESPACE,
      port: 0,
      logger,
    });
    cleanup.push(devServer.stop);
    address = devServer.address;
    temporalPid = devServer.process.pid;
  }
  const target = { address, namespace: config.TEMPORAL_NAMESPACE };
  installTemporalRuntime(logger);
  // A key of the run's own unless configured: its histories are thrown away with it.
  const payloadCodec = await loadPayloadCodec(config, logger, 'ephemeral');
  const dataConverter = tenureDataConverter(payloadCodec);
  const client: Client = await connectClient(config, target, dataConverter);
  cleanup.push(() => client.connection.close());
  const connection: NativeConnection = await connectWorker(config, target);
  cleanup.push(() => connection.close());
  options.progress('bundling workflows');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-bench-bundle-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  await writeFile(bundlePath, await bundleWorkflows());
  return {
    client,
    connection,
    dataConverter,
    payloadCodec,
    address,
    namespace: config.TEMPORAL_NAMESPACE,
    bundlePath,
    temporalPid,
    external,
  };
}

/**
 * `config` with payload keys that a worker process of the run can be given too: the configured
 * ones, else a key made for the run (its histories are thrown away with it).
 */
export function withRunPayloadKeys(config: Config): Config {
  if (config.TEMPORAL_PAYLOAD_KEYS || config.TEMPORAL_PAYLOAD_KEYS_FILE || config.TEMPORAL_PAYLOAD_ENCRYPTION === 'off') return config;
  return { ...config, TEMPORAL_PAYLOAD_KEYS: generatePayloadKey(`bench-${randomBytes(4).toString('hex')}`) };
}

/** What a worker process of the run needs in its environment to reach its Temporal as the bench does. */
export function workerProcessEnv(config: Config, temporal: { address: string; namespace: string }): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    TEMPORAL_TASK_QUEUE_PREFIX: config.TEMPORAL_TASK_QUEUE_PREFIX,
    ...(config.TEMPORAL_PAYLOAD_KEYS ? { TEMPORAL_PAYLOAD_KEYS: config.TEMPORAL_PAYLOAD_KEYS, TEMPORAL_PAYLOAD_KEYS_FILE: '' } : {}),
  };
}

const CLEANUP_STEP_TIMEOUT_MS = 10_000;

/**
 * What every benchmark run needs around it: a logger on stderr (stdout's last line is the
 * summary), an abort signal that Ctrl-C / SIGTERM trigger, and cleanup steps run in reverse by
 * `finish`, each bounded so a part that cannot stop does not keep the scratch database alive.
 */
export function benchRun(role: string, progress: (message: string) => void) {
  const logger: Logger = pino({ level: 'warn', base: { service: 'tenure', role } }, pino.destination(2));
  const abort = new AbortController();
  // Every Temporal call of a batch listens to it; that many listeners are expected.
  setMaxListeners(0, abort.signal);
  const onSignal = () => abort.abort(new Error('interrupted'));
  // `on`, not `once`: under tsx a Ctrl-C can arrive twice (from the terminal's process group and
  // relayed by tsx), and a second one with no listener left ends the process before cleanup.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const cleanup: (() => Promise<unknown>)[] = [];
  return {
    logger,
    abort,
    cleanup,
    async finish(): Promise<void> {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      for (const step of cleanup.reverse()) {
        await withTimeout(step(), CLEANUP_STEP_TIMEOUT_MS).catch((error: unknown) =>
          progress(`cleanup failed: ${(error as Error).message}`),
        );
      }
      // A worker whose server died with the same Ctrl-C never stops polling and would keep the
      // process alive; everything worth cleaning up has been by now.
      if (abort.signal.aborted) process.exit(130);
    },
    /**
     * Runs the benchmark's body, then cleans up. Ctrl-C surfaces as the abort's reason wherever
     * the run was: it is reported as an interruption (exit 130), anything else is rethrown.
     */
    async complete(body: () => Promise<void>): Promise<void> {
      try {
        await body();
      } catch (error) {
        if (!abort.signal.aborted) throw error;
        progress('interrupted; cleaning up');
        process.exitCode = 130;
      } finally {
        await this.finish();
      }
    },
  };
}

/** A bad command line: reported with the usage text and exit code 2. */
export class UsageError extends Error {}

export function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1 || value.trim() === '') throw new UsageError(`--${name} must be a positive integer, got ${value}`);
  return n;
}

/** The benchmark's options, or undefined after printing the problem and the usage (exit code 2). */
export function optionsOrUsage<T>(parse: () => T, usage: string): T | undefined {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n${usage}\n`);
    process.exitCode = 2;
    return undefined;
  }
}
