import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { DirectoryUnavailableError, type DirectoryConnector } from '../../core/directory/connector.js';
import { createPool, type Pool } from '../../db/pool.js';
import { rbacReport, REPORT_CONCURRENCY } from '../../usecases/templates/report.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/**
 * Data tier: the report over 500 tenants on the built-in directory (real PostgreSQL, under
 * row-level security), read a bounded number of tenants at a time; a target that never answers
 * costs its own row, not the report.
 */
const TENANTS = 500;
let db: TestDatabase;
let pool: Pool;
let directory: DirectoryConnector;
let tenantIds: string[];

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createPool({ connectionString: db.appUrl, max: 10 });
  directory = createPostgresDirectory(createPool({ connectionString: db.appUrl, max: 5 }));
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO tenants (id, slug, name, created_by)
     SELECT gen_random_uuid(), 'bulk-' || lpad(n::text, 4, '0'), 'Bulk ' || n, 'test' FROM generate_series(1, $1) n
     RETURNING id`,
    [TENANTS],
  );
  tenantIds = rows.map((r) => r.id).sort();
  await db.pool.query(
    `INSERT INTO directory_roles (tenant_id, name, description, privileged) SELECT id, 'GlobalAdmin', '', true FROM tenants`,
  );
  const odd = tenantIds[0]!;
  await directory.applySecuritySettings(odd, { lockoutThreshold: 0 });
  await directory.upsertUser(odd, { id: 'alex', username: 'alex', displayName: 'Alex' });
  await directory.assignRole(odd, 'alex', 'GlobalAdmin');
}, 120_000);
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

/** The directory, counting the calls in flight at once; `stuck` never answers. */
function counting(real: DirectoryConnector, stuck: string | null) {
  const seen = { now: 0, max: 0 };
  const wrapped: Record<string, unknown> = { ...real };
  for (const [name, method] of Object.entries(real)) {
    if (typeof method !== 'function') continue;
    wrapped[name] = async (tenantId: string, ...rest: unknown[]) => {
      seen.now++;
      seen.max = Math.max(seen.max, seen.now);
      try {
        if (tenantId === stuck) return await new Promise(() => undefined);
        return await (method as (...a: unknown[]) => Promise<unknown>).call(real, tenantId, ...rest);
      } finally {
        seen.now--;
      }
    };
  }
  return { connector: wrapped as unknown as DirectoryConnector, seen };
}

describe('RBAC report at scale', () => {
  it(`reads ${TENANTS} tenants at most ${REPORT_CONCURRENCY} at a time and finds the one that deviates`, async () => {
    const { connector, seen } = counting(directory, null);
    const started = Date.now();
    const report = await rbacReport({ pool, directory: connector });
    console.info(`rbac report over ${TENANTS} tenants: ${Date.now() - started} ms`);
    expect(report.summary).toEqual({ tenants: TENANTS, readable: TENANTS, unreadable: 0, deviating: 1 });
    expect(seen.max).toBeLessThanOrEqual(REPORT_CONCURRENCY);
    expect(seen.max).toBeGreaterThan(1);
    const odd = report.tenants.find((t) => t.tenantId === tenantIds[0])!;
    expect(odd.cells['settings.lockoutThreshold']).toEqual({ value: 0, expected: 10, basis: 'majority', deviates: true });
    expect(odd.cells['roles.GlobalAdmin.members']).toMatchObject({ value: 1 });
  }, 120_000);

  it('a target that never answers, or answers that it is down, makes only its own row unreadable', async () => {
    const [stuck, down] = [tenantIds[1]!, tenantIds[2]!];
    const { connector } = counting(
      {
        ...directory,
        getSecuritySettings: (tenantId) =>
          tenantId === down
            ? Promise.reject(new DirectoryUnavailableError('connection refused', tenantId))
            : directory.getSecuritySettings(tenantId),
      },
      stuck,
    );
    const report = await rbacReport({ pool, directory: connector }, { timeoutMs: 2_000 });
    expect(report.summary).toMatchObject({ tenants: TENANTS, readable: TENANTS - 2, unreadable: 2 });
    expect(report.tenants.find((t) => t.tenantId === stuck)).toMatchObject({
      readable: false,
      error: expect.stringContaining('did not answer'),
    });
    expect(report.tenants.find((t) => t.tenantId === down)).toMatchObject({ readable: false, error: 'connection refused' });
  }, 120_000);
});
