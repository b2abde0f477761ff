import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { MSP_CHAIN } from '../../core/audit/chain.js';
import type { DirectoryConnector } from '../../core/directory/connector.js';
import {
  TEMPLATE_APPLY_WORKFLOW_TYPE,
  templateApplySearchAttributes,
  templateApplyWorkflowId,
  TEMPLATES_TASK_QUEUE,
  type TemplateApplyInput,
} from '../../core/templates/contract.js';
import { RolloutRollbackView, TemplateRollbackView } from '../../core/templates/rollback-schemas.js';
import { runCliOk } from '../support/cli.js';
import { apiClient, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { mspStaff, seedTenancy, setPolicy, tenantStaff, type TestTenancy } from '../support/tenancy.js';

/**
 * Rollback on the real stack: an apply that created a role, changed another, tightened settings
 * and wrote the policy, rolled back to exactly the state before with the pin moved back; a
 * half-applied tenant (its apply failed at verify) rolled back exactly; the tenant's own later
 * changes kept as conflicts; and a whole rollout rolled back tenant by tenant.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: PostgresDirectory;
let owner: { actorId: string; token: string };
let owner2: { actorId: string; token: string };
/** Tenants whose target takes security settings without keeping them (an apply then fails at verify). */
const forgetful = new Set<string>();
/** The target pretends to lack `roleDelete`, as LDAP and SCIM do. */
let noRoleDelete = false;

const call = apiClient(() => stack.baseUrl);
const cli = (token: string) => ({ TENURE_URL: stack.baseUrl, TENURE_TOKEN: token });

/** Creates Ops, changes Helpdesk, tightens three settings and writes the grants section naming Ops. */
const V2 = {
  directory: {
    roles: [
      { name: 'Ops', description: 'Operators of {{tenant.slug}}', privileged: true },
      { name: 'Helpdesk', description: 'Helpdesk run by the MSP', privileged: false },
    ],
    settings: { mfaRequired: true, passwordMinLength: 12, lockoutThreshold: 5 },
  },
  policy: { grants: { roles: { Ops: { maxDurationMinutes: 60, approvalsRequired: 1 } } } },
};
const V1 = { directory: { roles: [], settings: { passwordMinLength: 10 } } };

beforeAll(async () => {
  stack = await startTestStack({
    directory: (real: DirectoryConnector): DirectoryConnector => ({
      ...real,
      get capabilities() {
        return { ...real.capabilities, roleDelete: !noRoleDelete };
      },
      applySecuritySettings: (tenantId, settings) =>
        forgetful.has(tenantId) ? Promise.resolve() : real.applySecuritySettings(tenantId, settings),
    }),
  });
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  owner = await mspStaff(call, id.tokens.mspAdmin!, 'Template owner', ['template_owner']);
  owner2 = await mspStaff(call, id.tokens.mspAdmin!, 'Second template owner', ['template_owner']);
});
afterAll(async () => {
  await stack?.stop();
});

const versionPath = (templateId: string, version: number) => `/v1/templates/${templateId}/versions/${version}`;
const tpl = (tenantId: string) => `/v1/tenants/${tenantId}/template`;

async function approve(templateId: string, version: number): Promise<void> {
  expect((await call(owner.token, 'POST', `${versionPath(templateId, version)}/propose`, {})).status).toBe(200);
  expect((await call(owner2.token, 'POST', `${versionPath(templateId, version)}/approve`, {})).status).toBe(200);
}

/** A template whose versions (one per document) are all approved. */
async function approvedTemplate(...documents: Json[]): Promise<string> {
  const created = await call(owner.token, 'POST', '/v1/templates', {
    name: `rb-${randomBytes(4).toString('hex')}`,
    document: documents[0],
  });
  expect(created.status).toBe(201);
  const templateId = created.body.template.id as string;
  await approve(templateId, 1);
  for (const [i, document] of documents.slice(1).entries()) {
    expect((await call(owner.token, 'POST', `/v1/templates/${templateId}/versions`, { document })).status).toBe(201);
    await approve(templateId, i + 2);
  }
  return templateId;
}

/** A fresh tenant with its own approver and a Helpdesk role of its own. */
async function freshTenant(): Promise<{ tenantId: string; approver: string }> {
  const slug = `rb-${randomBytes(4).toString('hex')}`;
  const created = await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug, name: `Tenant ${slug}` });
  expect(created.status).toBe(201);
  const tenantId = created.body.id as string;
  const approver = (await tenantStaff(call, id.tokens.mspAdmin!, tenantId, 'Approver', ['tenant_approver'])).token;
  await directory.upsertRole(tenantId, { name: 'Helpdesk', description: 'Our own helpdesk', privileged: true });
  return { tenantId, approver };
}

/** Everything a rollback restores, read back: roles through the connector, settings, the policy in force, the pin. */
async function tenantState(tenantId: string) {
  const policy = (await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/policy`)).body;
  return {
    roles: await directory.listAllRoles(tenantId),
    settings: await directory.getSecuritySettings(tenantId),
    policy: policy.document as Json,
    policyVersion: policy.version as number,
  };
}
const withoutVersion = ({ policyVersion: _, ...state }: Awaited<ReturnType<typeof tenantState>>) => state;

const APPLY_DONE = ['applied', 'failed', 'skipped', 'denied'];

/** Applies the tenant's pin (approving at its gate when the plan needs it) and waits for the end. */
async function applyPin(tenantId: string, approver: string): Promise<Json> {
  const started = await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/apply`, { approvalTimeoutMinutes: 60 });
  expect(started.status).toBe(202);
  const rolloutId = started.body.rolloutId as string;
  const view = await eventually(
    async () => (await call(id.tokens.operator, 'GET', `${tpl(tenantId)}/applies/${rolloutId}`)).body,
    (v) => v.status === 'awaiting_approval' || APPLY_DONE.includes(v.status as string),
    30_000,
  );
  if (view.status === 'awaiting_approval') {
    expect((await call(approver, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/approve`, {})).status).toBe(200);
  }
  return eventually(
    async () => (await call(id.tokens.operator, 'GET', `${tpl(tenantId)}/applies/${rolloutId}`)).body,
    (v) => APPLY_DONE.includes(v.status as string),
    60_000,
  );
}

/** A fresh tenant pinned to V2 and applied, with its state from before the apply. */
async function appliedTenant() {
  const { tenantId, approver } = await freshTenant();
  const templateId = await approvedTemplate(V2);
  expect((await call(id.tokens.operator, 'PUT', tpl(tenantId), { templateId, version: 1 })).status).toBe(200);
  const before = await tenantState(tenantId);
  const apply = await applyPin(tenantId, approver);
  expect(apply.status).toBe('applied');
  return { tenantId, approver, before, apply };
}

const ROLLBACK_DONE = ['rolled_back', 'rolled_back_with_conflicts', 'failed'];
const waitForRollback = (tenantId: string, rolloutId: string) =>
  eventually(
    async () => (await call(id.tokens.operator, 'GET', `${tpl(tenantId)}/applies/${rolloutId}/rollback`)).body,
    (v) => ROLLBACK_DONE.includes(v.status as string),
    60_000,
  );

async function tenantEvents(
  tenantId: string,
  like: string,
): Promise<{ action: string; workflow_id: string; authority: Json; payload: Json }[]> {
  const { rows } = await stack.db.pool.query(
    'SELECT action, workflow_id, authority, payload FROM audit_events WHERE tenant_id = $1 AND action LIKE $2 ORDER BY seq',
    [tenantId, like],
  );
  return rows as { action: string; workflow_id: string; authority: Json; payload: Json }[];
}

describe('rolling back one tenant’s apply', () => {
  it('restores the roles, settings and policy exactly as before the apply, verifies by reading back, and re-pins the version applied before', async () => {
    const { tenantId, approver } = await freshTenant();
    const templateId = await approvedTemplate(V1, V2);
    expect((await call(id.tokens.operator, 'PUT', tpl(tenantId), { templateId, version: 1 })).status).toBe(200);
    expect((await applyPin(tenantId, approver)).status).toBe('applied');

    const before = await tenantState(tenantId);
    expect((await call(id.tokens.operator, 'PUT', tpl(tenantId), { templateId, version: 2 })).status).toBe(200);
    const apply = await applyPin(tenantId, approver);
    expect(apply).toMatchObject({ status: 'applied', applied: { roles: 2, settings: 3, policyVersion: before.policyVersion + 1 } });
    const rolloutId = apply.rolloutId as string;
    const applied = await tenantState(tenantId);
    expect(applied.roles.map((r) => r.name)).toEqual(['Helpdesk', 'Ops']);
    expect(applied.settings).toMatchObject({ mfaRequired: true, passwordMinLength: 12, lockoutThreshold: 5 });
    expect((await call(id.tokens.operator, 'GET', tpl(tenantId))).body).toMatchObject({ version: 2, appliedVersion: 2 });

    // The tenant's approvers and auditors may read it, never start it.
    expect((await call(approver, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/rollback`)).status).toBe(403);
    const started = await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/rollback`);
    expect(started.status).toBe(202);
    expect(started.body).toEqual({ rolloutId, tenantId, workflowId: `rollout/${rolloutId}/${tenantId}/rollback`, existing: false });
    const done = await waitForRollback(tenantId, rolloutId);
    expect(() => TemplateRollbackView.parse(done)).not.toThrow(); // the answer is what the OpenAPI document says
    expect(done).toMatchObject({
      status: 'rolled_back',
      conflicts: [],
      unsupported: [],
      pin: { from: 2, to: 1 },
      policyVersion: before.policyVersion + 2,
    });
    expect([...(done.restored as string[])].sort()).toEqual(
      [
        'directory.roles.Helpdesk',
        'directory.roles.Ops',
        'directory.settings.lockoutThreshold',
        'directory.settings.mfaRequired',
        'directory.settings.passwordMinLength',
        'policy',
      ].sort(),
    );

    // Exactly as before: roles (Ops gone, Helpdesk's own description and flag back), settings, policy content.
    const after = await tenantState(tenantId);
    expect(withoutVersion(after)).toEqual(withoutVersion(before));
    expect(after.policyVersion).toBe(before.policyVersion + 2);
    expect((await call(approver, 'GET', tpl(tenantId))).body).toMatchObject({ templateId, version: 2, appliedVersion: 1 });
    // The pinned version would apply again: the rollback left the tenant where version 1 was.
    expect((await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/dry-run`, {})).body.summary.changes).toBeGreaterThan(0);

    // Audited once per step on the tenant's chain; the policy restored with the rollback as authority.
    const events = await tenantEvents(tenantId, 'template.rollback.%');
    expect(events.map((e) => e.action)).toEqual([
      'template.rollback.requested',
      'template.rollback.restored',
      'template.rollback.verified',
    ]);
    expect(events.every((e) => e.workflow_id === started.body.workflowId)).toBe(true);
    const policyEvents = await tenantEvents(tenantId, 'policy.updated');
    expect(policyEvents.at(-1)!.authority).toMatchObject({ rolloutId, rollback: started.body.workflowId });

    // A second request answers the first: nothing restored twice.
    const again = await call(id.tokens.mspAdmin, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/rollback`);
    expect(again.status).toBe(202);
    expect(again.body.existing).toBe(true);
    expect(await tenantEvents(tenantId, 'template.rollback.%')).toHaveLength(3);
    expect((await tenantState(tenantId)).policyVersion).toBe(after.policyVersion);
  });

  it('a half-applied tenant (its apply failed at verify, after roles and policy were written) is rolled back exactly, from the CLI', async () => {
    const { tenantId, approver } = await freshTenant();
    const templateId = await approvedTemplate(V2);
    expect((await call(id.tokens.operator, 'PUT', tpl(tenantId), { templateId, version: 1 })).status).toBe(200);
    const before = await tenantState(tenantId);
    forgetful.add(tenantId);
    const apply = await applyPin(tenantId, approver).finally(() => forgetful.delete(tenantId));
    expect(apply).toMatchObject({ status: 'failed', outcome: expect.stringMatching(/^verify: /), snapshotId: expect.any(String) });
    const rolloutId = apply.rolloutId as string;
    const half = await tenantState(tenantId);
    expect(half.roles.map((r) => r.name)).toEqual(['Helpdesk', 'Ops']);
    expect(half.settings).toEqual(before.settings);
    expect(half.policyVersion).toBe(before.policyVersion + 1);

    const started = JSON.parse(
      (await runCliOk(['template', 'rollback', '--json', rolloutId, '--tenant', tenantId], cli(id.tokens.operator!))).stdout,
    ) as Json;
    expect(started).toMatchObject({ rolloutId, tenantId, existing: false });
    const done = await waitForRollback(tenantId, rolloutId);
    expect(done).toMatchObject({ status: 'rolled_back', conflicts: [], pin: null });
    expect(done.unchanged).toEqual(
      expect.arrayContaining([
        'directory.settings.lockoutThreshold',
        'directory.settings.mfaRequired',
        'directory.settings.passwordMinLength',
      ]),
    );
    expect(withoutVersion(await tenantState(tenantId))).toEqual(withoutVersion(before));
    expect((await call(id.tokens.operator, 'GET', tpl(tenantId))).body.appliedVersion).toBeNull();
    const status = JSON.parse(
      (await runCliOk(['template', 'rollback-status', '--json', rolloutId, '--tenant', tenantId], cli(id.tokens.operator!))).stdout,
    ) as Json;
    expect(status.status).toBe('rolled_back');
  });

  it('a rollback that failed (its target never read back as the snapshot) is requested again once the target recovers, and restores exactly', async () => {
    const { tenantId, before, apply } = await appliedTenant();
    const rolloutId = apply.rolloutId as string;
    const path = `${tpl(tenantId)}/applies/${rolloutId}/rollback`;
    forgetful.add(tenantId);
    let first: Json;
    try {
      expect((await call(id.tokens.operator, 'POST', path)).status).toBe(202);
      first = await waitForRollback(tenantId, rolloutId);
    } finally {
      forgetful.delete(tenantId);
    }
    expect(first).toMatchObject({ status: 'failed', outcome: expect.stringMatching(/^verify: /), pin: null });
    // Roles and policy were restored, the settings not: the tenant is half rolled back.
    const half = await tenantState(tenantId);
    expect(half.roles).toEqual(before.roles);
    expect(half.settings).not.toEqual(before.settings);
    expect((await call(id.tokens.operator, 'GET', tpl(tenantId))).body.appliedVersion).toBe(1);

    const again = await call(id.tokens.operator, 'POST', path);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ rolloutId, tenantId, existing: false });
    const done = await waitForRollback(tenantId, rolloutId);
    expect(done).toMatchObject({ status: 'rolled_back', conflicts: [], outcome: null });
    // What the first attempt restored reads as unchanged; only the settings are restored now.
    expect([...(done.restored as string[])].sort()).toEqual(
      ['directory.settings.lockoutThreshold', 'directory.settings.mfaRequired', 'directory.settings.passwordMinLength'].sort(),
    );
    expect(done.unchanged).toEqual(expect.arrayContaining(['directory.roles.Ops', 'policy']));
    const after = await tenantState(tenantId);
    expect(withoutVersion(after)).toEqual(withoutVersion(before));
    expect(after.policyVersion).toBe(half.policyVersion);
    expect((await call(id.tokens.operator, 'GET', tpl(tenantId))).body.appliedVersion).toBeNull();
    // Each attempt audited on the tenant's chain; a rollback that restored is never run again.
    expect((await tenantEvents(tenantId, 'template.rollback.%')).map((e) => e.action)).toEqual([
      'template.rollback.requested',
      'template.rollback.restored',
      'template.rollback.failed',
      'template.rollback.requested',
      'template.rollback.restored',
      'template.rollback.verified',
    ]);
    expect((await call(id.tokens.operator, 'POST', path)).body.existing).toBe(true);
    expect(await tenantEvents(tenantId, 'template.rollback.%')).toHaveLength(6);
  });

  it('never overwrites what the tenant changed after the apply: those paths are listed as conflicts and kept, the rest is restored', async () => {
    const { tenantId, approver, before, apply } = await appliedTenant();
    const rolloutId = apply.rolloutId as string;

    // The tenant's own later decisions: a longer minimum, someone in Ops, and a policy change of its own.
    await directory.applySecuritySettings(tenantId, { passwordMinLength: 14 });
    await directory.upsertUser(tenantId, { id: 'u-ops', username: 'ops', displayName: 'Ops person' });
    await directory.assignRole(tenantId, 'u-ops', 'Ops');
    const current = (await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/policy`)).body;
    await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver }, tenantId, {
      expectedVersion: current.version as number,
      document: { ...(current.document as Json), grants: { roles: { Ops: { maxDurationMinutes: 30, approvalsRequired: 1 } } } },
    });
    const moved = await tenantState(tenantId);
    expect(moved.policyVersion).toBe(current.version + 1);

    expect((await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/rollback`)).status).toBe(202);
    const done = await waitForRollback(tenantId, rolloutId);
    expect(done.status).toBe('rolled_back_with_conflicts');
    expect((done.conflicts as Json[]).map((c) => c.path).sort()).toEqual([
      'directory.roles.Ops',
      'directory.settings.passwordMinLength',
      'policy',
    ]);
    expect(done.conflicts).toContainEqual(
      expect.objectContaining({
        path: 'directory.settings.passwordMinLength',
        snapshot: before.settings.passwordMinLength,
        applied: 12,
        current: 14,
      }),
    );
    expect(done.pin).toEqual({ from: 1, to: null });

    const after = await tenantState(tenantId);
    // Kept: the tenant's minimum, Ops with its member, its own policy version. Restored: the rest.
    expect(after.settings).toEqual({ ...before.settings, passwordMinLength: 14 });
    expect(after.roles).toEqual([...before.roles, { name: 'Ops', description: expect.any(String), privileged: true }]);
    expect(after.policyVersion).toBe(moved.policyVersion);
    expect(after.policy).toEqual(moved.policy);
    const verified = (await tenantEvents(tenantId, 'template.rollback.verified'))[0]!;
    expect(verified.payload).toMatchObject({ status: 'rolled_back_with_conflicts' });
    expect([...(verified.payload.conflicts as string[])].sort()).toEqual([
      'directory.roles.Ops',
      'directory.settings.passwordMinLength',
      'policy',
    ]);
  });

  it('a role the apply created stays where the target cannot delete roles: listed as unsupported, everything else restored', async () => {
    const { tenantId, before, apply } = await appliedTenant();
    noRoleDelete = true;
    try {
      const rolloutId = apply.rolloutId as string;
      expect((await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/rollback`)).status).toBe(202);
      const done = await waitForRollback(tenantId, rolloutId);
      expect(done).toMatchObject({
        status: 'rolled_back_with_conflicts',
        conflicts: [],
        unsupported: ['directory.roles.Ops: roleDelete: not supported by target'],
      });
      const after = await tenantState(tenantId);
      expect(after.roles).toEqual([...before.roles, expect.objectContaining({ name: 'Ops' })]);
      expect(after.settings).toEqual(before.settings);
      expect(after.policy).toEqual(before.policy);
    } finally {
      noRoleDelete = false;
    }
  });

  it('a rollback while the apply waits at its gate, or of an apply that never snapshotted, is refused with 409; an unknown apply is 404', async () => {
    const { tenantId, approver } = await freshTenant();
    const templateId = await approvedTemplate({ directory: { roles: [], settings: { passwordMinLength: 6 } } });
    expect((await call(id.tokens.operator, 'PUT', tpl(tenantId), { templateId, version: 1 })).status).toBe(200);
    const started = await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/apply`, { approvalTimeoutMinutes: 60 });
    const rolloutId = started.body.rolloutId as string;
    await eventually(
      async () => (await call(id.tokens.operator, 'GET', `${tpl(tenantId)}/applies/${rolloutId}`)).body,
      (v) => v.status === 'awaiting_approval',
      30_000,
    );
    const running = await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/rollback`);
    expect(running.status).toBe(409);
    expect(running.body.error.message).toMatch(/awaiting_approval/);
    expect((await call(approver, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/deny`, {})).status).toBe(200);
    const denied = await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/applies/${rolloutId}/rollback`);
    expect(denied.status).toBe(409);
    expect(denied.body.error.message).toMatch(/no snapshot/);
    expect((await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/applies/${randomUUID()}/rollback`)).status).toBe(404);
    expect((await call(id.tokens.operator, 'GET', `${tpl(tenantId)}/applies/${rolloutId}/rollback`)).status).toBe(404);
    expect(await tenantEvents(tenantId, 'template.rollback.%')).toEqual([]);
  });
});

describe('rolling back a whole rollout', () => {
  it('rolls back every tenant that took a snapshot, a window at a time, with progress, audited on the MSP chain once', async () => {
    const templateId = await approvedTemplate({
      directory: {
        roles: [{ name: 'Ops', description: 'Operators of {{tenant.slug}}', privileged: true }],
        settings: { mfaRequired: true, passwordMinLength: 12 },
      },
    });
    const rolloutId = randomUUID();
    const tenants = await Promise.all([freshTenant(), freshTenant(), freshTenant()]);
    const before = new Map<string, Json>();
    for (const { tenantId } of tenants) {
      expect((await call(id.tokens.operator, 'PUT', tpl(tenantId), { templateId, version: 1 })).status).toBe(200);
      before.set(tenantId, withoutVersion(await tenantState(tenantId)));
      // One rollout, several tenants: started as the rollout workflow will start its children.
      const input: TemplateApplyInput = {
        rolloutId,
        tenantId,
        templateId,
        version: 1,
        parameters: {},
        requester: { id: id.actors.operator!.id, type: 'user' },
        authority: { roles: ['operator'] },
        approvalTimeoutSeconds: 3600,
      };
      await stack.temporal.workflow.start(TEMPLATE_APPLY_WORKFLOW_TYPE, {
        taskQueue: TEMPLATES_TASK_QUEUE,
        workflowId: templateApplyWorkflowId(rolloutId, tenantId),
        args: [input],
        typedSearchAttributes: templateApplySearchAttributes(tenantId),
      });
    }
    for (const { tenantId } of tenants) {
      await eventually(
        async () => (await call(id.tokens.operator, 'GET', `${tpl(tenantId)}/applies/${rolloutId}`)).body,
        (v) => v.status === 'applied',
        60_000,
      );
    }

    expect((await call(id.tokens.mspAuditor, 'POST', `/v1/rollouts/${rolloutId}/rollback`, {})).status).toBe(403);
    expect((await call(id.tokens.operator, 'POST', `/v1/rollouts/${randomUUID()}/rollback`, {})).status).toBe(404);
    const started = await call(id.tokens.operator, 'POST', `/v1/rollouts/${rolloutId}/rollback`, { window: 2 });
    expect(started.status).toBe(202);
    expect(started.body).toEqual({ rolloutId, workflowId: `rollout/${rolloutId}/rollback`, existing: false });
    const done = await eventually(
      async () => (await call(id.tokens.operator, 'GET', `/v1/rollouts/${rolloutId}/rollback`)).body,
      (v) => v.status === 'completed',
      90_000,
    );
    expect(() => RolloutRollbackView.parse(done)).not.toThrow();
    expect(done).toMatchObject({
      counts: { total: 3, started: 3, rolledBack: 3, withConflicts: 0, failed: 0, alreadyRequested: 0 },
      running: [],
    });
    expect((done.tenants as Json[]).map((t) => [t.tenantId, t.status])).toEqual(
      tenants
        .map((t) => t.tenantId)
        .sort()
        .map((t) => [t, 'rolled_back']),
    );
    for (const { tenantId } of tenants) {
      expect(withoutVersion(await tenantState(tenantId))).toEqual(before.get(tenantId));
      const events = await tenantEvents(tenantId, 'template.rollback.%');
      expect(events.map((e) => e.action)).toEqual([
        'template.rollback.requested',
        'template.rollback.restored',
        'template.rollback.verified',
      ]);
      expect(events[0]!.payload).toMatchObject({ parentWorkflowId: `rollout/${rolloutId}/rollback` });
    }
    const msp = await stack.db.pool.query(
      `SELECT action, workflow_id FROM audit_events WHERE tenant_id = $1 AND action LIKE 'rollout.rollback.%' AND target_id = $2 ORDER BY seq`,
      [MSP_CHAIN, rolloutId],
    );
    expect(msp.rows).toEqual([
      { action: 'rollout.rollback.requested', workflow_id: `rollout/${rolloutId}/rollback` },
      { action: 'rollout.rollback.completed', workflow_id: `rollout/${rolloutId}/rollback` },
    ]);

    // Asked again (from the CLI), the rollout's rollback answers the first one.
    const again = JSON.parse(
      (await runCliOk(['template', 'rollback-rollout', '--json', rolloutId], cli(id.tokens.operator!))).stdout,
    ) as Json;
    expect(again).toMatchObject({ rolloutId, existing: true });
    const status = JSON.parse(
      (await runCliOk(['template', 'rollback-rollout-status', '--wait', '--json', rolloutId], cli(id.tokens.mspAuditor!))).stdout,
    ) as Json;
    expect(status).toMatchObject({ status: 'completed', counts: { rolledBack: 3, failed: 0 } });
  });
});
