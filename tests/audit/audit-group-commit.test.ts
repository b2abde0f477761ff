import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainVerifier, type AuditEventInput } from '../../core/audit/chain.js';
import { appendAuditEvent, appendAuditEvents, chainHead, streamAuditEvents } from '../../db/audit.js';
import { AuditGroupCommit } from '../../db/audit-group.js';
import { APP_ROLE, createPool, type Pool, type PoolClient } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { auditInput } from '../support/audit.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let app: Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  app = createPool({ connectionString: db.url, role: APP_ROLE, max: 8 });
  // A table of the tenant's own, standing for the change each audited transaction makes.
  await db.pool.query('CREATE TABLE changes (tenant_id text NOT NULL, n int NOT NULL)');
  await db.pool.query(`GRANT SELECT, INSERT ON changes TO ${APP_ROLE}`);
});
afterAll(async () => {
  await app?.end();
  await db?.drop();
});

const input = (tenantId: string, payload: Record<string, unknown> = {}) => auditInput(tenantId, { payload });

async function verify(tenantId: string) {
  return inScope(app, tenantScope(tenantId), async (client) => {
    const verifier = new ChainVerifier();
    for await (const event of streamAuditEvents(client, tenantId)) verifier.push(event);
    return verifier.finish(await chainHead(client, tenantId));
  });
}

/** seq → the transaction (xmin) that wrote it, as the owner sees them. */
async function stored(tenantId: string): Promise<{ seq: number; tx: string; eventId: string }[]> {
  const { rows } = await db.pool.query<{ seq: string; tx: string; event_id: string }>(
    'SELECT seq, xmin::text AS tx, event_id FROM audit_events WHERE tenant_id = $1 ORDER BY seq',
    [tenantId],
  );
  return rows.map((r) => ({ seq: Number(r.seq), tx: r.tx, eventId: r.event_id }));
}

/** One audited change: a row of `changes` and its event, in the same transaction. */
const change = (tenantId: string, event: AuditEventInput, n: number) => async (client: PoolClient) => {
  await client.query('INSERT INTO changes (tenant_id, n) VALUES ($1, $2)', [tenantId, n]);
  return appendAuditEvent(client, event);
};

describe('group commit per chain', () => {
  it('writes 60 concurrent audited changes of one tenant in fewer transactions than changes, seq gapless and the chain intact', async () => {
    const tenantId = randomUUID();
    const group = new AuditGroupCommit(app);
    const events = Array.from({ length: 60 }, (_, n) => input(tenantId, { n }));
    const appended = await Promise.all(events.map((event, n) => group.inTenantScope(tenantId, change(tenantId, event, n))));

    const rows = await stored(tenantId);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(new Set(rows.map((r) => r.tx)).size).toBeLessThan(60);
    // Each caller got back the event stored for it.
    const bySeq = new Map(rows.map((r) => [r.eventId, r.seq]));
    expect(appended.map((e) => e.seq)).toEqual(events.map((e) => bySeq.get(e.eventId)));
    expect(await verify(tenantId)).toMatchObject({ intact: true, checked: 60 });
    const changes = await db.pool.query('SELECT count(*)::int AS n FROM changes WHERE tenant_id = $1', [tenantId]);
    expect(changes.rows[0].n).toBe(60);
  });

  it('stores a retried event once when its first attempt committed, and the retry gets the stored event', async () => {
    const tenantId = randomUUID();
    const group = new AuditGroupCommit(app);
    const retried = input(tenantId, { attempt: 1 });
    const first = await group.inTenantScope(tenantId, (client) => appendAuditEvent(client, retried));
    const results = await Promise.all([
      ...Array.from({ length: 5 }, () => group.inTenantScope(tenantId, (client) => appendAuditEvent(client, input(tenantId)))),
      group.inTenantScope(tenantId, (client) => appendAuditEvent(client, { ...retried, payload: { attempt: 2 } })),
      group.inTenantScope(tenantId, (client) => appendAuditEvent(client, { ...retried, payload: { attempt: 3 } })),
    ]);
    expect(results.slice(5)).toEqual([first, first]);
    const rows = await stored(tenantId);
    expect(rows.filter((r) => r.eventId === retried.eventId)).toHaveLength(1);
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await verify(tenantId)).toMatchObject({ intact: true, checked: 6 });
  });

  it('rejects only the change that failed; the others of its group commit with their events', async () => {
    const tenantId = randomUUID();
    const group = new AuditGroupCommit(app);
    const refused = input(tenantId, { n: 3 });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, (_, n) =>
        group.inTenantScope(tenantId, async (client) => {
          const event = await change(tenantId, n === 3 ? refused : input(tenantId, { n }), n)(client);
          if (n === 3) await client.query('SELECT 1/0');
          return event;
        }),
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    expect((outcomes[3] as PromiseRejectedResult).reason).toMatchObject({ code: '22012' });
    const rows = await stored(tenantId);
    expect(rows).toHaveLength(7);
    expect(rows.some((r) => r.eventId === refused.eventId)).toBe(false);
    const changes = await db.pool.query<{ n: number }>('SELECT n FROM changes WHERE tenant_id = $1 ORDER BY n', [tenantId]);
    expect(changes.rows.map((r) => r.n)).toEqual([0, 1, 2, 4, 5, 6, 7]);
    expect(await verify(tenantId)).toMatchObject({ intact: true, checked: 7 });
  });
});

describe('appending several events in one transaction', () => {
  it('writes them in one statement after the existing head, returning stored events for ids already there or repeated', async () => {
    const tenantId = randomUUID();
    const before = await inScope(app, tenantScope(tenantId), (client) => appendAuditEvent(client, input(tenantId)));
    const again = input(tenantId, { twice: true });
    const batch = [input(tenantId), again, input(tenantId), { ...again, payload: { changed: true } }];
    const first = await inScope(app, tenantScope(tenantId), (client) => appendAuditEvents(client, batch));
    expect(first.map((e) => e.seq)).toEqual([2, 3, 4, 3]);
    expect(first[1]!.prevHash).toBe(first[0]!.hash);
    expect(first[0]!.prevHash).toBe(before.hash);
    // The whole batch retried: nothing new is written, each gets its stored event.
    const retried = await inScope(app, tenantScope(tenantId), (client) => appendAuditEvents(client, batch));
    expect(retried).toEqual(first);
    expect((await stored(tenantId)).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    const rows = await stored(tenantId);
    expect(new Set(rows.slice(1).map((r) => r.tx)).size).toBe(1);
    expect(await verify(tenantId)).toMatchObject({ intact: true, checked: 4 });
  });

  it('refuses events of two chains in one call', async () => {
    await expect(
      inScope(app, tenantScope(randomUUID()), (client) => appendAuditEvents(client, [input(randomUUID()), input(randomUUID())])),
    ).rejects.toThrow(/one chain/);
  });
});

describe('the head this process remembers', () => {
  it('is only a guess: appends from another process in between still link correctly', async () => {
    const tenantId = randomUUID();
    // This process remembers the head after its own append ...
    await inScope(app, tenantScope(tenantId), (client) => appendAuditEvent(client, input(tenantId)));
    // ... another process (its own module state, simulated by writing the next event by hand as it would) moves it.
    const other = createPool({ connectionString: db.url, role: APP_ROLE, max: 1 });
    try {
      const { rows } = await db.pool.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_chain_heads WHERE tenant_id = $1', [
        tenantId,
      ]);
      const { sealEvent, insertSealed, lockHead } = await import('../../db/audit.js');
      await inScope(other, tenantScope(tenantId), async (client) => {
        const head = await lockHead(client, tenantId);
        expect(head).toEqual({ seq: Number(rows[0]!.seq), hash: rows[0]!.hash });
        await insertSealed(client, tenantId, [sealEvent(input(tenantId), head)]);
      });
    } finally {
      await other.end();
    }
    // ... and a rolled-back append leaves a remembered head no row holds.
    await expect(
      inScope(app, tenantScope(tenantId), async (client) => {
        await appendAuditEvent(client, input(tenantId));
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    const next = await inScope(app, tenantScope(tenantId), (client) => appendAuditEvent(client, input(tenantId)));
    expect(next.seq).toBe(3);
    expect(await verify(tenantId)).toMatchObject({ intact: true, checked: 3 });
  });
});
