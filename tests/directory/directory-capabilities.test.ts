import { randomBytes, randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantEligibility } from '../../activities/grants/activities.js';
import { createLifecycleActivities } from '../../activities/lifecycle/activities.js';
import { createLedgerActivities } from '../../activities/directory/ledger.js';
import { systemClock } from '../../activities/index.js';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { systemContext } from '../../core/audit/context.js';
import {
  DIRECTORY_TARGET_REJECTED,
  singleDirectory,
  DirectoryUnsupportedError,
  requireCapability,
  type DirectoryCapabilities,
  type DirectoryConnector,
} from '../../core/directory/connector.js';
import { AppError } from '../../core/errors.js';
import { GrantPolicy } from '../../core/grants/policy.js';
import { LifecyclePolicy } from '../../core/lifecycle/policy.js';
import type { Principal } from '../../core/tenancy/authz.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { createPool, type Pool } from '../../db/pool.js';
import { requestGrant } from '../../usecases/grants.js';
import { createActor } from '../../usecases/tenancy/actors.js';
import { createBinding } from '../../usecases/tenancy/bindings.js';
import { getPolicy, putPolicy } from '../../usecases/tenancy/policies.js';
import { createTenant } from '../../usecases/tenancy/tenants.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
/** The service's login under RLS. */
let pool: Pool;
let directoryPool: Pool;
let directory: PostgresDirectory;
let tenantA: string;
let tenantB: string;
let operatorId: string;

const ctx = systemContext('directory capabilities test');

/** The built-in directory with some capabilities taken away, as an LDAP or SCIM target would declare. */
function lacking(...missing: (keyof DirectoryCapabilities)[]): DirectoryConnector {
  const capabilities = { ...directory.capabilities };
  for (const name of missing) capabilities[name] = false;
  return { ...directory, kind: 'limited', capabilities };
}

async function newTenant(prefix: string): Promise<string> {
  const slug = `${prefix}-${randomBytes(3).toString('hex')}`;
  return (await createTenant(pool, ctx, { slug, name: slug, policy: TenantPolicyDocument.parse({}) })).id;
}

const birthright = (roles: string[]) =>
  LifecyclePolicy.parse({ attributes: ['department'], rules: [{ id: 'everyone', roles }], leaver: { retentionDays: 1 } });

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createPool({ connectionString: db.appUrl, max: 4 });
  directoryPool = createPool({ connectionString: db.appUrl, max: 2 });
  directory = createPostgresDirectory(directoryPool);
  tenantA = await newTenant('cap-a');
  tenantB = await newTenant('cap-b');
  await directory.upsertRole(tenantA, { name: 'GlobalAdmin', description: 'all of it', privileged: true });
  await directory.upsertRole(tenantA, { name: 'AllStaff' });
  await directory.upsertRole(tenantB, { name: 'OnlyInB', privileged: true });
  await directory.upsertUser(tenantA, { id: 'ana', username: 'ana', displayName: 'Ana' });
  await directory.upsertUser(tenantA, { id: 'dora', username: 'dora', displayName: 'Dora' });
  await directory.setUserStatus(tenantA, 'dora', 'disabled');
  const operator = await createActor(pool, ctx, { kind: 'msp_staff', displayName: 'Op' });
  await createBinding(pool, ctx, { actorId: operator.id, role: 'operator', tenantId: null });
  operatorId = operator.id;
});
afterAll(async () => {
  await pool?.end();
  await directoryPool?.end();
  await db?.drop();
});

describe('directory capabilities', () => {
  it('the built-in directory declares every capability', () => {
    expect(directory.capabilities).toEqual({
      sessions: true,
      membershipEnd: true,
      roleLookup: true,
      roleDelete: true,
      unlock: true,
      mfaReset: true,
      passwordReset: true,
      mfaPolicy: true,
      passwordPolicy: true,
      lockoutPolicy: true,
      sessionPolicy: true,
    });
    expect(() => requireCapability(directory, 'sessions', tenantA)).not.toThrow();
  });

  it('requireCapability names the missing capability in a non-retryable error', () => {
    const error: unknown = (() => {
      try {
        requireCapability(lacking('sessions'), 'sessions', tenantA);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(DirectoryUnsupportedError);
    expect(error).toMatchObject({ capability: 'sessions', connector: 'limited', retryable: false });
  });

  it('getRoles answers only the named roles the tenant has, with their privileged flag, sorted', async () => {
    expect(await directory.getRoles(tenantA, ['GlobalAdmin', 'AllStaff', 'Missing', 'OnlyInB'])).toEqual([
      { name: 'AllStaff', description: '', privileged: false },
      { name: 'GlobalAdmin', description: 'all of it', privileged: true },
    ]);
    expect(await directory.getRoles(tenantB, ['GlobalAdmin', 'OnlyInB'])).toEqual([{ name: 'OnlyInB', description: '', privileged: true }]);
    expect(await directory.getRoles(tenantA, [])).toEqual([]);
  });
});

describe('policy writes ask the directory for the roles they name', () => {
  it('a rule naming a role the directory lacks is refused with its field path', async () => {
    const current = await getPolicy(pool, tenantA);
    const error = await putPolicy({ pool, directory }, ctx, tenantA, current.version, {
      ...current.document,
      lifecycle: birthright(['AllStaff', 'OnlyInB']),
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ status: 400, issues: [{ path: 'body.document.lifecycle.rules.0.roles.1' }] });
    expect((await getPolicy(pool, tenantA)).version).toBe(current.version);
  });

  it('a grantable role the directory lacks is refused with its field path, by the same check', async () => {
    const current = await getPolicy(pool, tenantA);
    const error = await putPolicy({ pool, directory }, ctx, tenantA, current.version, {
      ...current.document,
      grants: GrantPolicy.parse({
        roles: {
          GlobalAdmin: { maxDurationMinutes: 60, requestableBy: ['operator'] },
          OnlyInB: { maxDurationMinutes: 60, requestableBy: ['operator'] },
        },
      }),
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({
      status: 400,
      issues: [{ path: 'body.document.grants.roles.OnlyInB', message: 'no role OnlyInB in the tenant directory' }],
    });
    expect((await getPolicy(pool, tenantA)).version).toBe(current.version);
  });

  it('a rule naming only known roles is stored as the next version', async () => {
    const current = await getPolicy(pool, tenantA);
    const next = await putPolicy({ pool, directory }, ctx, tenantA, current.version, {
      ...current.document,
      lifecycle: birthright(['AllStaff']),
    });
    expect(next.version).toBe(current.version + 1);
  });

  it('a directory that cannot list roles gets the change refused with that reason, not waved through', async () => {
    const current = await getPolicy(pool, tenantA);
    const error = await putPolicy({ pool, directory: lacking('roleLookup') }, ctx, tenantA, current.version, {
      ...current.document,
      lifecycle: birthright(['AllStaff']),
    }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ status: 409, code: 'directory_capability_missing' });
    expect((await getPolicy(pool, tenantA)).version).toBe(current.version);
  });
});

describe('grant checks ask the directory for the subject', () => {
  const policy = {
    version: 1,
    grants: GrantPolicy.parse({ roles: { GlobalAdmin: { maxDurationMinutes: 60, approvalsRequired: 1, requestableBy: ['operator'] } } }),
  };
  const principal = (): Principal => ({
    actorId: operatorId,
    kind: 'msp_staff',
    displayName: 'Op',
    via: 'api_token',
    bindings: [{ id: randomUUID(), role: 'operator', tenantId: null }],
  });

  it.each([
    ['unknown', 'nobody'],
    ['disabled', 'dora'],
  ])('requestGrant refuses a subject the directory reports %s, before anything is stored or started', async (_label, subjectId) => {
    // No Temporal client: the refusal must come before any start.
    const deps = { pool, directory, temporal: undefined as unknown as Client, taskQueue: 'unused' };
    const error = await requestGrant(
      deps,
      principal(),
      tenantA,
      policy,
      { subjectId, role: 'GlobalAdmin', durationMinutes: 30, justification: 'test' },
      { requestId: randomUUID() },
    ).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ status: 400, issues: [{ path: 'body.subjectId' }] });
    const { rows } = await db.pool.query('SELECT 1 FROM grants WHERE tenant_id = $1 AND subject_id = $2', [tenantA, subjectId]);
    expect(rows).toHaveLength(0);
  });

  it('eligibility reads the subject through the connector: an active user passes, a disabled one is named', async () => {
    const current = await getPolicy(pool, tenantA);
    await putPolicy({ pool, directory }, ctx, tenantA, current.version, { ...current.document, grants: policy.grants });
    const input = { tenantId: tenantA, role: 'GlobalAdmin', requesterId: operatorId };
    expect(await grantEligibility(pool, singleDirectory(directory), { ...input, subjectId: 'ana' })).toEqual({
      eligible: true,
      reason: null,
    });
    expect(await grantEligibility(pool, singleDirectory(directory), { ...input, subjectId: 'dora' })).toEqual({
      eligible: false,
      reason: 'the subject is not an active user in the tenant directory',
    });
  });
});

describe('lifecycle steps a target cannot do', () => {
  it('revoking sessions on a target without sessions fails for good, naming the capability', async () => {
    const acts = createLifecycleActivities({ pool, directories: singleDirectory(lacking('sessions')), clock: systemClock });
    const error = await acts.revokePersonSessions({ tenantId: tenantA, personId: 'ana' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: DIRECTORY_TARGET_REJECTED, nonRetryable: true });
    expect((error as Error).message).toContain('sessions capability');
  });

  it('revoking sessions on the built-in directory ends the open ones', async () => {
    await directory.openSession(tenantA, 'ana');
    const acts = createLifecycleActivities({ pool, directories: singleDirectory(directory), clock: systemClock });
    expect(await acts.revokePersonSessions({ tenantId: tenantA, personId: 'ana' })).toBe(1);
  });

  it('a leaver’s sessions step on a target without sessions answers "sessions: not supported by target" instead of failing', async () => {
    const acts = createLifecycleActivities({ pool, directories: singleDirectory(lacking('sessions')), clock: systemClock });
    expect(await acts.endPersonSessions({ tenantId: tenantA, personId: 'ana' })).toEqual({
      supported: false,
      gap: { capability: 'sessions', target: 'limited', note: 'sessions: not supported by target' },
    });
    await directory.openSession(tenantA, 'ana');
    const full = createLifecycleActivities({ pool, directories: singleDirectory(directory), clock: systemClock });
    expect(await full.endPersonSessions({ tenantId: tenantA, personId: 'ana' })).toEqual({ supported: true, revoked: 1 });
  });

  it('a person’s access on a target without role lookup leaves privileged unknown (null) and says why', async () => {
    const ledger = createLedgerActivities({ pool, directories: singleDirectory(directory) });
    await ledger.grantAccess({ tenantId: tenantA, subjectId: 'ana', role: 'GlobalAdmin', sourceType: 'manual', sourceId: 'cap-1' });
    const limited = createLifecycleActivities({ pool, directories: singleDirectory(lacking('roleLookup')), clock: systemClock });
    const access = await limited.listPersonAccess({ tenantId: tenantA, personId: 'ana' });
    expect(access.entitlements).toEqual([{ role: 'GlobalAdmin', sourceType: 'manual', sourceId: 'cap-1', privileged: null }]);
    expect(access.notSupported).toEqual([{ capability: 'roleLookup', target: 'limited', note: 'roleLookup: not supported by target' }]);
    const full = createLifecycleActivities({ pool, directories: singleDirectory(directory), clock: systemClock });
    const known = await full.listPersonAccess({ tenantId: tenantA, personId: 'ana' });
    expect(known.entitlements).toEqual([{ role: 'GlobalAdmin', sourceType: 'manual', sourceId: 'cap-1', privileged: true }]);
    expect(known.notSupported).toBeUndefined();
    await ledger.endAccess({
      tenantId: tenantA,
      subjectId: 'ana',
      role: 'GlobalAdmin',
      sourceType: 'manual',
      sourceId: 'cap-1',
      reason: 'test',
    });
  });
});
