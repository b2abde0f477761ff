import type { DirectoryRole, DirectoryUserInput, DirectoryUserStatus } from '../../core/directory/connector.js';
import type { PoolClient } from '../pool.js';
import type { Reader } from '../scope.js';
import {
  DEFAULT_DIRECTORY_SETTINGS,
  DIRECTORY_SETTING_NAMES,
  type DirectorySecuritySettings,
  type DirectorySettingName,
} from '../../core/directory/settings.js';

/**
 * The built-in directory's tables (users, roles, memberships, sessions). Only the built-in
 * connector (connectors/directory/postgres.ts) calls these; everything else goes through the
 * DirectoryConnector, so a tenant on another target is never read from here.
 */

export interface DirectoryUserRow {
  tenant_id: string;
  id: string;
  username: string;
  display_name: string;
  email: string | null;
  attributes: Record<string, unknown>;
  status: DirectoryUserStatus;
  created_at: Date;
  updated_at: Date;
}

const USER_COLUMNS = 'tenant_id, id, username, display_name, email, attributes, status, created_at, updated_at';
/** A membership counts until its end (the database's clock decides, one clock for every caller). */
const LIVE = '(expires_at IS NULL OR expires_at > now())';

/**
 * Creates the user or updates its profile. Omitted optional fields keep their stored value;
 * updated_at moves only on a real change. A username held by another user raises 23505.
 */
export async function upsertDirectoryUser(client: PoolClient, tenantId: string, user: DirectoryUserInput): Promise<void> {
  await client.query(
    `INSERT INTO directory_users AS u (tenant_id, id, username, display_name, email, attributes, status)
     VALUES ($1, $2, $3, $4, $5, coalesce($6::jsonb, '{}'::jsonb), $8)
     ON CONFLICT (tenant_id, id) DO UPDATE SET
       username = EXCLUDED.username,
       display_name = EXCLUDED.display_name,
       email = CASE WHEN $7 THEN EXCLUDED.email ELSE u.email END,
       attributes = coalesce($6::jsonb, u.attributes),
       updated_at = now()
     WHERE (u.username, u.display_name, u.email, u.attributes)
       IS DISTINCT FROM (EXCLUDED.username, EXCLUDED.display_name, CASE WHEN $7 THEN EXCLUDED.email ELSE u.email END, coalesce($6::jsonb, u.attributes))`,
    [
      tenantId,
      user.id,
      user.username,
      user.displayName,
      user.email ?? null,
      user.attributes === undefined ? null : JSON.stringify(user.attributes),
      user.email !== undefined,
      user.initialStatus ?? 'active',
    ],
  );
}

/**
 * Many users at once, each holding every role of `roles` with no end: a bulk load (a benchmark's
 * or a fault run's seed) in two statements. Users and memberships that exist are left as they are.
 */
export async function insertDirectoryUsersWithRoles(
  client: PoolClient,
  tenantId: string,
  users: readonly DirectoryUserInput[],
  roles: readonly string[],
): Promise<void> {
  const rows = users.map((u) => ({
    id: u.id,
    username: u.username,
    display_name: u.displayName,
    email: u.email ?? null,
    attributes: u.attributes ?? {},
    status: u.initialStatus ?? 'active',
  }));
  await client.query(
    `INSERT INTO directory_users (tenant_id, id, username, display_name, email, attributes, status)
     SELECT $1, x.id, x.username, x.display_name, x.email, x.attributes, x.status
       FROM jsonb_to_recordset($2::jsonb) AS x(id text, username text, display_name text, email text, attributes jsonb, status text)
     ON CONFLICT DO NOTHING`,
    [tenantId, JSON.stringify(rows)],
  );
  await client.query(
    `INSERT INTO directory_memberships (tenant_id, user_id, role)
     SELECT $1, u.id, r.role FROM unnest($2::text[]) AS u(id) CROSS JOIN unnest($3::text[]) AS r(role)
     ON CONFLICT DO NOTHING`,
    [tenantId, users.map((u) => u.id), roles],
  );
}

export async function directoryUserRow(client: Reader, tenantId: string, userId: string): Promise<DirectoryUserRow | undefined> {
  const { rows } = await client.query<DirectoryUserRow>(`SELECT ${USER_COLUMNS} FROM directory_users WHERE tenant_id = $1 AND id = $2`, [
    tenantId,
    userId,
  ]);
  return rows[0];
}

export async function directoryUserStatus(client: PoolClient, tenantId: string, userId: string): Promise<DirectoryUserStatus | undefined> {
  const { rows } = await client.query<{ status: DirectoryUserStatus }>(
    'SELECT status FROM directory_users WHERE tenant_id = $1 AND id = $2',
    [tenantId, userId],
  );
  return rows[0]?.status;
}

/** False for an unknown user. */
export async function setDirectoryUserStatus(
  client: PoolClient,
  tenantId: string,
  userId: string,
  status: DirectoryUserStatus,
): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE directory_users SET status = $3, updated_at = CASE WHEN status = $3 THEN updated_at ELSE now() END
      WHERE tenant_id = $1 AND id = $2`,
    [tenantId, userId, status],
  );
  return Boolean(rowCount);
}

export async function upsertDirectoryRole(
  client: PoolClient,
  tenantId: string,
  role: { name: string; description?: string; privileged?: boolean },
): Promise<void> {
  await client.query(
    `INSERT INTO directory_roles AS r (tenant_id, name, description, privileged)
     VALUES ($1, $2, coalesce($3, ''), coalesce($4, false))
     ON CONFLICT (tenant_id, name) DO UPDATE SET
       description = coalesce($3, r.description),
       privileged = coalesce($4, r.privileged)`,
    [tenantId, role.name, role.description ?? null, role.privileged ?? null],
  );
}

/**
 * Deletes a role no membership rows refer to (any membership, live or ended, keeps it: its
 * history names it). 'held' when some do; deleting an absent role is 'deleted' too.
 */
export async function deleteDirectoryRole(client: PoolClient, tenantId: string, name: string): Promise<'deleted' | 'held'> {
  const { rows } = await client.query<{ held: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM directory_memberships WHERE tenant_id = $1 AND role = $2) AS held',
    [tenantId, name],
  );
  if (rows[0]!.held) return 'held';
  await client.query('DELETE FROM directory_roles WHERE tenant_id = $1 AND name = $2', [tenantId, name]);
  return 'deleted';
}

export async function directoryRoles(client: PoolClient, tenantId: string, names: readonly string[]): Promise<DirectoryRole[]> {
  const { rows } = await client.query<DirectoryRole>(
    `SELECT name, description, privileged FROM directory_roles WHERE tenant_id = $1 AND name = ANY($2) ORDER BY name COLLATE "C"`,
    [tenantId, names],
  );
  return rows;
}

export async function allDirectoryRoles(client: PoolClient, tenantId: string): Promise<DirectoryRole[]> {
  const { rows } = await client.query<DirectoryRole>(
    'SELECT name, description, privileged FROM directory_roles WHERE tenant_id = $1 ORDER BY name COLLATE "C"',
    [tenantId],
  );
  return rows;
}

export async function directoryUserRows(client: PoolClient, tenantId: string, userIds: readonly string[]): Promise<DirectoryUserRow[]> {
  const { rows } = await client.query<DirectoryUserRow>(
    `SELECT ${USER_COLUMNS} FROM directory_users WHERE tenant_id = $1 AND id = ANY($2::text[])`,
    [tenantId, userIds],
  );
  return rows;
}

/** Newest session start per known user among `userIds` (null when the user never had one). */
export async function lastSessionStarts(
  client: PoolClient,
  tenantId: string,
  userIds: readonly string[],
): Promise<Record<string, string | null>> {
  const { rows } = await client.query<{ id: string; last: Date | null }>(
    `SELECT u.id, max(s.created_at) AS last FROM directory_users u
       LEFT JOIN directory_sessions s ON s.tenant_id = u.tenant_id AND s.user_id = u.id
      WHERE u.tenant_id = $1 AND u.id = ANY($2::text[]) GROUP BY u.id`,
    [tenantId, userIds],
  );
  return Object.fromEntries(rows.map((r) => [r.id, r.last?.toISOString() ?? null]));
}

export async function directoryRoleExists(client: PoolClient, tenantId: string, role: string): Promise<boolean> {
  const { rowCount } = await client.query('SELECT 1 FROM directory_roles WHERE tenant_id = $1 AND name = $2', [tenantId, role]);
  return Boolean(rowCount);
}

/**
 * What an assignment did: `assigned` (the membership exists with that end, new or moved),
 * `ended` (the end had passed and the live membership now ends at it: access stops, none is
 * given) or `refused` (the end had passed and no live membership exists: nothing was written).
 */
export type MembershipWrite = 'assigned' | 'ended' | 'refused';

/**
 * Idempotent; assigning again sets the end anew. An end at or before the database's clock never
 * gives access: it is refused where no live membership exists (an activation whose window has
 * closed), and ends a live one at once (moving a backstop end to now must never be refused).
 */
export async function upsertMembership(
  client: PoolClient,
  tenantId: string,
  userId: string,
  role: string,
  until: string | null,
): Promise<MembershipWrite> {
  const { rows } = await client.query<{ write: MembershipWrite }>(
    `WITH ended AS (
       UPDATE directory_memberships SET expires_at = $4::timestamptz
        WHERE tenant_id = $1 AND user_id = $2 AND role = $3 AND $4::timestamptz <= now() AND ${LIVE}
       RETURNING 1
     ), assigned AS (
       INSERT INTO directory_memberships (tenant_id, user_id, role, expires_at)
       SELECT $1, $2, $3, $4::timestamptz WHERE $4::timestamptz IS NULL OR $4::timestamptz > now()
       ON CONFLICT (tenant_id, user_id, role) DO UPDATE SET expires_at = EXCLUDED.expires_at
       WHERE directory_memberships.expires_at IS DISTINCT FROM EXCLUDED.expires_at
       RETURNING 1
     )
     SELECT CASE WHEN $4::timestamptz IS NULL OR $4::timestamptz > now() THEN 'assigned'
                 WHEN EXISTS (SELECT 1 FROM ended) THEN 'ended'
                 ELSE 'refused' END AS write`,
    [tenantId, userId, role, until],
  );
  return rows[0]!.write;
}

export async function deleteMembership(client: PoolClient, tenantId: string, userId: string, role: string): Promise<void> {
  await client.query('DELETE FROM directory_memberships WHERE tenant_id = $1 AND user_id = $2 AND role = $3', [tenantId, userId, role]);
}

export async function hasLiveMembership(client: PoolClient, tenantId: string, userId: string, role: string): Promise<boolean> {
  const { rowCount } = await client.query(
    `SELECT 1 FROM directory_memberships WHERE tenant_id = $1 AND user_id = $2 AND role = $3 AND ${LIVE}`,
    [tenantId, userId, role],
  );
  return rowCount === 1;
}

export async function liveRolesOf(client: PoolClient, tenantId: string, userId: string): Promise<string[]> {
  const { rows } = await client.query<{ role: string }>(
    `SELECT role FROM directory_memberships WHERE tenant_id = $1 AND user_id = $2 AND ${LIVE} ORDER BY role COLLATE "C"`,
    [tenantId, userId],
  );
  return rows.map((r) => r.role);
}

export async function liveMembersOf(client: PoolClient, tenantId: string, role: string): Promise<string[]> {
  const { rows } = await client.query<{ user_id: string }>(
    `SELECT user_id FROM directory_memberships WHERE tenant_id = $1 AND role = $2 AND ${LIVE} ORDER BY user_id COLLATE "C"`,
    [tenantId, role],
  );
  return rows.map((r) => r.user_id);
}

/** Returns how many live sessions were ended. */
export async function revokeSessionRows(client: PoolClient, tenantId: string, userId: string): Promise<number> {
  const { rowCount } = await client.query(
    'UPDATE directory_sessions SET revoked_at = now() WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL',
    [tenantId, userId],
  );
  return rowCount ?? 0;
}

export async function insertSession(client: PoolClient, tenantId: string, sessionId: string, userId: string): Promise<void> {
  await client.query('INSERT INTO directory_sessions (tenant_id, id, user_id) VALUES ($1, $2, $3)', [tenantId, sessionId, userId]);
}

// ---------------------------------------------------------------- account state (remote actions)

export interface AccountStateRow {
  status: DirectoryUserStatus;
  locked: boolean;
  password_reset_required: boolean;
  mfa_factors: number;
  live_sessions: number;
}

export async function accountStateRow(client: PoolClient, tenantId: string, userId: string): Promise<AccountStateRow | undefined> {
  const { rows } = await client.query<AccountStateRow>(
    `SELECT u.status, u.locked_at IS NOT NULL AS locked, u.password_reset_required,
            (SELECT count(*)::int FROM directory_mfa_factors f
              WHERE f.tenant_id = u.tenant_id AND f.user_id = u.id AND f.removed_at IS NULL) AS mfa_factors,
            (SELECT count(*)::int FROM directory_sessions s
              WHERE s.tenant_id = u.tenant_id AND s.user_id = u.id AND s.revoked_at IS NULL) AS live_sessions
       FROM directory_users u WHERE u.tenant_id = $1 AND u.id = $2`,
    [tenantId, userId],
  );
  return rows[0];
}

/** Sets or lifts the lockout (a sign-in lockout, not the account's status); false for an unknown or deleted user. */
export async function setDirectoryUserLock(client: PoolClient, tenantId: string, userId: string, locked: boolean): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE directory_users SET locked_at = CASE WHEN $3 THEN coalesce(locked_at, now()) END
      WHERE tenant_id = $1 AND id = $2 AND status <> 'deleted'`,
    [tenantId, userId, locked],
  );
  return Boolean(rowCount);
}

/** False for an unknown or deleted user. */
export async function requireDirectoryPasswordReset(client: PoolClient, tenantId: string, userId: string): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE directory_users SET password_reset_required = true WHERE tenant_id = $1 AND id = $2 AND status <> 'deleted'`,
    [tenantId, userId],
  );
  return Boolean(rowCount);
}

/** Marks every enrolled factor of the user removed; returns how many were. */
export async function removeMfaFactorRows(client: PoolClient, tenantId: string, userId: string): Promise<number> {
  const { rowCount } = await client.query(
    'UPDATE directory_mfa_factors SET removed_at = now() WHERE tenant_id = $1 AND user_id = $2 AND removed_at IS NULL',
    [tenantId, userId],
  );
  return rowCount ?? 0;
}

export async function insertMfaFactor(client: PoolClient, tenantId: string, factorId: string, userId: string, kind: string): Promise<void> {
  await client.query('INSERT INTO directory_mfa_factors (tenant_id, id, user_id, kind) VALUES ($1, $2, $3, $4)', [
    tenantId,
    factorId,
    userId,
    kind,
  ]);
}

// ---------------------------------------------------------------- security settings (templates)

const SETTING_COLUMNS: Record<DirectorySettingName, string> = {
  mfaRequired: 'mfa_required',
  passwordMinLength: 'password_min_length',
  passwordComplexity: 'password_complexity',
  passwordHistory: 'password_history',
  passwordMaxAgeDays: 'password_max_age_days',
  lockoutThreshold: 'lockout_threshold',
  lockoutDurationMinutes: 'lockout_duration_minutes',
  sessionLifetimeMinutes: 'session_lifetime_minutes',
  sessionIdleTimeoutMinutes: 'session_idle_timeout_minutes',
};

/** The tenant's settings, or the defaults while nothing has set them. */
export async function directorySettingsRow(client: PoolClient, tenantId: string, forUpdate = false): Promise<DirectorySecuritySettings> {
  const { rows } = await client.query<DirectorySecuritySettings>(
    `SELECT ${DIRECTORY_SETTING_NAMES.map((name) => `${SETTING_COLUMNS[name]} AS "${name}"`).join(', ')}
       FROM directory_settings WHERE tenant_id = $1${forUpdate ? ' FOR UPDATE' : ''}`,
    [tenantId],
  );
  return rows[0] ?? { ...DEFAULT_DIRECTORY_SETTINGS };
}

/** Writes the whole set; updated_at moves only on a real change. */
export async function upsertDirectorySettings(client: PoolClient, tenantId: string, settings: DirectorySecuritySettings): Promise<void> {
  const columns = DIRECTORY_SETTING_NAMES.map((name) => SETTING_COLUMNS[name]);
  await client.query(
    `INSERT INTO directory_settings AS s (tenant_id, ${columns.join(', ')})
     VALUES ($1, ${columns.map((_c, i) => `$${i + 2}`).join(', ')})
     ON CONFLICT (tenant_id) DO UPDATE SET ${columns.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}, updated_at = now()
     WHERE (${columns.map((c) => `s.${c}`).join(', ')}) IS DISTINCT FROM (${columns.map((c) => `EXCLUDED.${c}`).join(', ')})`,
    [tenantId, ...DIRECTORY_SETTING_NAMES.map((name) => settings[name])],
  );
}
