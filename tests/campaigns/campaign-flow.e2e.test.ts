import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLedgerActivities } from '../../activities/directory/ledger.js';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { singleDirectory } from '../../core/directory/connector.js';
import { reportHash, type ReviewReport } from '../../core/campaigns/report.js';
import { runCliOk } from '../support/cli.js';
import { apiClient, bodyOf, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, tenantStaff, type TestTenancy } from '../support/tenancy.js';

/**
 * The campaign flow through HTTP and the CLI on the real stack: MSP staff cancel a run (the
 * tenant's recorded decisions stand, nothing else changes), reassign a reviewer's items to another
 * member of the tenant's staff and nudge; the last stage reiterated for its non-responders; and
 * revocations applied as soon as they are decided.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: PostgresDirectory;
const staff: Record<string, { actorId: string; token: string }> = {};
const call = apiClient(() => stack.baseUrl);
const SLOW = 90_000;

const ok = bodyOf;

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  staff.reviewerB = await tenantStaff(call, id.tokens.mspAdmin!, id.tenantB, 'Reviewer B', ['tenant_reviewer']);
  staff.secondA = await tenantStaff(call, id.tokens.mspAdmin!, id.tenantA, 'Second approver A', ['tenant_approver']);
  const ledger = createLedgerActivities({ pool: stack.pool, directories: singleDirectory(directory) });
  for (const tenant of [id.tenantA, id.tenantB]) await directory.upsertRole(tenant, { name: 'GlobalAdmin', privileged: true });
  for (const [n, user] of ['cara', 'dov', 'eli', 'fay'].entries()) {
    await directory.upsertUser(id.tenantA, { id: user, username: user, displayName: user });
    await ledger.grantAccess({ tenantId: id.tenantA, subjectId: user, role: 'GlobalAdmin', sourceType: 'manual', sourceId: `CHG-${n}` });
  }
  for (const user of ['sam', 'tom']) {
    await directory.upsertUser(id.tenantB, { id: user, username: user, displayName: user });
    await directory.assignRole(id.tenantB, user, 'GlobalAdmin');
  }
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

async function startRun(definition: Json): Promise<string> {
  const created = ok(await call(id.tokens.operator, 'POST', '/v1/campaigns', { name: 'Flow', definition }), 201);
  return ok(await call(id.tokens.operator, 'POST', `/v1/campaigns/${created.id}/runs`), 202).runId as string;
}

async function reviewOf(tenantId: string, runId: string): Promise<Json | undefined> {
  const { body } = await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/reviews`);
  return (body.reviews as Json[]).find((r) => r.runId === runId);
}

const reviewReaches = (tenantId: string, runId: string, accept: (r: Json) => boolean) =>
  eventually(
    () => reviewOf(tenantId, runId),
    (r) => r !== undefined && accept(r),
    SLOW,
  );

async function inbox(tenantId: string, token: string, runId: string): Promise<Json> {
  return ok(await call(token, 'GET', `/v1/tenants/${tenantId}/reviews/items?assignedTo=me&runId=${runId}`));
}

async function items(tenantId: string, runId: string): Promise<Record<string, Json>> {
  const all = ok(await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/reviews/items?runId=${runId}&limit=1000`)).items as Json[];
  return Object.fromEntries(all.map((i) => [i.subjectId, i]));
}

const decide = (tenantId: string, token: string, decisions: { itemId: string; decision: string }[]) =>
  call(token, 'POST', `/v1/tenants/${tenantId}/reviews/decisions`, { decisions });

/** The tenant's own approver closes the open stage now (MSP staff may not while items are undecided). */
const closeStage = (tenantId: string, runId: string) =>
  call(tenantId === id.tenantA ? id.tokens.approverA : id.tokens.approverB, 'POST', `/v1/tenants/${tenantId}/reviews/${runId}/deadline`, {
    closesAt: new Date().toISOString(),
  });

async function audit(tenantId: string, action: string): Promise<Json[]> {
  const { rows } = await stack.db.pool.query(
    'SELECT actor_id, authority, workflow_id, payload, target_id FROM audit_events WHERE tenant_id = $1 AND action = $2 ORDER BY seq',
    [tenantId, action],
  );
  return rows;
}

describe('cancelling a run', () => {
  it('stops every tenant’s review from the CLI: decisions recorded stand and revocations are proven, nothing else changes, all audited', async () => {
    const runId = await startRun({
      scope: { tenantIds: [id.tenantA, id.tenantB] },
      items: { roles: ['GlobalAdmin'] },
      stages: [{ durationMinutes: 600 }, { durationMinutes: 600 }],
      nonResponse: 'revoke',
      guardrails: { maxAutoRevocations: 100, maxAutoRevocationPercent: 100 },
    });
    for (const tenant of [id.tenantA, id.tenantB]) await reviewReaches(tenant, runId, (r) => r.status === 'open');
    const before = await items(id.tenantA, runId);
    ok(
      await decide(id.tenantA, id.tokens.reviewerA!, [
        { itemId: before.cara!.itemId, decision: 'revoke' },
        { itemId: before.dov!.itemId, decision: 'keep' },
      ]),
    );

    // A tenant's reviewer cannot cancel; MSP staff can, from the CLI.
    expect((await call(id.tokens.reviewerA, 'POST', `/v1/campaign-runs/${runId}/cancel`, {})).status).toBe(403);
    const env = { TENURE_URL: stack.baseUrl, TENURE_TOKEN: id.tokens.operator! };
    const cancelled = JSON.parse(
      (await runCliOk(['campaign', 'cancel', '--json', runId, '--reason', 'audit postponed'], env)).stdout,
    ) as Json;
    expect(cancelled).toMatchObject({ runId, status: 'cancelled' });
    expect((await call(id.tokens.operator, 'POST', `/v1/campaign-runs/${runId}/cancel`, {})).status).toBe(409);

    for (const tenant of [id.tenantA, id.tenantB]) await reviewReaches(tenant, runId, (r) => r.status === 'cancelled');
    const after = await eventually(
      () => items(id.tenantA, runId),
      (by) => by.cara!.result === 'applied_verified',
      SLOW,
    );
    // The reviewer's revoke is applied and read back; their keep stands; the silent item keeps its access, no non-response revoke.
    expect(after.dov).toMatchObject({ outcome: 'keep', outcomeBy: 'decision', result: 'kept' });
    expect(after.eli).toMatchObject({ outcome: null, result: null });
    expect(await directory.hasRole(id.tenantA, 'cara', 'GlobalAdmin')).toBe(false);
    for (const user of ['dov', 'eli', 'fay']) expect(await directory.hasRole(id.tenantA, user, 'GlobalAdmin')).toBe(true);
    expect(Object.values(await items(id.tenantB, runId)).map((i) => i.outcome)).toEqual([null, null]);
    expect(await directory.listMembers(id.tenantB, 'GlobalAdmin')).toHaveLength(2);

    // No decision after the cancellation.
    expect((await decide(id.tenantA, id.tokens.reviewerA!, [{ itemId: after.eli!.itemId, decision: 'keep' }])).status).toBe(409);

    const run = await eventually(
      () => call(id.tokens.mspAuditor, 'GET', `/v1/campaign-runs/${runId}`),
      (r) => r.body.status === 'cancelled' && r.body.completedCount === 2,
      SLOW,
    );
    expect(run.body.reviews.map((r: Json) => r.status)).toEqual(['cancelled', 'cancelled']);
    const runEvents = (await audit('msp', 'campaign.run_cancelled')).filter((e) => e.target_id === runId);
    expect(runEvents).toHaveLength(1);
    expect(runEvents[0]).toMatchObject({ actor_id: id.actors.operator!.id, payload: { comment: 'audit postponed' } });
    for (const tenant of [id.tenantA, id.tenantB]) {
      const events = (await audit(tenant, 'review.cancelled')).filter((e) => e.target_id === runId);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        actor_id: id.actors.operator!.id,
        authority: { cancelledWithRun: runId, campaignRunId: runId },
        workflow_id: `review/${tenant}/${runId}`,
      });
    }
    expect((await audit(id.tenantA, 'review.cancelled')).find((e) => e.target_id === runId)!.payload.settled).toEqual({
      revoke: 1,
      keep: 1,
      held: 0,
    });
  });

  it('leaves each tenant its report all the same: cancelled, by whom and why, what was decided until then and what was not, its hash in the tenant’s chain', async () => {
    // Access of its own to revoke, so the later tests find tenant A as they expect.
    const revoked = 'hal';
    await directory.upsertUser(id.tenantA, { id: revoked, username: revoked, displayName: revoked });
    await createLedgerActivities({ pool: stack.pool, directories: singleDirectory(directory) }).grantAccess({
      tenantId: id.tenantA,
      subjectId: revoked,
      role: 'GlobalAdmin',
      sourceType: 'manual',
      sourceId: 'CHG-hal',
    });
    const runId = await startRun({
      scope: { tenantIds: [id.tenantA, id.tenantB] },
      items: { roles: ['GlobalAdmin'] },
      stages: [{ durationMinutes: 600 }],
      nonResponse: 'revoke',
      guardrails: { maxAutoRevocations: 100, maxAutoRevocationPercent: 100 },
    });
    for (const tenant of [id.tenantA, id.tenantB]) await reviewReaches(tenant, runId, (r) => r.status === 'open');
    const before = await items(id.tenantA, runId);
    const others = Object.keys(before)
      .filter((s) => s !== revoked)
      .sort();
    const kept = others[0]!;
    const subjects = [revoked, ...others];
    ok(
      await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${id.tenantA}/reviews/decisions`, {
        decisions: [
          { itemId: before[revoked]!.itemId, decision: 'revoke' },
          { itemId: before[kept]!.itemId, decision: 'keep' },
        ],
        justification: 'decided before the cancellation',
      }),
    );
    ok(await call(id.tokens.operator, 'POST', `/v1/campaign-runs/${runId}/cancel`, { reason: 'scope was wrong' }));

    const reportOf = (tenantId: string) =>
      eventually(
        () => call(id.tokens.mspAuditor, 'GET', `/v1/tenants/${tenantId}/reviews/${runId}/report`),
        (r) => r.status === 200,
        SLOW,
      ).then((r) => r.body as { hash: string; report: ReviewReport });
    const { hash, report } = await reportOf(id.tenantA);
    expect(report.status).toBe('cancelled');
    expect(report.cancellation).toMatchObject({
      cancelledBy: id.actors.operator!.id,
      comment: 'scope was wrong',
      authority: { cancelledWithRun: runId },
      stage: 1,
      settled: { revoke: 1, keep: 1, held: 0 },
      decided: 2,
      undecided: subjects.length - 2,
    });
    const bySubject = Object.fromEntries(report.items.map((i) => [i.subjectId, i]));
    expect(bySubject[revoked]).toMatchObject({ outcome: 'revoke', outcomeBy: 'decision', result: 'applied_verified' });
    expect(bySubject[revoked]!.decisions).toMatchObject([{ decision: 'revoke', justification: 'decided before the cancellation' }]);
    expect(bySubject[kept]).toMatchObject({ outcome: 'keep', result: 'kept' });
    // The others: nobody decided, and the non-response policy (revoke) was not applied to them.
    for (const subject of subjects.slice(2)) {
      expect(bySubject[subject]).toMatchObject({ outcome: null, result: null, decisions: [] });
      expect(bySubject[subject]!.outcomeReason).toMatch(/not decided before the review was cancelled/);
      expect(await directory.hasRole(id.tenantA, subject, 'GlobalAdmin')).toBe(true);
    }
    // Its hash, over exactly what is served, is in the tenant's chain once.
    expect(reportHash(report)).toBe(hash);
    const recorded = (await audit(id.tenantA, 'review.report_recorded')).filter((e) => e.target_id === runId);
    expect(recorded.map((e) => e.payload)).toEqual([expect.objectContaining({ hash, status: 'cancelled' })]);
    expect(recorded[0]!.workflow_id).toBe(`review/${id.tenantA}/${runId}`);
    // B's reviewers decided nothing: its report says so.
    expect((await reportOf(id.tenantB)).report.cancellation).toMatchObject({
      settled: { revoke: 0, keep: 0, held: 0 },
      decided: 0,
      undecided: 2,
    });

    // CSV: every row says the review was cancelled; HTML: a page that says who cancelled it, why, and what was left.
    const headers = { authorization: `Bearer ${id.tokens.mspAuditor}` };
    const csv = await fetch(`${stack.baseUrl}/v1/tenants/${id.tenantA}/reviews/${runId}/report?format=csv`, { headers });
    expect(csv.headers.get('x-report-hash')).toBe(hash);
    const rows = (await csv.text()).trim().split('\n');
    expect(rows[0]).toMatch(/,reviewStatus$/);
    expect(rows.slice(1)).toHaveLength(subjects.length);
    for (const row of rows.slice(1)) expect(row).toMatch(/,cancelled$/);
    const page = await fetch(`${stack.baseUrl}/v1/tenants/${id.tenantA}/reviews/${runId}/report?format=html`, { headers });
    const html = await page.text();
    expect(html).toContain('This review was cancelled');
    expect(html).toContain('scope was wrong');
    expect(html).toContain('MSP operator');
    expect(html).toContain(hash);
    expect(html).toContain('not decided');
  });
});

describe('cancelling one tenant’s review', () => {
  it('stops that review only; the run goes on with the others and completes', async () => {
    const runId = await startRun({
      scope: { tenantIds: [id.tenantA, id.tenantB] },
      items: { roles: ['GlobalAdmin'] },
      stages: [{ durationMinutes: 600 }],
    });
    for (const tenant of [id.tenantA, id.tenantB]) await reviewReaches(tenant, runId, (r) => r.status === 'open');
    const env = { TENURE_URL: stack.baseUrl, TENURE_TOKEN: id.tokens.operator! };
    const cancelled = JSON.parse((await runCliOk(['campaign', 'cancel', '--json', runId, '--tenant', id.tenantB], env)).stdout) as Json;
    expect(cancelled).toMatchObject({ tenantId: id.tenantB, runId, status: 'cancelled' });
    expect((await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantB}/reviews/${runId}/cancel`, {})).status).toBe(409);
    expect((await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${id.tenantA}/reviews/${runId}/cancel`, {})).status).toBe(403);
    expect((await reviewOf(id.tenantA, runId))!.status).toBe('open');
    ok(await closeStage(id.tenantA, runId));
    const run = await eventually(
      () => call(id.tokens.mspAuditor, 'GET', `/v1/campaign-runs/${runId}`),
      (r) => r.body.status === 'completed',
      SLOW,
    );
    expect(Object.fromEntries(run.body.reviews.map((r: Json) => [r.tenantId, r.status]))).toEqual({
      [id.tenantA]: 'completed',
      [id.tenantB]: 'cancelled',
    });
    expect((await audit(id.tenantB, 'review.cancelled')).filter((e) => e.target_id === runId)).toHaveLength(1);
    expect((await audit(id.tenantA, 'review.cancelled')).filter((e) => e.target_id === runId)).toHaveLength(0);
  });
});

describe('MSP staff reassign and nudge', () => {
  it('move a reviewer’s undecided items to another member of the tenant’s staff, never to MSP staff or another tenant’s, and remind', async () => {
    const runId = await startRun({
      scope: { tenantIds: [id.tenantA] },
      items: { roles: ['GlobalAdmin'] },
      stages: [{ durationMinutes: 600 }],
    });
    await reviewReaches(id.tenantA, runId, (r) => r.status === 'open');
    const mine = (await inbox(id.tenantA, id.tokens.reviewerA!, runId)).items as Json[];
    expect(mine.length).toBeGreaterThanOrEqual(3);
    const decided = mine[0]!;
    ok(await decide(id.tenantA, id.tokens.reviewerA!, [{ itemId: decided.itemId, decision: 'keep' }]));
    const path = `/v1/tenants/${id.tenantA}/reviews/${runId}/reassign`;

    for (const to of [id.actors.operator!.id, id.actors.approverB!.id]) {
      const refused = await call(id.tokens.operator, 'POST', path, { from: id.actors.reviewerA!.id, to });
      expect(refused.status).toBe(400);
      expect(refused.body.error.issues[0].path).toBe('body.to');
    }
    expect((await call(id.tokens.reviewerA, 'POST', path, { from: id.actors.reviewerA!.id, to: staff.secondA!.actorId })).status).toBe(403);
    expect(await audit(id.tenantA, 'review.reassigned')).toHaveLength(0);

    const env = { TENURE_URL: stack.baseUrl, TENURE_TOKEN: id.tokens.operator! };
    const moved = JSON.parse(
      (
        await runCliOk(
          [
            'campaign',
            'reassign',
            '--json',
            '--tenant',
            id.tenantA,
            runId,
            '--from',
            id.actors.reviewerA!.id,
            '--to',
            staff.secondA!.actorId,
          ],
          env,
        )
      ).stdout,
    ) as Json;
    expect(moved).toEqual({
      moved: mine.length - 1,
      skipped: [{ itemId: decided.itemId, reason: 'decided already by the current reviewer' }],
    });
    expect(((await inbox(id.tenantA, id.tokens.reviewerA!, runId)).items as Json[]).map((i) => i.itemId)).toEqual([decided.itemId]);
    const theirs = await inbox(id.tenantA, staff.secondA!.token, runId);
    expect((theirs.items as Json[]).map((i) => i.itemId).sort()).toEqual(
      mine
        .slice(1)
        .map((i) => i.itemId)
        .sort(),
    );
    expect(theirs.notices).toEqual([expect.objectContaining({ kind: 'reassignment', items: mine.length - 1 })]);
    // The moved items are no longer the first reviewer's to decide.
    expect((await decide(id.tenantA, id.tokens.reviewerA!, [{ itemId: mine[1]!.itemId, decision: 'revoke' }])).status).toBe(403);
    ok(await decide(id.tenantA, staff.secondA!.token, [{ itemId: mine[1]!.itemId, decision: 'keep' }]));
    const reassigned = await audit(id.tenantA, 'review.reassigned');
    expect(reassigned).toHaveLength(1);
    expect(reassigned[0]).toMatchObject({
      actor_id: id.actors.operator!.id,
      payload: { from: id.actors.reviewerA!.id, to: staff.secondA!.actorId, moved: mine.length - 1 },
    });

    // A nudge reaches whoever still owes decisions: the second approver, not the reviewer who answered.
    expect((await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${id.tenantA}/reviews/${runId}/nudge`, {})).status).toBe(403);
    const nudged = JSON.parse((await runCliOk(['campaign', 'nudge', '--json', '--tenant', id.tenantA, runId], env)).stdout) as Json;
    expect(nudged).toEqual({ notices: 1 });
    expect((await inbox(id.tenantA, staff.secondA!.token, runId)).notices.map((n: Json) => n.kind).sort()).toEqual([
      'nudge',
      'reassignment',
    ]);
    expect((await inbox(id.tenantA, id.tokens.reviewerA!, runId)).notices).toEqual([]);
    const nudge = await audit(id.tenantA, 'review.nudged');
    expect(nudge).toHaveLength(1);
    expect(nudge[0]!.payload.reviewers).toEqual([expect.objectContaining({ reviewerId: staff.secondA!.actorId })]);

    ok(await closeStage(id.tenantA, runId));
    await reviewReaches(id.tenantA, runId, (r) => r.status === 'completed');
    expect((await call(id.tokens.operator, 'POST', path, { from: id.actors.reviewerA!.id, to: staff.secondA!.actorId })).status).toBe(409);
  });
});

describe('reiteration', () => {
  it('sends the last stage back to its non-responders with only their items, then applies the non-response policy', async () => {
    const runId = await startRun({
      scope: { tenantIds: [id.tenantB] },
      items: { roles: ['GlobalAdmin'] },
      stages: [{ durationMinutes: 600 }],
      reiteration: { times: 1, durationMinutes: 600 },
    });
    await reviewReaches(id.tenantB, runId, (r) => r.status === 'open');
    const by = await items(id.tenantB, runId);
    ok(await decide(id.tenantB, staff.reviewerB!.token, [{ itemId: by.sam!.itemId, decision: 'keep' }]));
    ok(await closeStage(id.tenantB, runId));
    await reviewReaches(id.tenantB, runId, (r) => r.status === 'open' && r.round === 1);
    // The round opens first; its notice to the non-responder is stored right after.
    const again = await eventually(
      () => inbox(id.tenantB, staff.reviewerB!.token, runId),
      (box) => (box.notices as Json[]).length > 0,
    );
    expect((again.items as Json[]).map((i) => i.subjectId)).toEqual(['tom']);
    expect(again.notices).toEqual([expect.objectContaining({ kind: 'reiteration', items: 1 })]);
    expect((await items(id.tenantB, runId)).sam).toMatchObject({ outcome: 'keep', outcomeBy: 'decision' });
    expect((await audit(id.tenantB, 'review.stage_reiterated')).filter((e) => e.target_id === runId)).toHaveLength(1);
    ok(await closeStage(id.tenantB, runId));
    await reviewReaches(id.tenantB, runId, (r) => r.status === 'completed');
    expect((await items(id.tenantB, runId)).tom).toMatchObject({ outcome: 'keep', outcomeBy: 'non_response' });
  });
});

describe('remediation on decision', () => {
  it('applies and proves a revocation while the stage is still open; the decision can then no longer change', async () => {
    const runId = await startRun({
      scope: { tenantIds: [id.tenantA] },
      items: { roles: ['GlobalAdmin'] },
      stages: [{ durationMinutes: 600 }],
      remediation: 'on_decision',
    });
    await reviewReaches(id.tenantA, runId, (r) => r.status === 'open');
    const fay = (await items(id.tenantA, runId)).fay!;
    ok(await decide(id.tenantA, id.tokens.reviewerA!, [{ itemId: fay.itemId, decision: 'revoke' }]));
    const applied = await eventually(
      async () => (await items(id.tenantA, runId)).fay!,
      (i) => i.result === 'applied_verified',
      SLOW,
    );
    expect(applied).toMatchObject({ outcome: 'revoke', outcomeBy: 'decision', resultDetail: { ended: ['manual:CHG-3'] } });
    expect(await directory.hasRole(id.tenantA, 'fay', 'GlobalAdmin')).toBe(false);
    expect((await reviewOf(id.tenantA, runId))!.status).toBe('open');
    expect((await decide(id.tenantA, id.tokens.reviewerA!, [{ itemId: fay.itemId, decision: 'keep' }])).status).toBe(409);
    const settled = (await audit(id.tenantA, 'review.revocations_settled')).filter((e) => e.target_id === runId);
    expect(settled).toHaveLength(1);
    expect(settled[0]!.payload).toMatchObject({ stage: 1, revoke: 1 });
    ok(await closeStage(id.tenantA, runId));
    await reviewReaches(id.tenantA, runId, (r) => r.status === 'completed');
    expect((await audit(id.tenantA, 'review.item_applied_verified')).filter((e) => e.payload.subjectId === 'fay')).toHaveLength(1);
  });
});
