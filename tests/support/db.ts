import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { migrate } from '../../db/migrate.js';
import { createPool, type Pool } from '../../db/pool.js';
import { withLogin } from '../../db/roles.js';

export interface TestDatabase {
  name: string;
  /** Owner connection (migrations, assertions that must see everything). */
  url: string;
  pool: Pool;
  /** The service's own login: a member of tenure_app, under row-level security. */
  appUrl: string;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** An empty database of this test file's own; `migrated: false` leaves it without tables. */
export async function createTestDatabase({ migrated = true } = {}): Promise<TestDatabase> {
  const name = `tenure_test_${randomBytes(6).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  const url = withDatabase(inject('adminDatabaseUrl'), name);
  if (migrated) await migrate(url);
  const pool = createPool({ connectionString: url, max: 5 });
  const login = inject('serviceLogin');
  return {
    name,
    url,
    pool,
    appUrl: withLogin(url, login.user, login.password),
    async drop() {
      await pool.end();
      await admin((client) => client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`));
    },
  };
}
