import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { createDirectoryRegistry, type DirectoryRegistry } from '../../connectors/directory/registry.js';
import { systemContext } from '../../core/audit/context.js';
import { DirectoryRejectedError, DirectoryUnavailableError, type DirectoryConnector } from '../../core/directory/connector.js';
import { DirectoryTarget } from '../../core/directory/targets.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { createPool, type Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { currentPolicy, insertPolicyVersion } from '../../db/tenancy.js';
import { freePort } from '../../runtime/ports.js';
import { createTenant } from '../../usecases/tenancy/tenants.js';
import { startSlapd, type Slapd } from '../support/directory-targets.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/**
 * The directory registry on a real PostgreSQL and slapd: which connector each tenant gets from
 * its policy, where secrets come from (and where they may not), caching, closing and health.
 */
let db: TestDatabase;
let pool: Pool;
let builtinPool: Pool;
let slapd: Slapd;
let builtin: DirectoryConnector;
let secretsDir: string;
let outside: string;
const registries: DirectoryRegistry[] = [];

const ctx = systemContext('directory registry test');

async function newTenant(): Promise<string> {
  const slug = `reg-${randomBytes(3).toString('hex')}`;
  return (await createTenant(pool, ctx, { slug, name: slug, policy: TenantPolicyDocument.parse({}) })).id;
}

/** The tenant's next policy version with this directory section (written as an approved change would). */
async function setTarget(tenantId: string, directory: unknown): Promise<void> {
  await inScope(pool, tenantScope(tenantId), async (client) => {
    const current = (await currentPolicy(client, tenantId))!;
    await insertPolicyVersion(client, {
      tenantId,
      version: current.version + 1,
      document: { ...current.document, directory },
      createdBy: 'test',
    });
  });
}

const ldapTarget = (bindPassword: unknown, settings: Record<string, unknown> = {}) => ({
  type: 'ldap',
  settings: slapd.settings(settings),
  bindPassword,
});

function registry(options: { env?: Record<string, string>; filesDir?: string; seen?: string[] } = {}): DirectoryRegistry {
  const created = createDirectoryRegistry({
    pool,
    builtin,
    secrets: { env: options.env ?? {}, filesDir: options.filesDir ?? null },
    onTarget: async (tenantId, target) => {
      options.seen?.push(`${tenantId}:${target.type}`);
    },
  });
  registries.push(created);
  return created;
}

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createPool({ connectionString: db.appUrl, max: 4 });
  builtinPool = createPool({ connectionString: db.appUrl, max: 2 });
  builtin = createPostgresDirectory(builtinPool);
  slapd = await startSlapd();
  const base = await mkdtemp(path.join(os.tmpdir(), 'tenure-secrets-'));
  secretsDir = path.join(base, 'secrets');
  await mkdir(secretsDir);
  outside = path.join(base, 'outside');
  await writeFile(path.join(secretsDir, 'ldap'), `${slapd.bindPassword}\n`, { mode: 0o600 });
  await writeFile(path.join(secretsDir, 'empty'), '', { mode: 0o600 });
  await writeFile(outside, slapd.bindPassword, { mode: 0o600 });
  await symlink(outside, path.join(secretsDir, 'link-out'));
});
afterAll(async () => {
  await Promise.all(registries.map((r) => r.close()));
  await pool?.end();
  await builtinPool?.end();
  await db?.drop();
  await slapd?.stop();
  if (secretsDir) await rm(path.dirname(secretsDir), { recursive: true, force: true });
});

describe('directory registry', () => {
  it('gives a tenant without another target the built-in directory, and names the tenant in its health', async () => {
    const tenantId = await newTenant();
    const seen: string[] = [];
    const directories = registry({ seen });
    const directory = await directories.directoryFor(tenantId);
    expect(directory.kind).toBe('postgres');
    expect(await directory.getUser(tenantId, 'nobody')).toBeUndefined();
    expect(seen).toEqual([`${tenantId}:builtin`]);
    expect(directories.health()).toEqual([{ tenantId, target: 'postgres', up: true, at: expect.any(String) }]);
    expect(await directories.targetOf(tenantId)).toEqual({ tenantId, policyVersion: 1, target: { type: 'builtin' } });
  });

  it('builds an LDAP connector from the policy with the secret from its environment variable, and keeps it until the section changes', async () => {
    const tenantId = await newTenant();
    await setTarget(tenantId, ldapTarget({ env: 'TENURE_SECRET_LDAP' }));
    const seen: string[] = [];
    const directories = registry({ env: { TENURE_SECRET_LDAP: slapd.bindPassword }, seen });
    const first = await directories.directoryFor(tenantId);
    expect(first.kind).toBe('ldap');
    expect(await first.getUser(tenantId, 'nobody')).toBeUndefined();
    // A policy change elsewhere keeps the connector; a change of the directory section replaces it.
    await inScope(pool, tenantScope(tenantId), async (client) => {
      const current = (await currentPolicy(client, tenantId))!;
      await insertPolicyVersion(client, {
        tenantId,
        version: current.version + 1,
        document: { ...current.document, contactEmail: 'it@example.test' },
        createdBy: 'test',
      });
    });
    expect(await directories.directoryFor(tenantId)).toBe(first);
    expect(seen).toEqual([`${tenantId}:ldap`]);
    await setTarget(tenantId, ldapTarget({ env: 'TENURE_SECRET_LDAP' }, { timeoutMs: 4000 }));
    const second = await directories.directoryFor(tenantId);
    expect(second).not.toBe(first);
    expect(await second.getUser(tenantId, 'nobody')).toBeUndefined();
    expect(seen).toEqual([`${tenantId}:ldap`, `${tenantId}:ldap`]);
    // The replaced connector was closed: it refuses new calls.
    await expect(first.getUser(tenantId, 'nobody')).rejects.toThrow('closed');
    await setTarget(tenantId, { type: 'builtin' });
    expect((await directories.directoryFor(tenantId)).kind).toBe('postgres');
  });

  it('reads a secret file inside DIRECTORY_SECRETS_DIR, and refuses one outside it, a link out of it, an empty one or no folder at all', async () => {
    const tenantId = await newTenant();
    const inside = registry({ filesDir: secretsDir });
    await setTarget(tenantId, ldapTarget({ file: path.join(secretsDir, 'ldap') }));
    expect(await (await inside.directoryFor(tenantId)).getUser(tenantId, 'nobody')).toBeUndefined();

    const refusals: [unknown, DirectoryRegistry, string][] = [
      [{ file: outside }, registry({ filesDir: secretsDir }), 'is outside DIRECTORY_SECRETS_DIR'],
      [{ file: path.join(secretsDir, 'link-out') }, registry({ filesDir: secretsDir }), 'is outside DIRECTORY_SECRETS_DIR'],
      [{ file: path.join(secretsDir, 'empty') }, registry({ filesDir: secretsDir }), 'is empty'],
      [{ file: path.join(secretsDir, 'missing') }, registry({ filesDir: secretsDir }), 'cannot be read (ENOENT)'],
      [{ file: path.join(secretsDir, 'ldap') }, registry(), 'DIRECTORY_SECRETS_DIR is not set'],
      [{ env: 'TENURE_SECRET_UNSET' }, registry(), 'environment variable TENURE_SECRET_UNSET is not set'],
    ];
    for (const [ref, directories, why] of refusals) {
      await setTarget(tenantId, ldapTarget(ref));
      const error = await directories.directoryFor(tenantId).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DirectoryRejectedError);
      expect((error as DirectoryRejectedError).retryable).toBe(false);
      expect((error as Error).message).toContain(`the secret of the ldap directory ${slapd.url} (tenant ${tenantId})`);
      expect((error as Error).message).toContain(why);
      expect((error as Error).message).not.toContain(slapd.bindPassword);
      expect(directories.health()).toEqual([{ tenantId, target: 'ldap', up: false, at: expect.any(String) }]);
    }
  });

  it('reports an unreachable target as down and a reachable one as up again', async () => {
    const tenantId = await newTenant();
    await setTarget(tenantId, ldapTarget({ env: 'TENURE_SECRET_LDAP' }, { url: `ldap://127.0.0.1:${await freePort()}` }));
    const directories = registry({ env: { TENURE_SECRET_LDAP: slapd.bindPassword } });
    const down = await directories.directoryFor(tenantId);
    await expect(down.getUser(tenantId, 'nobody')).rejects.toBeInstanceOf(DirectoryUnavailableError);
    expect(directories.health()).toMatchObject([{ tenantId, target: 'ldap', up: false }]);
    await setTarget(tenantId, ldapTarget({ env: 'TENURE_SECRET_LDAP' }));
    await (await directories.directoryFor(tenantId)).getUser(tenantId, 'nobody');
    expect(directories.health()).toMatchObject([{ tenantId, target: 'ldap', up: true }]);
  });

  it('refuses a directory section no schema accepts, naming the tenant and the version', async () => {
    const tenantId = await newTenant();
    await setTarget(tenantId, { type: 'ftp' });
    const error = await registry()
      .directoryFor(tenantId)
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DirectoryRejectedError);
    expect((error as Error).message).toBe(`the directory section of tenant ${tenantId}'s policy version 2 is not valid`);
  });

  it('a secret reference is a TENURE_SECRET_ variable or an absolute path, never another setting of the process', () => {
    const parse = (bindPassword: unknown) => DirectoryTarget.safeParse({ ...ldapTarget(bindPassword) }).success;
    expect(parse({ env: 'TENURE_SECRET_CONTOSO_LDAP' })).toBe(true);
    expect(parse({ file: '/run/secrets/contoso-ldap' })).toBe(true);
    expect(parse({ env: 'DATABASE_URL' })).toBe(false);
    expect(parse({ file: 'relative/path' })).toBe(false);
    expect(parse({ file: '/run/secrets/../../etc/shadow' })).toBe(false);
    expect(parse({ value: 'the-password' })).toBe(false);
  });
});
