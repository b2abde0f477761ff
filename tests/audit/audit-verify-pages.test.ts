import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventInput } from '../../core/audit/chain.js';
import { verifyExportFile } from '../../cli/audit.js';
import { appendAuditEvents, chainEventsInRange, chainHead, listAuditEvents } from '../../db/audit.js';
import { APP_ROLE, createPool, type Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { exportChainEvents, verifyChain } from '../../usecases/audit.js';
import { auditInput } from '../support/audit.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

/*
 * The API's verification reads events in seq ranges, rows as unparsed text, with
 * the next range asked for before this one is checked. These tests hold it to what the list API
 * reads from the same rows, and show tampering found past the first range, by it and offline.
 */

let db: TestDatabase;
let app: Pool;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createPool({ connectionString: db.url, role: APP_ROLE, max: 4 });
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-verify-pages-'));
});
afterAll(async () => {
  await app?.end();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function newTenant(): Promise<string> {
  const id = randomUUID();
  await db.pool.query("INSERT INTO tenants (id, slug, name, created_by) VALUES ($1, $2, 'Verify pages', 'test')", [
    id,
    `vp-${id.slice(0, 8)}`,
  ]);
  return id;
}

async function appendMany(tenantId: string, count: number, make = (i: number) => auditInput(tenantId, { payload: { i } })) {
  for (let from = 0; from < count; from += 500) {
    const batch = Array.from({ length: Math.min(500, count - from) }, (_, k) => make(from + k));
    await inScope(app, tenantScope(tenantId), (client) => appendAuditEvents(client, batch));
  }
}

/** Changes stored rows as a table owner could, behind the append-only trigger. */
async function behindTheTrigger(sql: string, params: unknown[]): Promise<void> {
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete');
    await client.query(sql, params);
    await client.query('ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete');
    await client.query('COMMIT');
  } finally {
    client.release();
  }
}

async function exportFile(tenantId: string): Promise<{ file: string; head: { seq: number; hash: string } }> {
  const file = path.join(dir, `${tenantId}.ndjson`);
  let head: { seq: number; hash: string } | undefined;
  await exportChainEvents({ pool: app }, tenantId, { format: 'ndjson' }, (h) => {
    head = h;
    return createWriteStream(file);
  });
  return { file, head: head! };
}

describe('reading events for verification', () => {
  it('reads every event as the list API reads it, odd values included', async () => {
    const tenantId = await newTenant();
    const odd: Partial<AuditEventInput>[] = [
      { target: null, workflowId: 'wf/1', runId: randomUUID() },
      { occurredAt: '1970-01-01T00:00:00.000Z', action: 'zéro \u2028 "quoted" \\ back' },
      { occurredAt: '9999-12-31T23:59:59.999Z', actor: { id: 'svc\u0001\u001f', type: 'service' } },
      { authority: {}, payload: {} },
      { payload: { big: 1e21, small: 1e-7, neg: -0.5, int: 9007199254740991, list: [null, true, 'x', [1, { b: 2, a: 1 }]] } },
      { payload: { emoji: '😀', astral: '\u{1F600}', tab: '\t' } },
      { authority: { roles: ['auditor'], ticket: 'CHG-9', nested: { z: 1, aa: { y: [] } } } },
    ];
    await appendMany(tenantId, odd.length, (i) => auditInput(tenantId, odd[i]));
    // Rows no append path writes: a target with one column only, a time finer than a millisecond.
    await db.pool.query(
      `INSERT INTO audit_events (tenant_id, seq, event_id, occurred_at, actor_id, actor_type, action, target_type, target_id,
         authority, workflow_id, run_id, payload, prev_hash, hash)
       VALUES ($1, 8, $2, '2026-01-02T03:04:05.123456Z', 'a', 'user', 'x', 'grant', NULL, '{}', NULL, NULL, '{}', 'p', 'h'),
              ($1, 9, $3, '2026-01-02T03:04:05.999999Z', 'a', 'user', 'x', NULL, 'g-1', '{}', NULL, NULL, '{}', 'p', 'h')`,
      [tenantId, randomUUID(), randomUUID()],
    );
    await inScope(app, tenantScope(tenantId), async (client) => {
      const listed = await listAuditEvents(client, tenantId, {}, 100);
      expect(listed).toHaveLength(9);
      expect(await chainEventsInRange(client, tenantId, 0, 9)).toEqual(listed);
      expect(await chainEventsInRange(client, tenantId, 2, 5)).toEqual(listed.slice(2, 5));
      expect(await chainEventsInRange(client, tenantId, 9, 20)).toEqual([]);
    });
  });
});

describe('verifying a chain longer than one page', () => {
  it('verifies 4,500 events, and finds an event altered in the third page both through the API and in its export', async () => {
    const tenantId = await newTenant();
    await appendMany(tenantId, 4500);
    expect(await verifyChain({ pool: app }, tenantId)).toEqual({
      intact: true,
      checked: 4500,
      firstBadSeq: null,
      reason: null,
      headSeq: 4500,
    });

    await behindTheTrigger(`UPDATE audit_events SET payload = '{"i": 4320, "tampered": true}' WHERE tenant_id = $1 AND seq = 4321`, [
      tenantId,
    ]);
    const broken = { intact: false, checked: 4320, firstBadSeq: 4321, reason: 'hash does not match the event content' };
    expect(await verifyChain({ pool: app }, tenantId)).toEqual({ ...broken, headSeq: 4500 });
    const { file, head } = await exportFile(tenantId);
    expect(await verifyExportFile(file, head)).toMatchObject({ ...broken, badLine: 4321 });
  });

  it('names an event removed at a page boundary, and events cut off the end', async () => {
    const tenantId = await newTenant();
    await appendMany(tenantId, 4100);
    await behindTheTrigger('DELETE FROM audit_events WHERE tenant_id = $1 AND seq = 2001', [tenantId]);
    expect(await verifyChain({ pool: app }, tenantId)).toMatchObject({
      intact: false,
      checked: 2000,
      firstBadSeq: 2001,
      reason: 'event 2001 is missing',
    });

    const other = await newTenant();
    await appendMany(other, 4000);
    await behindTheTrigger('DELETE FROM audit_events WHERE tenant_id = $1 AND seq > 3999', [other]);
    expect(await inScope(app, tenantScope(other), (client) => chainHead(client, other))).toMatchObject({ seq: 4000 });
    expect(await verifyChain({ pool: app }, other)).toMatchObject({
      intact: false,
      checked: 3999,
      firstBadSeq: 4000,
      reason: 'the chain head is 4000, the events end at 3999',
    });
  });
});
