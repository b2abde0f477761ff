import pg from 'pg';
import { APP_ROLE } from './pool.js';

/**
 * Creates (if missing) a login for the service that is a member of `tenure_app`: it owns no
 * table, cannot bypass row-level security and cannot switch to the owner. Needs a connection
 * that may create roles; roles are cluster-wide, so a concurrent creation is tolerated.
 */
export async function ensureServiceLogin(adminUrl: string, login: string, password: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (const [role, attributes] of [
      [APP_ROLE, 'NOLOGIN NOBYPASSRLS'],
      [login, `LOGIN NOBYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${pg.escapeLiteral(password)}`],
    ] as const) {
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      if (exists.rowCount) continue;
      await client.query(`CREATE ROLE ${pg.escapeIdentifier(role)} ${attributes}`).catch((error: { code?: string }) => {
        if (error.code !== '42710' && error.code !== '23505') throw error;
      });
    }
    await client.query(`GRANT ${pg.escapeIdentifier(APP_ROLE)} TO ${pg.escapeIdentifier(login)}`);
  } finally {
    await client.end();
  }
}

/** The same database URL with another user and password. */
export function withLogin(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(user);
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

/** Creates the database if missing (a concurrent creation is tolerated), over an admin connection. */
export async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created meanwhile by a concurrent start
      });
    }
  } finally {
    await client.end();
  }
}

/** Login refused: wrong password or no such role (the cluster holds other credentials). */
const LOGIN_REFUSED = new Set(['28P01', '28000']);

/**
 * Resolves once the server at `adminUrl` accepts this login, retrying while it starts up
 * (connection refused, "the database system is starting up"). Rejects at once when the login is
 * refused or `isAlive` says the server has gone, and after `timeoutMs`.
 */
export async function waitForServer(adminUrl: string, options: { timeoutMs: number; isAlive: () => boolean }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => undefined);
      const code = (error as { code?: string }).code;
      if ((code && LOGIN_REFUSED.has(code)) || !options.isAlive() || Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
