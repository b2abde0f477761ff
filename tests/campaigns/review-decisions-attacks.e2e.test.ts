import { randomUUID } from 'node:crypto';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reassignReviewUpdate, reviewDecisionsSignal, tenantReviewWorkflowId } from '../../core/campaigns/contract.js';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { runCli, runCliOk } from '../support/cli.js';
import { apiClient, bodyOf, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, tenantStaff, type TestTenancy } from '../support/tenancy.js';

/**
 * Decisions under attack on the real stack: input a reviewer should not be able to send (1,001
 * items, NUL bytes), MSP staff trying to decide (through the API, or by telling the review's
 * workflow straight through Temporal), one reviewer's overlapping bulk calls on the same items,
 * and a decision racing a change that takes the item away from its reviewer or settles it.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: PostgresDirectory;
let runId: string;
let second: { actorId: string; token: string };
const call = apiClient(() => stack.baseUrl);
const ok = bodyOf;
const SLOW = 90_000;
const USERS = Array.from({ length: 40 }, (_, n) => `u${String(n).padStart(2, '0')}`);

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  second = await tenantStaff(call, id.tokens.mspAdmin!, id.tenantA, 'Second reviewer A', ['tenant_reviewer']);
  await directory.upsertRole(id.tenantA, { name: 'GlobalAdmin', privileged: true });
  for (const user of USERS) {
    await directory.upsertUser(id.tenantA, { id: user, username: user, displayName: user });
    await directory.assignRole(id.tenantA, user, 'GlobalAdmin');
  }
  const created = ok(
    await call(id.tokens.operator, 'POST', '/v1/campaigns', {
      name: 'Attacks',
      definition: { scope: { tenantIds: [id.tenantA] }, items: { roles: ['GlobalAdmin'] }, stages: [{ durationMinutes: 600 }] },
    }),
    201,
  );
  runId = ok(await call(id.tokens.operator, 'POST', `/v1/campaigns/${created.id}/runs`), 202).runId as string;
  await eventually(
    async () => ((await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}/reviews`)).body.reviews as Json[])[0],
    (r) => r?.status === 'open',
    SLOW,
  );
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

/** Reviewer A's items (both reviewers of the tenant are assigned each one), by subject. */
async function itemIds(): Promise<Record<string, string>> {
  const { items } = ok(await call(id.tokens.reviewerA, 'GET', `/v1/tenants/${id.tenantA}/reviews/items?assignedTo=me&limit=1000`));
  return Object.fromEntries((items as Json[]).map((i) => [i.subjectId, i.itemId]));
}

const decide = (token: string, decisions: { itemId: string; decision: string }[], justification?: string) =>
  call(token, 'POST', `/v1/tenants/${id.tenantA}/reviews/decisions`, { decisions, ...(justification ? { justification } : {}) });

async function decisionEvents(): Promise<Json[]> {
  const { rows } = await stack.db.pool.query(
    "SELECT actor_id, payload FROM audit_events WHERE tenant_id = $1 AND action = 'review.decisions_recorded' ORDER BY seq",
    [id.tenantA],
  );
  return rows;
}

async function decisionRows(itemId: string): Promise<Json[]> {
  const { rows } = await stack.db.pool.query('SELECT reviewer_id, decision FROM review_decisions WHERE tenant_id = $1 AND item_id = $2', [
    id.tenantA,
    itemId,
  ]);
  return rows;
}

describe('input a decision call refuses', () => {
  it('1,001 items, an item named twice and NUL bytes are 400 naming the field; nothing is recorded', async () => {
    const by = await itemIds();
    const many = Array.from({ length: 1001 }, () => ({ itemId: randomUUID(), decision: 'keep' }));
    const tooMany = await decide(id.tokens.reviewerA!, many);
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.issues.map((i: Json) => i.path)).toContain('body.decisions');
    const twice = await decide(id.tokens.reviewerA!, [
      { itemId: by.u00!, decision: 'keep' },
      { itemId: by.u00!, decision: 'revoke' },
    ]);
    expect(twice.status).toBe(400);
    expect(twice.body.error.issues[0].path).toBe('body.decisions.1.itemId');
    const nul = await decide(id.tokens.reviewerA!, [{ itemId: by.u00!, decision: 'keep' }], 'fine\u0000');
    expect(nul.status).toBe(400);
    expect(nul.body.error.issues[0].path).toBe('body.justification');
    const single = await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${id.tenantA}/reviews/items/${by.u00}/decision`, {
      decision: 'keep',
      justification: '\u0000',
    });
    expect(single.status).toBe(400);
    expect(single.body.error.issues[0].path).toBe('body.justification');
    const query = await call(id.tokens.reviewerA, 'GET', `/v1/tenants/${id.tenantA}/reviews/items?assignedTo=me&role=Global%00Admin`);
    expect(query.status).toBe(400);
    expect(await decisionRows(by.u00!)).toEqual([]);
    expect(await decisionEvents()).toEqual([]);
  });
});

describe('MSP staff', () => {
  it('cannot decide through the API, nor by reassigning to themselves or signalling the review straight through Temporal', async () => {
    const by = await itemIds();
    for (const token of [id.tokens.operator, id.tokens.mspAdmin])
      expect((await decide(token!, [{ itemId: by.u01!, decision: 'revoke' }])).status).toBe(403);
    // MSP staff bound to another tenant only: the tenant is hidden from them.
    expect((await decide(id.tokens.tenantAdminB!, [{ itemId: by.u01!, decision: 'revoke' }])).status).toBe(404);
    const review = stack.temporal.workflow.getHandle(tenantReviewWorkflowId(id.tenantA, runId));
    const authority = { roles: ['operator'], bindings: [] };
    await expect(
      review.executeUpdate(reassignReviewUpdate, {
        args: [
          { actorId: id.actors.operator!.id, authority, fromReviewerId: id.actors.reviewerA!.id, toReviewerId: id.actors.operator!.id },
        ],
      }),
    ).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
    // The signal carries nothing: the review reads decisions only from the rows the API wrote.
    await review.signal(reviewDecisionsSignal);
    const mine = ok(await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}/reviews/items?runId=${runId}&limit=1000`))
      .items as Json[];
    expect(mine.find((i) => i.itemId === by.u01)).toMatchObject({ outcome: null });
    expect((await decide(id.tokens.operator!, [{ itemId: by.u01!, decision: 'revoke' }])).status).toBe(403);
    expect(await decisionRows(by.u01!)).toEqual([]);
    const { rows } = await stack.db.pool.query(
      'SELECT count(*)::int AS n FROM review_assignments WHERE tenant_id = $1 AND reviewer_id = ANY($2::uuid[])',
      [id.tenantA, [id.actors.operator!.id, id.actors.mspAdmin!.id, id.actors.tenantAdminB!.id]],
    );
    expect(rows[0].n).toBe(0);
  });
});

describe('the inbox', () => {
  it('pages by cursor through every item once, in order, and filters; another tenant’s people see nothing of it', async () => {
    const all = Object.values(await itemIds()).sort();
    expect(all).toHaveLength(USERS.length);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Json = ok(
        await call(
          id.tokens.reviewerA,
          'GET',
          `/v1/tenants/${id.tenantA}/reviews/items?assignedTo=me&runId=${runId}&limit=7${cursor ? `&cursor=${cursor}` : ''}`,
        ),
      );
      expect((page.items as Json[]).length).toBeLessThanOrEqual(7);
      seen.push(...(page.items as Json[]).map((i) => i.itemId as string));
      cursor = page.nextCursor as string | null;
    } while (cursor);
    expect(seen).toEqual(all);
    const filtered = ok(
      await call(id.tokens.reviewerA, 'GET', `/v1/tenants/${id.tenantA}/reviews/items?assignedTo=me&subjectId=u05&recommendation=revoke`),
    );
    expect((filtered.items as Json[]).map((i) => i.subjectId)).toEqual(['u05']);
    const bad = await call(id.tokens.reviewerA, 'GET', `/v1/tenants/${id.tenantA}/reviews/items?assignedTo=me&cursor=not-a-cursor`);
    expect(bad.status).toBe(400);
    for (const token of [id.tokens.approverB, id.tokens.auditorB])
      expect((await call(token, 'GET', `/v1/tenants/${id.tenantA}/reviews/items?assignedTo=me`)).status).toBe(404);
  });
});

describe('the reviewer’s CLI (`tenure review …`)', () => {
  it('lists the inbox and decides from it; MSP staff are refused there too', async () => {
    const env = (token: string) => ({ TENURE_URL: stack.baseUrl, TENURE_TOKEN: token });
    const inbox = JSON.parse(
      (await runCliOk(['review', 'items', '--json', '--tenant', id.tenantA, '--mine', '--subject', 'u04'], env(id.tokens.reviewerA!)))
        .stdout,
    ) as Json;
    expect((inbox.items as Json[]).map((i) => i.subjectId)).toEqual(['u04']);
    const itemId = inbox.items[0].itemId as string;
    const refused = await runCli(['review', 'decide', '--tenant', id.tenantA, 'keep', itemId], env(id.tokens.operator!));
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('403');
    const decided = JSON.parse(
      (
        await runCliOk(
          ['review', 'decide', '--json', '--tenant', id.tenantA, 'recommended', itemId, '--justification', 'nobody knows this account'],
          env(id.tokens.reviewerA!),
        )
      ).stdout,
    ) as Json;
    expect(decided).toMatchObject({ recorded: 1, items: [{ itemId, decision: 'revoke', changed: true }] });
    expect(await decisionRows(itemId)).toEqual([{ reviewer_id: id.actors.reviewerA!.id, decision: 'revoke' }]);
  });
});

describe('one reviewer’s overlapping bulk calls on the same items', () => {
  it('all succeed, the last one written wins, and each audited change names the decision it really replaced', async () => {
    const by = await itemIds();
    const ids = USERS.slice(10).map((u) => by[u]!);
    for (let round = 0; round < 6; round++) {
      const forward = ids.map((itemId) => ({ itemId, decision: round % 2 ? 'keep' : 'revoke' }));
      const backward = [...ids].reverse().map((itemId) => ({ itemId, decision: round % 2 ? 'revoke' : 'keep' }));
      const answers = await Promise.all([
        decide(id.tokens.reviewerA!, forward, `forward ${round}`),
        decide(id.tokens.reviewerA!, backward, `backward ${round}`),
      ]);
      for (const answer of answers) expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    }
    // Replaying the audited changes item by item gives, at each step, what the step says it replaced, and ends at the row.
    const last = new Map<string, string | null>();
    for (const event of await decisionEvents()) {
      expect(event.actor_id).toBe(id.actors.reviewerA!.id);
      for (const change of event.payload.decisions as Json[]) {
        expect(change.previous, `item ${change.itemId}`).toBe(last.get(change.itemId) ?? null);
        last.set(change.itemId, change.decision);
      }
    }
    for (const itemId of ids)
      expect(await decisionRows(itemId)).toEqual([{ reviewer_id: id.actors.reviewerA!.id, decision: last.get(itemId) }]);
  });
});

describe('a decision racing a change to its item', () => {
  /**
   * Holds the review's row while `change` runs, with a decision call waiting on it, then lets the
   * call go: it must judge the item as the change left it, not as it was when the call began.
   */
  async function race(token: string, itemId: string, change: (sql: (q: string, p: unknown[]) => Promise<unknown>) => Promise<void>) {
    const client = await stack.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT 1 FROM reviews WHERE tenant_id = $1 AND run_id = $2 FOR UPDATE', [id.tenantA, runId]);
      const answer = decide(token, [{ itemId, decision: 'revoke' }]);
      // The call has read its items and waits for the review's row.
      await eventually(
        async () =>
          (
            await stack.db.pool.query(
              "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FROM reviews%FOR SHARE%'",
            )
          ).rows[0].n as number,
        (n) => n > 0,
        SLOW,
      );
      await change((q, p) => client.query(q, p));
      await client.query('COMMIT');
      return await answer;
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    } finally {
      client.release();
    }
  }

  it('refuses an item reassigned away from the reviewer meanwhile', async () => {
    const itemId = (await itemIds()).u02!;
    const answer = await race(second.token, itemId, async (sql) => {
      await sql(
        "UPDATE review_assignments SET removed_at = now(), removed_by = 'test' WHERE tenant_id = $1 AND item_id = $2 AND reviewer_id = $3",
        [id.tenantA, itemId, second.actorId],
      );
    });
    expect(answer.status).toBe(403);
    expect(await decisionRows(itemId)).toEqual([]);
  });

  it('refuses an item settled meanwhile (its revocation applied on decision)', async () => {
    const itemId = (await itemIds()).u03!;
    const answer = await race(id.tokens.reviewerA!, itemId, async (sql) => {
      await sql(
        "UPDATE review_items SET outcome = 'keep', outcome_by = 'decision', outcome_reason = 'race' WHERE tenant_id = $1 AND id = $2",
        [id.tenantA, itemId],
      );
    });
    expect(answer.status).toBe(409);
    expect(await decisionRows(itemId)).toEqual([]);
  });
});
