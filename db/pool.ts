import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

/** The database role the service runs as: owns no table, cannot bypass row-level security. */
export const APP_ROLE = 'tenure_app';

export interface PoolOptions {
  connectionString: string;
  max?: number;
  applicationName?: string;
  /** Role every connection switches to at start-up; omit only for migrations and test assertions. */
  role?: string;
}

export function createPool({ connectionString, max = 10, applicationName = 'tenure', role }: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    application_name: applicationName,
    ...(role ? { options: `-c role=${role}` } : {}),
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection (e.g. PostgreSQL restarted) must not crash the process;
  // the pool discards it and the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/** A round trip to the database, for readiness checks. */
export async function ping(pool: pg.Pool): Promise<void> {
  await pool.query('SELECT 1');
}
