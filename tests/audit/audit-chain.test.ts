import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainVerifier, GENESIS_HASH, type AuditEventInput } from '../../core/audit/chain.js';
import { appendAuditEvent, chainHead, recordedEventTime, streamAuditEvents } from '../../db/audit.js';
import { APP_ROLE, createPool, type Pool } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { auditInput } from '../support/audit.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
/** The service's role: not the owner, under row-level security. `db.pool` is the owner. */
let app: Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createPool({ connectionString: db.url, role: APP_ROLE, max: 8 });
});
afterAll(async () => {
  await app?.end();
  await db?.drop();
});

const input = auditInput;

const append = (event: AuditEventInput) => inScope(app, tenantScope(event.tenantId), (client) => appendAuditEvent(client, event));

async function verify(tenantId: string) {
  return inScope(app, tenantScope(tenantId), async (client) => {
    const verifier = new ChainVerifier();
    for await (const event of streamAuditEvents(client, tenantId)) verifier.push(event);
    return verifier.finish(await chainHead(client, tenantId));
  });
}

async function seqsOf(tenantId: string): Promise<number[]> {
  const { rows } = await db.pool.query<{ seq: string }>('SELECT seq FROM audit_events WHERE tenant_id = $1 ORDER BY seq', [tenantId]);
  return rows.map((r) => Number(r.seq));
}

const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('appending to a tenant chain', () => {
  it('keeps seq gapless per tenant under 200 concurrent appends across 3 tenants, and every chain verifies', async () => {
    const tenants = [randomUUID(), randomUUID(), randomUUID()];
    const inputs = Array.from({ length: 200 }, (_, i) => input(tenants[i % 3]!, { payload: { i } }));
    const appended = await Promise.all(inputs.map(append));

    // Several connections really did interleave: the pool was used beyond one client.
    expect(app.totalCount).toBeGreaterThan(1);
    for (const [index, tenantId] of tenants.entries()) {
      const expected = inputs.filter((_, i) => i % 3 === index).length;
      expect(await seqsOf(tenantId)).toEqual(oneTo(expected));
      const result = await verify(tenantId);
      expect(result).toMatchObject({ intact: true, checked: expected, lastSeq: expected, firstBadSeq: null });
    }
    // Each call got back the event it stored.
    const stored = await db.pool.query<{ event_id: string; seq: string; tenant_id: string }>(
      'SELECT event_id, seq, tenant_id FROM audit_events WHERE tenant_id = ANY($1)',
      [tenants],
    );
    const bySeq = new Map(stored.rows.map((r) => [r.event_id, `${r.tenant_id}/${r.seq}`]));
    expect(appended.map((e) => `${e.tenantId}/${e.seq}`)).toEqual(inputs.map((i) => bySeq.get(i.eventId)));
  });

  it('links the first event to the genesis hash and each next one to its predecessor', async () => {
    const tenantId = randomUUID();
    const first = await append(input(tenantId));
    const second = await append(input(tenantId));
    expect(first).toMatchObject({ seq: 1, prevHash: GENESIS_HASH });
    expect(second).toMatchObject({ seq: 2, prevHash: first.hash });
    expect(await inScope(app, tenantScope(tenantId), (c) => chainHead(c, tenantId))).toEqual({ seq: 2, hash: second.hash });
  });

  it('stores an event id once when appended twice in turn, and returns the stored event both times', async () => {
    const tenantId = randomUUID();
    const event = input(tenantId);
    const first = await append(event);
    const again = await append({ ...event, payload: { changed: true } });
    expect(again).toEqual(first);
    expect(await seqsOf(tenantId)).toEqual([1]);
  });

  it('stores an event id once when eight retries race each other', async () => {
    const tenantId = randomUUID();
    const event = input(tenantId);
    const results = await Promise.all(Array.from({ length: 8 }, () => append(event)));
    for (const result of results) expect(result).toEqual(results[0]);
    expect(await seqsOf(tenantId)).toEqual([1]);
    expect((await verify(tenantId)).intact).toBe(true);
  });

  it('refuses an event id already used on another chain rather than storing it twice', async () => {
    const event = input(randomUUID());
    await append(event);
    await expect(append({ ...event, tenantId: randomUUID() })).rejects.toMatchObject({
      code: '23505',
      constraint: 'audit_events_event_id_key',
    });
  });
});

describe('whether an event is on a chain (recordedEventTime)', () => {
  it('answers the stored time of an event on the tenant’s chain, and null for an unknown id or another tenant’s event', async () => {
    const [tenantA, tenantB] = [randomUUID(), randomUUID()];
    const stored = await append(input(tenantA));
    const ask = (tenantId: string, eventId: string) =>
      inScope(app, tenantScope(tenantId), (client) => recordedEventTime(client, tenantId, eventId));
    expect(await ask(tenantA, stored.eventId)).toBe(stored.occurredAt);
    expect(await ask(tenantA, randomUUID())).toBeNull();
    expect(await ask(tenantB, stored.eventId)).toBeNull();
  });
});

describe('audit_events is append-only', () => {
  let tenantId: string;
  beforeAll(async () => {
    tenantId = randomUUID();
    await append(input(tenantId));
    await append(input(tenantId));
  });

  it('refuses UPDATE, DELETE and TRUNCATE even for the table owner', async () => {
    const refused = { code: '42501', message: expect.stringMatching(/append-only/) as unknown };
    await expect(db.pool.query("UPDATE audit_events SET action = 'forged' WHERE tenant_id = $1", [tenantId])).rejects.toMatchObject(
      refused,
    );
    await expect(db.pool.query('DELETE FROM audit_events WHERE tenant_id = $1', [tenantId])).rejects.toMatchObject(refused);
    await expect(db.pool.query('TRUNCATE audit_events')).rejects.toMatchObject(refused);
    expect(await seqsOf(tenantId)).toEqual([1, 2]);
    expect((await verify(tenantId)).intact).toBe(true);
  });

  it('grants the app role only SELECT and INSERT, so its UPDATE and DELETE fail on privilege before any trigger', async () => {
    const { rows } = await db.pool.query<Record<string, boolean>>(
      `SELECT ${['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']
        .map((p) => `has_table_privilege($1, 'audit_events', '${p}') AS "${p}"`)
        .join(', ')}`,
      [APP_ROLE],
    );
    expect(rows[0]).toEqual({ SELECT: true, INSERT: true, UPDATE: false, DELETE: false, TRUNCATE: false });

    const denied = { code: '42501', message: expect.stringMatching(/permission denied for table audit_events/) as unknown };
    await expect(inScope(app, tenantScope(tenantId), (c) => c.query("UPDATE audit_events SET action = 'forged'"))).rejects.toMatchObject(
      denied,
    );
    await expect(inScope(app, tenantScope(tenantId), (c) => c.query('DELETE FROM audit_events'))).rejects.toMatchObject(denied);
    expect(await seqsOf(tenantId)).toEqual([1, 2]);
  });
});

describe('row-level security on audit_events', () => {
  const tenants = [randomUUID(), randomUUID()] as const;
  beforeAll(async () => {
    for (let i = 0; i < 3; i++) await append(input(tenants[0]));
    for (let i = 0; i < 2; i++) await append(input(tenants[1]));
  });

  it('shows a tenant scope only its own rows, even for a query with no WHERE', async () => {
    for (const [tenantId, count] of [
      [tenants[0], 3],
      [tenants[1], 2],
    ] as const) {
      const rows = await inScope(
        app,
        tenantScope(tenantId),
        async (c) => (await c.query<{ tenant_id: string }>('SELECT * FROM audit_events')).rows,
      );
      expect(rows).toHaveLength(count);
      expect(new Set(rows.map((r) => r.tenant_id))).toEqual(new Set([tenantId]));
      const heads = await inScope(
        app,
        tenantScope(tenantId),
        async (c) => (await c.query<{ tenant_id: string }>('SELECT tenant_id FROM audit_chain_heads')).rows,
      );
      expect(heads).toEqual([{ tenant_id: tenantId }]);
    }
  });

  it("hides another tenant's rows when asked for them by id", async () => {
    const { rows } = await inScope(app, tenantScope(tenants[0]), (c) =>
      c.query('SELECT * FROM audit_events WHERE tenant_id = $1', [tenants[1]]),
    );
    expect(rows).toEqual([]);
  });

  it('shows nothing to a connection with no scope set, and everything to the MSP scope', async () => {
    expect((await app.query('SELECT * FROM audit_events')).rows).toEqual([]);
    const { rows } = await inScope(app, mspScope, (c) =>
      c.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events WHERE tenant_id = ANY($1)', [tenants]),
    );
    expect(rows[0]!.n).toBe(5);
  });

  it("refuses to write an event onto another tenant's chain from a tenant scope", async () => {
    const other = input(tenants[1]);
    await expect(inScope(app, tenantScope(tenants[0]), (c) => appendAuditEvent(c, other))).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/row-level security/) as unknown,
    });
    expect(await seqsOf(tenants[1])).toEqual([1, 2]);
  });
});
