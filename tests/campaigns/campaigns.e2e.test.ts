import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLedgerActivities } from '../../activities/directory/ledger.js';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { ChainVerifier, type AuditEvent } from '../../core/audit/chain.js';
import { singleDirectory } from '../../core/directory/connector.js';
import { moveReviewDeadlineUpdate, ReviewRejection, tenantReviewWorkflowId } from '../../core/campaigns/contract.js';
import { reportHash, type ReviewReport } from '../../core/campaigns/report.js';
import { runCli, runCliOk } from '../support/cli.js';
import { recordHistory } from '../support/workflow-harness.js';
import { auditActions as auditEvents } from '../support/audit.js';
import { apiClient, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, setPolicy, tenantStaff, type TestTenancy } from '../support/tenancy.js';

/**
 * Recertification campaigns through HTTP on the real stack: definitions, a run across three
 * tenants whose reviewers each decide only their own items over two stages, a decision changed
 * before its stage closes, remediation through the ledger read back from the target (a grant, a
 * manual entitlement, access no source explains, birthright access that needs a rule change),
 * and a second run whose non-responses meet every guardrail.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: PostgresDirectory;
let tenantC: string;
const staff: Record<string, { actorId: string; token: string }> = {};
const call = apiClient(() => stack.baseUrl);
const SLOW = 90_000;

const ok = (response: { status: number; body: Json }, status = 200) => {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  return response.body;
};

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  tenantC = ok(await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug: `c-${id.tenantA.slice(0, 6)}`, name: 'Tenant C' }), 201).id;
  staff.reviewerB = await tenantStaff(call, id.tokens.mspAdmin!, id.tenantB, 'Reviewer B', ['tenant_reviewer']);
  staff.reviewerC = await tenantStaff(call, id.tokens.mspAdmin!, tenantC, 'Reviewer C', ['tenant_reviewer']);
  staff.approverC = await tenantStaff(call, id.tokens.mspAdmin!, tenantC, 'Approver C', ['tenant_approver']);
  for (const tenant of [id.tenantA, id.tenantB, tenantC]) {
    await directory.upsertRole(tenant, { name: 'GlobalAdmin', privileged: true });
    await directory.upsertRole(tenant, { name: 'AllStaff' });
  }
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

async function reviewOf(tenantId: string, runId: string, token: string): Promise<Json | undefined> {
  const { body } = await call(token, 'GET', `/v1/tenants/${tenantId}/reviews`);
  return (body.reviews as Json[]).find((r) => r.runId === runId);
}

/** Waits until the tenant's review of the run is in `status` (at `stage`, when given). */
function reviewReaches(tenantId: string, runId: string, status: string, stage?: number): Promise<Json | undefined> {
  return eventually(
    () => reviewOf(tenantId, runId, id.tokens.operator!),
    (r) => r?.status === status && (stage === undefined || r.stage === stage),
    SLOW,
  );
}

async function inbox(tenantId: string, token: string): Promise<Json[]> {
  return ok(await call(token, 'GET', `/v1/tenants/${tenantId}/reviews/items?assignedTo=me`)).items as Json[];
}

/** The tenant's own approver closes its review's open stage now (MSP staff may not while items are undecided). */
async function closeStage(tenantId: string, runId: string): Promise<void> {
  const approver = { [id.tenantA]: id.tokens.approverA!, [id.tenantB]: id.tokens.approverB!, [tenantC]: staff.approverC!.token }[tenantId]!;
  ok(await call(approver, 'POST', `/v1/tenants/${tenantId}/reviews/${runId}/deadline`, { closesAt: new Date().toISOString() }));
}

async function items(tenantId: string, runId: string): Promise<Json[]> {
  return ok(await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/reviews/items?runId=${runId}&limit=1000`)).items as Json[];
}

const auditActions = (tenantId: string, action: string) => auditEvents(stack.db.pool, tenantId, action);

describe('campaign definitions', () => {
  it('are created and versioned by MSP staff; a stale expectedVersion is 409 and writes nothing', async () => {
    const created = ok(
      await call(id.tokens.operator, 'POST', '/v1/campaigns', {
        name: 'Quarterly admins',
        definition: { stages: [{ durationMinutes: 60 }] },
      }),
      201,
    );
    expect(created).toMatchObject({
      version: 1,
      definition: { scope: { tenantIds: [], includeLaterTenants: true }, items: { roles: [] }, nonResponse: 'keep' },
    });
    expect(created.definition.reviewers.chain).toEqual(['tenant_reviewer']);
    const v2 = ok(
      await call(id.tokens.mspAdmin, 'PUT', `/v1/campaigns/${created.id}`, {
        expectedVersion: 1,
        definition: { stages: [{ durationMinutes: 60 }, { durationMinutes: 30, strategy: 'any_deny' }], nonResponse: 'revoke' },
      }),
    );
    expect(v2.version).toBe(2);
    const stale = await call(id.tokens.mspAdmin, 'PUT', `/v1/campaigns/${created.id}`, {
      expectedVersion: 1,
      definition: { stages: [{ durationMinutes: 1 }] },
    });
    expect(stale.status).toBe(409);
    const versions = ok(await call(id.tokens.mspAuditor, 'GET', `/v1/campaigns/${created.id}/versions`)).versions as Json[];
    expect(versions.map((v) => v.version)).toEqual([2, 1]);
    expect(ok(await call(id.tokens.mspAuditor, 'GET', `/v1/campaigns/${created.id}/versions/1`)).definition.nonResponse).toBe('keep');
    const events = await auditActions('msp', 'campaign.version_created');
    expect(events.filter((e) => e.target_id === created.id)).toHaveLength(1);
    // A tenant's own reviewer cannot write definitions.
    expect(
      (await call(id.tokens.reviewerA, 'POST', '/v1/campaigns', { name: 'x', definition: { stages: [{ durationMinutes: 1 }] } })).status,
    ).toBe(403);
  });

  it('are managed from the CLI (`tenure campaign …`), which prints the API’s answer or its refusal', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-campaign-'));
    const file = path.join(dir, 'definition.json');
    await writeFile(file, JSON.stringify({ stages: [{ durationMinutes: 120 }], nonResponse: 'recommendation' }));
    const env = { TENURE_URL: stack.baseUrl, TENURE_TOKEN: id.tokens.operator! };
    const created = JSON.parse(
      (await runCliOk(['campaign', 'create', '--json', '--name', 'From the CLI', '--file', file], env)).stdout,
    ) as Json;
    expect(created).toMatchObject({ name: 'From the CLI', version: 1, definition: { nonResponse: 'recommendation' } });
    const versions = JSON.parse((await runCliOk(['campaign', 'versions', '--json', created.id], env)).stdout) as Json;
    expect(versions.versions).toHaveLength(1);
    const refused = await runCli(['campaign', 'create', '--name', 'x', '--file', file], { ...env, TENURE_TOKEN: id.tokens.reviewerA! });
    expect(refused.code).toBe(4); // refused: not allowed
    expect(refused.stderr).toContain('403');
  });

  it('refuses a bad definition with 400 naming the field', async () => {
    const bad = await call(id.tokens.operator, 'POST', '/v1/campaigns', {
      name: 'bad',
      definition: { stages: [], nonResponse: 'maybe', reviewers: { chain: ['tenant_reviewer', 'tenant_reviewer'] } },
    });
    expect(bad.status).toBe(400);
    const paths = (bad.body.error.issues as Json[]).map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining(['body.definition.stages', 'body.definition.nonResponse', 'body.definition.reviewers.chain']),
    );
  });
});

describe('a two-stage campaign across three tenants', () => {
  let runId: string;
  let grantId: string;

  beforeAll(async () => {
    const A = id.tenantA;
    // Tenant A: a grant, a manual entitlement, birthright access, access nobody recorded, and one to keep.
    for (const user of ['gina', 'manu', 'bert', 'ursula', 'kim'])
      await directory.upsertUser(A, { id: user, username: user, displayName: user });
    for (const user of ['gina', 'manu', 'kim']) await directory.openSession(A, user);
    const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, A, {
      expectedVersion: 1,
      document: { grants: { roles: { GlobalAdmin: { maxDurationMinutes: 600, approvalsRequired: 0 } } } },
    });
    expect(approval?.body.status).toBe('applied');
    grantId = ok(
      await call(id.tokens.operator, 'POST', `/v1/tenants/${A}/grants`, {
        subjectId: 'gina',
        role: 'GlobalAdmin',
        durationMinutes: 300,
        justification: 'review me',
      }),
      201,
    ).grantId;
    await eventually(() => directory.hasRole(A, 'gina', 'GlobalAdmin'), Boolean, SLOW);
    const ledger = createLedgerActivities({ pool: stack.pool, directories: singleDirectory(directory) });
    await ledger.grantAccess({ tenantId: A, subjectId: 'manu', role: 'GlobalAdmin', sourceType: 'manual', sourceId: 'CHG-7' });
    await ledger.grantAccess({ tenantId: A, subjectId: 'bert', role: 'GlobalAdmin', sourceType: 'birthright', sourceId: 'it-admins' });
    await ledger.grantAccess({ tenantId: A, subjectId: 'kim', role: 'GlobalAdmin', sourceType: 'manual', sourceId: 'CHG-8' });
    await directory.assignRole(A, 'ursula', 'GlobalAdmin');
    // Non-privileged access is not in a privileged-roles review.
    await directory.assignRole(A, 'kim', 'AllStaff');
    // Tenants B and C: one admin each.
    for (const tenant of [id.tenantB, tenantC]) {
      await directory.upsertUser(tenant, { id: 'sam', username: 'sam', displayName: 'Sam' });
      await directory.assignRole(tenant, 'sam', 'GlobalAdmin');
    }

    const definition = ok(
      await call(id.tokens.operator, 'POST', '/v1/campaigns', {
        name: 'Three tenants',
        definition: {
          scope: { tenantIds: [A, id.tenantB, tenantC] },
          stages: [
            { durationMinutes: 600, strategy: 'first_decision' },
            { durationMinutes: 600, strategy: 'first_decision', reviewers: ['tenant_approver', 'tenant_reviewer'] },
          ],
          nonResponse: 'keep',
        },
      }),
      201,
    );
    const run = ok(await call(id.tokens.operator, 'POST', `/v1/campaigns/${definition.id}/runs`), 202);
    expect(run).toMatchObject({ runNo: 1, workflowId: `campaign/${definition.id}/1` });
    runId = run.runId;
    for (const tenant of [A, id.tenantB, tenantC]) await reviewReaches(tenant, runId, 'open', 1);
  }, 180_000);

  it('gives each tenant its own items with sources and recommendations, in its reviewers’ inboxes only', async () => {
    const mine = await inbox(id.tenantA, id.tokens.reviewerA!);
    expect(mine.map((i) => i.subjectId).sort()).toEqual(['bert', 'gina', 'kim', 'manu', 'ursula']);
    const by = Object.fromEntries(mine.map((i) => [i.subjectId, i]));
    expect(by.gina.sources).toEqual([{ type: 'grant', id: grantId }]);
    expect(by.manu.sources).toEqual([{ type: 'manual', id: 'CHG-7' }]);
    expect(by.bert).toMatchObject({ recommendation: 'keep', recommendationReason: expect.stringContaining('it-admins') });
    expect(by.ursula).toMatchObject({ sources: [], recommendation: 'revoke' });
    expect(by.kim).toMatchObject({ recommendation: 'keep', lastActivityAt: expect.any(String) });
    expect((await inbox(id.tenantB, staff.reviewerB!.token)).map((i) => i.subjectId)).toEqual(['sam']);
    expect((await inbox(tenantC, staff.reviewerC!.token)).map((i) => i.subjectId)).toEqual(['sam']);
    // Tenant A's reviewer sees nothing of B: the tenant is hidden, and B's item ids do not exist in A.
    expect((await call(id.tokens.reviewerA, 'GET', `/v1/tenants/${id.tenantB}/reviews/items?assignedTo=me`)).status).toBe(404);
    const itemOfB = (await inbox(id.tenantB, staff.reviewerB!.token))[0]!.itemId;
    const across = await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${id.tenantA}/reviews/decisions`, {
      decisions: [{ itemId: itemOfB, decision: 'revoke' }],
    });
    expect(across.status).toBe(400);
    expect(across.body.error.issues[0].path).toBe('body.decisions.0.itemId');
    expect(
      (await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${id.tenantB}/reviews/items/${itemOfB}/decision`, { decision: 'revoke' }))
        .status,
    ).toBe(404);
  });

  it('never lets MSP staff decide, even with MSP-wide standing', async () => {
    const item = (await inbox(id.tenantA, id.tokens.reviewerA!))[0]!;
    for (const token of [id.tokens.operator, id.tokens.mspAdmin]) {
      const single = await call(token, 'POST', `/v1/tenants/${id.tenantA}/reviews/items/${item.itemId}/decision`, { decision: 'keep' });
      expect(single.status).toBe(403);
      expect(
        (
          await call(token, 'POST', `/v1/tenants/${id.tenantA}/reviews/decisions`, {
            decisions: [{ itemId: item.itemId, decision: 'keep' }],
          })
        ).status,
      ).toBe(403);
    }
    // An approver of the tenant is not assigned at stage 1.
    expect(
      (await call(id.tokens.approverA, 'POST', `/v1/tenants/${id.tenantA}/reviews/items/${item.itemId}/decision`, { decision: 'keep' }))
        .status,
    ).toBe(403);
    expect(await auditActions(id.tenantA, 'review.decisions_recorded')).toHaveLength(0);
  });

  it('records decisions, single and bulk, idempotently; a changed decision is audited and the last one wins', async () => {
    const by = Object.fromEntries((await inbox(id.tenantA, id.tokens.reviewerA!)).map((i) => [i.subjectId, i.itemId]));
    ok(await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${id.tenantA}/reviews/items/${by.manu}/decision`, { decision: 'keep' }));
    const bulk = {
      decisions: [
        { itemId: by.gina, decision: 'revoke' },
        { itemId: by.manu, decision: 'revoke' },
        { itemId: by.bert, decision: 'revoke' },
        { itemId: by.ursula, decision: 'recommended' },
        { itemId: by.kim, decision: 'keep' },
      ],
      justification: 'changed my mind',
    };
    const first = ok(await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${id.tenantA}/reviews/decisions`, bulk));
    expect(first).toMatchObject({ recorded: 5, unchanged: 0 });
    expect(first.items.find((i: Json) => i.itemId === by.ursula).decision).toBe('revoke');
    const again = ok(await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${id.tenantA}/reviews/decisions`, bulk));
    expect(again).toMatchObject({ recorded: 0, unchanged: 5 });
    const events = await auditActions(id.tenantA, 'review.decisions_recorded');
    expect(events).toHaveLength(2);
    const manuChange = events[1]!.payload.decisions.find((d: Json) => d.itemId === by.manu);
    expect(manuChange).toMatchObject({ decision: 'revoke', previous: 'keep', justification: 'changed my mind' });
    expect(events[1]!.actor_id).toBe(id.actors.reviewerA!.id);
    expect(events[1]!.authority.roles).toEqual(['tenant_reviewer']);
    const decided = ok(await call(id.tokens.reviewerA, 'GET', `/v1/tenants/${id.tenantA}/reviews/items?assignedTo=me&decided=true`))
      .items as Json[];
    expect(decided.find((i) => i.itemId === by.manu)!.myDecision).toBe('revoke');
    // B keeps its admin; C's reviewer says nothing.
    const samB = (await inbox(id.tenantB, staff.reviewerB!.token))[0]!;
    ok(await call(staff.reviewerB!.token, 'POST', `/v1/tenants/${id.tenantB}/reviews/items/${samB.itemId}/decision`, { decision: 'keep' }));
  });

  it('closes stage 1: revocations settle, kept items move to stage 2 for its reviewers only', async () => {
    for (const tenant of [id.tenantA, id.tenantB, tenantC]) await closeStage(tenant, runId);
    for (const tenant of [id.tenantA, id.tenantB, tenantC]) await reviewReaches(tenant, runId, 'open', 2);
    const kim = (await items(id.tenantA, runId)).find((i) => i.subjectId === 'kim')!;
    expect(kim).toMatchObject({ stage: 2, outcome: null });
    const late = await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${id.tenantA}/reviews/items/${kim.itemId}/decision`, {
      decision: 'revoke',
    });
    expect(late.status).toBe(403); // no longer assigned to the stage-1 reviewer
    expect((await inbox(id.tenantA, id.tokens.approverA!)).map((i) => i.subjectId)).toEqual(['kim']);
    ok(await call(id.tokens.approverA, 'POST', `/v1/tenants/${id.tenantA}/reviews/items/${kim.itemId}/decision`, { decision: 'keep' }));
    // C's stage 2 goes to its approver (first in the stage's chain).
    expect((await inbox(tenantC, staff.approverC!.token)).map((i) => i.subjectId)).toEqual(['sam']);
    for (const tenant of [id.tenantA, id.tenantB, tenantC]) await closeStage(tenant, runId);
    for (const tenant of [id.tenantA, id.tenantB, tenantC]) await reviewReaches(tenant, runId, 'completed');
  });

  it('applies every revocation through the ledger and proves it by reading the target back', async () => {
    const A = id.tenantA;
    const by = Object.fromEntries((await items(A, runId)).map((i) => [i.subjectId, i]));
    expect(by.gina).toMatchObject({ outcome: 'revoke', outcomeBy: 'decision', result: 'applied_verified' });
    expect(by.manu).toMatchObject({ outcome: 'revoke', result: 'applied_verified', resultDetail: { ended: ['manual:CHG-7'] } });
    expect(by.ursula).toMatchObject({ outcome: 'revoke', result: 'applied_verified' });
    expect(by.bert).toMatchObject({ outcome: 'revoke', result: 'needs_rule_change', resultDetail: { rules: ['it-admins'] } });
    expect(by.kim).toMatchObject({ outcome: 'keep', result: 'kept' });
    expect(await directory.hasRole(A, 'gina', 'GlobalAdmin')).toBe(false);
    expect(await directory.hasRole(A, 'manu', 'GlobalAdmin')).toBe(false);
    expect(await directory.hasRole(A, 'ursula', 'GlobalAdmin')).toBe(false);
    expect(await directory.hasRole(A, 'bert', 'GlobalAdmin')).toBe(true);
    expect(await directory.hasRole(A, 'kim', 'GlobalAdmin')).toBe(true);
    const grant = ok(await call(id.tokens.operator, 'GET', `/v1/tenants/${A}/grants/${grantId}`));
    expect(grant).toMatchObject({ status: 'ended', endReason: 'revoked', revocationVerifiedAt: expect.any(String) });
    const { rows } = await stack.db.pool.query("SELECT end_reason FROM entitlements WHERE tenant_id = $1 AND source_id = 'CHG-7'", [A]);
    expect(rows).toEqual([{ end_reason: 'review_revoked' }]);
    // One audited result per item, from the review's own workflow.
    const applied = await auditActions(A, 'review.item_applied_verified');
    expect(applied.map((e) => e.payload.subjectId).sort()).toEqual(['gina', 'manu', 'ursula']);
    for (const e of applied) expect(e.workflow_id).toBe(`review/${A}/${runId}`);
    expect(await auditActions(A, 'review.item_needs_rule_change')).toHaveLength(1);
    // B kept its admin; C's admin had no answer at either stage and non-response keeps.
    expect((await items(id.tenantB, runId))[0]).toMatchObject({ outcome: 'keep', outcomeBy: 'non_response' });
    // A decision once the stage has closed is refused and changes nothing.
    const late = await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${A}/reviews/items/${by.gina.itemId}/decision`, { decision: 'keep' });
    expect(late.status).toBe(409);
    expect(await auditActions(A, 'review.decisions_recorded')).toHaveLength(3);
    expect((await items(tenantC, runId))[0]).toMatchObject({ outcome: 'keep', outcomeBy: 'non_response' });
    // The run saw all three tenants finish; MSP staff read progress counts.
    const run = await eventually(
      () => call(id.tokens.mspAuditor, 'GET', `/v1/campaign-runs/${runId}`),
      (r) => r.body.status === 'completed',
      SLOW,
    );
    expect(run.body).toMatchObject({ tenantCount: 3, materialisedCount: 3, completedCount: 3 });
    expect(run.body.reviews.find((r: Json) => r.tenantId === A).results).toMatchObject({
      applied_verified: 3,
      needs_rule_change: 1,
      kept: 1,
    });
  });
  it('leaves each tenant a report whose hash is in its own audit chain, verified offline against the export', async () => {
    const A = id.tenantA;
    const { body } = await call(id.tokens.auditorA, 'GET', `/v1/tenants/${A}/reviews/${runId}/report`);
    expect(reportHash(body.report as ReviewReport)).toBe(body.hash);
    const report = body.report as ReviewReport;
    expect(report.items).toHaveLength(5);
    const manu = report.items.find((i) => i.subjectId === 'manu')!;
    expect(manu.decisions).toEqual([
      expect.objectContaining({ stage: 1, decision: 'revoke', justification: 'changed my mind', changes: 1 }),
    ]);
    expect(manu).toMatchObject({ outcome: 'revoke', result: 'applied_verified' });
    expect(report.items.find((i) => i.subjectId === 'bert')).toMatchObject({ result: 'needs_rule_change' });
    expect(report.reviewers.map((r) => r.reviewerId)).toEqual(expect.arrayContaining([id.actors.reviewerA!.id, id.actors.approverA!.id]));

    // The exported chain verifies offline and carries the report's hash.
    const exported = await fetch(`${stack.baseUrl}/v1/audit/${A}/export`, { headers: { authorization: `Bearer ${id.tokens.auditorA}` } });
    const events = (await exported.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as AuditEvent);
    const verifier = new ChainVerifier();
    for (const event of events) verifier.push(event);
    expect(
      verifier.finish({ seq: Number(exported.headers.get('x-audit-head-seq')), hash: exported.headers.get('x-audit-head-hash')! }).intact,
    ).toBe(true);
    const recorded = events.filter((e) => e.action === 'review.report_recorded' && e.target?.id === runId);
    expect(recorded.map((e) => e.payload.hash)).toEqual([body.hash]);
    expect(recorded[0]!.workflowId).toBe(`review/${A}/${runId}`);

    const csv = await fetch(`${stack.baseUrl}/v1/tenants/${A}/reviews/${runId}/report?format=csv`, {
      headers: { authorization: `Bearer ${id.tokens.mspAuditor}` },
    });
    expect(csv.headers.get('x-report-hash')).toBe(body.hash);
    const rows = (await csv.text()).trim().split('\n');
    expect(rows[0]).toMatch(/^itemId,subjectId,role,/);
    expect(rows).toHaveLength(6);
    // Reviewers decide; reading the evidence is for auditors, approvers and MSP staff. Another tenant's auditor sees nothing.
    expect((await call(id.tokens.reviewerA, 'GET', `/v1/tenants/${A}/reviews/${runId}/report`)).status).toBe(403);
    expect((await call(id.tokens.auditorB, 'GET', `/v1/tenants/${A}/reviews/${runId}/report`)).status).toBe(404);
  });

  it('outlives its campaign: once the definition is deleted, its runs, versions and every tenant’s report stay', async () => {
    const before = ok(await call(id.tokens.auditorA, 'GET', `/v1/tenants/${id.tenantA}/reviews/${runId}/report`));
    const { definitionId } = ok(await call(id.tokens.mspAuditor, 'GET', `/v1/campaign-runs/${runId}`));
    const path = `/v1/campaigns/${definitionId}`;
    for (const token of [id.tokens.reviewerA, id.tokens.mspAuditor]) expect((await call(token, 'DELETE', path)).status).toBe(403);
    expect((await call(id.tokens.operator, 'DELETE', path)).status).toBe(204);
    expect((await call(id.tokens.operator, 'DELETE', path)).status).toBe(404);
    expect((await call(id.tokens.operator, 'GET', path)).status).toBe(404);
    expect((ok(await call(id.tokens.operator, 'GET', '/v1/campaigns')).campaigns as Json[]).map((c) => c.id)).not.toContain(definitionId);
    expect((await call(id.tokens.operator, 'POST', `${path}/runs`)).status).toBe(404);
    expect(
      (await call(id.tokens.operator, 'PUT', path, { expectedVersion: 1, definition: { stages: [{ durationMinutes: 1 }] } })).status,
    ).toBe(404);
    expect(ok(await call(id.tokens.mspAuditor, 'GET', `${path}/versions`)).versions).toHaveLength(1);
    expect(ok(await call(id.tokens.mspAuditor, 'GET', `/v1/campaign-runs/${runId}`))).toMatchObject({
      status: 'completed',
      tenantCount: 3,
    });
    for (const tenant of [id.tenantA, id.tenantB, tenantC])
      expect((await call(id.tokens.mspAuditor, 'GET', `/v1/tenants/${tenant}/reviews/${runId}/report`)).status).toBe(200);
    expect(ok(await call(id.tokens.auditorA, 'GET', `/v1/tenants/${id.tenantA}/reviews/${runId}/report`))).toEqual(before);
    const deleted = (await auditActions('msp', 'campaign.deleted')).filter((e) => e.target_id === definitionId);
    expect(deleted).toHaveLength(1);
    expect(deleted[0]).toMatchObject({ actor_id: id.actors.operator!.id, payload: { name: 'Three tenants', version: 1 } });
  });
});

describe('non-response under the guardrails', () => {
  it('holds the last privileged holder, break-glass accounts and revocations over the cap, and raises an alert', async () => {
    const G = id.tenantB;
    await directory.upsertRole(G, { name: 'SoleAdmin', privileged: true });
    await directory.upsertRole(G, { name: 'DomainAdmin', privileged: true });
    await directory.upsertUser(G, { id: 'solo', username: 'solo', displayName: 'Solo' });
    await directory.upsertUser(G, { id: 'glass', username: 'glass', displayName: 'Glass', attributes: { breakGlass: true } });
    for (const user of ['dana', 'dave']) await directory.upsertUser(G, { id: user, username: user, displayName: user });
    await directory.assignRole(G, 'solo', 'SoleAdmin');
    for (const user of ['glass', 'dana', 'dave']) await directory.assignRole(G, user, 'DomainAdmin');
    const definition = ok(
      await call(id.tokens.operator, 'POST', '/v1/campaigns', {
        name: 'Guardrails',
        definition: {
          scope: { tenantIds: [G] },
          items: { roles: ['SoleAdmin', 'DomainAdmin'] },
          stages: [{ durationMinutes: 600 }],
          nonResponse: 'revoke',
          guardrails: { maxAutoRevocations: 1, maxAutoRevocationPercent: 100 },
        },
      }),
      201,
    );
    const { runId } = ok(await call(id.tokens.operator, 'POST', `/v1/campaigns/${definition.id}/runs`), 202);
    const open = await reviewReaches(G, runId, 'open', 1);
    // MSP staff may extend the deadline, but not bring it forward while the tenant's reviewers have
    // not answered: closing now would revoke by the non-response rule, the tenant's decision.
    const deadline = (closesAt: string) => call(id.tokens.operator, 'POST', `/v1/tenants/${G}/reviews/${runId}/deadline`, { closesAt });
    const early = await deadline(new Date().toISOString());
    expect(early.status).toBe(409);
    expect(early.body.error.message).toMatch(/still wait for the tenant’s reviewers/);
    // The rule holds where the deadline is written, not only in the API: an Update sent straight
    // to Temporal in the operator's name is refused the same way, and writes nothing.
    const movesBefore = (await auditActions(G, 'review.deadline_moved')).length;
    const direct = stack.temporal.workflow.getHandle(tenantReviewWorkflowId(G, runId)).executeUpdate(moveReviewDeadlineUpdate, {
      args: [{ actorId: id.actors.operator!.id, closesAt: new Date().toISOString(), authority: { roles: ['operator'] } }],
    });
    await expect(direct).rejects.toMatchObject({ cause: { type: ReviewRejection.TenantDecides } });
    // Nor can an actor id the audit trail cannot store hang the Update: refused before it is taken.
    const unstorable = stack.temporal.workflow
      .getHandle(tenantReviewWorkflowId(G, runId))
      .executeUpdate(moveReviewDeadlineUpdate, { args: [{ actorId: 'op\u0000', closesAt: new Date().toISOString(), authority: {} }] });
    await expect(unstorable).rejects.toMatchObject({ cause: { type: ReviewRejection.InvalidInput } });
    expect(((await reviewOf(G, runId, id.tokens.operator!)) as Json).stageClosesAt).toBe(open!.stageClosesAt);
    expect(await auditActions(G, 'review.deadline_moved')).toHaveLength(movesBefore);
    const later = new Date(Date.parse(open!.stageClosesAt as string) + 3_600_000).toISOString();
    expect(ok(await deadline(later)).stageClosesAt).toBe(later);
    expect(((await reviewOf(G, runId, id.tokens.operator!)) as Json).status).toBe('open');
    await closeStage(G, runId);
    await reviewReaches(G, runId, 'completed');
    const by = Object.fromEntries((await items(G, runId)).map((i) => [i.subjectId, i]));
    expect(by.solo).toMatchObject({ outcome: 'held', result: 'held', resultDetail: { guardrail: 'last_privileged_holder' } });
    expect(by.glass).toMatchObject({ outcome: 'held', resultDetail: { guardrail: 'break_glass' } });
    const pair = [by.dana, by.dave].map((i) => i!.result).sort();
    expect(pair).toEqual(['applied_verified', 'held']);
    const heldOne = [by.dana, by.dave].find((i) => i!.result === 'held')!;
    expect(heldOne.resultDetail).toEqual({ guardrail: 'auto_revocation_cap' });
    expect(await directory.hasRole(G, 'solo', 'SoleAdmin')).toBe(true);
    expect(await directory.hasRole(G, 'glass', 'DomainAdmin')).toBe(true);
    expect(await directory.listMembers(G, 'DomainAdmin')).toHaveLength(2);
    const alerts = await auditActions(G, 'review.guardrail_alert');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.payload.held).toEqual({ last_privileged_holder: 1, break_glass: 1, auto_revocation_cap: 1 });
  });
});

describe('a recurring campaign on a Temporal Schedule (dev server, seconds apart)', () => {
  it('fires on its interval, can be paused, triggered and unpaused, and goes away with its recurrence', async () => {
    const created = ok(
      await call(id.tokens.operator, 'POST', '/v1/campaigns', {
        name: 'Every few seconds',
        definition: { scope: { tenantIds: [tenantC] }, stages: [{ durationMinutes: 0.01 }], schedule: { intervalMinutes: 0.05 } },
      }),
      201,
    );
    const scheduleId = `campaign-schedule/${created.id}`;
    // A real Schedule, as the Temporal UI lists it.
    const described = await stack.temporal.schedule.getHandle(scheduleId).describe();
    expect(described.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
    const scheduledRuns = async () =>
      (ok(await call(id.tokens.operator, 'GET', `/v1/campaigns/${created.id}/runs`)).runs as Json[]).filter(
        (r) => r.trigger === 'schedule',
      );
    const fired = await eventually(scheduledRuns, (runs) => runs.length >= 2, SLOW);
    expect(fired.map((r) => r.workflowId)).toEqual(fired.map((r) => `campaign/${created.id}/${r.runNo}`));
    const firstAction = ok(await call(id.tokens.operator, 'GET', `/v1/campaigns/${created.id}/schedule`)).recentActions[0]
      .workflowId as string;
    await recordHistory('scheduled', stack.temporal.workflow.getHandle(firstAction), { waitForClose: true });

    const paused = ok(await call(id.tokens.operator, 'POST', `/v1/campaigns/${created.id}/schedule/pause`, { note: 'audit week' }));
    expect(paused).toMatchObject({ scheduleId, paused: true, note: 'audit week' });
    // Recent actions are a short window: the newest one tells a new start apart.
    const lastBefore = (paused.recentActions as Json[]).at(-1)?.scheduledAt;
    ok(await call(id.tokens.operator, 'POST', `/v1/campaigns/${created.id}/schedule/trigger`));
    const afterTrigger = await eventually(
      async () => ok(await call(id.tokens.mspAuditor, 'GET', `/v1/campaigns/${created.id}/schedule`)),
      (s) => (s.recentActions as Json[]).at(-1)?.scheduledAt !== lastBefore,
      SLOW,
    );
    expect(afterTrigger.paused).toBe(true);
    expect(ok(await call(id.tokens.operator, 'POST', `/v1/campaigns/${created.id}/schedule/unpause`)).paused).toBe(false);
    for (const action of ['campaign.schedule_paused', 'campaign.schedule_triggered', 'campaign.schedule_unpaused'])
      expect((await auditActions('msp', action)).filter((e) => e.target_id === created.id)).toHaveLength(1);

    // A version without a recurrence removes the Schedule.
    ok(
      await call(id.tokens.operator, 'PUT', `/v1/campaigns/${created.id}`, {
        expectedVersion: 1,
        definition: { scope: { tenantIds: [tenantC] }, stages: [{ durationMinutes: 0.01 }] },
      }),
    );
    expect((await call(id.tokens.operator, 'GET', `/v1/campaigns/${created.id}/schedule`)).status).toBe(404);
    await expect(stack.temporal.schedule.getHandle(scheduleId).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    // The campaign still exists: controlling a Schedule it does not have is a conflict, said so, and audits nothing.
    for (const action of ['pause', 'unpause', 'trigger']) {
      const refused = await call(id.tokens.operator, 'POST', `/v1/campaigns/${created.id}/schedule/${action}`);
      expect(refused.status).toBe(409);
      expect(refused.body.error.message).toContain(`has no recurrence, so it has no Schedule to ${action}`);
    }
    for (const action of ['campaign.schedule_paused', 'campaign.schedule_triggered', 'campaign.schedule_unpaused'])
      expect((await auditActions('msp', action)).filter((e) => e.target_id === created.id)).toHaveLength(1);
  }, 180_000);
});

describe('deleting a campaign', () => {
  it('waits until no run of it is going, then deletes its Schedule too (from the CLI)', async () => {
    const created = ok(
      await call(id.tokens.operator, 'POST', '/v1/campaigns', {
        name: 'To delete',
        definition: {
          scope: { tenantIds: [tenantC] },
          stages: [{ durationMinutes: 600 }],
          schedule: { intervalMinutes: 600, paused: true },
        },
      }),
      201,
    );
    const scheduleId = `campaign-schedule/${created.id}`;
    await stack.temporal.schedule.getHandle(scheduleId).describe();
    const { runId } = ok(await call(id.tokens.operator, 'POST', `/v1/campaigns/${created.id}/runs`), 202);
    const env = { TENURE_URL: stack.baseUrl, TENURE_TOKEN: id.tokens.operator! };
    const refused = await runCli(['campaign', 'delete', created.id], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('409');
    expect(ok(await call(id.tokens.operator, 'GET', `/v1/campaigns/${created.id}`)).id).toBe(created.id);
    ok(await call(id.tokens.operator, 'POST', `/v1/campaign-runs/${runId}/cancel`, { reason: 'to delete the campaign' }));
    await eventually(
      () => call(id.tokens.operator, 'GET', `/v1/campaign-runs/${runId}`),
      (r) => r.body.status === 'cancelled' && (r.body.reviews as Json[]).every((v) => v.status === 'cancelled'),
      SLOW,
    );
    await runCliOk(['campaign', 'delete', created.id], env);
    expect((await call(id.tokens.operator, 'GET', `/v1/campaigns/${created.id}`)).status).toBe(404);
    await expect(stack.temporal.schedule.getHandle(scheduleId).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    expect((await auditActions('msp', 'campaign.deleted')).filter((e) => e.target_id === created.id)).toHaveLength(1);
  }, 180_000);
});
