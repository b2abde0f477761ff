import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
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

/**
 * An empty database of this test file's own; `migrated: false` leaves it without tables. A migrated
 * one is a copy of the run's template database (migrated once by tests/setup/global.ts), which
 * is what `migrate()` would make, in a fraction of the time.
 */
export async function createTestDatabase({ migrated = true } = {}): Promise<TestDatabase> {
  const name = `tenure_test_${randomBytes(6).toString('hex')}`;
  const template = migrated ? ` TEMPLATE ${pg.escapeIdentifier(inject('migratedTemplateDatabase'))}` : '';
  await admin((client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}${template}`));
  const url = withDatabase(inject('adminDatabaseUrl'), name);
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
