import { afterAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_TABLE, migrate } from '../db/migrate.js';
import { createTestDatabase, type TestDatabase } from './support/db.js';

const databases: TestDatabase[] = [];
afterAll(async () => {
  await Promise.all(databases.map((db) => db.drop()));
});

async function fresh() {
  const db = await createTestDatabase({ migrated: false });
  databases.push(db);
  return db;
}

describe('migrations', () => {
  it('apply every file once, record them, and are a no-op the second time', async () => {
    const db = await fresh();
    const first = await migrate(db.url);
    expect(first.length).toBeGreaterThan(0);
    expect(await migrate(db.url)).toEqual([]);
    const { rows } = await db.pool.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY id`);
    expect(rows.map((r) => r.name)).toEqual(first);
  });

  it('are safe when several processes start at once: each file is applied exactly once', async () => {
    const db = await fresh();
    const results = await Promise.all([migrate(db.url), migrate(db.url), migrate(db.url)]);
    const applied = results.flat();
    expect(new Set(applied).size).toBe(applied.length);
    expect(results.filter((r) => r.length > 0)).toHaveLength(1);
    const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${MIGRATIONS_TABLE}`);
    expect(rows[0]!.n).toBe(applied.length);
  });
});
