import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CampaignDefinitionDocument } from '../../core/campaigns/schemas.js';
import { fixRunTenants } from '../../db/campaigns.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/**
 * Which tenants a run reviews (db/campaigns.ts fixRunTenants) on a real PostgreSQL: every tenant,
 * a list or tags; excluded ids and tags; and whether tenants created after the version join.
 */
let db: TestDatabase;
let definitionId: string;
const tenants: Record<string, string> = {};
let versionWrittenAt: string;

async function tenant(key: string, tags: string[], createdAt: string, status = 'active'): Promise<void> {
  const id = randomUUID();
  await db.pool.query('INSERT INTO tenants (id, slug, name, status, created_at, created_by, tags) VALUES ($1, $2, $2, $3, $4, $5, $6)', [
    id,
    `${key.toLowerCase()}-${id.slice(0, 8)}`,
    status,
    createdAt,
    'test',
    tags,
  ]);
  tenants[key] = id;
}

beforeAll(async () => {
  db = await createTestDatabase();
  // Only this file's tenants: the template database may hold none, but make sure.
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tenants');
  expect(rows[0]!.n).toBe(0);
  versionWrittenAt = '2030-01-01T00:00:00Z';
  await tenant('old', ['region:eu'], '2029-06-01T00:00:00Z');
  await tenant('oldOther', [], '2029-06-01T00:00:00Z');
  await tenant('oldExcluded', ['region:eu'], '2029-06-01T00:00:00Z');
  await tenant('suspended', ['region:eu'], '2029-06-01T00:00:00Z', 'suspended');
  await tenant('later', ['region:eu'], '2030-02-01T00:00:00Z');
  await tenant('laterOther', [], '2030-02-01T00:00:00Z');
  definitionId = randomUUID();
  await db.pool.query("INSERT INTO campaign_definitions (id, name, current_version, created_by) VALUES ($1, 'scope', 1, 'test')", [
    definitionId,
  ]);
});

afterAll(async () => {
  await db?.drop();
});

let runNo = 0;
/** The tenants a new run of `scope` fixes, by key. */
async function runTenants(scope: Record<string, unknown>): Promise<string[]> {
  const runId = randomUUID();
  runNo++;
  await db.pool.query(
    `INSERT INTO campaign_runs (id, definition_id, run_no, definition_version, workflow_id, status, started_by, trigger)
     VALUES ($1, $2, $3, 1, $4, 'starting', 'test', 'api')`,
    [runId, definitionId, runNo, `campaign/${definitionId}/${runNo}`],
  );
  const parsed = CampaignDefinitionDocument.parse({ scope, stages: [{ durationMinutes: 60 }] }).scope;
  const client = await db.pool.connect();
  try {
    const fixed = await fixRunTenants(client, runId, parsed, versionWrittenAt);
    // A retry finds them fixed already and changes nothing.
    expect(await fixRunTenants(client, runId, { ...parsed, tenantIds: [] }, versionWrittenAt)).toBe(fixed);
  } finally {
    client.release();
  }
  const { rows } = await db.pool.query<{ tenant_id: string }>('SELECT tenant_id FROM campaign_run_tenants WHERE run_id = $1', [runId]);
  const byId = new Map(Object.entries(tenants).map(([key, id]) => [id, key]));
  return rows.map((r) => byId.get(r.tenant_id)!).sort();
}

describe('a campaign’s scope', () => {
  it('with neither list nor tags is every active tenant, later ones too by default, less the excluded ids', async () => {
    expect(await runTenants({})).toEqual(['later', 'laterOther', 'old', 'oldExcluded', 'oldOther']);
    expect(await runTenants({ exclude: [tenants.oldExcluded, tenants.laterOther] })).toEqual(['later', 'old', 'oldOther']);
  });

  it('with includeLaterTenants off, keeps only tenants that existed when the version was written', async () => {
    expect(await runTenants({ includeLaterTenants: false })).toEqual(['old', 'oldExcluded', 'oldOther']);
    expect(await runTenants({ tags: ['region:eu'], includeLaterTenants: false })).toEqual(['old', 'oldExcluded']);
    expect(await runTenants({ tags: ['region:eu'] })).toEqual(['later', 'old', 'oldExcluded']);
  });

  it('always reviews a listed tenant, however late, unless it is excluded or not active', async () => {
    expect(
      await runTenants({ tenantIds: [tenants.laterOther, tenants.suspended, tenants.oldExcluded], exclude: [tenants.oldExcluded] }),
    ).toEqual(['laterOther']);
    expect(await runTenants({ tenantIds: [tenants.laterOther], tags: ['region:eu'], excludeTags: ['region:eu'] })).toEqual(['laterOther']);
  });
});
