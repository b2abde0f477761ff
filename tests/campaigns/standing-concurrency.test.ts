import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryDirectory } from '../../bench/campaigns/memory-directory.js';
import { DirectoryUnavailableError, type DirectoryResolver } from '../../core/directory/connector.js';
import { createPool, type Pool } from '../../db/pool.js';
import { standingPrivilege } from '../../usecases/campaigns/standing.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/**
 * The standing-privilege report across tenants reads their targets a few at a time, never one by
 * one and never all at once, and still lists entries and unavailable tenants in the order asked.
 */
let db: TestDatabase;
let pool: Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createPool({ connectionString: db.appUrl, max: 5 });
}, 120_000);

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('the standing-privilege report across tenants', () => {
  it('reads tenants with bounded concurrency, keeping their order and listing an unreadable one as unavailable', async () => {
    const tenants: string[] = Array.from({ length: 7 }, () => randomUUID());
    const down = tenants[2]!;
    const directory = memoryDirectory();
    for (const [n, tenantId] of tenants.entries()) {
      await directory.upsertRole(tenantId, { name: 'GlobalAdmin', privileged: true });
      for (const user of [`admin-${n}`, `second-${n}`]) {
        await directory.upsertUser(tenantId, { id: user, username: user, displayName: user });
        await directory.assignRole(tenantId, user, 'GlobalAdmin');
      }
    }
    // Each tenant's target answers slowly, later tenants sooner: order must not follow who answers first.
    const reading = { now: 0, max: 0 };
    const directories: DirectoryResolver = {
      async directoryFor(tenantId) {
        reading.now++;
        reading.max = Math.max(reading.max, reading.now);
        try {
          await new Promise((r) => setTimeout(r, 10 * (tenants.length - tenants.indexOf(tenantId))));
          if (tenantId === down) throw new DirectoryUnavailableError('the target did not answer', tenantId);
          return directory;
        } finally {
          reading.now--;
        }
      },
    };

    const report = await standingPrivilege({ pool, directory, directories }, tenants, { reviewDays: 90, format: 'json' }, new Date(), 3);
    expect(reading.max).toBeGreaterThan(1);
    expect(reading.max).toBeLessThanOrEqual(3);
    expect(report.unavailable).toEqual([{ tenantId: down, reason: 'the target did not answer' }]);
    const readable = tenants.filter((t) => t !== down);
    expect(report.entries.map((e) => `${e.tenantId}/${e.subjectId}`)).toEqual(
      readable.flatMap((t) => {
        const n = tenants.indexOf(t);
        return [`${t}/admin-${n}`, `${t}/second-${n}`];
      }),
    );
    for (const entry of report.entries) expect(entry.reasons).toContain('no_owner');
  });
});
