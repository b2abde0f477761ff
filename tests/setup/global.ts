import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { adminQuery, withDatabase } from '../../bench/support.js';
import { migrate } from '../../db/migrate.js';
import { ensureServiceLogin } from '../../db/roles.js';
import { startEmbeddedPostgres } from '../../runtime/embedded-postgres.js';
import { createLogger } from '../../runtime/logger.js';
import { freePort } from '../../runtime/ports.js';
import { startTemporalDevServer } from '../../runtime/temporal-dev-server.js';
import { cachedWorkflowBundle } from '../../worker/bundle-cache.js';
import { projectRoot } from '../../runtime/paths.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL connection that may CREATE DATABASE; each test file makes its own database. */
    adminDatabaseUrl: string;
    temporalAddress: string;
    temporalNamespace: string;
    workflowBundlePath: string;
    /** Where workflow bundles are kept between runs, keyed by their inputs (worker/bundle-cache.ts). */
    workflowBundleCacheDir: string;
    /** A database migrated once for this run; test files copy it (CREATE DATABASE … TEMPLATE). Nothing connects to it. */
    migratedTemplateDatabase: string;
    /** The service's own login (member of tenure_app, owns nothing), as in production. */
    serviceLogin: { user: string; password: string };
  }
}

/**
 * One real PostgreSQL and one real Temporal dev server for the whole run: the ones named by
 * DATABASE_URL / TEMPORAL_ADDRESS, or embedded ones started here. Test files isolate themselves
 * with their own database, task queue and workflow ids, so they can run in parallel.
 */
export default async function setup(project: TestProject) {
  const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'error', { role: 'test-harness' });
  const teardown: (() => Promise<unknown>)[] = [];
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'tenure-test-'));
  await chmod(scratch, 0o755); // as root, embedded PostgreSQL runs as `postgres` and must reach its folder
  teardown.push(() => rm(scratch, { recursive: true, force: true }));

  try {
    let adminDatabaseUrl = process.env.DATABASE_URL;
    if (!adminDatabaseUrl) {
      const postgres = await startEmbeddedPostgres({
        dir: path.join(scratch, 'postgres'),
        port: await freePort(),
        database: 'tenure',
        logger,
      });
      teardown.push(postgres.stop);
      adminDatabaseUrl = postgres.adminUrl;
    }

    const serviceLogin = { user: 'tenure_test_service', password: 'tenure-test-service' };
    await ensureServiceLogin(adminDatabaseUrl, serviceLogin.user, serviceLogin.password);

    // Migrated once here; every test file's database is a copy of it instead of a migration of its own.
    const migratedTemplateDatabase = `tenure_template_${randomBytes(6).toString('hex')}`;
    const adminUrl = adminDatabaseUrl;
    await adminQuery(adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(migratedTemplateDatabase)}`);
    teardown.push(() => adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(migratedTemplateDatabase)} WITH (FORCE)`));
    await migrate(withDatabase(adminUrl, migratedTemplateDatabase));

    const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
    let temporalAddress = process.env.TEMPORAL_ADDRESS;
    if (!temporalAddress) {
      const server = await startTemporalDevServer({ cliPath: process.env.TEMPORAL_CLI_PATH, namespace, port: 0, logger });
      teardown.push(server.stop);
      temporalAddress = server.address;
    }

    // Kept between runs: webpack runs again only when the workflow code (or the SDK) changed.
    const workflowBundleCacheDir = path.join(projectRoot(), 'node_modules', '.cache', 'tenure', 'workflow-bundles');
    const { path: workflowBundlePath } = await cachedWorkflowBundle(workflowBundleCacheDir, path.join(projectRoot(), 'package-lock.json'));

    project.provide('adminDatabaseUrl', adminDatabaseUrl);
    project.provide('temporalAddress', temporalAddress);
    project.provide('temporalNamespace', namespace);
    project.provide('workflowBundlePath', workflowBundlePath);
    project.provide('workflowBundleCacheDir', workflowBundleCacheDir);
    project.provide('serviceLogin', serviceLogin);
    project.provide('migratedTemplateDatabase', migratedTemplateDatabase);
  } catch (error) {
    for (const step of teardown.reverse()) await step().catch(() => undefined);
    throw error;
  }

  return async () => {
    for (const step of teardown.reverse()) await step().catch(() => undefined);
  };
}
