import { constants, existsSync } from 'node:fs';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { createPostgresDirectory } from '../connectors/directory/postgres.js';
import { createDirectoryRegistry } from '../connectors/directory/registry.js';
import { sweepScheduleHook } from '../activities/directory/sweep-schedule.js';
import { createApp } from '../api/app.js';
import { oidcFromConfig } from '../api/auth.js';
import { consoleSignInFrom } from '../api/routes/console-session.js';
import { createPrincipalSource } from '../api/principals.js';
import { startServer, type RunningServer } from '../api/server.js';
import type { Config } from '../core/config.js';
import type { DirectoryConnector } from '../core/directory/connector.js';
import { migrate } from '../db/migrate.js';
import { APP_ROLE, createPool, type Pool } from '../db/pool.js';
import { ensureServiceLogin, withLogin } from '../db/roles.js';
import { createCast, DEMO_CAST, seedDemoGrants } from './demo.js';
import { isEmpty } from '../usecases/tenancy/bootstrap.js';
import { syncDriftSchedule } from '../usecases/templates/drift.js';
import { systemContext } from '../core/audit/context.js';
import { installTemporalRuntime } from '../worker/temporal-runtime.js';
import { createTenureWorker, type TenureWorker } from '../worker/worker.js';
import { cachedWorkflowBundle } from '../worker/bundle-cache.js';
import { activeTracing } from './tracing.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { resolveTemporalCli } from './find-binary.js';
import type { Logger } from './logger.js';
import { consoleDistDir, packageVersion, projectRoot } from './paths.js';
import { assertPortFree, freePort } from './ports.js';
import { connectClient, connectWorker } from './temporal.js';
import { loadPayloadCodec } from './payload-keys.js';
import { tenureDataConverter } from '../core/payload-codec.js';
import { startTemporalDevServer } from './temporal-dev-server.js';

/** The embedded default's login for the service itself (member of tenure_app). */
const SERVICE_LOGIN = 'tenure_service';

export interface StackParts {
  api: boolean;
  worker: boolean;
  /** Start embedded PostgreSQL / Temporal when DATABASE_URL / TEMPORAL_ADDRESS are unset. */
  embedded: boolean;
}

export interface RunningStack {
  apiUrl?: string;
  temporalAddress: string;
  temporalUiUrl?: string;
  databaseUrl: string;
  pool: Pool;
  /** The demo MSP's actors and tokens, when `npm start` seeded (or had seeded) it. */
  demo?: DemoTokens;
  /** Settles when a part fails on its own (e.g. the worker stops); the caller should then stop. */
  failed: Promise<Error>;
  stop: () => Promise<void>;
}

/** Hides the password in a connection string before it is logged or printed. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * Brings up what this process runs, in dependency order, and stops it in reverse:
 * database → migrations → Temporal → worker → API. A failure part-way stops what already started.
 */
export async function startStack(config: Config, logger: Logger, parts: StackParts): Promise<RunningStack> {
  const stoppers: { name: string; stop: () => Promise<unknown> }[] = [];
  const stopAll = async () => {
    for (const { name, stop } of stoppers.reverse()) {
      try {
        await stop();
      } catch (error) {
        logger.warn({ err: error }, `stopping ${name} failed`);
      }
    }
    stoppers.length = 0;
  };
  let reportFailure: (error: Error) => void = () => undefined;
  const failed = new Promise<Error>((resolve) => (reportFailure = resolve));
  const tracing = activeTracing();
  // Stopped last: the spans of everything stopping are exported too.
  if (tracing) stoppers.push({ name: 'tracing', stop: () => tracing.flush() });

  try {
    const dataDir = path.resolve(config.TENURE_DATA_DIR);
    const embeddedPostgres = parts.embedded && !config.DATABASE_URL;
    const embeddedTemporal = parts.embedded && !config.TEMPORAL_ADDRESS;
    // Fail before starting anything if a part could not start anyway, with a sentence that says why.
    if (embeddedPostgres || embeddedTemporal) await ensureDataDir(dataDir);
    // So does a production start without payload keys; the embedded default keeps its own in the data folder.
    const payloadCodec = await loadPayloadCodec(config, logger, parts.embedded ? { keepIn: dataDir } : 'refuse');
    const dataConverter = tenureDataConverter(payloadCodec);
    if (parts.api) await assertPortFree(config.HOST, config.PORT, 'PORT');
    if (embeddedPostgres) await assertPortFree('127.0.0.1', config.EMBEDDED_POSTGRES_PORT, 'EMBEDDED_POSTGRES_PORT');
    if (embeddedTemporal) {
      await assertPortFree('127.0.0.1', config.TEMPORAL_DEV_PORT, 'TEMPORAL_DEV_PORT');
      await assertPortFree('127.0.0.1', config.TEMPORAL_UI_PORT, 'TEMPORAL_UI_PORT');
    }
    // Bundling (or finding the cached bundle) runs while the database and Temporal start.
    const bundling =
      parts.worker && !config.WORKFLOW_BUNDLE_PATH
        ? workflowBundleFor(parts, dataDir, Boolean(tracing), logger)
        : Promise.resolve(undefined);
    bundling.catch(() => undefined); // awaited below; a failure before then must not be unhandled
    const temporalCli = embeddedTemporal
      ? await resolveTemporalCli({ explicitPath: config.TEMPORAL_CLI_PATH, logger: logger.child({ component: 'temporal-cli' }) })
      : undefined;
    let databaseUrl = config.DATABASE_URL;
    let appDatabaseUrl = config.DATABASE_APP_URL;
    let embeddedServicePassword: string | undefined;
    if (!databaseUrl) {
      if (!parts.embedded)
        throw new Error(
          'DATABASE_URL is not set. `npm run api` and `npm run worker` need an existing PostgreSQL; `npm start` runs an embedded one.',
        );
      logger.info({ dir: path.join(dataDir, 'postgres') }, 'starting embedded PostgreSQL');
      const postgres = await startEmbeddedPostgres({
        dir: path.join(dataDir, 'postgres'),
        port: config.EMBEDDED_POSTGRES_PORT,
        database: 'tenure',
        logger: logger.child({ component: 'postgres' }),
      });
      stoppers.push({ name: 'embedded PostgreSQL', stop: postgres.stop });
      databaseUrl = postgres.url;
      embeddedServicePassword = postgres.servicePassword;
    }
    await migrate(databaseUrl, logger.child({ component: 'migrate' }));
    if (!appDatabaseUrl && embeddedServicePassword) {
      await ensureServiceLogin(databaseUrl, SERVICE_LOGIN, embeddedServicePassword);
      appDatabaseUrl = withLogin(databaseUrl, SERVICE_LOGIN, embeddedServicePassword);
    }
    if (!appDatabaseUrl) {
      logger.warn(
        'DATABASE_APP_URL is not set: the service switches to the tenure_app role on the migration login, which RLS binds but which could switch back. Set DATABASE_APP_URL to a login that is a member of tenure_app.',
      );
    }
    // The service's own queries run as a non-owner role under row-level security.
    const servicePool = (max: number) =>
      appDatabaseUrl
        ? createPool({ connectionString: appDatabaseUrl, max })
        : createPool({ connectionString: databaseUrl, max, role: APP_ROLE });
    const pool = servicePool(config.DATABASE_POOL_MAX);
    stoppers.push({ name: 'database pool', stop: () => pool.end() });
    // The built-in directory gets a pool of its own: ledger steps and policy writes hold a
    // connection while they call it, and sharing one pool could leave every connection waiting
    // on another.
    const directoryPool = servicePool(Math.max(2, Math.floor(config.DATABASE_POOL_MAX / 2)));
    stoppers.push({ name: 'directory pool', stop: () => directoryPool.end() });
    const directory = createPostgresDirectory(directoryPool);

    const demo = parts.embedded && config.DEMO_SEED ? await seedDemoOnce(pool, directory, dataDir, logger) : undefined;

    let temporalAddress = config.TEMPORAL_ADDRESS;
    let temporalUiUrl: string | undefined;
    if (!temporalAddress) {
      if (!parts.embedded)
        throw new Error(
          'TEMPORAL_ADDRESS is not set. `npm run api` and `npm run worker` need a Temporal cluster; `npm start` runs a dev server.',
        );
      logger.info('starting Temporal dev server');
      const devServerStarted = performance.now();
      const devServer = await startTemporalDevServer({
        cliPath: temporalCli,
        namespace: config.TEMPORAL_NAMESPACE,
        port: config.TEMPORAL_DEV_PORT,
        uiPort: config.TEMPORAL_UI_PORT,
        dbFile: path.join(dataDir, 'temporal', 'temporal.db'),
        logger: logger.child({ component: 'temporal-server' }),
      });
      stoppers.push({ name: 'Temporal dev server', stop: devServer.stop });
      logger.info({ seconds: Number(((performance.now() - devServerStarted) / 1000).toFixed(2)) }, 'Temporal dev server ready');
      temporalAddress = devServer.address;
      temporalUiUrl = devServer.uiUrl;
    }
    const target = { address: temporalAddress, namespace: config.TEMPORAL_NAMESPACE };
    // A client for keeping tenants' sweep schedules and the drift schedule in step (the API has its own).
    const temporal: Client = await connectClient(config, target, dataConverter, tracing?.workflowClientInterceptors);
    stoppers.push({ name: 'Temporal client', stop: () => temporal.connection.close() });
    // Each tenant's own target, from its policy; before a tenant first uses one that cannot end
    // memberships by itself, its expiry sweeper is scheduled (and removed once it can).
    const directories = createDirectoryRegistry({
      pool: directoryPool,
      builtin: directory,
      secrets: { env: process.env, filesDir: config.DIRECTORY_SECRETS_DIR ?? null },
      onTarget: sweepScheduleHook({
        temporal,
        taskQueuePrefix: config.TEMPORAL_TASK_QUEUE_PREFIX,
        intervalSeconds: config.DIRECTORY_SWEEP_INTERVAL_SECONDS,
      }),
    });
    stoppers.push({ name: 'directory connectors', stop: () => directories.close() });
    // The deployment's drift Schedule, with the configured interval (a paused one stays paused).
    await syncDriftSchedule({ temporal, taskQueuePrefix: config.TEMPORAL_TASK_QUEUE_PREFIX }, config.TEMPLATE_DRIFT_INTERVAL_SECONDS);

    let metricsAddress: string | undefined;
    if (parts.worker) {
      // In one process with the API, the runtime's metrics are served through the API's /metrics.
      const bind = parts.api ? `127.0.0.1:${await freePort()}` : config.TEMPORAL_METRICS_BIND_ADDRESS;
      metricsAddress = installTemporalRuntime(logger, bind).metricsAddress;
      const connection: NativeConnection = await connectWorker(config, target);
      stoppers.push({ name: 'worker connection', stop: () => connection.close() });
      const workerStarted = performance.now();
      const worker: TenureWorker = await createTenureWorker({
        connection,
        namespace: target.namespace,
        dataConverter,
        taskQueuePrefix: config.TEMPORAL_TASK_QUEUE_PREFIX,
        taskQueues: config.WORKER_TASK_QUEUES,
        activitySlots: config.WORKER_QUEUE_ACTIVITY_SLOTS,
        pool,
        directory,
        directories,
        workflowBundlePath: config.WORKFLOW_BUNDLE_PATH ?? (await bundling),
        ...(tracing ? { tracing: tracing.worker } : {}),
        shutdownGraceSeconds: config.WORKER_SHUTDOWN_GRACE_SECONDS,
        allowPrivateWebhooks: config.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
        campaignRemediationConcurrency: config.CAMPAIGN_REMEDIATION_CONCURRENCY,
      });
      const running = worker.run();
      running.catch((error: Error) => reportFailure(error));
      stoppers.push({
        name: 'worker',
        stop: async () => {
          worker.shutdown();
          await running.catch(() => undefined);
        },
      });
      logger.info(
        {
          taskQueues: worker.taskQueues,
          namespace: target.namespace,
          seconds: Number(((performance.now() - workerStarted) / 1000).toFixed(2)),
        },
        'worker polling',
      );
    }

    let server: RunningServer | undefined;
    if (parts.api) {
      const principals = createPrincipalSource({
        pool,
        logger,
        cacheSeconds: config.AUTH_CACHE_SECONDS,
        useFlushSeconds: config.AUTH_TOKEN_USE_FLUSH_SECONDS,
      });
      await principals.start();
      // The API's own client: a request a person waits on gets a short retry budget (503 sooner).
      const apiTemporal: Client = await connectClient(config, target, dataConverter, tracing?.workflowClientInterceptors, {
        forRequests: true,
      });
      stoppers.push({ name: 'API Temporal client', stop: () => apiTemporal.connection.close() });
      // Stopped after the server (stoppers run in reverse): the last requests' token use is written.
      stoppers.push({ name: 'principal cache', stop: () => principals.stop() });
      const app = createApp({
        principals,
        config,
        pool,
        directory,
        directories,
        oidc: oidcFromConfig(config),
        temporal: apiTemporal,
        payloadCodec,
        logger,
        version: packageVersion(),
        console: {
          dir: consoleDistDir(),
          connectOrigins: config.OIDC_ISSUER ? [new URL(config.OIDC_ISSUER).origin] : [],
          signIn: consoleSignInFrom(config, demo?.actors),
        },
        ...(parts.worker && metricsAddress ? { extraMetrics: () => fetchText(`http://${metricsAddress}/metrics`) } : {}),
      });
      server = await startServer(app, config.HOST, config.PORT);
      stoppers.push({ name: 'API server', stop: server.stop });
    }

    return { apiUrl: server?.url, temporalAddress, temporalUiUrl, databaseUrl, pool, demo, failed, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Creates the data folder, or fails with a sentence naming TENURE_DATA_DIR and why it cannot be used. */
async function ensureDataDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOTDIR' || code === 'EEXIST'
        ? 'a file is in the way'
        : code === 'EACCES'
          ? 'permission denied'
          : (code ?? (error as Error).message);
    throw new Error(
      `TENURE_DATA_DIR=${dir} cannot be used as Tenure's data folder (${why}): point it at a folder Tenure may create and write.`,
      {
        cause: error,
      },
    );
  }
}

/**
 * The workflow bundle when WORKFLOW_BUNDLE_PATH names none: compiled code has the one `npm run
 * build` made (built without tracing); `npm start` keeps bundles in the data folder, keyed by their
 * inputs, so a warm start skips webpack. Otherwise undefined: the worker bundles in memory.
 */
async function workflowBundleFor(parts: StackParts, dataDir: string, tracing: boolean, logger: Logger): Promise<string | undefined> {
  const prebuilt = path.join(projectRoot(), 'dist', 'workflow-bundle.js');
  if (!import.meta.url.endsWith('.ts') && !tracing && existsSync(prebuilt)) return prebuilt;
  if (!parts.embedded) return undefined;
  const started = performance.now();
  const bundle = await cachedWorkflowBundle(path.join(dataDir, 'cache'), path.join(projectRoot(), 'package-lock.json'), { tracing });
  logger.info(
    { path: bundle.path, seconds: Number(((performance.now() - started) / 1000).toFixed(2)) },
    bundle.built ? 'bundled the workflows' : 'workflow bundle is up to date',
  );
  return bundle.path;
}

export interface DemoTokens {
  tenants: string[];
  tenantIds?: Record<string, string>;
  actors: { key: string; displayName: string; roles: string; token: string }[];
}

/**
 * Seeds the demo MSP into an empty database on first start. Its tokens are kept in the local
 * data folder (mode 0600) so every later start can print them again; the database itself holds
 * only their hashes, as for any token.
 */
async function seedDemoOnce(pool: Pool, directory: DirectoryConnector, dataDir: string, logger: Logger): Promise<DemoTokens | undefined> {
  const file = path.join(dataDir, 'demo-tokens.json');
  if (await isEmpty(pool)) {
    const cast = await createCast(pool, systemContext('demo MSP seeded on first start'), DEMO_CAST);
    await seedDemoGrants(pool, cast, directory);
    const demo: DemoTokens = {
      tenants: Object.values(cast.tenants).map((t) => `${t.slug} (${t.id})`),
      tenantIds: Object.fromEntries(Object.values(cast.tenants).map((t) => [t.slug, t.id])),
      actors: Object.entries(cast.actors).map(([key, a]) => ({
        key,
        displayName: a.displayName,
        roles: a.roles.map((r) => `${r.role}${r.tenant ? `@${r.tenant}` : ' (MSP-wide)'}`).join(', '),
        token: a.token,
      })),
    };
    await mkdir(dataDir, { recursive: true });
    await writeFile(file, JSON.stringify(demo, null, 2), { mode: 0o600 });
    logger.info({ tenants: demo.tenants }, 'seeded the demo MSP');
    return demo;
  }
  return existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as DemoTokens) : undefined;
}

async function fetchText(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.text();
}
