import { randomUUID } from 'node:crypto';
import type { EntitlementSourceType } from '../../core/directory/connector.js';
import type { PoolClient } from '../pool.js';
import type { Reader } from '../scope.js';

/**
 * The entitlement ledger: one row per reason a subject holds a role. Every function here runs
 * in the caller's transaction, so a caller can take the subject-role lock, change the ledger,
 * decide what the target needs and record its audit event, all committed together.
 */

export interface EntitlementSource {
  sourceType: EntitlementSourceType;
  sourceId: string;
}

export interface EntitlementKey extends EntitlementSource {
  tenantId: string;
  subjectId: string;
  role: string;
}

export interface Entitlement extends EntitlementKey {
  id: string;
  grantedAt: string;
  endedAt: string | null;
  endReason: string | null;
  /** When this source's access ends by itself (a grant's window); null for no end. */
  expiresAt: string | null;
}

interface EntitlementRow {
  tenant_id: string;
  id: string;
  subject_id: string;
  role: string;
  source_type: EntitlementSourceType;
  source_id: string;
  granted_at: Date;
  ended_at: Date | null;
  end_reason: string | null;
  expires_at: Date | null;
}

const COLUMNS = 'tenant_id, id, subject_id, role, source_type, source_id, granted_at, ended_at, end_reason, expires_at';

function rowToEntitlement(row: EntitlementRow): Entitlement {
  return {
    tenantId: row.tenant_id,
    id: row.id,
    subjectId: row.subject_id,
    role: row.role,
    sourceType: row.source_type,
    sourceId: row.source_id,
    grantedAt: row.granted_at.toISOString(),
    endedAt: row.ended_at?.toISOString() ?? null,
    endReason: row.end_reason,
    expiresAt: row.expires_at?.toISOString() ?? null,
  };
}

/**
 * A grant id names one period of access: once its entitlement has ended, the same grant cannot
 * open it again (a late or retried activation after a revocation must not bring access back).
 * Rules, templates and manual assignments may apply again after they ended.
 */
const SINGLE_PERIOD_SOURCES: ReadonlySet<EntitlementSourceType> = new Set(['grant']);

// First key of the two-key advisory lock form, so these locks never meet single-key ones
// (such as the migration runner's) or another feature's: 'TNLG' as int4.
const LOCK_NAMESPACE = 0x544e4c47;

/**
 * Serialises every ledger change and target change for one (tenant, subject, role) until the
 * transaction ends. A hash collision only makes two unrelated triples wait for each other.
 * `lock_timeout` (for the rest of the transaction) bounds the wait, so a holder stuck on a slow
 * target fails the waiters well inside a typical 30 s activity timeout; their activities retry
 * instead of piling up on pool connections.
 */
export async function lockSubjectRole(
  client: PoolClient,
  tenantId: string,
  subjectId: string,
  role: string,
  timeoutMs = 10_000,
): Promise<void> {
  await client.query("SELECT set_config('lock_timeout', $1, true)", [`${timeoutMs}ms`]);
  await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_NAMESPACE, JSON.stringify([tenantId, subjectId, role])]);
}

/**
 * lockSubjectRole for several roles of one subject, taken in sorted order so two callers locking
 * overlapping sets cannot deadlock; one statement for the timeout and one for the locks.
 */
export async function lockSubjectRoles(
  client: PoolClient,
  tenantId: string,
  subjectId: string,
  roles: readonly string[],
  timeoutMs = 10_000,
): Promise<void> {
  const keys = [...new Set(roles)].sort().map((role) => JSON.stringify([tenantId, subjectId, role]));
  if (keys.length === 0) return;
  await client.query("SELECT set_config('lock_timeout', $1, true)", [`${timeoutMs}ms`]);
  // WITH ORDINALITY and the ORDER BY in the subquery: the locks are taken in the array's (sorted) order.
  await client.query(
    'SELECT count(pg_advisory_xact_lock($1, hashtext(k.key))) FROM (SELECT key FROM unnest($2::text[]) WITH ORDINALITY AS u(key, n) ORDER BY n) k',
    [LOCK_NAMESPACE, keys],
  );
}

async function findOpen(client: PoolClient, key: EntitlementKey): Promise<string | undefined> {
  const { rows } = await client.query<{ id: string }>(
    `SELECT id FROM entitlements
      WHERE tenant_id = $1 AND subject_id = $2 AND role = $3 AND source_type = $4 AND source_id = $5 AND ended_at IS NULL`,
    [key.tenantId, key.subjectId, key.role, key.sourceType, key.sourceId],
  );
  return rows[0]?.id;
}

async function countOpen(client: PoolClient, tenantId: string, subjectId: string, role: string, exceptId: string | null): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM entitlements
      WHERE tenant_id = $1 AND subject_id = $2 AND role = $3 AND ended_at IS NULL AND id IS DISTINCT FROM $4`,
    [tenantId, subjectId, role, exceptId],
  );
  return rows[0]!.n;
}

export interface OpenEntitlementResult {
  entitlementId: string;
  /** False when the source already had an open entitlement (a retry) or had already ended. */
  created: boolean;
  /** False only when a single-period source (a grant) has already ended: nothing was opened. */
  open: boolean;
  /** Other sources holding the same role for the same subject right now. */
  otherOpenSources: number;
}

/**
 * Records that `source` gives the subject the role, until `expiresAt` when given. Idempotent:
 * a retry returns the open row (its end is left as it is; setEntitlementExpiry moves it).
 */
export async function openEntitlement(
  client: PoolClient,
  key: EntitlementKey & { expiresAt?: string | null },
): Promise<OpenEntitlementResult> {
  const existing = await findOpen(client, key);
  if (existing) {
    return {
      entitlementId: existing,
      created: false,
      open: true,
      otherOpenSources: await countOpen(client, key.tenantId, key.subjectId, key.role, existing),
    };
  }
  if (SINGLE_PERIOD_SOURCES.has(key.sourceType)) {
    const ended = await client.query<{ id: string }>(
      `SELECT id FROM entitlements
        WHERE tenant_id = $1 AND subject_id = $2 AND role = $3 AND source_type = $4 AND source_id = $5
        ORDER BY ended_at DESC LIMIT 1`,
      [key.tenantId, key.subjectId, key.role, key.sourceType, key.sourceId],
    );
    if (ended.rows[0]) {
      return {
        entitlementId: ended.rows[0].id,
        created: false,
        open: false,
        otherOpenSources: await countOpen(client, key.tenantId, key.subjectId, key.role, null),
      };
    }
  }
  // The partial unique index keeps this idempotent even for a caller that did not take the lock.
  const inserted = await client.query<{ id: string }>(
    `INSERT INTO entitlements (tenant_id, id, subject_id, role, source_type, source_id, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (tenant_id, subject_id, role, source_type, source_id) WHERE ended_at IS NULL DO NOTHING
     RETURNING id`,
    [key.tenantId, randomUUID(), key.subjectId, key.role, key.sourceType, key.sourceId, key.expiresAt ?? null],
  );
  const id = inserted.rows[0]?.id ?? (await findOpen(client, key));
  if (!id) throw new Error(`entitlement for ${key.sourceType}:${key.sourceId} was neither inserted nor found`);
  return {
    entitlementId: id,
    created: inserted.rows.length === 1,
    open: true,
    otherOpenSources: await countOpen(client, key.tenantId, key.subjectId, key.role, id),
  };
}

export interface CloseEntitlementResult {
  /** False when the source had no open entitlement (already closed, e.g. a retry, or never opened). */
  closed: boolean;
  entitlementId: string | null;
  /** Open entitlements of other sources for the same subject and role: the target keeps the role while > 0. */
  remainingOpen: number;
}

/** Ends the source's open entitlement, if any. Idempotent: a second call closes nothing. */
export async function closeEntitlement(client: PoolClient, input: EntitlementKey & { reason: string }): Promise<CloseEntitlementResult> {
  const { rows } = await client.query<{ id: string }>(
    `UPDATE entitlements SET ended_at = now(), end_reason = $6
      WHERE tenant_id = $1 AND subject_id = $2 AND role = $3 AND source_type = $4 AND source_id = $5 AND ended_at IS NULL
      RETURNING id`,
    [input.tenantId, input.subjectId, input.role, input.sourceType, input.sourceId, input.reason],
  );
  return {
    closed: rows.length > 0,
    entitlementId: rows[0]?.id ?? null,
    remainingOpen: await countOpen(client, input.tenantId, input.subjectId, input.role, null),
  };
}

/**
 * closeEntitlement for several sources of one subject in one statement: ends each one's open
 * entitlement, if any (a second call closes nothing), and counts, per role given, the open
 * entitlements left (other sources). Call it holding the roles' locks (lockSubjectRoles).
 */
export async function closeEntitlements(
  client: PoolClient,
  input: { tenantId: string; subjectId: string; reason: string; sources: readonly (EntitlementSource & { role: string })[] },
): Promise<{ closed: number; remainingOpen: Map<string, number> }> {
  const { rows } = await client.query<{ role: string; closed: number; remaining: number }>(
    `WITH given AS (SELECT DISTINCT * FROM unnest($3::text[], $4::text[], $5::text[]) AS g(role, source_type, source_id)),
          closed AS (
            UPDATE entitlements e SET ended_at = now(), end_reason = $6
              FROM given g
             WHERE e.tenant_id = $1 AND e.subject_id = $2 AND e.role = g.role AND e.source_type = g.source_type
               AND e.source_id = g.source_id AND e.ended_at IS NULL
            RETURNING e.id, e.role)
     SELECT r.role,
            (SELECT count(*)::int FROM closed c WHERE c.role = r.role) AS closed,
            (SELECT count(*)::int FROM entitlements e
              WHERE e.tenant_id = $1 AND e.subject_id = $2 AND e.role = r.role AND e.ended_at IS NULL
                AND e.id NOT IN (SELECT id FROM closed)) AS remaining
       FROM (SELECT DISTINCT role FROM given) r`,
    [
      input.tenantId,
      input.subjectId,
      input.sources.map((s) => s.role),
      input.sources.map((s) => s.sourceType),
      input.sources.map((s) => s.sourceId),
      input.reason,
    ],
  );
  return { closed: rows.reduce((n, r) => n + r.closed, 0), remainingOpen: new Map(rows.map((r) => [r.role, r.remaining])) };
}

/** The subject's open entitlements (optionally for one role), oldest first. */
export async function openEntitlements(client: Reader, tenantId: string, subjectId: string, role?: string): Promise<Entitlement[]> {
  const { rows } = await client.query<EntitlementRow>(
    `SELECT ${COLUMNS} FROM entitlements
      WHERE tenant_id = $1 AND subject_id = $2 AND ($3::text IS NULL OR role = $3) AND ended_at IS NULL
      ORDER BY granted_at, id`,
    [tenantId, subjectId, role ?? null],
  );
  return rows.map(rowToEntitlement);
}

/** The subject's entitlements to the role that were ended for `reason` (e.g. a review's revoke), newest first. */
export async function entitlementsEndedFor(
  client: PoolClient,
  tenantId: string,
  subjectId: string,
  role: string,
  reason: string,
): Promise<Entitlement[]> {
  const { rows } = await client.query<EntitlementRow>(
    `SELECT ${COLUMNS} FROM entitlements
      WHERE tenant_id = $1 AND subject_id = $2 AND role = $3 AND ended_at IS NOT NULL AND end_reason = $4
      ORDER BY ended_at DESC, id`,
    [tenantId, subjectId, role, reason],
  );
  return rows.map(rowToEntitlement);
}

/**
 * Where this entitlement stands, by the database's clock: `open`, `ended` (closed, e.g. revoked
 * between a grant's two steps), `end_requested` (open, but an early end was requested: see
 * requestEntitlementEnd) or `past_end` (open, but its own end has passed: its window closed
 * before access was given, so it must not be given now).
 */
export type EntitlementState = 'open' | 'ended' | 'end_requested' | 'past_end';

export async function entitlementState(client: PoolClient, tenantId: string, entitlementId: string): Promise<EntitlementState> {
  const { rows } = await client.query<{ state: EntitlementState }>(
    // clock_timestamp(), not now(): the caller may have waited for the subject-role lock since its transaction began.
    `SELECT CASE WHEN ended_at IS NOT NULL THEN 'ended' WHEN end_requested_at IS NOT NULL THEN 'end_requested'
                 WHEN expires_at <= clock_timestamp() THEN 'past_end' ELSE 'open' END AS state
       FROM entitlements WHERE tenant_id = $1 AND id = $2`,
    [tenantId, entitlementId],
  );
  return rows[0]?.state ?? 'ended';
}

/**
 * Moves the end of the source's open entitlement (an extension); false when it is not open, or
 * when an early end was requested (an extension never gives back what a revoke took).
 */
export async function setEntitlementExpiry(client: PoolClient, key: EntitlementKey, expiresAt: string | null): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE entitlements SET expires_at = $6
      WHERE tenant_id = $1 AND subject_id = $2 AND role = $3 AND source_type = $4 AND source_id = $5
        AND ended_at IS NULL AND end_requested_at IS NULL`,
    [key.tenantId, key.subjectId, key.role, key.sourceType, key.sourceId, expiresAt],
  );
  return rowCount === 1;
}

/** What requestEntitlementEnd changed: nothing (null) when the source was not open or its end already requested. */
export interface EndRequest {
  entitlementId: string;
  /** The end the entitlement had (null: none). */
  previousEnd: string | null;
  /** Now, by the database's clock: the entitlement's end from here on. */
  endRequestedAt: string;
}

/**
 * Marks an early end of the source's open entitlement: its end becomes now (the database's clock),
 * and it stays there (setEntitlementExpiry leaves it, an activation is refused). The entitlement
 * stays open: the source's own end step closes it. Idempotent: a second request changes nothing.
 */
export async function requestEntitlementEnd(client: PoolClient, key: EntitlementKey): Promise<EndRequest | null> {
  const { rows } = await client.query<{ id: string; previous_end: Date | null; end_requested_at: Date }>(
    `UPDATE entitlements e SET end_requested_at = clock_timestamp(),
            expires_at = LEAST(COALESCE(e.expires_at, 'infinity'), clock_timestamp())
       FROM entitlements old
      WHERE old.id = e.id AND e.tenant_id = $1 AND e.subject_id = $2 AND e.role = $3 AND e.source_type = $4 AND e.source_id = $5
        AND e.ended_at IS NULL AND e.end_requested_at IS NULL
      RETURNING e.id, old.expires_at AS previous_end, e.end_requested_at`,
    [key.tenantId, key.subjectId, key.role, key.sourceType, key.sourceId],
  );
  const row = rows[0];
  return row
    ? { entitlementId: row.id, previousEnd: row.previous_end?.toISOString() ?? null, endRequestedAt: row.end_requested_at.toISOString() }
    : null;
}

/**
 * Whether any open entitlement other than `exceptId` still gives the role now (no end, or an end
 * still ahead by the database's clock).
 */
export async function othersHoldNow(
  client: PoolClient,
  tenantId: string,
  subjectId: string,
  role: string,
  exceptId: string,
): Promise<boolean> {
  const { rows } = await client.query<{ held: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM entitlements
                     WHERE tenant_id = $1 AND subject_id = $2 AND role = $3 AND ended_at IS NULL AND id <> $4
                       AND (expires_at IS NULL OR expires_at > clock_timestamp())) AS held`,
    [tenantId, subjectId, role, exceptId],
  );
  return rows[0]!.held;
}

/**
 * When the subject's hold on the role ends by itself: the latest end among its open
 * entitlements, or null when one of them has none (or none is open).
 */
export async function heldUntil(client: PoolClient, tenantId: string, subjectId: string, role: string): Promise<string | null> {
  const { rows } = await client.query<{ until: Date | null }>(
    `SELECT CASE WHEN bool_or(expires_at IS NULL) THEN NULL ELSE max(expires_at) END AS until
       FROM entitlements WHERE tenant_id = $1 AND subject_id = $2 AND role = $3 AND ended_at IS NULL`,
    [tenantId, subjectId, role],
  );
  return rows[0]?.until?.toISOString() ?? null;
}

/** Open entitlements of every subject for any of `roles` in the tenant (what a review explains access with). */
export async function openEntitlementsForRoles(client: PoolClient, tenantId: string, roles: readonly string[]): Promise<Entitlement[]> {
  const { rows } = await client.query<EntitlementRow>(
    `SELECT ${COLUMNS} FROM entitlements WHERE tenant_id = $1 AND role = ANY($2::text[]) AND ended_at IS NULL ORDER BY granted_at, id`,
    [tenantId, roles],
  );
  return rows.map(rowToEntitlement);
}

/** The database's clock at this instant (not when the transaction began), as ISO time. */
export async function databaseClock(client: PoolClient): Promise<string> {
  const { rows } = await client.query<{ at: Date }>('SELECT clock_timestamp() AS at');
  return rows[0]!.at.toISOString();
}

/** Every role the tenant's ledger has ever recorded, sorted: the roles Tenure manages on its target. */
export async function ledgerRoles(client: PoolClient, tenantId: string): Promise<string[]> {
  const { rows } = await client.query<{ role: string }>(
    'SELECT role FROM entitlements WHERE tenant_id = $1 GROUP BY role ORDER BY role COLLATE "C"',
    [tenantId],
  );
  return rows.map((r) => r.role);
}

/** How the open entitlements of one subject and role stand at the database's clock, read when the query runs (after any lock wait). */
export interface RoleHold {
  subjectId: string;
  /** Some open entitlement gives the role now (no end, or an end still ahead). */
  live: boolean;
  /** Open entitlements whose end has passed, as `<sourceType>:<sourceId>`. */
  pastEnd: { source: string; expiresAt: string }[];
}

/** Subjects with an open entitlement for the role (all of them, or those given), with whether it still counts. */
export async function roleHolds(client: PoolClient, tenantId: string, role: string, subjectIds?: readonly string[]): Promise<RoleHold[]> {
  const { rows } = await client.query<{ subject_id: string; live: boolean; past_end: { source: string; expiresAt: string }[] }>(
    `WITH clock AS (SELECT clock_timestamp() AS now)
     SELECT subject_id,
            bool_or(expires_at IS NULL OR expires_at > clock.now) AS live,
            coalesce(jsonb_agg(jsonb_build_object('source', source_type || ':' || source_id,
                                                  'expiresAt', to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                               ORDER BY expires_at, source_type, source_id)
                     FILTER (WHERE expires_at <= clock.now), '[]'::jsonb) AS past_end
       FROM entitlements, clock
      WHERE tenant_id = $1 AND role = $2 AND ended_at IS NULL AND ($3::text[] IS NULL OR subject_id = ANY($3))
      GROUP BY subject_id
      ORDER BY subject_id COLLATE "C"`,
    [tenantId, role, subjectIds ?? null],
  );
  return rows.map((r) => ({ subjectId: r.subject_id, live: r.live, pastEnd: r.past_end }));
}
