import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionContext } from '../../core/audit/context.js';
import { AppError } from '../../core/errors.js';
import type { Principal } from '../../core/tenancy/authz.js';
import {
  approvePolicyChangeUpdate,
  denyPolicyChangeUpdate,
  PolicyChangeRejection,
  policyChangeWorkflowId,
  type PolicyDiffItem,
} from '../../core/tenancy/contract.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { listAuditEvents } from '../../db/audit.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { currentPolicy, insertActor, insertBinding, insertPolicyVersion, type PolicyRow } from '../../db/tenancy.js';
import { verifyChain } from '../../usecases/audit.js';
import {
  authorizePolicyChangeDecision,
  decidePolicyChange,
  getPolicyChange,
  getPolicy,
  listPolicyChanges,
  proposePolicyChange,
  putPolicy,
  webhookSecret,
  type PolicyChangeDeps,
} from '../../usecases/tenancy/index.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, type TestTenancy } from '../support/tenancy.js';
import { rejectionType } from '../support/workflow-harness.js';

/**
 * Policy changes through the use cases on the real stack: PostgreSQL under RLS, the dev server
 * and the worker. The workflow's own cases (timeout, deny, withdraw) run on the time-skipping server.
 */
let stack: TestStack;
let id: TestTenancy;
let deps: PolicyChangeDeps;
let receiver: Server;
const received: { headers: Record<string, string>; body: string }[] = [];

const loosen: PolicyDiffItem[] = [
  { path: 'grants.roles.GlobalAdmin.approvalsRequired', before: 2, after: 0, effect: 'loosens', reason: 'fewer approvals required' },
];
const strict = { maxDurationMinutes: 60, approvalsRequired: 2, requestableBy: ['operator'] };
const loose = { ...strict, approvalsRequired: 0 };
const documentWith = (globalAdmin: object, extra: object = {}) =>
  TenantPolicyDocument.parse({ ...extra, grants: { roles: { GlobalAdmin: globalAdmin } } });

let operator: ActionContext;
const asUser = (actorId: string, roles: string[]): ActionContext => ({ actor: { id: actorId, type: 'user' }, authority: { roles } });

/** A fresh tenant at policy version 2 (the strict one), optionally with a raw governance section. */
async function tenantWithPolicy(governance?: object, extra: object = {}): Promise<{ tenantId: string; version: number }> {
  const tenantId = randomUUID();
  await inScope(stack.db.pool, mspScope, async (client) => {
    await client.query("INSERT INTO tenants (id, slug, name, created_by) VALUES ($1, $2, 'T', 'test')", [
      tenantId,
      `t-${tenantId.slice(0, 8)}`,
    ]);
    await insertPolicyVersion(client, { tenantId, version: 1, document: TenantPolicyDocument.parse({}), createdBy: 'test' });
    await insertPolicyVersion(client, {
      tenantId,
      version: 2,
      document: { ...documentWith(strict, extra), ...(governance ? { governance } : {}) },
      createdBy: 'test',
    });
  });
  // A policy may name only roles the tenant directory has.
  await stack.directory.upsertRole(tenantId, { name: 'GlobalAdmin', privileged: true });
  return { tenantId, version: 2 };
}

async function addApprover(tenantId: string): Promise<string> {
  return inScope(stack.pool, mspScope, async (client) => {
    const actor = await insertActor(client, { kind: 'tenant_staff', displayName: 'Approver', homeTenantId: tenantId, createdBy: 'test' });
    await insertBinding(client, { actorId: actor.id, role: 'tenant_approver', tenantId, createdBy: 'test' });
    return actor.id;
  });
}

const policyRow = (tenantId: string) =>
  inScope(stack.pool, tenantScope(tenantId), (client) => currentPolicy(client, tenantId)) as Promise<
    PolicyRow & { change_id: string | null; approved_by: string[] | null }
  >;
const changeEvents = (tenantId: string, changeId: string) =>
  inScope(stack.pool, tenantScope(tenantId), (client) => listAuditEvents(client, tenantId, { targetId: changeId }, 100));

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ headers: req.headers as Record<string, string>, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  deps = { pool: stack.pool, temporal: stack.temporal };
  operator = asUser(id.actors.operator!.id, ['operator']);
});
afterAll(async () => {
  await stack?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe('policy changes on the real stack', () => {
  it('proposed, then approved: a new version recording the proposer and the approver, audited in a chain that verifies', async () => {
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const { tenantId, version } = await tenantWithPolicy(undefined, { notificationWebhookUrl: hook });
    const approver = await addApprover(tenantId);
    const proposed = await proposePolicyChange(deps, operator, tenantId, {
      baseVersion: version,
      document: documentWith(loose, { notificationWebhookUrl: hook }),
      diff: loosen,
      comment: 'faster helpdesk',
    });
    expect(proposed).toMatchObject({ status: 'pending', baseVersion: 2, approvalsRequired: 1, proposerId: operator.actor.id });
    expect(Date.parse(proposed.expiresAt) - Date.parse(proposed.proposedAt)).toBe(7 * 24 * 3600 * 1000);
    // Shown at once from the read model, and nothing written to the policy yet.
    expect((await listPolicyChanges(stack.pool, tenantId, { status: 'pending' })).map((c) => c.changeId)).toEqual([proposed.changeId]);
    expect((await policyRow(tenantId)).version).toBe(2);

    const { secret } = await webhookSecret(stack.pool, operator, tenantId, false);
    const delivered = await eventually(
      async () =>
        received.filter(
          (r) => (JSON.parse(r.body) as { policyChange?: { changeId: string } }).policyChange?.changeId === proposed.changeId,
        ),
      (list) => list.some((r) => JSON.parse(r.body).type === 'policy_change.proposed'),
    );
    const proposal = delivered.find((r) => JSON.parse(r.body).type === 'policy_change.proposed')!;
    const signature = createHmac('sha256', secret).update(`${proposal.headers['x-tenure-timestamp']}.${proposal.body}`).digest('hex');
    expect(proposal.headers['x-tenure-signature']).toBe(`sha256=${signature}`);

    const answered = await decidePolicyChange(deps, tenantId, proposed.changeId, 'approve', {
      actorId: approver,
      authority: { roles: ['tenant_approver'] },
    });
    expect(answered).toMatchObject({ status: 'applied', appliedVersion: 3, approvals: [{ approverId: approver }] });
    const row = await policyRow(tenantId);
    expect(row).toMatchObject({ version: 3, created_by: operator.actor.id, change_id: proposed.changeId, approved_by: [approver] });
    expect((row.document as TenantPolicyDocument).grants.roles.GlobalAdmin!.approvalsRequired).toBe(0);
    expect(await getPolicy(stack.pool, tenantId)).toMatchObject({ version: 3, createdBy: operator.actor.id });
    await eventually(
      () => getPolicyChange(stack.pool, tenantId, proposed.changeId),
      (view) => view.status === 'applied',
    );

    const events = await changeEvents(tenantId, proposed.changeId);
    expect(events.map((e) => [e.action, e.actor.id])).toEqual([
      ['policy_change.proposed', operator.actor.id],
      ['policy_change.approval_recorded', approver],
      ['policy_change.applied', 'system'],
    ]);
    expect(events[0]!.payload).toMatchObject({
      before: { version: 2 },
      after: { document: { grants: { roles: { GlobalAdmin: loose } } } },
      diff: loosen,
    });
    expect(events[0]!.authority).toMatchObject({ roles: ['operator'], changeId: proposed.changeId, policyVersion: 2 });
    expect(events[2]!.payload).toMatchObject({
      newVersion: 3,
      before: { version: 2, document: { grants: { roles: { GlobalAdmin: strict } } } },
      after: { version: 3 },
      diff: loosen,
      approvers: [approver],
    });
    expect(events[2]!.authority.approvalIds).toEqual([answered.approvals[0]!.approvalId]);
    expect(new Set(events.map((e) => e.workflowId))).toEqual(new Set([proposed.workflowId]));
    expect(await verifyChain({ pool: stack.pool }, tenantId)).toMatchObject({ intact: true });
  });

  it('conflicts when a newer policy was written before the approval: nothing is written, both versions named', async () => {
    const { tenantId, version } = await tenantWithPolicy();
    const approver = await addApprover(tenantId);
    const proposed = await proposePolicyChange(deps, operator, tenantId, {
      baseVersion: version,
      document: documentWith(loose),
      diff: loosen,
    });
    const direct = documentWith({ ...strict, maxDurationMinutes: 30 });
    await putPolicy({ pool: stack.pool, directory: stack.directory }, operator, tenantId, version, direct);

    const answered = await decidePolicyChange(deps, tenantId, proposed.changeId, 'approve', { actorId: approver });
    expect(answered).toMatchObject({ status: 'conflicted', appliedVersion: null });
    expect(answered.reason).toMatch(/version 2 to version 3/);
    const row = await policyRow(tenantId);
    expect(row).toMatchObject({ version: 3, change_id: null, approved_by: null });
    expect((row.document as TenantPolicyDocument).grants.roles.GlobalAdmin).toMatchObject({ approvalsRequired: 2, maxDurationMinutes: 30 });
    const events = await changeEvents(tenantId, proposed.changeId);
    expect(events.at(-1)).toMatchObject({ action: 'policy_change.conflicted', payload: { baseVersion: 2, currentVersion: 3 } });
    // A proposal against a version that is no longer current is refused before it starts.
    await expect(
      proposePolicyChange(deps, operator, tenantId, { baseVersion: version, document: documentWith(loose), diff: loosen }),
    ).rejects.toMatchObject({ status: 409 });
  });

  it('an approval racing a direct policy write: exactly one of them writes the next version', async () => {
    const { tenantId, version } = await tenantWithPolicy();
    const approver = await addApprover(tenantId);
    const proposed = await proposePolicyChange(deps, operator, tenantId, {
      baseVersion: version,
      document: documentWith(loose),
      diff: loosen,
    });
    await eventually(
      () => getPolicyChange(stack.pool, tenantId, proposed.changeId),
      (view) => view.version >= 1,
    );
    const [approval, direct] = await Promise.allSettled([
      decidePolicyChange(deps, tenantId, proposed.changeId, 'approve', { actorId: approver }),
      putPolicy(
        { pool: stack.pool, directory: stack.directory },
        operator,
        tenantId,
        version,
        documentWith({ ...strict, maxDurationMinutes: 30 }),
      ),
    ]);
    expect(approval.status).toBe('fulfilled');
    const outcome = (approval as PromiseFulfilledResult<{ status: string }>).value.status;
    const row = await policyRow(tenantId);
    expect(row.version).toBe(3);
    if (outcome === 'applied') {
      expect(direct).toMatchObject({ status: 'rejected', reason: { status: 409 } });
      expect(row.change_id).toBe(proposed.changeId);
    } else {
      expect(outcome).toBe('conflicted');
      expect(direct.status).toBe('fulfilled');
      expect(row.change_id).toBeNull();
    }
  });

  it('two approvals at the same moment with a quorum of two: applied once, both recorded', async () => {
    const { tenantId, version } = await tenantWithPolicy({ policyChangeApprovals: 2, policyChangeTimeoutDays: 1 });
    const approvers = [await addApprover(tenantId), await addApprover(tenantId)];
    const proposed = await proposePolicyChange(deps, operator, tenantId, {
      baseVersion: version,
      document: documentWith(loose),
      diff: loosen,
    });
    expect(proposed).toMatchObject({ approvalsRequired: 2 });
    expect(Date.parse(proposed.expiresAt) - Date.parse(proposed.proposedAt)).toBe(24 * 3600 * 1000);
    const answers = await Promise.all(
      approvers.map((actorId) => decidePolicyChange(deps, tenantId, proposed.changeId, 'approve', { actorId })),
    );
    expect(answers.map((a) => a.status)).toContain('applied');
    const final = await eventually(
      () => getPolicyChange(stack.pool, tenantId, proposed.changeId),
      (view) => view.status !== 'pending',
    );
    expect(final).toMatchObject({ status: 'applied', appliedVersion: 3 });
    expect(final.approvals.map((a) => a.approverId).sort()).toEqual([...approvers].sort());
    const versions = await inScope(
      stack.pool,
      tenantScope(tenantId),
      async (client) =>
        (
          await client.query<{ version: number; approved_by: string[] | null }>(
            'SELECT version, approved_by FROM tenant_policies WHERE tenant_id = $1 ORDER BY version',
            [tenantId],
          )
        ).rows,
    );
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3]);
    expect([...versions[2]!.approved_by!].sort()).toEqual([...approvers].sort());
    const actions = (await changeEvents(tenantId, proposed.changeId)).map((e) => e.action);
    expect(actions.filter((a) => a === 'policy_change.approval_recorded')).toHaveLength(2);
    expect(actions.filter((a) => a === 'policy_change.applied')).toHaveLength(1);
    // Decided: a late decision is refused as a conflict.
    await expect(decidePolicyChange(deps, tenantId, proposed.changeId, 'deny', { actorId: approvers[0]! })).rejects.toMatchObject({
      status: 409,
    });
  });

  it('maps the workflow’s rejections: the proposer approving is 403, a second approval by one approver is 409', async () => {
    const { tenantId, version } = await tenantWithPolicy({ policyChangeApprovals: 2 });
    const approver = await addApprover(tenantId);
    const proposed = await proposePolicyChange(deps, operator, tenantId, {
      baseVersion: version,
      document: documentWith(loose),
      diff: loosen,
    });
    const self = decidePolicyChange(deps, tenantId, proposed.changeId, 'approve', { actorId: operator.actor.id });
    await expect(self).rejects.toBeInstanceOf(AppError);
    await expect(self).rejects.toMatchObject({ status: 403 });
    await decidePolicyChange(deps, tenantId, proposed.changeId, 'approve', { actorId: approver });
    await expect(decidePolicyChange(deps, tenantId, proposed.changeId, 'approve', { actorId: approver })).rejects.toMatchObject({
      status: 409,
    });
    expect(await decidePolicyChange(deps, tenantId, proposed.changeId, 'withdraw', { actorId: operator.actor.id })).toMatchObject({
      status: 'withdrawn',
    });
    expect((await policyRow(tenantId)).version).toBe(2);
  });

  it('an approval or denial sent straight to Temporal in an MSP actor’s name is refused: nothing recorded, nothing written', async () => {
    const { tenantId, version } = await tenantWithPolicy();
    const approver = await addApprover(tenantId);
    const proposed = await proposePolicyChange(deps, operator, tenantId, {
      baseVersion: version,
      document: documentWith(loose),
      diff: loosen,
    });
    const handle = stack.temporal.workflow.getHandle(policyChangeWorkflowId(tenantId, proposed.changeId));
    for (const actorId of [id.actors.mspAdmin!.id, randomUUID()]) {
      for (const update of [approvePolicyChangeUpdate, denyPolicyChangeUpdate]) {
        expect(await rejectionType(handle.executeUpdate(update, { args: [{ actorId, authority: { roles: ['tenant_approver'] } }] }))).toBe(
          PolicyChangeRejection.NotTenantApprover,
        );
      }
    }
    expect(await getPolicyChange(stack.pool, tenantId, proposed.changeId)).toMatchObject({ status: 'pending', approvals: [] });
    // Each Update waited for the proposal to be on record before it was refused: that is all the trail holds.
    expect((await changeEvents(tenantId, proposed.changeId)).map((e) => e.action)).toEqual(['policy_change.proposed']);
    expect((await policyRow(tenantId)).version).toBe(2);
    // Through the use case, the tenant's own approver still decides.
    const applied = await decidePolicyChange(deps, tenantId, proposed.changeId, 'approve', {
      actorId: approver,
      authority: { roles: ['tenant_approver'] },
    });
    expect(applied).toMatchObject({ status: 'applied', appliedVersion: 3 });
    expect(await policyRow(tenantId)).toMatchObject({ version: 3, approved_by: [approver] });
  });

  it('lets only the tenant’s own approvers decide, and the proposer or an MSP admin withdraw', async () => {
    const change = { proposerId: 'proposer' } as Parameters<typeof authorizePolicyChangeDecision>[3];
    const principal = (actorId: string, bindings: Principal['bindings'], kind: Principal['kind'] = 'msp_staff'): Principal => ({
      actorId,
      kind,
      displayName: actorId,
      bindings,
      via: 'api_token',
    });
    const tenant = id.tenantA;
    const approverHere = principal('a', [{ id: 'b1', role: 'tenant_approver', tenantId: tenant }], 'tenant_staff');
    const approverElsewhere = principal('b', [{ id: 'b2', role: 'tenant_approver', tenantId: id.tenantB }], 'tenant_staff');
    // Bound as approver before MSP staff were refused that role: still never decides.
    const mspApprover = principal('c', [{ id: 'b5', role: 'tenant_approver', tenantId: tenant }]);
    const admin = principal('m', [{ id: 'b3', role: 'msp_admin', tenantId: null }]);
    const proposer = principal('proposer', [{ id: 'b4', role: 'operator', tenantId: null }]);
    expect(authorizePolicyChangeDecision(approverHere, tenant, 'approve', change).map((b) => b.id)).toEqual(['b1']);
    for (const [who, decision] of [
      [approverElsewhere, 'approve'],
      [mspApprover, 'approve'],
      [mspApprover, 'deny'],
      [admin, 'approve'],
      [admin, 'deny'],
      [proposer, 'approve'],
      [approverHere, 'withdraw'],
    ] as const) {
      expect(() => authorizePolicyChangeDecision(who, tenant, decision, change)).toThrow(expect.objectContaining({ status: 403 }));
    }
    expect(authorizePolicyChangeDecision(admin, tenant, 'withdraw', change).map((b) => b.id)).toEqual(['b3']);
    expect(authorizePolicyChangeDecision(proposer, tenant, 'withdraw', change)).toEqual([]);
  });
});
