import { randomUUID } from 'node:crypto';
import {
  DirectoryConflictError,
  DirectoryError,
  DirectoryNotFoundError,
  DirectoryRejectedError,
  DirectoryUnavailableError,
  type DirectoryAccountState,
  type DirectoryConnector,
  type DirectoryRole,
  type DirectoryRoleInput,
  type DirectoryUser,
  type DirectoryUserInput,
  type DirectoryUserStatus,
} from '../../core/directory/connector.js';
import {
  accountStateRow,
  allDirectoryRoles,
  deleteMembership,
  directorySettingsRow,
  directoryRoleExists,
  directoryRoles,
  directoryUserRow,
  directoryUserRows,
  directoryUserStatus,
  hasLiveMembership,
  insertDirectoryUsersWithRoles,
  insertMfaFactor,
  insertSession,
  lastSessionStarts,
  liveMembersOf,
  liveRolesOf,
  removeMfaFactorRows,
  requireDirectoryPasswordReset,
  revokeSessionRows,
  setDirectoryUserLock,
  setDirectoryUserStatus,
  upsertDirectoryRole,
  deleteDirectoryRole,
  upsertDirectorySettings,
  upsertDirectoryUser,
  upsertMembership,
  type DirectoryUserRow,
} from '../../db/directory/builtin.js';
import type { DirectorySecuritySettingsState, PartialDirectorySecuritySettings } from '../../core/directory/settings.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { isRefusedLoginError, isTransientDatabaseError } from '../../db/errors.js';
import { inScope, readInScope, tenantScope, type Reader } from '../../db/scope.js';

/**
 * The built-in directory also keeps sessions, lockouts and second factors, so it can make them
 * (demo sign-in, tests) as its own sign-in would.
 */
export interface PostgresDirectory extends DirectoryConnector {
  /** Opens a session for an active user; returns its id. */
  openSession(tenantId: string, userId: string): Promise<string>;
  /** Locks the user out, as too many failed sign-ins do. */
  lockUser(tenantId: string, userId: string): Promise<void>;
  /** Enrols a second factor (e.g. `totp`, `webauthn`); returns its id. */
  enrollMfa(tenantId: string, userId: string, kind: string): Promise<string>;
  /** Loads many users at once, each holding every role of `roles` (a benchmark's seed); existing ones are left alone. */
  loadUsers(tenantId: string, users: readonly DirectoryUserInput[], roles: readonly string[]): Promise<void>;
}

function rowToUser(row: DirectoryUserRow): DirectoryUser {
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

/** The status of a user that exists and is not deleted; DirectoryNotFoundError otherwise. */
async function existingUser(client: PoolClient, tenantId: string, userId: string): Promise<DirectoryUserStatus> {
  const status = await directoryUserStatus(client, tenantId, userId);
  if (status === undefined || status === 'deleted') throw new DirectoryNotFoundError('user', userId, tenantId);
  return status;
}

/**
 * The built-in directory on PostgreSQL. Every call is one transaction bound to its tenant, so
 * row-level security keeps it inside that tenant whatever the query says.
 *
 * Give it a pool of its own: ledger activities call it while holding a connection of theirs,
 * and sharing one pool would let those callers exhaust it and wait on each other.
 */
export function createPostgresDirectory(pool: Pool): PostgresDirectory {
  async function run<T>(tenantId: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return failedAs(tenantId, () => inScope(pool, tenantScope(tenantId), fn));
  }
  /** A read in one round trip (readInScope): the same errors as `run`. */
  function read<T>(tenantId: string, fn: (reader: Reader) => Promise<T>): Promise<T> {
    return failedAs(tenantId, () => readInScope(pool, tenantScope(tenantId), fn));
  }
  async function failedAs<T>(tenantId: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof DirectoryError) throw error;
      if (isTransientDatabaseError(error)) {
        throw new DirectoryUnavailableError(`the built-in directory is unavailable: ${(error as Error).message}`, tenantId, {
          cause: error,
        });
      }
      if (isRefusedLoginError(error)) {
        const code = (error as { code: string }).code;
        throw new DirectoryRejectedError(
          `the built-in directory refused the login: ${(error as Error).message}`,
          tenantId,
          `postgres:${code}`,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
  }

  return {
    kind: 'postgres',
    capabilities: {
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
    },

    upsertUser(tenantId: string, user: DirectoryUserInput): Promise<DirectoryUser> {
      return run(tenantId, async (client) => {
        try {
          await upsertDirectoryUser(client, tenantId, user);
        } catch (error) {
          if ((error as { code?: string }).code === UNIQUE_VIOLATION) {
            throw new DirectoryConflictError(`username ${user.username} is held by another user in tenant ${tenantId}`, tenantId, {
              cause: error,
            });
          }
          throw error;
        }
        return rowToUser((await directoryUserRow(client, tenantId, user.id))!);
      });
    },

    getUser(tenantId: string, userId: string): Promise<DirectoryUser | undefined> {
      return read(tenantId, async (client) => {
        const row = await directoryUserRow(client, tenantId, userId);
        return row ? rowToUser(row) : undefined;
      });
    },

    setUserStatus(tenantId: string, userId: string, status: DirectoryUserStatus): Promise<void> {
      return run(tenantId, async (client) => {
        if (!(await setDirectoryUserStatus(client, tenantId, userId, status))) throw new DirectoryNotFoundError('user', userId, tenantId);
      });
    },

    upsertRole(tenantId: string, role: DirectoryRoleInput): Promise<void> {
      return run(tenantId, (client) => upsertDirectoryRole(client, tenantId, role));
    },

    getRoles(tenantId: string, names: readonly string[]): Promise<DirectoryRole[]> {
      return run(tenantId, (client) => directoryRoles(client, tenantId, names));
    },

    listAllRoles(tenantId: string): Promise<DirectoryRole[]> {
      return run(tenantId, (client) => allDirectoryRoles(client, tenantId));
    },

    deleteRole(tenantId: string, name: string): Promise<void> {
      return run(tenantId, async (client) => {
        if ((await deleteDirectoryRole(client, tenantId, name)) === 'held') {
          throw new DirectoryConflictError(`role ${name} has members in tenant ${tenantId}: it is not deleted`, tenantId);
        }
      });
    },

    lastSignIns(tenantId: string, userIds: readonly string[]): Promise<Record<string, string | null>> {
      return run(tenantId, (client) => lastSessionStarts(client, tenantId, userIds));
    },

    getUsers(tenantId: string, userIds: readonly string[]): Promise<DirectoryUser[]> {
      return run(tenantId, async (client) => (await directoryUserRows(client, tenantId, userIds)).map(rowToUser));
    },

    assignRole(tenantId: string, userId: string, role: string, until: string | null = null): Promise<void> {
      return run(tenantId, async (client) => {
        await existingUser(client, tenantId, userId);
        if (!(await directoryRoleExists(client, tenantId, role))) throw new DirectoryNotFoundError('role', role, tenantId);
        // The database's clock decides, in the statement that writes: a window that has closed
        // by the time the assignment arrives (a late or retried activation) gives no access.
        if ((await upsertMembership(client, tenantId, userId, role, until)) === 'refused') {
          throw new DirectoryConflictError(
            `the membership of ${userId} in ${role} would end at ${until}, which has passed: no access is given`,
            tenantId,
          );
        }
      });
    },

    removeRole(tenantId: string, userId: string, role: string): Promise<void> {
      return run(tenantId, (client) => deleteMembership(client, tenantId, userId, role));
    },

    hasRole(tenantId: string, userId: string, role: string): Promise<boolean> {
      return run(tenantId, (client) => hasLiveMembership(client, tenantId, userId, role));
    },

    listRoles(tenantId: string, userId: string): Promise<string[]> {
      return run(tenantId, (client) => liveRolesOf(client, tenantId, userId));
    },

    listMembers(tenantId: string, role: string): Promise<string[]> {
      return run(tenantId, (client) => liveMembersOf(client, tenantId, role));
    },

    revokeSessions(tenantId: string, userId: string): Promise<number> {
      return run(tenantId, (client) => revokeSessionRows(client, tenantId, userId));
    },

    getAccountState(tenantId: string, userId: string): Promise<DirectoryAccountState | undefined> {
      return run(tenantId, async (client) => {
        const row = await accountStateRow(client, tenantId, userId);
        if (!row) return undefined;
        return {
          status: row.status,
          locked: row.locked,
          mfaFactors: row.mfa_factors,
          passwordResetRequired: row.password_reset_required,
          liveSessions: row.live_sessions,
        };
      });
    },

    unlockUser(tenantId: string, userId: string): Promise<void> {
      return run(tenantId, async (client) => {
        if (!(await setDirectoryUserLock(client, tenantId, userId, false))) throw new DirectoryNotFoundError('user', userId, tenantId);
      });
    },

    resetMfa(tenantId: string, userId: string): Promise<number> {
      return run(tenantId, async (client) => {
        await existingUser(client, tenantId, userId);
        return removeMfaFactorRows(client, tenantId, userId);
      });
    },

    requirePasswordReset(tenantId: string, userId: string): Promise<void> {
      return run(tenantId, async (client) => {
        if (!(await requireDirectoryPasswordReset(client, tenantId, userId))) throw new DirectoryNotFoundError('user', userId, tenantId);
      });
    },

    getSecuritySettings(tenantId: string): Promise<DirectorySecuritySettingsState> {
      return run(tenantId, (client) => directorySettingsRow(client, tenantId));
    },

    applySecuritySettings(tenantId: string, settings: PartialDirectorySecuritySettings): Promise<void> {
      return run(tenantId, async (client) => {
        // Locked, so two applies of different settings never lose one another's.
        const current = await directorySettingsRow(client, tenantId, true);
        const given = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
        await upsertDirectorySettings(client, tenantId, { ...current, ...given });
      });
    },

    lockUser(tenantId: string, userId: string): Promise<void> {
      return run(tenantId, async (client) => {
        if (!(await setDirectoryUserLock(client, tenantId, userId, true))) throw new DirectoryNotFoundError('user', userId, tenantId);
      });
    },

    enrollMfa(tenantId: string, userId: string, kind: string): Promise<string> {
      return run(tenantId, async (client) => {
        await existingUser(client, tenantId, userId);
        const id = randomUUID();
        await insertMfaFactor(client, tenantId, id, userId, kind);
        return id;
      });
    },

    loadUsers(tenantId: string, users: readonly DirectoryUserInput[], roles: readonly string[]): Promise<void> {
      return run(tenantId, (client) => insertDirectoryUsersWithRoles(client, tenantId, users, roles));
    },

    openSession(tenantId: string, userId: string): Promise<string> {
      return run(tenantId, async (client) => {
        const status = await existingUser(client, tenantId, userId);
        if (status !== 'active') throw new DirectoryConflictError(`user ${userId} is ${status} and cannot sign in`, tenantId);
        const id = randomUUID();
        await insertSession(client, tenantId, id, userId);
        return id;
      });
    },
  };
}
