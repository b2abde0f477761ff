import { randomUUID } from 'node:crypto';
import {
  DirectoryConflictError,
  DirectoryError,
  DirectoryNotFoundError,
  DirectoryUnavailableError,
  type DirectoryConnector,
  type DirectoryRoleInput,
  type DirectoryUser,
  type DirectoryUserInput,
  type DirectoryUserStatus,
} from '../../core/directory/connector.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { isTransientDatabaseError } from '../../db/errors.js';
import { inScope, tenantScope } from '../../db/scope.js';

/** The built-in directory also keeps sessions, so it can open them (demo sign-in, tests). */
export interface PostgresDirectory extends DirectoryConnector {
  /** Opens a session for an active user; returns its id. */
  openSession(tenantId: string, userId: string): Promise<string>;
}

interface UserRow {
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

function rowToUser(row: UserRow): DirectoryUser {
  return {
    tenantId: row.tenant_id,
    id: row.id,
    username: row.username,
    displayName: row.display_name,
    email: row.email,
    attributes: row.attributes,
    status: row.status,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

const UNIQUE_VIOLATION = '23505';
/** A membership counts until its end (the database's clock decides, one clock for every caller). */
const LIVE = '(expires_at IS NULL OR expires_at > now())';

/**
 * The built-in directory on PostgreSQL. Every call is one transaction bound to its tenant, so
 * row-level security keeps it inside that tenant whatever the query says.
 *
 * Give it a pool of its own: ledger activities call it while holding a connection of theirs,
 * and sharing one pool would let those callers exhaust it and wait on each other.
 */
export function createPostgresDirectory(pool: Pool): PostgresDirectory {
  async function run<T>(tenantId: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    try {
      return await inScope(pool, tenantScope(tenantId), fn);
    } catch (error) {
      if (error instanceof DirectoryError) throw error;
      if (isTransientDatabaseError(error)) {
        throw new DirectoryUnavailableError(`the built-in directory is unavailable: ${(error as Error).message}`, tenantId, {
          cause: error,
        });
      }
      throw error;
    }
  }

  async function userStatus(client: PoolClient, tenantId: string, userId: string): Promise<DirectoryUserStatus | undefined> {
    const { rows } = await client.query<{ status: DirectoryUserStatus }>(
      'SELECT status FROM directory_users WHERE tenant_id = $1 AND id = $2',
      [tenantId, userId],
    );
    return rows[0]?.status;
  }

  return {
    kind: 'postgres',

    upsertUser(tenantId: string, user: DirectoryUserInput): Promise<DirectoryUser> {
      return run(tenantId, async (client) => {
        try {
          // Omitted optional fields keep their stored value; updated_at moves only on a real change.
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
        } catch (error) {
          if ((error as { code?: string }).code === UNIQUE_VIOLATION) {
            throw new DirectoryConflictError(`username ${user.username} is held by another user in tenant ${tenantId}`, tenantId, {
              cause: error,
            });
          }
          throw error;
        }
        const { rows } = await client.query<UserRow>(`SELECT ${USER_COLUMNS} FROM directory_users WHERE tenant_id = $1 AND id = $2`, [
          tenantId,
          user.id,
        ]);
        return rowToUser(rows[0]!);
      });
    },

    getUser(tenantId: string, userId: string): Promise<DirectoryUser | undefined> {
      return run(tenantId, async (client) => {
        const { rows } = await client.query<UserRow>(`SELECT ${USER_COLUMNS} FROM directory_users WHERE tenant_id = $1 AND id = $2`, [
          tenantId,
          userId,
        ]);
        return rows[0] ? rowToUser(rows[0]) : undefined;
      });
    },

    setUserStatus(tenantId: string, userId: string, status: DirectoryUserStatus): Promise<void> {
      return run(tenantId, async (client) => {
        const { rowCount } = await client.query(
          `UPDATE directory_users SET status = $3, updated_at = CASE WHEN status = $3 THEN updated_at ELSE now() END
            WHERE tenant_id = $1 AND id = $2`,
          [tenantId, userId, status],
        );
        if (!rowCount) throw new DirectoryNotFoundError('user', userId, tenantId);
      });
    },

    upsertRole(tenantId: string, role: DirectoryRoleInput): Promise<void> {
      return run(tenantId, async (client) => {
        await client.query(
          `INSERT INTO directory_roles AS r (tenant_id, name, description, privileged)
           VALUES ($1, $2, coalesce($3, ''), coalesce($4, false))
           ON CONFLICT (tenant_id, name) DO UPDATE SET
             description = coalesce($3, r.description),
             privileged = coalesce($4, r.privileged)`,
          [tenantId, role.name, role.description ?? null, role.privileged ?? null],
        );
      });
    },

    assignRole(tenantId: string, userId: string, role: string, until: string | null = null): Promise<void> {
      return run(tenantId, async (client) => {
        const status = await userStatus(client, tenantId, userId);
        if (status === undefined || status === 'deleted') throw new DirectoryNotFoundError('user', userId, tenantId);
        const roleRow = await client.query('SELECT 1 FROM directory_roles WHERE tenant_id = $1 AND name = $2', [tenantId, role]);
        if (!roleRow.rowCount) throw new DirectoryNotFoundError('role', role, tenantId);
        await client.query(
          `INSERT INTO directory_memberships (tenant_id, user_id, role, expires_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant_id, user_id, role) DO UPDATE SET expires_at = EXCLUDED.expires_at
           WHERE directory_memberships.expires_at IS DISTINCT FROM EXCLUDED.expires_at`,
          [tenantId, userId, role, until],
        );
      });
    },

    removeRole(tenantId: string, userId: string, role: string): Promise<void> {
      return run(tenantId, async (client) => {
        await client.query('DELETE FROM directory_memberships WHERE tenant_id = $1 AND user_id = $2 AND role = $3', [
          tenantId,
          userId,
          role,
        ]);
      });
    },

    hasRole(tenantId: string, userId: string, role: string): Promise<boolean> {
      return run(tenantId, async (client) => {
        const { rowCount } = await client.query(
          `SELECT 1 FROM directory_memberships WHERE tenant_id = $1 AND user_id = $2 AND role = $3 AND ${LIVE}`,
          [tenantId, userId, role],
        );
        return rowCount === 1;
      });
    },

    listRoles(tenantId: string, userId: string): Promise<string[]> {
      return run(tenantId, async (client) => {
        const { rows } = await client.query<{ role: string }>(
          `SELECT role FROM directory_memberships WHERE tenant_id = $1 AND user_id = $2 AND ${LIVE} ORDER BY role COLLATE "C"`,
          [tenantId, userId],
        );
        return rows.map((r) => r.role);
      });
    },

    listMembers(tenantId: string, role: string): Promise<string[]> {
      return run(tenantId, async (client) => {
        const { rows } = await client.query<{ user_id: string }>(
          `SELECT user_id FROM directory_memberships WHERE tenant_id = $1 AND role = $2 AND ${LIVE} ORDER BY user_id COLLATE "C"`,
          [tenantId, role],
        );
        return rows.map((r) => r.user_id);
      });
    },

    revokeSessions(tenantId: string, userId: string): Promise<number> {
      return run(tenantId, async (client) => {
        const { rowCount } = await client.query(
          'UPDATE directory_sessions SET revoked_at = now() WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL',
          [tenantId, userId],
        );
        return rowCount ?? 0;
      });
    },

    openSession(tenantId: string, userId: string): Promise<string> {
      return run(tenantId, async (client) => {
        const status = await userStatus(client, tenantId, userId);
        if (status === undefined || status === 'deleted') throw new DirectoryNotFoundError('user', userId, tenantId);
        if (status !== 'active') throw new DirectoryConflictError(`user ${userId} is ${status} and cannot sign in`, tenantId);
        const id = randomUUID();
        await client.query('INSERT INTO directory_sessions (tenant_id, id, user_id) VALUES ($1, $2, $3)', [tenantId, id, userId]);
        return id;
      });
    },
  };
}
