import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { ApplyRejection, templateApplyWorkflowId } from '../../core/templates/contract.js';
import { apiClient, bodyOf, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { mspStaff, seedTenancy, tenantStaff, type TestTenancy } from '../support/tenancy.js';
import { rejectionType } from '../support/workflow-harness.js';

/**
 * An attack pass over rollouts, applies, rollback, drift, the report and cloning on the real
 * stack: another tenant's staff, MSP staff taking a tenant's decision (through the API and straight
 * through Temporal), hostile input, and concurrent duplicates. Each case is what held or what was
 * fixed; none may end in a 500 or a wedged workflow.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: PostgresDirectory;
let owner: { actorId: string; token: string };
let owner2: { actorId: string; token: string };

const call = apiClient(() => stack.baseUrl);

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  owner = await mspStaff(call, id.tokens.mspAdmin!, 'Template owner', ['template_owner']);
  owner2 = await mspStaff(call, id.tokens.mspAdmin!, 'Second template owner', ['template_owner']);
});
afterAll(async () => {
  await stack?.stop();
});

const SETTINGS = { mfaRequired: true, passwordMinLength: 12, lockoutThreshold: 5 };

async function approvedTemplate(document: Json = { directory: { settings: SETTINGS } }): Promise<string> {
  const created = bodyOf(
    await call(owner.token, 'POST', '/v1/templates', { name: `attack-${randomBytes(4).toString('hex')}`, document }),
    201,
  );
  const templateId = created.template.id as string;
  bodyOf(await call(owner.token, 'POST', `/v1/templates/${templateId}/versions/1/propose`, {}));
  bodyOf(await call(owner2.token, 'POST', `/v1/templates/${templateId}/versions/1/approve`, {}));
  return templateId;
}

async function freshTenant(): Promise<{ tenantId: string; approver: { actorId: string; token: string } }> {
  const slug = `x-${randomBytes(4).toString('hex')}`;
  const tenantId = bodyOf(await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug, name: `Tenant ${slug}` }), 201).id as string;
  return { tenantId, approver: await tenantStaff(call, id.tokens.mspAdmin!, tenantId, 'Approver', ['tenant_approver']) };
}

const tpl = (tenantId: string) => `/v1/tenants/${tenantId}/template`;
const applyView = async (tenantId: string, rolloutId: string) =>
  (await call(id.tokens.operator, 'GET', `${tpl(tenantId)}/applies/${rolloutId}`)).body;
const waitApply = (tenantId: string, rolloutId: string, accept: (v: Json) => boolean, timeoutMs = 60_000) =>
  eventually(() => applyView(tenantId, rolloutId), accept, timeoutMs);
const ended = (v: Json) => ['applied', 'skipped', 'denied', 'failed'].includes(v.status as string);

/** A tenant pinned to the template whose apply waits at its gate (the template loosens its password length). */
async function gatedApply(): Promise<{
  tenantId: string;
  approver: { actorId: string; token: string };
  rolloutId: string;
  templateId: string;
}> {
  const templateId = await approvedTemplate();
  const { tenantId, approver } = await freshTenant();
  await directory.applySecuritySettings(tenantId, { passwordMinLength: 16 });
  bodyOf(await call(id.tokens.operator, 'PUT', tpl(tenantId), { templateId, version: 1 }));
  const { rolloutId } = bodyOf(await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/apply`, { approvalTimeoutMinutes: 30 }), 202);
  await waitApply(tenantId, rolloutId as string, (v) => v.status === 'awaiting_approval');
  return { tenantId, approver, rolloutId: rolloutId as string, templateId };
}

describe('MSP staff going around the API to take a tenant decision', () => {
  it('an approve Update sent straight to the apply workflow with an MSP actor id is refused: nothing recorded, the gate stays the tenant’s', async () => {
    const { tenantId, rolloutId, approver } = await gatedApply();
    const handle = stack.temporal.workflow.getHandle(templateApplyWorkflowId(rolloutId, tenantId));
    const trail = async () => bodyOf(await call(id.tokens.mspAdmin, 'GET', `/v1/audit/${tenantId}/events?limit=500`)).events as Json[];
    const before = (await trail()).length;
    // Not who started it (the operator): an MSP admin, and an actor the tenant never bound.
    for (const actorId of [id.actors.mspAdmin!.id, randomUUID()]) {
      expect(await rejectionType(handle.executeUpdate('approve', { args: [{ actorId }] }))).toBe(ApplyRejection.NotTenantApprover);
    }
    expect(await applyView(tenantId, rolloutId)).toMatchObject({ status: 'awaiting_approval', approvals: [] });
    expect((await trail()).length).toBe(before);
    // Taken, the forged approval would have closed the gate: the tenant's approver can still deny.
    bodyOf(await call(approver.token, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/deny`, {}));
    expect(await waitApply(tenantId, rolloutId, ended)).toMatchObject({ status: 'denied', decidedBy: approver.actorId });
    expect((await directory.getSecuritySettings(tenantId)).passwordMinLength).toBe(16);
    expect((await call(id.tokens.operator, 'GET', tpl(tenantId))).body.appliedVersion).toBeNull();
  });

  it('a deny Update sent straight to the apply workflow in an MSP actor’s name is refused and writes nothing: the tenant still decides', async () => {
    const { tenantId, rolloutId, approver } = await gatedApply();
    const handle = stack.temporal.workflow.getHandle(templateApplyWorkflowId(rolloutId, tenantId));
    const trail = async () =>
      bodyOf(await call(id.tokens.mspAdmin, 'GET', `/v1/audit/${tenantId}/events?limit=500`)).events as { action: string }[];
    const before = (await trail()).length;
    // MSP staff (the admin, and the operator who started it) and an actor the tenant never bound.
    for (const actorId of [id.actors.mspAdmin!.id, id.actors.operator!.id, randomUUID()]) {
      expect(await rejectionType(handle.executeUpdate('deny', { args: [{ actorId, authority: { roles: ['tenant_approver'] } }] }))).toBe(
        ApplyRejection.NotTenantApprover,
      );
    }
    // Text the trail cannot store is refused before the Update is taken (it would retry forever).
    expect(await rejectionType(handle.executeUpdate('deny', { args: [{ actorId: `${approver.actorId}\u0000` }] }))).toBe(
      ApplyRejection.InvalidInput,
    );
    expect((await applyView(tenantId, rolloutId)).status).toBe('awaiting_approval');
    const events = await trail();
    expect(events.length).toBe(before);
    expect(events.map((e) => e.action)).not.toContain('template.apply.denied');
    // The tenant's own approver decides, and its denial ends the apply.
    bodyOf(await call(approver.token, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/deny`, { comment: 'not now' }));
    const view = await waitApply(tenantId, rolloutId, ended);
    expect(view).toMatchObject({ status: 'denied', decidedBy: approver.actorId });
    expect((await directory.getSecuritySettings(tenantId)).passwordMinLength).toBe(16);
  });

  it('a cancelApply or approve with a malformed payload wedges nothing: the tenant’s approver still decides', async () => {
    const { tenantId, rolloutId, approver } = await gatedApply();
    const handle = stack.temporal.workflow.getHandle(templateApplyWorkflowId(rolloutId, tenantId));
    await handle.signal('cancelApply', null as never);
    await handle.signal('cancelApply', { actorId: { id: 'x' } } as never);
    await handle.signal('applyFinished', 'nonsense' as never);
    await expect(handle.executeUpdate('approve', { args: [null as never] })).rejects.toThrow();
    await expect(handle.executeUpdate('approve', { args: [{ actorId: 42 } as never] })).rejects.toThrow();
    const decided = await call(approver.token, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/approve`, { comment: 'fine' });
    expect(decided.status).toBe(200);
    const view = await waitApply(tenantId, rolloutId, ended);
    expect(view.status).toBe('applied');
  });
});

describe('a rollout’s workflow reached straight through Temporal', () => {
  it('malformed or forged applyFinished reports neither wedge the rollout nor corrupt its counts', async () => {
    const { tenantId, approver } = await freshTenant();
    const templateId = await approvedTemplate();
    await directory.applySecuritySettings(tenantId, { passwordMinLength: 16 });
    const started = bodyOf(
      await call(id.tokens.operator, 'POST', '/v1/rollouts', { templateId, version: 1, tenants: [tenantId], approvalTimeoutMinutes: 30 }),
      201,
    );
    const rolloutId = started.rolloutId as string;
    await waitApply(tenantId, rolloutId, (v) => v.status === 'awaiting_approval');
    const handle = stack.temporal.workflow.getHandle(`rollout/${rolloutId}`);
    await handle.signal('applyFinished', null as never);
    await handle.signal('applyFinished', { tenantId, status: 'size' } as never);
    await handle.signal('applyFinished', { tenantId, status: 'passedOver' } as never);
    // Well formed but forged: the tenant still waits at its gate. Counted, the first would end the
    // wave as applied; the second would spend the error budget of a tenant that never failed.
    await handle.signal('applyFinished', { tenantId, status: 'applied' } as never);
    await handle.signal('applyFinished', { tenantId, status: 'failed' } as never);
    // Still answering Updates, and its wave is as it was.
    const paused = bodyOf(await call(id.tokens.operator, 'POST', `/v1/rollouts/${rolloutId}/pause`, {}));
    expect(paused).toMatchObject({ status: 'paused', inFlight: 1 });
    expect(paused.waves[0]).toMatchObject({ size: 1, started: 1, passedOver: 0, applied: 0, failed: 0 });
    bodyOf(await call(id.tokens.operator, 'POST', `/v1/rollouts/${rolloutId}/resume`, {}));
    bodyOf(await call(approver.token, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/approve`, {}));
    const done = await eventually(
      async () => (await call(id.tokens.operator, 'GET', `/v1/rollouts/${rolloutId}`)).body,
      (v) => v.status === 'completed',
      60_000,
    );
    expect(done.waves[0]).toMatchObject({ size: 1, started: 1, applied: 1, passedOver: 0, failed: 0 });
  });
});

describe('another tenant’s staff learn nothing and change nothing', () => {
  it('drift, exceptions, rollouts, rollbacks, the report and cloning across tenants are 403/404', async () => {
    const a = id.tenantA;
    const b = id.tenantB;
    // An exception in tenant B, asked for by B's approver.
    const exB = bodyOf(
      await call(id.tokens.approverB, 'POST', `${tpl(b)}/drift/exceptions`, {
        path: 'directory.settings.mfaRequired',
        owner: 'B',
        justification: 'B only',
        expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
      }),
      201,
    );
    expect((await call(id.tokens.approverB, 'GET', `${tpl(a)}/drift`)).status).toBe(404);
    expect((await call(id.tokens.auditorB, 'GET', `${tpl(a)}/drift/exceptions`)).status).toBe(404);
    // B's exception id under A's path: the same 404 as no such exception, for A's approver and for an operator.
    const crossed = await call(id.tokens.approverA, 'POST', `${tpl(a)}/drift/exceptions/${exB.id}/approve`, {});
    expect(crossed.status).toBe(404);
    expect((await call(id.tokens.operator, 'POST', `${tpl(a)}/drift/exceptions/${exB.id}/expire`, {})).status).toBe(404);
    expect((await call(id.tokens.approverA, 'POST', `${tpl(b)}/drift/exceptions/${exB.id}/approve`, {})).status).toBe(404);
    // MSP staff never approve it, even an MSP admin bound to B alone.
    for (const token of [id.tokens.tenantAdminB, id.tokens.mspAdmin, id.tokens.operator]) {
      expect((await call(token, 'POST', `${tpl(b)}/drift/exceptions/${exB.id}/approve`, {})).status).toBe(403);
    }
    const still = bodyOf(await call(id.tokens.approverB, 'GET', `${tpl(b)}/drift/exceptions`));
    expect(still.exceptions.find((e: Json) => e.id === exB.id).status).toBe('pending');

    // Rollouts and the report are MSP-wide: a tenant's approver or auditor gets no listing of other tenants.
    for (const token of [id.tokens.approverA, id.tokens.auditorA, id.tokens.tenantAdminB]) {
      expect((await call(token, 'GET', '/v1/rollouts')).status).toBe(403);
      expect((await call(token, 'GET', `/v1/rollouts/${randomUUID()}`)).status).toBe(403);
      expect((await call(token, 'GET', '/v1/templates/rbac-report')).status).toBe(403);
      expect((await call(token, 'GET', `/v1/rollouts/${randomUUID()}/rollback`)).status).toBe(403);
      const clone = await call(
        token,
        'POST',
        `/v1/tenants/${b}/clone`,
        { slug: `c-${randomBytes(3).toString('hex')}`, name: 'Clone' },
        {
          headers: { 'idempotency-key': randomUUID() },
        },
      );
      expect(clone.status).toBe(403);
    }
    expect((await call(id.tokens.approverA, 'GET', `${tpl(b)}/applies/${randomUUID()}/rollback`)).status).toBe(404);
    expect((await call(id.tokens.approverA, 'POST', `${tpl(b)}/applies/${randomUUID()}/rollback`, {})).status).toBe(404);
    expect((await call(id.tokens.approverA, 'POST', `${tpl(a)}/applies/${randomUUID()}/rollback`, {})).status).toBe(403);
  });
});

describe('hostile input is a 4xx naming the field, never a 500', () => {
  it('NUL, lone surrogates, giant comments, wrong types, 5,000 unknown tenants and an oversized body', async () => {
    const templateId = await approvedTemplate();
    const { tenantId } = await freshTenant();
    const rollouts = (body: unknown) => call(id.tokens.operator, 'POST', '/v1/rollouts', body);
    const nul = await rollouts({ templateId, version: 1, tenants: [tenantId], canary: { count: 1 }, bogus: 'a\u0000b' });
    expect(nul.status).toBe(400);
    const surrogate = await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/drift/exceptions`, {
      path: 'directory.settings.mfaRequired',
      owner: 'x\ud800',
      justification: 'j',
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
    expect(surrogate.status).toBe(400);
    expect(surrogate.body.error.issues[0].path).toBe('body.owner');
    const nulPath = await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/drift/exceptions`, {
      path: 'directory.settings.\u0000',
      owner: 'o',
      justification: 'j',
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
    expect(nulPath.status).toBe(400);
    for (const body of [
      { templateId, version: 'one', tenants: [tenantId] },
      { templateId, version: 1, tenants: 'PINNED' },
      { templateId, version: 1e12, tenants: [tenantId] },
      { templateId, version: 1, tenants: [tenantId], window: 0 },
      { templateId, version: 1, tenants: [tenantId], errorBudget: { maxFailures: -1 } },
      { templateId, version: 1, tenants: [tenantId], waves: [{ count: 1, percent: 5 }] },
      { templateId, version: 1, tenants: [tenantId], canary: { count: 2 } },
      [],
      'null',
    ]) {
      const answer = await rollouts(body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
    }
    const many = Array.from({ length: 5_000 }, () => randomUUID());
    const unknown = await rollouts({ templateId, version: 1, tenants: many });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.issues.length).toBeLessThanOrEqual(100);
    expect((await rollouts({ templateId, version: 1, tenants: [...many, randomUUID()] })).status).toBe(400);
    const giant = 'x'.repeat(3_000_000);
    const huge = await call(id.tokens.operator, 'POST', `/v1/rollouts/${randomUUID()}/pause`, { comment: giant });
    expect([400, 413]).toContain(huge.status);
    const longComment = await call(id.tokens.operator, 'POST', `/v1/rollouts/${randomUUID()}/pause`, { comment: 'y'.repeat(2_001) });
    expect(longComment.status).toBe(400);
    expect((await call(id.tokens.operator, 'GET', '/v1/rollouts/not-a-uuid')).status).toBe(400);
    expect((await call(id.tokens.operator, 'GET', '/v1/rollouts?limit=1e400')).status).toBe(400);
    for (const query of ['format=xml', 'templateId=nope', 'templateId=%00', 'format=csv&format=json', 'extra=1']) {
      expect((await call(id.tokens.mspAuditor, 'GET', `/v1/templates/rbac-report?${query}`)).status, query).toBe(400);
    }
    expect((await call(id.tokens.mspAuditor, 'GET', `/v1/templates/rbac-report?templateId=${randomUUID()}`)).status).toBe(404);
    expect((await call(id.tokens.approverA, 'GET', `${tpl(id.tenantA)}/applies/${randomUUID()}`)).status).toBe(404);
    expect((await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/apply`, { approvalTimeoutMinutes: 'soon' })).status).toBe(400);
    const clone = await call(
      id.tokens.mspAdmin,
      'POST',
      `/v1/tenants/${tenantId}/clone`,
      { slug: 'ok-slug', name: 'n\u0000' },
      {
        headers: { 'idempotency-key': 'k\u00e9y' },
      },
    );
    expect(clone.status).toBe(400);
  });
});

describe('concurrent duplicates', () => {
  it('two rollouts over the same tenant at once: one starts, the other is refused', async () => {
    const templateId = await approvedTemplate();
    const { tenantId } = await freshTenant();
    const { tenantId: other } = await freshTenant();
    const answers = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        call(id.tokens.operator, 'POST', '/v1/rollouts', { templateId, version: 1, tenants: i % 2 ? [tenantId, other] : [tenantId] }),
      ),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409, 409]);
    const rolloutId = answers.find((a) => a.status === 201)!.body.rolloutId as string;
    await eventually(
      async () => (await call(id.tokens.operator, 'GET', `/v1/rollouts/${rolloutId}`)).body,
      (v) => v.status === 'completed',
      60_000,
    );
  });

  it('two applies of the same tenant at once: one starts, the other is refused', async () => {
    const templateId = await approvedTemplate();
    const { tenantId } = await freshTenant();
    bodyOf(await call(id.tokens.operator, 'PUT', tpl(tenantId), { templateId, version: 1 }));
    const answers = await Promise.all(Array.from({ length: 3 }, () => call(id.tokens.operator, 'POST', `${tpl(tenantId)}/apply`, {})));
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409, 409]);
  });

  it('the same Idempotency-Key: concurrently one rollout; another actor’s same key is their own', async () => {
    const templateId = await approvedTemplate();
    const { tenantId } = await freshTenant();
    const { tenantId: other } = await freshTenant();
    const key = randomUUID();
    const body = { templateId, version: 1, tenants: [tenantId] };
    const answers = await Promise.all(
      Array.from({ length: 3 }, () => call(id.tokens.operator, 'POST', '/v1/rollouts', body, { headers: { 'idempotency-key': key } })),
    );
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201]);
    expect(new Set(answers.map((a) => a.body.rolloutId)).size).toBe(1);
    const theirs = await call(
      id.tokens.mspAdmin,
      'POST',
      '/v1/rollouts',
      { ...body, tenants: [other] },
      { headers: { 'idempotency-key': key } },
    );
    expect(theirs.status).toBe(201);
    expect(theirs.body.rolloutId).not.toBe(answers[0]!.body.rolloutId);
    expect(theirs.body.requesterId).toBe(id.actors.mspAdmin!.id);
  });

  it('two rollbacks of one apply at once restore once; two clones with one key make one tenant', async () => {
    const templateId = await approvedTemplate();
    const { tenantId } = await freshTenant();
    bodyOf(await call(id.tokens.operator, 'PUT', tpl(tenantId), { templateId, version: 1 }));
    const { rolloutId } = bodyOf(await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/apply`, {}), 202);
    await waitApply(tenantId, rolloutId as string, (v) => v.status === 'applied');
    const rollbacks = await Promise.all(
      Array.from({ length: 3 }, () => call(id.tokens.operator, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/rollback`, {})),
    );
    expect(rollbacks.map((r) => r.status)).toEqual([202, 202, 202]);
    expect(new Set(rollbacks.map((r) => r.body.workflowId)).size).toBe(1);
    const rolled = await eventually(
      async () => (await call(id.tokens.operator, 'GET', `${tpl(tenantId)}/applies/${rolloutId}/rollback`)).body,
      (v) => typeof v.status === 'string' && v.status.startsWith('rolled_back'),
      60_000,
    );
    expect(rolled.status).toBe('rolled_back');
    const { rows } = await stack.db.pool.query(
      `SELECT count(*)::int AS n FROM audit_events WHERE tenant_id = $1 AND action = 'template.rollback.restored'`,
      [tenantId],
    );
    expect(rows[0].n).toBe(1);

    const key = randomUUID();
    const slug = `cl-${randomBytes(3).toString('hex')}`;
    const clones = await Promise.all(
      Array.from({ length: 3 }, () =>
        call(
          id.tokens.mspAdmin,
          'POST',
          `/v1/tenants/${tenantId}/clone`,
          { slug, name: `Clone ${slug}` },
          { headers: { 'idempotency-key': key } },
        ),
      ),
    );
    for (const c of clones) expect([201, 202]).toContain(c.status);
    expect(new Set(clones.map((c) => c.body.tenantId)).size).toBe(1);
    const { rows: made } = await stack.db.pool.query('SELECT count(*)::int AS n FROM tenants WHERE slug = $1', [slug]);
    expect(made[0].n).toBe(1);
  });
});

describe('two rollbacks of one paused rollout at once', () => {
  it('both answer with the one rollback; neither is refused because the other cancelled the rollout first', async () => {
    const templateId = await approvedTemplate();
    const tenants = [(await freshTenant()).tenantId, (await freshTenant()).tenantId];
    const started = bodyOf(
      await call(id.tokens.operator, 'POST', '/v1/rollouts', { templateId, version: 1, tenants, canary: { count: 1 }, bakeSeconds: 3600 }),
      201,
    );
    const rolloutId = started.rolloutId as string;
    await eventually(
      async () => (await call(id.tokens.operator, 'GET', `/v1/rollouts/${rolloutId}`)).body,
      (v) => v.status === 'baking',
      60_000,
    );
    bodyOf(await call(id.tokens.operator, 'POST', `/v1/rollouts/${rolloutId}/pause`, {}));
    const answers = await Promise.all(
      Array.from({ length: 2 }, () => call(id.tokens.operator, 'POST', `/v1/rollouts/${rolloutId}/rollback`, {})),
    );
    expect(answers.map((a) => a.status)).toEqual([202, 202]);
    expect(answers.map((a) => a.body.workflowId)).toEqual([`rollout/${rolloutId}/rollback`, `rollout/${rolloutId}/rollback`]);
    await eventually(
      async () => (await call(id.tokens.operator, 'GET', `/v1/rollouts/${rolloutId}/rollback`)).body,
      (v) => v.status === 'completed',
      60_000,
    );
  });
});

describe('what a cloned tenant’s own staff read', () => {
  it('the source’s chain says it was cloned, by whom, but not the name or slug of the other customer it was cloned into', async () => {
    const { tenantId } = await freshTenant();
    const auditor = await tenantStaff(call, id.tokens.mspAdmin!, tenantId, 'Auditor', ['auditor']);
    const slug = `secret-${randomBytes(3).toString('hex')}`;
    const name = `Other Customer ${slug}`;
    const clone = await call(
      id.tokens.mspAdmin,
      'POST',
      `/v1/tenants/${tenantId}/clone`,
      { slug, name },
      { headers: { 'idempotency-key': randomUUID() } },
    );
    expect(clone.status).toBe(201);
    const page = bodyOf(await call(auditor.token, 'GET', `/v1/audit/${tenantId}/events?limit=500`));
    const cloned = (page.events as Json[]).filter((e) => e.action === 'tenant.cloned');
    expect(cloned).toHaveLength(1);
    const text = JSON.stringify(page);
    expect(text).not.toContain(slug);
    expect(text).not.toContain('Other Customer');
  });
});

describe('a rollback and a new apply of one tenant at once', () => {
  it('only one of them starts: they would interleave the restore and the writes', async () => {
    const templateId = await approvedTemplate();
    const { tenantId } = await freshTenant();
    bodyOf(await call(id.tokens.operator, 'PUT', tpl(tenantId), { templateId, version: 1 }));
    const { rolloutId } = bodyOf(await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/apply`, {}), 202);
    await waitApply(tenantId, rolloutId as string, (v) => v.status === 'applied');
    const [rollback, apply] = await Promise.all([
      call(id.tokens.operator, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/rollback`, {}),
      call(id.tokens.operator, 'POST', `${tpl(tenantId)}/apply`, {}),
    ]);
    expect([rollback.status, apply.status].sort()).toEqual([202, 409]);
  });
});
