import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { createLedgerActivities } from '../../activities/directory/ledger.js';
import { createLifecycleActivities } from '../../activities/lifecycle/activities.js';
import { systemClock } from '../../activities/index.js';
import {
  DIRECTORY_TARGET_REJECTED,
  singleDirectory,
  DirectoryConflictError,
  DirectoryNotFoundError,
  DirectoryUnavailableError,
  type DirectoryConnector,
} from '../../core/directory/connector.js';
import { closeEntitlement, lockSubjectRole, lockSubjectRoles, openEntitlement, openEntitlements } from '../../db/directory/ledger.js';
import { createPool, type Pool, type PoolClient } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
/** The service's login under RLS, for the ledger. */
let app: Pool;
/** A second pool of the same login for the directory, as the worker must wire it. */
let directoryPool: Pool;
let directory: PostgresDirectory;
let tenantA: string;
let tenantB: string;

const ROLE = 'global-admin';
const OTHER_ROLE = 'helpdesk';

async function seedTenant(prefix: string): Promise<string> {
  const id = randomUUID();
  await db.pool.query('INSERT INTO tenants (id, slug, name, created_by) VALUES ($1, $2, $3, $4)', [
    id,
    `${prefix}-${randomBytes(3).toString('hex')}`,
    `Tenant ${prefix}`,
    'directory-ledger test',
  ]);
  for (const role of [ROLE, OTHER_ROLE, 'reader']) {
    await directory.upsertRole(id, { name: role, description: `${role} role`, privileged: role === ROLE });
  }
  return id;
}

/** A fresh user per test, so no test depends on another's memberships. */
async function newUser(tenantId: string, id = `u-${randomUUID()}`): Promise<string> {
  await directory.upsertUser(tenantId, { id, username: `${id}@example.test`, displayName: `User ${id}` });
  return id;
}

/** What the table owner sees, bypassing the code under test. */
async function memberships(tenantId: string, userId: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ role: string }>(
    'SELECT role FROM directory_memberships WHERE tenant_id = $1 AND user_id = $2 ORDER BY role',
    [tenantId, userId],
  );
  return rows.map((r) => r.role);
}

async function ledgerRows(tenantId: string, subjectId: string, role = ROLE) {
  const { rows } = await db.pool.query<{ id: string; source_id: string; ended_at: Date | null; end_reason: string | null }>(
    'SELECT id, source_id, ended_at, end_reason FROM entitlements WHERE tenant_id = $1 AND subject_id = $2 AND role = $3 ORDER BY granted_at, id',
    [tenantId, subjectId, role],
  );
  return rows;
}

const openCount = async (tenantId: string, subjectId: string, role = ROLE) =>
  (await ledgerRows(tenantId, subjectId, role)).filter((r) => r.ended_at === null).length;

/** When the target's membership stops counting by itself (null: no end, undefined: no membership). */
async function membershipEnd(tenantId: string, userId: string, role = ROLE): Promise<string | null | undefined> {
  const { rows } = await db.pool.query<{ expires_at: Date | null }>(
    'SELECT expires_at FROM directory_memberships WHERE tenant_id = $1 AND user_id = $2 AND role = $3',
    [tenantId, userId, role],
  );
  return rows[0] ? (rows[0].expires_at?.toISOString() ?? null) : undefined;
}

/** The database's clock now: an end set to it has passed by the time any later statement runs. */
const databaseNow = async () => (await db.pool.query<{ now: Date }>('SELECT now()')).rows[0]!.now.toISOString();

/** Moves ends into the past as time would, without waiting: a source's entitlement and the target's membership. */
async function backdate(tenantId: string, userId: string, what: { sourceId?: string; membership?: boolean }, role = ROLE) {
  if (what.sourceId) {
    await db.pool.query(
      `UPDATE entitlements SET expires_at = now() - interval '1 minute' WHERE tenant_id = $1 AND subject_id = $2 AND role = $3 AND source_id = $4`,
      [tenantId, userId, role, what.sourceId],
    );
  }
  if (what.membership) {
    await db.pool.query(
      `UPDATE directory_memberships SET expires_at = now() - interval '1 minute' WHERE tenant_id = $1 AND user_id = $2 AND role = $3`,
      [tenantId, userId, role],
    );
  }
}

const inOneHour = () => new Date(Date.now() + 3_600_000).toISOString();

beforeAll(async () => {
  db = await createTestDatabase();
  app = createPool({ connectionString: db.appUrl, max: 8 });
  directoryPool = createPool({ connectionString: db.appUrl, max: 4 });
  directory = createPostgresDirectory(directoryPool);
  tenantA = await seedTenant('a');
  tenantB = await seedTenant('b');
});
afterAll(async () => {
  await app?.end();
  await directoryPool?.end();
  await db?.drop();
});

describe('built-in directory', () => {
  it('assigning a role twice leaves one membership, and removing it twice leaves none', async () => {
    const user = await newUser(tenantA);
    await directory.assignRole(tenantA, user, ROLE);
    await directory.assignRole(tenantA, user, ROLE);
    expect(await memberships(tenantA, user)).toEqual([ROLE]);
    expect(await directory.hasRole(tenantA, user, ROLE)).toBe(true);

    await directory.removeRole(tenantA, user, ROLE);
    await directory.removeRole(tenantA, user, ROLE);
    expect(await memberships(tenantA, user)).toEqual([]);
    expect(await directory.hasRole(tenantA, user, ROLE)).toBe(false);
  });

  it('lists a user’s roles sorted and a role’s members', async () => {
    const [first, second] = [await newUser(tenantA), await newUser(tenantA)];
    await directory.assignRole(tenantA, first, 'reader');
    await directory.assignRole(tenantA, first, OTHER_ROLE);
    await directory.assignRole(tenantA, second, OTHER_ROLE);
    expect(await directory.listRoles(tenantA, first)).toEqual([OTHER_ROLE, 'reader']);
    expect(await directory.listMembers(tenantA, OTHER_ROLE)).toEqual(expect.arrayContaining([first, second]));
    expect(await directory.listMembers(tenantA, 'reader')).toContain(first);
    expect(await directory.listMembers(tenantA, 'reader')).not.toContain(second);
  });

  it('refuses to assign to an unknown user, a deleted user or an unknown role, saying which is missing', async () => {
    const user = await newUser(tenantA);
    await expect(directory.assignRole(tenantA, 'nobody', ROLE)).rejects.toMatchObject({
      name: 'DirectoryNotFoundError',
      kind: 'user',
      id: 'nobody',
      retryable: false,
    });
    await expect(directory.assignRole(tenantA, user, 'no-such-role')).rejects.toMatchObject({
      name: 'DirectoryNotFoundError',
      kind: 'role',
      id: 'no-such-role',
    });
    await directory.setUserStatus(tenantA, user, 'deleted');
    await expect(directory.assignRole(tenantA, user, ROLE)).rejects.toBeInstanceOf(DirectoryNotFoundError);
    expect(await memberships(tenantA, user)).toEqual([]);
  });

  it('an end that has passed gives no access: refused without a live membership, and a live membership ends at once', async () => {
    // No membership: an assignment whose end has passed by the database's clock is refused, nothing written.
    const user = await newUser(tenantA);
    const refused: unknown = await directory.assignRole(tenantA, user, ROLE, await databaseNow()).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DirectoryConflictError);
    expect(refused).toMatchObject({ retryable: false });
    expect(await membershipEnd(tenantA, user)).toBeUndefined();

    // A membership already past its end is not revived by a late assignment: refused, its end unchanged.
    const lapsed = await newUser(tenantA);
    await directory.assignRole(tenantA, lapsed, ROLE, inOneHour());
    await backdate(tenantA, lapsed, { membership: true });
    const lapsedEnd = await membershipEnd(tenantA, lapsed);
    await expect(directory.assignRole(tenantA, lapsed, ROLE, await databaseNow())).rejects.toBeInstanceOf(DirectoryConflictError);
    expect(await membershipEnd(tenantA, lapsed)).toBe(lapsedEnd);
    expect(await directory.hasRole(tenantA, lapsed, ROLE)).toBe(false);

    // A live membership told an end that has passed stops counting now: ending access is never refused.
    const live = await newUser(tenantA);
    await directory.assignRole(tenantA, live, ROLE, inOneHour());
    const now = await databaseNow();
    await directory.assignRole(tenantA, live, ROLE, now);
    expect(await membershipEnd(tenantA, live)).toBe(now);
    expect(await directory.hasRole(tenantA, live, ROLE)).toBe(false);
    // And an end still ahead assigns again.
    const ahead = inOneHour();
    await directory.assignRole(tenantA, live, ROLE, ahead);
    expect(await membershipEnd(tenantA, live)).toBe(ahead);
    expect(await directory.hasRole(tenantA, live, ROLE)).toBe(true);
  });

  it('treats an unknown user as holding nothing: remove is a no-op, hasRole false, listRoles empty, no sessions', async () => {
    await expect(directory.removeRole(tenantA, 'ghost', ROLE)).resolves.toBeUndefined();
    expect(await directory.hasRole(tenantA, 'ghost', ROLE)).toBe(false);
    expect(await directory.listRoles(tenantA, 'ghost')).toEqual([]);
    expect(await directory.revokeSessions(tenantA, 'ghost')).toBe(0);
    expect(await directory.getUser(tenantA, 'ghost')).toBeUndefined();
  });

  it('revokes every live session of one user and no one else’s; a second revocation ends none', async () => {
    const [user, bystander] = [await newUser(tenantA), await newUser(tenantA)];
    await directory.openSession(tenantA, user);
    await directory.openSession(tenantA, user);
    const kept = await directory.openSession(tenantA, bystander);

    expect(await directory.revokeSessions(tenantA, user)).toBe(2);
    expect(await directory.revokeSessions(tenantA, user)).toBe(0);
    const { rows } = await db.pool.query<{ id: string; user_id: string; revoked: boolean }>(
      'SELECT id, user_id, revoked_at IS NOT NULL AS revoked FROM directory_sessions WHERE tenant_id = $1 AND user_id = ANY($2)',
      [tenantA, [user, bystander]],
    );
    expect(rows.filter((r) => r.user_id === user).every((r) => r.revoked)).toBe(true);
    expect(rows.find((r) => r.id === kept)?.revoked).toBe(false);
  });

  it('a disabled user cannot open a session', async () => {
    const user = await newUser(tenantA);
    await directory.setUserStatus(tenantA, user, 'disabled');
    await expect(directory.openSession(tenantA, user)).rejects.toBeInstanceOf(DirectoryConflictError);
  });

  it('upserting a user updates the profile and keeps its status; a username held by another user is a conflict', async () => {
    const user = await newUser(tenantA);
    await directory.setUserStatus(tenantA, user, 'disabled');
    const updated = await directory.upsertUser(tenantA, {
      id: user,
      username: `${user}@example.test`,
      displayName: 'Renamed',
      email: 'r@example.test',
      attributes: { dept: 'ops' },
    });
    expect(updated).toMatchObject({
      id: user,
      displayName: 'Renamed',
      email: 'r@example.test',
      attributes: { dept: 'ops' },
      status: 'disabled',
    });
    // Omitted optional fields keep what is stored.
    const again = await directory.upsertUser(tenantA, { id: user, username: `${user}@example.test`, displayName: 'Renamed' });
    expect(again).toMatchObject({ email: 'r@example.test', attributes: { dept: 'ops' } });

    const other = await newUser(tenantA);
    await expect(
      directory.upsertUser(tenantA, { id: other, username: `${user}@example.test`, displayName: 'Thief' }),
    ).rejects.toBeInstanceOf(DirectoryConflictError);
    await expect(directory.setUserStatus(tenantA, 'ghost', 'disabled')).rejects.toMatchObject({
      name: 'DirectoryNotFoundError',
      kind: 'user',
    });
  });

  it('a user can be created disabled (pre-provisioning); the initial status never changes an existing user', async () => {
    const id = `u-${randomUUID()}`;
    const created = await directory.upsertUser(tenantA, { id, username: id, displayName: 'Starts later', initialStatus: 'disabled' });
    expect(created.status).toBe('disabled');
    expect((await directory.upsertUser(tenantA, { id, username: id, displayName: 'Starts later', initialStatus: 'active' })).status).toBe(
      'disabled',
    );
  });

  it('an unreachable database is reported as a retryable DirectoryUnavailableError with its cause', async () => {
    const unreachable = createPool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', max: 1 });
    try {
      const error: unknown = await createPostgresDirectory(unreachable)
        .hasRole(tenantA, 'anyone', ROLE)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DirectoryUnavailableError);
      expect(error).toMatchObject({ retryable: true, cause: expect.objectContaining({ code: 'ECONNREFUSED' }) });
    } finally {
      await unreachable.end();
    }
  });
});

describe('tenant isolation of the directory and the ledger', () => {
  const tables = ['directory_users', 'directory_roles', 'directory_memberships', 'directory_sessions', 'entitlements'];

  beforeAll(async () => {
    for (const tenant of [tenantA, tenantB]) {
      const user = await newUser(tenant);
      await directory.assignRole(tenant, user, OTHER_ROLE);
      await directory.openSession(tenant, user);
      await inScope(app, tenantScope(tenant), (client) =>
        openEntitlement(client, { tenantId: tenant, subjectId: user, role: OTHER_ROLE, sourceType: 'manual', sourceId: 'seed' }),
      );
    }
  });

  it.each(tables)('a tenant-scoped query on %s that forgets its tenant filter sees only that tenant', async (table) => {
    const seen = await inScope(app, tenantScope(tenantA), async (client) => {
      const { rows } = await client.query<{ t: string }>(`SELECT DISTINCT tenant_id::text AS t FROM ${table}`);
      return rows.map((r) => r.t);
    });
    expect(seen).toEqual([tenantA]);
    // The MSP scope sees both, so the filter above was row-level security, not missing data.
    const all = await inScope(app, mspScope, async (client) => {
      const { rows } = await client.query<{ t: string }>(`SELECT DISTINCT tenant_id::text AS t FROM ${table}`);
      return rows.map((r) => r.t);
    });
    expect(all).toEqual(expect.arrayContaining([tenantA, tenantB]));
  });

  it('the same user id in two tenants is two users: a role in one is not visible in the other', async () => {
    const id = `shared-${randomUUID()}`;
    await newUser(tenantA, id);
    await newUser(tenantB, id);
    await directory.assignRole(tenantB, id, ROLE);
    expect(await directory.hasRole(tenantA, id, ROLE)).toBe(false);
    expect(await directory.hasRole(tenantB, id, ROLE)).toBe(true);
  });

  it("refuses to write a membership or an entitlement into another tenant's rows", async () => {
    const userB = await newUser(tenantB);
    await expect(
      inScope(app, tenantScope(tenantA), (client) =>
        client.query('INSERT INTO directory_memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)', [tenantB, userB, ROLE]),
      ),
    ).rejects.toThrow(/row-level security/);
    await expect(
      inScope(app, tenantScope(tenantA), (client) =>
        openEntitlement(client, { tenantId: tenantB, subjectId: userB, role: ROLE, sourceType: 'manual', sourceId: 'x' }),
      ),
    ).rejects.toThrow(/row-level security/);
  });

  it('the service may close entitlements but never delete them, may not delete users, and deletes a role only while nobody holds it', async () => {
    const { rows } = await app.query<Record<string, boolean>>(
      `SELECT has_table_privilege('entitlements', 'UPDATE') AS close_entitlement,
              has_table_privilege('entitlements', 'DELETE') AS delete_entitlement,
              has_table_privilege('directory_users', 'DELETE') AS delete_user,
              has_table_privilege('directory_roles', 'DELETE') AS delete_role,
              has_table_privilege('directory_memberships', 'DELETE') AS remove_membership,
              has_table_privilege('directory_memberships', 'UPDATE') AS update_membership`,
    );
    expect(rows[0]).toEqual({
      close_entitlement: true,
      delete_entitlement: false,
      delete_user: false,
      // A template rollback removes a role its apply created; the memberships' foreign key keeps a held role.
      delete_role: true,
      remove_membership: true,
      update_membership: false,
    });
    const holder = await newUser(tenantA);
    await directory.assignRole(tenantA, holder, ROLE);
    await expect(
      inScope(app, tenantScope(tenantA), (client) =>
        client.query('DELETE FROM directory_roles WHERE tenant_id = $1 AND name = $2', [tenantA, ROLE]),
      ),
    ).rejects.toThrow(/foreign key/);
    expect(await directory.hasRole(tenantA, holder, ROLE)).toBe(true);
  });
});

describe('entitlement ledger', () => {
  const key = (subjectId: string, sourceId: string, sourceType: 'grant' | 'birthright' = 'grant') =>
    ({ tenantId: tenantA, subjectId, role: ROLE, sourceType, sourceId }) as const;
  const tx = <T>(fn: (client: PoolClient) => Promise<T>) => inScope(app, tenantScope(tenantA), fn);

  it('opening the same source twice returns the same open entitlement and counts the other sources', async () => {
    const subject = await newUser(tenantA);
    const first = await tx((c) => openEntitlement(c, key(subject, 'g1')));
    const retry = await tx((c) => openEntitlement(c, key(subject, 'g1')));
    const second = await tx((c) => openEntitlement(c, key(subject, 'rule-1', 'birthright')));
    expect(first).toMatchObject({ created: true, open: true, otherOpenSources: 0 });
    expect(retry).toEqual({ ...first, created: false });
    expect(second).toMatchObject({ created: true, open: true, otherOpenSources: 1 });
    expect(await tx((c) => openEntitlements(c, tenantA, subject))).toHaveLength(2);
  });

  it('closing reports the other open sources, and closing again closes nothing', async () => {
    const subject = await newUser(tenantA);
    await tx((c) => openEntitlement(c, key(subject, 'g1')));
    await tx((c) => openEntitlement(c, key(subject, 'g2')));
    expect(await tx((c) => closeEntitlement(c, { ...key(subject, 'g1'), reason: 'expired' }))).toMatchObject({
      closed: true,
      remainingOpen: 1,
    });
    expect(await tx((c) => closeEntitlement(c, { ...key(subject, 'g1'), reason: 'expired' }))).toMatchObject({
      closed: false,
      entitlementId: null,
      remainingOpen: 1,
    });
    expect(await tx((c) => closeEntitlement(c, { ...key(subject, 'g2'), reason: 'revoked' }))).toMatchObject({
      closed: true,
      remainingOpen: 0,
    });
    expect((await ledgerRows(tenantA, subject)).map((r) => r.end_reason)).toEqual(['expired', 'revoked']);
  });

  it('an ended grant cannot be opened again, but an ended birthright rule can apply again', async () => {
    const subject = await newUser(tenantA);
    const grant = await tx((c) => openEntitlement(c, key(subject, 'g1')));
    await tx((c) => closeEntitlement(c, { ...key(subject, 'g1'), reason: 'revoked' }));
    expect(await tx((c) => openEntitlement(c, key(subject, 'g1')))).toEqual({
      entitlementId: grant.entitlementId,
      created: false,
      open: false,
      otherOpenSources: 0,
    });

    const rule = await tx((c) => openEntitlement(c, key(subject, 'rule-1', 'birthright')));
    await tx((c) => closeEntitlement(c, { ...key(subject, 'rule-1', 'birthright'), reason: 'mover' }));
    const reapplied = await tx((c) => openEntitlement(c, key(subject, 'rule-1', 'birthright')));
    expect(reapplied).toMatchObject({ created: true, open: true });
    expect(reapplied.entitlementId).not.toBe(rule.entitlementId);
  });

  it('the subject-role lock makes a second transaction wait until the first one ends', async () => {
    const subject = await newUser(tenantA);
    const holder = await app.connect();
    try {
      await holder.query('BEGIN');
      await lockSubjectRole(holder, tenantA, subject, ROLE);
      let acquired = false;
      const waiter = tx(async (c) => {
        await lockSubjectRole(c, tenantA, subject, ROLE);
        acquired = true;
      });
      // A different role of the same subject is not blocked.
      await tx((c) => lockSubjectRole(c, tenantA, subject, OTHER_ROLE));
      // Several roles at once (a leaver's step) wait for each one's holder too.
      let allAcquired = false;
      const several = tx(async (c) => {
        await lockSubjectRoles(c, tenantA, subject, [OTHER_ROLE, ROLE]);
        allAcquired = true;
      });
      await delay(200);
      expect(acquired).toBe(false);
      expect(allAcquired).toBe(false);
      await holder.query('COMMIT');
      await Promise.all([waiter, several]);
      expect(acquired).toBe(true);
      expect(allAcquired).toBe(true);
    } finally {
      holder.release();
    }
  });
});

describe("a leaver's access ended in one step (endPersonAccess)", () => {
  const ledger = () => createLedgerActivities({ pool: app, directories: singleDirectory(directory) });
  const lifecycle = (target: DirectoryConnector = directory) =>
    createLifecycleActivities({ pool: app, directories: singleDirectory(target), clock: systemClock });
  const source = (role: string, sourceType: 'birthright' | 'manual' | 'grant', sourceId: string) => ({ role, sourceType, sourceId });
  const tx = <T>(fn: (client: PoolClient) => Promise<T>) => inScope(app, tenantScope(tenantA), fn);

  /** A person holding ROLE twice (a birthright rule and a manual assignment) and OTHER_ROLE once, as the leaver lists them. */
  async function personWithAccess() {
    const person = await newUser(tenantA);
    const held = [source(ROLE, 'birthright', 'staff'), source(ROLE, 'manual', 'INC-1'), source(OTHER_ROLE, 'birthright', 'eng')];
    for (const e of held) await ledger().grantAccess({ tenantId: tenantA, subjectId: person, ...e });
    return { person, held };
  }
  const openOf = async (person: string) =>
    (await tx((c) => openEntitlements(c, tenantA, person))).map((e) => `${e.sourceType}:${e.sourceId}:${e.role}`).sort();

  it('closes every listed entitlement, removes the roles and reads the ledger and target back empty; a retry changes nothing', async () => {
    const { person, held } = await personWithAccess();
    const acts = lifecycle();
    const input = { tenantId: tenantA, personId: person, entitlements: held, reason: 'leaver' };
    expect(await acts.endPersonAccess(input)).toEqual({ closed: 3, unmanagedRolesRemoved: [], verified: true });
    expect(await openOf(person)).toEqual([]);
    expect(await memberships(tenantA, person)).toEqual([]);
    const ended = [...(await ledgerRows(tenantA, person, ROLE)), ...(await ledgerRows(tenantA, person, OTHER_ROLE))];
    expect(ended.map((r) => r.end_reason)).toEqual(['leaver', 'leaver', 'leaver']);
    // The retry of an attempt whose answer was lost: nothing closed twice, the same verdict.
    expect(await acts.endPersonAccess(input)).toEqual({ closed: 0, unmanagedRolesRemoved: [], verified: true });
    expect((await ledgerRows(tenantA, person, ROLE)).map((r) => r.ended_at?.toISOString())).toEqual(
      ended.slice(0, 2).map((r) => r.ended_at?.toISOString()),
    );
  });

  it('removes a role assigned outside Tenure and leaves the read-back to verifyPersonAccessGone', async () => {
    const { person, held } = await personWithAccess();
    await directory.assignRole(tenantA, person, 'reader');
    const acts = lifecycle();
    expect(await acts.endPersonAccess({ tenantId: tenantA, personId: person, entitlements: held, reason: 'leaver' })).toEqual({
      closed: 3,
      unmanagedRolesRemoved: ['reader'],
      verified: false,
    });
    expect(await memberships(tenantA, person)).toEqual([]);
    expect(await acts.verifyPersonAccessGone({ tenantId: tenantA, personId: person })).toEqual({ verified: true });
  });

  it('a source it was not given keeps its role, until its own end: not verified, and verifyPersonAccessGone says what remains', async () => {
    const { person, held } = await personWithAccess();
    const end = inOneHour();
    await ledger().grantAccess({ tenantId: tenantA, subjectId: person, ...source(ROLE, 'grant', 'g-late'), expiresAt: end });
    const acts = lifecycle();
    expect(await acts.endPersonAccess({ tenantId: tenantA, personId: person, entitlements: held, reason: 'leaver' })).toEqual({
      closed: 3,
      unmanagedRolesRemoved: [],
      verified: false,
    });
    expect(await openOf(person)).toEqual([`grant:g-late:${ROLE}`]);
    expect(await memberships(tenantA, person)).toEqual([ROLE]);
    // The target now ends the role with the grant that keeps it, no longer never.
    expect(await membershipEnd(tenantA, person)).toBe(end);
    await expect(acts.verifyPersonAccessGone({ tenantId: tenantA, personId: person })).rejects.toMatchObject({ type: 'AccessRemains' });
  });

  it('a removal that fails transiently rolls every close back with it; the retry completes', async () => {
    const { person, held } = await personWithAccess();
    const target = flaky(directory, { method: 'removeRole', times: 2 });
    const acts = lifecycle(target.directory);
    const input = { tenantId: tenantA, personId: person, entitlements: held, reason: 'leaver' };
    // The target is down for two attempts: each fails at its first removal.
    await expect(acts.endPersonAccess(input)).rejects.toBeInstanceOf(DirectoryUnavailableError);
    await expect(acts.endPersonAccess(input)).rejects.toBeInstanceOf(DirectoryUnavailableError);
    // The ledger still explains at least what the target holds.
    expect(await openOf(person)).toEqual([`birthright:eng:${OTHER_ROLE}`, `birthright:staff:${ROLE}`, `manual:INC-1:${ROLE}`]);
    expect(await acts.endPersonAccess(input)).toEqual({ closed: 3, unmanagedRolesRemoved: [], verified: true });
    expect(await memberships(tenantA, person)).toEqual([]);
  });
});

/** Wraps the real directory; `failing` decides per call whether to throw instead of calling through. */
function flaky(real: DirectoryConnector, failing: { method: 'assignRole' | 'removeRole'; times: number; error?: () => Error }) {
  let calls = 0;
  const wrapped: DirectoryConnector = Object.create(real) as DirectoryConnector;
  wrapped[failing.method] = async (tenantId: string, userId: string, role: string) => {
    calls += 1;
    if (calls <= failing.times) throw failing.error?.() ?? new DirectoryUnavailableError('directory down for the test', tenantId);
    return real[failing.method](tenantId, userId, role);
  };
  return { directory: wrapped, calls: () => calls };
}

/** Real directory with a random pause around changes, so racing calls really overlap. */
function jittery(real: DirectoryConnector): DirectoryConnector {
  const wrapped: DirectoryConnector = Object.create(real) as DirectoryConnector;
  const pause = () => delay(Math.floor(Math.random() * 6));
  wrapped.assignRole = async (t, u, r) => {
    await pause();
    await real.assignRole(t, u, r);
    await pause();
  };
  wrapped.removeRole = async (t, u, r) => {
    await pause();
    await real.removeRole(t, u, r);
    await pause();
  };
  return wrapped;
}

describe('access activities (ledger + directory)', () => {
  const access = () => createLedgerActivities({ pool: app, directories: singleDirectory(directory) });
  const grantOf = (subjectId: string, grantId: string) => ({
    tenantId: tenantA,
    subjectId,
    role: ROLE,
    sourceType: 'grant' as const,
    sourceId: grantId,
  });

  it('two overlapping grants: ending the first keeps the role, ending the second removes it', async () => {
    const acts = access();
    const subject = await newUser(tenantA);
    expect(await acts.grantAccess(grantOf(subject, 'g1'))).toMatchObject({ assigned: true, alreadyEnded: false });
    expect(await acts.grantAccess(grantOf(subject, 'g2'))).toMatchObject({ assigned: true });
    expect(await memberships(tenantA, subject)).toEqual([ROLE]);

    expect(await acts.endAccess({ ...grantOf(subject, 'g1'), reason: 'expired' })).toEqual({
      closed: true,
      removedFromTarget: false,
      remainingOpen: 1,
      verification: { gone: true, presentOnTarget: true, heldBy: ['grant:g2'] },
    });
    expect(await directory.hasRole(tenantA, subject, ROLE)).toBe(true);
    expect(await acts.verifyAccessGone({ tenantId: tenantA, subjectId: subject, role: ROLE })).toEqual({
      gone: true,
      presentOnTarget: true,
      heldBy: ['grant:g2'],
    });

    expect(await acts.endAccess({ ...grantOf(subject, 'g2'), reason: 'revoked' })).toEqual({
      closed: true,
      removedFromTarget: true,
      remainingOpen: 0,
      verification: { gone: true, presentOnTarget: false, heldBy: [] },
    });
    expect(await directory.hasRole(tenantA, subject, ROLE)).toBe(false);
    expect(await acts.verifyAccessGone({ tenantId: tenantA, subjectId: subject, role: ROLE })).toEqual({
      gone: true,
      presentOnTarget: false,
      heldBy: [],
    });
  });

  it('a grant that overlaps a birthright role never removes the birthright access', async () => {
    const acts = access();
    const subject = await newUser(tenantA);
    await acts.grantAccess({ ...grantOf(subject, 'rule-admins'), sourceType: 'birthright' });
    await acts.grantAccess(grantOf(subject, 'g1'));
    expect(await acts.endAccess({ ...grantOf(subject, 'g1'), reason: 'expired' })).toMatchObject({
      removedFromTarget: false,
      remainingOpen: 1,
    });
    expect(await directory.hasRole(tenantA, subject, ROLE)).toBe(true);
  });

  it('a grant tells the target its end: the membership stops counting then, even before anything removes it', async () => {
    const acts = access();
    const subject = await newUser(tenantA);
    const endsSoon = new Date(Date.now() + 1500).toISOString();
    await acts.grantAccess({ ...grantOf(subject, 'g1'), expiresAt: endsSoon });
    expect(await directory.hasRole(tenantA, subject, ROLE)).toBe(true);
    expect(await directory.listRoles(tenantA, subject)).toEqual([ROLE]);
    await delay(2000);
    // Nobody removed it: the row is still there, but it gives no access any more.
    expect(await memberships(tenantA, subject)).toEqual([ROLE]);
    expect(await directory.hasRole(tenantA, subject, ROLE)).toBe(false);
    expect(await directory.listRoles(tenantA, subject)).toEqual([]);
    expect(await directory.listMembers(tenantA, ROLE)).not.toContain(subject);
    // The workflow's removal still runs and is confirmed.
    expect(await acts.endAccess({ ...grantOf(subject, 'g1'), reason: 'expired' })).toMatchObject({
      removedFromTarget: true,
      verification: { gone: true },
    });
    expect(await memberships(tenantA, subject)).toEqual([]);
  });

  it('the target holds the role until the latest end among open sources, and without end while an unbounded source holds it', async () => {
    const acts = access();
    const subject = await newUser(tenantA);
    const end = () => membershipEnd(tenantA, subject);
    const inOneHour = new Date(Date.now() + 3_600_000).toISOString();
    const inTwoHours = new Date(Date.now() + 7_200_000).toISOString();
    await acts.grantAccess({ ...grantOf(subject, 'g1'), expiresAt: inTwoHours });
    await acts.grantAccess({ ...grantOf(subject, 'g2'), expiresAt: inOneHour });
    expect(await end()).toBe(inTwoHours);
    // Ending the longer grant brings the target's end back to the shorter one's.
    await acts.endAccess({ ...grantOf(subject, 'g1'), reason: 'revoked' });
    expect(await end()).toBe(inOneHour);
    // An extension moves it; extending an ended source changes nothing.
    const inThreeHours = new Date(Date.now() + 3 * 3_600_000).toISOString();
    expect(await acts.extendAccess({ ...grantOf(subject, 'g2'), expiresAt: inThreeHours })).toEqual({ extended: true });
    expect(await end()).toBe(inThreeHours);
    expect(await acts.extendAccess({ ...grantOf(subject, 'g1'), expiresAt: inThreeHours })).toEqual({ extended: false });
    // A birthright (no end) lifts the end; when the grant ends, the birthright keeps it open-ended.
    await acts.grantAccess({ ...grantOf(subject, 'rule-admins'), sourceType: 'birthright' });
    expect(await end()).toBeNull();
    await acts.endAccess({ ...grantOf(subject, 'g2'), reason: 'expired' });
    expect(await end()).toBeNull();
    expect(await directory.hasRole(tenantA, subject, ROLE)).toBe(true);
  });

  it('grantAccess and endAccess run twice (activity retries) reach the same end state with no double effects', async () => {
    const acts = access();
    const subject = await newUser(tenantA);
    const before = await databaseNow();
    const first = await acts.grantAccess(grantOf(subject, 'g1'));
    const second = await acts.grantAccess(grantOf(subject, 'g1'));
    const after = await databaseNow();
    // The same entitlement; each attempt says when the target held the role, by the database's clock.
    expect(second).toEqual({ ...first, assignedAt: expect.any(String) });
    expect([before, first.assignedAt!, second.assignedAt!, after]).toEqual([before, first.assignedAt, second.assignedAt, after].sort());
    expect(await ledgerRows(tenantA, subject)).toHaveLength(1);
    expect(await memberships(tenantA, subject)).toEqual([ROLE]);

    expect(await acts.endAccess({ ...grantOf(subject, 'g1'), reason: 'expired' })).toEqual({
      closed: true,
      removedFromTarget: true,
      remainingOpen: 0,
      verification: { gone: true, presentOnTarget: false, heldBy: [] },
    });
    expect(await acts.endAccess({ ...grantOf(subject, 'g1'), reason: 'expired' })).toEqual({
      closed: false,
      removedFromTarget: true,
      remainingOpen: 0,
      verification: { gone: true, presentOnTarget: false, heldBy: [] },
    });
    const rows = await ledgerRows(tenantA, subject);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: first.entitlementId, end_reason: 'expired' });
    expect(await memberships(tenantA, subject)).toEqual([]);
  });

  it('a grant activation retried after the grant was revoked does not bring the role back', async () => {
    const acts = access();
    const subject = await newUser(tenantA);
    const granted = await acts.grantAccess(grantOf(subject, 'g1'));
    await acts.endAccess({ ...grantOf(subject, 'g1'), reason: 'revoked' });
    expect(await acts.grantAccess(grantOf(subject, 'g1'))).toEqual({
      entitlementId: granted.entitlementId,
      assigned: false,
      alreadyEnded: true,
    });
    expect(await memberships(tenantA, subject)).toEqual([]);
    expect(await openCount(tenantA, subject)).toBe(0);
  });

  it('ending a source that never opened still makes sure the role is off the target when nobody holds it', async () => {
    const acts = access();
    const subject = await newUser(tenantA);
    await directory.assignRole(tenantA, subject, ROLE); // e.g. an assignment whose ledger commit was lost
    expect(await acts.endAccess({ ...grantOf(subject, 'never-opened'), reason: 'revoked' })).toEqual({
      closed: false,
      removedFromTarget: true,
      remainingOpen: 0,
      verification: { gone: true, presentOnTarget: false, heldBy: [] },
    });
    expect(await directory.hasRole(tenantA, subject, ROLE)).toBe(false);
  });

  it('verification fails while the role is on the target with no open source, or while the asked source is still open', async () => {
    const acts = access();
    const unexplained = await newUser(tenantA);
    await directory.assignRole(tenantA, unexplained, ROLE);
    expect(await acts.verifyAccessGone({ tenantId: tenantA, subjectId: unexplained, role: ROLE })).toEqual({
      gone: false,
      presentOnTarget: true,
      heldBy: [],
    });

    const stillGranted = await newUser(tenantA);
    await acts.grantAccess(grantOf(stillGranted, 'g1'));
    await acts.grantAccess(grantOf(stillGranted, 'g2'));
    expect(
      await acts.verifyAccessGone({ tenantId: tenantA, subjectId: stillGranted, role: ROLE, sourceType: 'grant', sourceId: 'g1' }),
    ).toEqual({
      gone: false,
      presentOnTarget: true,
      heldBy: ['grant:g2'],
    });
  });

  it('a target that refuses the assignment for good fails non-retryably and leaves no open entitlement', async () => {
    const acts = access();
    const failure: unknown = await acts.grantAccess(grantOf('no-such-user', 'g1')).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: DIRECTORY_TARGET_REJECTED, nonRetryable: true, cause: expect.any(DirectoryNotFoundError) });
    const rows = await ledgerRows(tenantA, 'no-such-user');
    expect(rows).toEqual([expect.objectContaining({ end_reason: 'target_rejected' })]);
  });

  it('an activation whose window has closed is refused for good: its entitlement ends as window_passed and nothing is assigned', async () => {
    const acts = access();
    const subject = await newUser(tenantA);
    const failure: unknown = await acts.grantAccess({ ...grantOf(subject, 'g1'), expiresAt: await databaseNow() }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: DIRECTORY_TARGET_REJECTED, nonRetryable: true, cause: expect.any(DirectoryConflictError) });
    expect(await ledgerRows(tenantA, subject)).toEqual([expect.objectContaining({ source_id: 'g1', end_reason: 'window_passed' })]);
    expect(await membershipEnd(tenantA, subject)).toBeUndefined();
  });

  it("a late activation is refused even while another grant keeps the role live, and leaves that grant's end alone", async () => {
    const acts = access();
    const subject = await newUser(tenantA);
    const g1End = inOneHour();
    await acts.grantAccess({ ...grantOf(subject, 'g1'), expiresAt: g1End });
    await expect(acts.grantAccess({ ...grantOf(subject, 'g2'), expiresAt: await databaseNow() })).rejects.toMatchObject({
      type: DIRECTORY_TARGET_REJECTED,
      nonRetryable: true,
    });
    expect((await ledgerRows(tenantA, subject)).map((r) => [r.source_id, r.end_reason])).toEqual([
      ['g1', null],
      ['g2', 'window_passed'],
    ]);
    expect(await membershipEnd(tenantA, subject)).toBe(g1End);
  });

  it('an activation retried after its window closed (the first attempt assigned, its answer lost) takes the role back off', async () => {
    const acts = access();
    const subject = await newUser(tenantA);
    expect(await acts.grantAccess({ ...grantOf(subject, 'g1'), expiresAt: inOneHour() })).toMatchObject({ assigned: true });
    await backdate(tenantA, subject, { sourceId: 'g1', membership: true });
    await expect(acts.grantAccess({ ...grantOf(subject, 'g1'), expiresAt: inOneHour() })).rejects.toMatchObject({
      type: DIRECTORY_TARGET_REJECTED,
    });
    expect(await ledgerRows(tenantA, subject)).toEqual([expect.objectContaining({ end_reason: 'window_passed' })]);
    // No membership left that no open entitlement explains.
    expect(await memberships(tenantA, subject)).toEqual([]);
  });

  it('ending a grant while the only other open one is past its end ends the membership now, not at the longer end', async () => {
    const acts = access();
    const subject = await newUser(tenantA);
    await acts.grantAccess({ ...grantOf(subject, 'g1'), expiresAt: inOneHour() });
    await acts.grantAccess({ ...grantOf(subject, 'g2'), expiresAt: new Date(Date.now() + 7_200_000).toISOString() });
    // g1's window has closed but its workflow has not removed it yet; the target still counts g2's end.
    await backdate(tenantA, subject, { sourceId: 'g1' });
    expect(await directory.hasRole(tenantA, subject, ROLE)).toBe(true);
    await acts.endAccess({ ...grantOf(subject, 'g2'), reason: 'revoked' });
    expect(await directory.hasRole(tenantA, subject, ROLE)).toBe(false);
    expect(await membershipEnd(tenantA, subject)).not.toBeUndefined();
  });

  it('an assignment that fails transiently leaves the entitlement open and the role absent; the retry assigns it', async () => {
    const subject = await newUser(tenantA);
    const target = flaky(directory, { method: 'assignRole', times: 1 });
    const acts = createLedgerActivities({ pool: app, directories: singleDirectory(target.directory) });

    await expect(acts.grantAccess(grantOf(subject, 'g1'))).rejects.toBeInstanceOf(DirectoryUnavailableError);
    // The ledger may explain more than the target holds, never less.
    expect(await openCount(tenantA, subject)).toBe(1);
    expect(await memberships(tenantA, subject)).toEqual([]);

    expect(await acts.grantAccess(grantOf(subject, 'g1'))).toMatchObject({ assigned: true });
    expect(await ledgerRows(tenantA, subject)).toHaveLength(1);
    expect(await memberships(tenantA, subject)).toEqual([ROLE]);
  });

  it('a removal that fails transiently N times keeps ledger and target consistent, and the retry completes', async () => {
    const subject = await newUser(tenantA);
    await access().grantAccess(grantOf(subject, 'g1'));
    const target = flaky(directory, { method: 'removeRole', times: 3 });
    const acts = createLedgerActivities({ pool: app, directories: singleDirectory(target.directory) });

    for (let attempt = 1; attempt <= 3; attempt++) {
      await expect(acts.endAccess({ ...grantOf(subject, 'g1'), reason: 'expired' })).rejects.toBeInstanceOf(DirectoryUnavailableError);
      // The close rolled back with the failed removal: the ledger still explains the role.
      expect(await openCount(tenantA, subject)).toBe(1);
      expect(await memberships(tenantA, subject)).toEqual([ROLE]);
    }
    expect(await acts.endAccess({ ...grantOf(subject, 'g1'), reason: 'expired' })).toEqual({
      closed: true,
      removedFromTarget: true,
      remainingOpen: 0,
      verification: { gone: true, presentOnTarget: false, heldBy: [] },
    });
    expect(target.calls()).toBe(4);
    expect(await openCount(tenantA, subject)).toBe(0);
    expect(await memberships(tenantA, subject)).toEqual([]);
    expect(await acts.verifyAccessGone({ tenantId: tenantA, subjectId: subject, role: ROLE })).toMatchObject({ gone: true });
  });

  describe('20 concurrent grant/end pairs for one subject and role', () => {
    const sources = Array.from({ length: 20 }, (_, i) => `g${i}`);
    const racing = () => createLedgerActivities({ pool: app, directories: singleDirectory(jittery(directory)) });

    it('every grant ended after it started: no entitlement open and the role removed', async () => {
      const acts = racing();
      const subject = await newUser(tenantA);
      await Promise.all(
        sources.map(async (id) => {
          await acts.grantAccess(grantOf(subject, id));
          await acts.endAccess({ ...grantOf(subject, id), reason: 'expired' });
        }),
      );
      expect(await openCount(tenantA, subject)).toBe(0);
      expect(await memberships(tenantA, subject)).toEqual([]);
      expect(await acts.verifyAccessGone({ tenantId: tenantA, subjectId: subject, role: ROLE })).toEqual({
        gone: true,
        presentOnTarget: false,
        heldBy: [],
      });
    });

    it('one grant left open among 19 ended: the role stays, held by that grant', async () => {
      const acts = racing();
      const subject = await newUser(tenantA);
      const survivor = sources[7]!;
      await Promise.all(
        sources.map(async (id) => {
          await acts.grantAccess(grantOf(subject, id));
          if (id !== survivor) await acts.endAccess({ ...grantOf(subject, id), reason: 'revoked' });
        }),
      );
      expect((await ledgerRows(tenantA, subject)).filter((r) => r.ended_at === null).map((r) => r.source_id)).toEqual([survivor]);
      expect(await memberships(tenantA, subject)).toEqual([ROLE]);
    });

    it('grant and end of each source racing each other: the role is present exactly when an entitlement is open', async () => {
      const acts = racing();
      for (let round = 0; round < 3; round++) {
        const subject = await newUser(tenantA);
        await Promise.all(
          sources.flatMap((id) => [acts.grantAccess(grantOf(subject, id)), acts.endAccess({ ...grantOf(subject, id), reason: 'revoked' })]),
        );
        const open = await openCount(tenantA, subject);
        expect(await memberships(tenantA, subject)).toEqual(open > 0 ? [ROLE] : []);
        // Each source opened once: closed if its end came after, still open if its end came first.
        expect(await ledgerRows(tenantA, subject)).toHaveLength(sources.length);
      }
    });
  });
});
