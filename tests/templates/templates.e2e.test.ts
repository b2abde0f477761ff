import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import type { DirectoryCapability } from '../../core/directory/connector.js';
import { MSP_CHAIN } from '../../core/audit/chain.js';
import {
  TEMPLATE_APPLY_WORKFLOW_TYPE,
  templateApplySearchAttributes,
  templateApplyWorkflowId,
  TEMPLATES_TASK_QUEUE,
} from '../../core/templates/contract.js';
import { inScope, mspScope } from '../../db/scope.js';
import { runCliOk } from '../support/cli.js';
import { withToggledCapability } from '../support/directory-targets.js';
import { apiClient, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { mspStaff, seedTenancy, setPolicy, tenantStaff, type TestTenancy } from '../support/tenancy.js';

/**
 * Templates on the real stack: authoring and four-eyes approval (MSP chain), the diff between
 * versions, pinning a tenant (its chain) and the dry-run, read through the tenant's connector and
 * shown to change nothing.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: PostgresDirectory;
let owner: { actorId: string; token: string };
let owner2: { actorId: string; token: string };
/** A capability the stack's directory pretends to lack, as an LDAP or SCIM target would. */
let lacking: DirectoryCapability | null = null;

const call = apiClient(() => stack.baseUrl);

/** Version 1: three roles, security settings, and the grants section with a longer cap and a lower quorum on GlobalAdmin. */
const V1 = {
  parameters: { helpdesk: { description: 'Who runs the tenant’s helpdesk', default: 'the service desk' } },
  directory: {
    roles: [
      { name: 'GlobalAdmin', description: 'Global administrators of {{tenant.name}}', privileged: true },
      { name: 'HelpdeskAdmin', description: 'Run by {{helpdesk}}' },
      { name: 'SecurityReader', description: 'Reads security settings' },
    ],
    settings: { mfaRequired: true, passwordMinLength: 12, lockoutThreshold: 5, lockoutDurationMinutes: 30, sessionLifetimeMinutes: 2880 },
  },
  policy: {
    grants: {
      roles: {
        GlobalAdmin: { maxDurationMinutes: 120, approvalsRequired: 1 },
        HelpdeskAdmin: { privileged: false, maxDurationMinutes: 480, approvalsRequired: 0 },
      },
    },
  },
};

beforeAll(async () => {
  stack = await startTestStack({ directory: (real) => withToggledCapability(real, () => lacking) });
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  owner = await mspStaff(call, id.tokens.mspAdmin!, 'Template owner', ['template_owner']);
  owner2 = await mspStaff(call, id.tokens.mspAdmin!, 'Second template owner', ['template_owner']);
  await directory.upsertRole(id.tenantA, { name: 'GlobalAdmin', description: 'Global admin', privileged: true });
  await directory.upsertRole(id.tenantA, { name: 'HelpdeskAdmin', description: '' });
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
    expectedVersion: 1,
    document: { grants: { roles: { GlobalAdmin: { maxDurationMinutes: 60, approvalsRequired: 2 } } } },
  });
  expect(approval?.body.status).toBe('applied');
});
afterAll(async () => {
  await stack?.stop();
});

const name = () => `baseline-${randomBytes(4).toString('hex')}`;
const versionPath = (templateId: string, version: number) => `/v1/templates/${templateId}/versions/${version}`;

/** A template whose version 1 is approved: written and proposed by `owner`, approved by `owner2`. */
async function approvedTemplate(document: Json = V1): Promise<string> {
  const created = await call(owner.token, 'POST', '/v1/templates', { name: name(), document });
  expect(created.status).toBe(201);
  const templateId = created.body.template.id as string;
  expect((await call(owner.token, 'POST', `${versionPath(templateId, 1)}/propose`, {})).status).toBe(200);
  expect((await call(owner2.token, 'POST', `${versionPath(templateId, 1)}/approve`, {})).status).toBe(200);
  return templateId;
}

async function mspEvents(templateId: string): Promise<Json[]> {
  const { rows } = await stack.db.pool.query(
    `SELECT action, actor_id AS actor, payload FROM audit_events
      WHERE tenant_id = $1 AND (target_id = $2 OR target_id LIKE $2 || '/%') ORDER BY seq`,
    [MSP_CHAIN, templateId],
  );
  return rows as Json[];
}

describe('templates as controlled artefacts', () => {
  it('an author never approves: the owner who wrote and proposed it is refused, another owner approves, and each step is on the MSP chain', async () => {
    const created = await call(owner.token, 'POST', '/v1/templates', { name: name(), description: 'Baseline', document: V1 });
    expect(created.status).toBe(201);
    expect(created.body.version).toMatchObject({ version: 1, status: 'draft', authors: [owner.actorId] });
    const templateId = created.body.template.id as string;

    // Approving needs a proposal first; the author proposes.
    expect((await call(owner2.token, 'POST', `${versionPath(templateId, 1)}/approve`, {})).body.error.code).toBe('template_version_status');
    expect((await call(owner.token, 'POST', `${versionPath(templateId, 1)}/propose`, {})).body.status).toBe('proposed');

    const self = await call(owner.token, 'POST', `${versionPath(templateId, 1)}/approve`, {});
    expect(self.status).toBe(403);
    expect(self.body.error.code).toBe('template_self_approval');
    expect((await call(owner.token, 'GET', versionPath(templateId, 1))).body.status).toBe('proposed');

    const approved = await call(owner2.token, 'POST', `${versionPath(templateId, 1)}/approve`, { comment: 'reviewed' });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', approvedBy: owner2.actorId, proposedBy: owner.actorId, comment: 'reviewed' });

    expect(await mspEvents(templateId)).toEqual([
      expect.objectContaining({ action: 'template.created', actor: owner.actorId }),
      expect.objectContaining({ action: 'template.version.proposed', actor: owner.actorId }),
      expect.objectContaining({ action: 'template.version.approved', actor: owner2.actorId }),
    ]);
  });

  it('a deprecated version takes no new pin and no rollout; only an approved one is deprecated, once, on the MSP chain', async () => {
    const templateId = await approvedTemplate();
    const fresh = await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug: name(), name: 'Deprecation test' });
    expect(fresh.status).toBe(201);
    const tenantId = fresh.body.id as string;
    const tenantPin = `/v1/tenants/${tenantId}/template`;
    // Before its pin, the tenant's 404 names the missing pin, not the tenant (which exists).
    const unpinned = await call(id.tokens.operator, 'GET', tenantPin);
    expect(unpinned.status).toBe(404);
    expect(unpinned.body.error.code).toBe('template_not_pinned');
    expect((await call(id.tokens.operator, 'PUT', tenantPin, { templateId, version: 1 })).status).toBe(200);
    expect((await call(id.tokens.operator, 'GET', tenantPin)).body).toMatchObject({ templateId, version: 1 });
    // Operators assign versions; retiring one is for template owners and MSP admins.
    expect((await call(id.tokens.operator, 'POST', `${versionPath(templateId, 1)}/deprecate`, {})).status).toBe(403);
    const deprecated = await call(owner.token, 'POST', `${versionPath(templateId, 1)}/deprecate`, { comment: 'superseded' });
    expect(deprecated.status).toBe(200);
    expect(deprecated.body).toMatchObject({ status: 'deprecated', deprecatedBy: owner.actorId, deprecatedAt: expect.any(String) });
    const again = await call(owner2.token, 'POST', `${versionPath(templateId, 1)}/deprecate`, {});
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('template_version_status');

    const pin = await call(id.tokens.operator, 'PUT', `/v1/tenants/${id.tenantA}/template`, { templateId, version: 1 });
    expect(pin.status).toBe(409);
    const rollout = await call(id.tokens.operator, 'POST', '/v1/rollouts', { templateId, version: 1, tenants: [tenantId] });
    expect(rollout.status).toBe(409);
    // The tenant pinned before keeps its pin: deprecation stops new uses, it does not move anyone.
    expect((await call(id.tokens.operator, 'GET', tenantPin)).body).toMatchObject({ templateId, version: 1 });
    const versionSteps = (await mspEvents(templateId)).filter((e) => String(e.action).startsWith('template.version.'));
    expect(versionSteps.map((e) => [e.action, e.actor])).toEqual([
      ['template.version.proposed', owner.actorId],
      ['template.version.approved', owner2.actorId],
      ['template.version.deprecated', owner.actorId],
    ]);
  });

  it('whoever edits a draft becomes an author: then only someone else, an MSP admin here, approves it', async () => {
    const templateId = await approvedTemplate();
    const draft = await call(owner.token, 'POST', `/v1/templates/${templateId}/versions`, { document: V1 });
    expect(draft.body).toMatchObject({ version: 2, status: 'draft' });
    const edited = await call(owner2.token, 'PUT', versionPath(templateId, 2), {
      expectedUpdatedAt: draft.body.updatedAt,
      document: { ...V1, directory: { ...V1.directory, settings: { ...V1.directory.settings, passwordMinLength: 14 } } },
    });
    expect(edited.status).toBe(200);
    expect(edited.body.authors).toEqual([owner.actorId, owner2.actorId]);
    // An edit based on what was read before that one is refused.
    const stale = await call(owner.token, 'PUT', versionPath(templateId, 2), { expectedUpdatedAt: draft.body.updatedAt, document: V1 });
    expect(stale.status).toBe(409);

    await call(owner.token, 'POST', `${versionPath(templateId, 2)}/propose`, {});
    for (const author of [owner, owner2]) {
      expect((await call(author.token, 'POST', `${versionPath(templateId, 2)}/approve`, {})).body.error.code).toBe(
        'template_self_approval',
      );
    }
    const approved = await call(id.tokens.mspAdmin, 'POST', `${versionPath(templateId, 2)}/approve`, {});
    expect(approved.body).toMatchObject({ status: 'approved', approvedBy: id.actors.mspAdmin!.id });
  });

  it('an approved version is immutable: the API refuses edits and the database refuses a direct change', async () => {
    const templateId = await approvedTemplate();
    const version = (await call(owner.token, 'GET', versionPath(templateId, 1))).body;
    const edit = await call(owner.token, 'PUT', versionPath(templateId, 1), { expectedUpdatedAt: version.updatedAt, document: {} });
    expect(edit.status).toBe(409);
    expect(edit.body.error.code).toBe('template_version_status');
    await expect(
      inScope(stack.pool, mspScope, (client) =>
        client.query(`UPDATE template_versions SET document = '{}' WHERE template_id = $1`, [templateId]),
      ),
    ).rejects.toThrow(/approved: it cannot change/);
    await expect(
      inScope(stack.pool, mspScope, (client) =>
        client.query(`UPDATE template_versions SET status = 'draft' WHERE template_id = $1`, [templateId]),
      ),
    ).rejects.toThrow(/cannot change/);
    expect((await call(owner.token, 'GET', versionPath(templateId, 1))).body.document).toEqual(version.document);
  });

  it('only template owners author; operators and tenant staff are refused', async () => {
    expect((await call(id.tokens.operator, 'POST', '/v1/templates', { name: name(), document: V1 })).status).toBe(403);
    expect((await call(id.tokens.mspAdmin, 'POST', '/v1/templates', { name: name(), document: V1 })).status).toBe(403);
    expect((await call(id.tokens.approverA, 'GET', '/v1/templates')).status).toBe(403);
  });

  it('a document naming an undeclared parameter, or listing a role twice, is refused by field path', async () => {
    const bad = await call(owner.token, 'POST', '/v1/templates', {
      name: name(),
      document: { directory: { roles: [{ name: 'A', description: '{{nope}}' }, { name: 'A' }] } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues).toEqual(
      expect.arrayContaining([
        { path: 'body.document.directory.roles.0.description', message: '{{nope}} is not a declared parameter' },
        { path: 'body.document.directory.roles.1.name', message: 'a role is listed twice' },
      ]),
    );
  });

  it('the diff between two versions names each changed path with before and after, classified like a tenant policy change', async () => {
    const templateId = await approvedTemplate();
    const v2 = structuredClone(V1) as Json;
    v2.directory.settings.mfaRequired = false;
    v2.directory.settings.sessionLifetimeMinutes = 720;
    v2.directory.roles = v2.directory.roles.filter((r: Json) => r.name !== 'SecurityReader');
    v2.directory.roles[1].privileged = true;
    v2.policy.grants.roles.GlobalAdmin.maxDurationMinutes = 30;
    v2.parameters.helpdesk.default = 'Contoso IT';
    expect((await call(owner.token, 'POST', `/v1/templates/${templateId}/versions`, { document: v2 })).status).toBe(201);

    const diff = await call(id.tokens.mspAuditor, 'GET', `/v1/templates/${templateId}/diff?from=1&to=2`);
    expect(diff.status).toBe(200);
    expect(diff.body.loosens).toBe(true);
    expect(diff.body.items.map((i: Json) => [i.path, i.before, i.after, i.effect])).toEqual([
      ['directory.roles.HelpdeskAdmin.privileged', false, true, 'tightens'],
      [
        'directory.roles.SecurityReader',
        { name: 'SecurityReader', description: 'Reads security settings', privileged: false },
        undefined,
        'neutral',
      ],
      ['directory.settings.mfaRequired', true, false, 'loosens'],
      ['directory.settings.sessionLifetimeMinutes', 2880, 720, 'tightens'],
      ['parameters.helpdesk.default', 'the service desk', 'Contoso IT', 'neutral'],
      ['policy.grants.roles.GlobalAdmin.maxDurationMinutes', 120, 30, 'tightens'],
    ]);
    expect((await call(owner.token, 'GET', `/v1/templates/${templateId}/diff?from=1&to=9`)).status).toBe(404);
    const bad = await call(owner.token, 'GET', `/v1/templates/${templateId}/diff?from=one&to=2`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: Json) => i.path)).toEqual(['query.from']);
  });
});

describe('assignment and dry-run', () => {
  it('a tenant is pinned only to an approved version, with parameters that fit; each pin is on the tenant’s chain', async () => {
    const templateId = await approvedTemplate();
    await call(owner.token, 'POST', `/v1/templates/${templateId}/versions`, { document: V1 });
    const pin = (body: Json) => call(id.tokens.operator, 'PUT', `/v1/tenants/${id.tenantB}/template`, body);

    const draft = await pin({ templateId, version: 2 });
    expect(draft.status).toBe(409);
    const unknown = await pin({ templateId, version: 1, parameters: { nope: 'x' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.issues).toEqual([{ path: 'body.parameters.nope', message: 'the template declares no such parameter' }]);
    expect((await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantB}/template`)).status).toBe(404);

    const pinned = await pin({ templateId, version: 1, parameters: { helpdesk: 'Fabrikam IT' } });
    expect(pinned.status).toBe(200);
    expect(pinned.body).toMatchObject({
      tenantId: id.tenantB,
      templateId,
      version: 1,
      parameters: { helpdesk: 'Fabrikam IT' },
      appliedVersion: null,
    });
    expect((await call(id.tokens.approverB, 'GET', `/v1/tenants/${id.tenantB}/template`)).body).toEqual(pinned.body);
    expect((await call(id.tokens.approverA, 'GET', `/v1/tenants/${id.tenantB}/template`)).status).toBe(404);

    const events = await stack.db.pool.query(`SELECT payload FROM audit_events WHERE tenant_id = $1 AND action = 'template.assigned'`, [
      id.tenantB,
    ]);
    expect(events.rows.map((r) => r.payload)).toEqual([
      { before: null, after: { templateId, version: 1, parameters: { helpdesk: 'Fabrikam IT' } } },
    ]);
  });

  /** Everything a dry-run could touch: table contents that matter, chain heads, the directory through its connector. */
  async function state(): Promise<Json> {
    const counts: Json = {};
    for (const table of [
      'audit_events',
      'tenant_policies',
      'policy_changes',
      'directory_roles',
      'directory_settings',
      'template_assignments',
    ]) {
      counts[table] = (await stack.db.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;
    }
    return {
      counts,
      heads: (await stack.db.pool.query('SELECT tenant_id, seq, hash FROM audit_chain_heads ORDER BY tenant_id')).rows,
      assignments: (await stack.db.pool.query('SELECT * FROM template_assignments ORDER BY tenant_id')).rows,
      roles: await directory.listAllRoles(id.tenantA),
      settings: await directory.getSecuritySettings(id.tenantA),
      policy: (await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}/policy`)).body,
    };
  }

  it('a dry-run plans roles, settings and policy, flags what loosens control or touches privileged roles, and changes nothing', async () => {
    const templateId = await approvedTemplate();
    expect(
      (
        await call(id.tokens.operator, 'PUT', `/v1/tenants/${id.tenantA}/template`, {
          templateId,
          version: 1,
          parameters: { helpdesk: 'Contoso IT' },
        })
      ).status,
    ).toBe(200);
    const before = await state();

    const planned = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantA}/template/dry-run`, {});
    expect(planned.status).toBe(200);
    const plan = planned.body;
    expect(plan).toMatchObject({
      tenantId: id.tenantA,
      templateId,
      version: 1,
      parameters: { helpdesk: 'Contoso IT' },
      target: 'postgres',
    });
    const tenantName = (await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}`)).body.name as string;
    expect(plan.items.map((i: Json) => [i.path, i.operation, i.before, i.after, i.effect, i.privileged])).toEqual([
      ['directory.roles.GlobalAdmin.description', 'change', 'Global admin', `Global administrators of ${tenantName}`, 'neutral', true],
      ['directory.roles.HelpdeskAdmin.description', 'change', '', 'Run by Contoso IT', 'neutral', false],
      [
        'directory.roles.SecurityReader',
        'create',
        undefined,
        { description: 'Reads security settings', privileged: false },
        'neutral',
        false,
      ],
      ['directory.settings.lockoutDurationMinutes', 'change', 15, 30, 'tightens', false],
      ['directory.settings.lockoutThreshold', 'change', 10, 5, 'tightens', false],
      ['directory.settings.mfaRequired', 'change', false, true, 'tightens', false],
      ['directory.settings.passwordMinLength', 'change', 8, 12, 'tightens', false],
      ['directory.settings.sessionLifetimeMinutes', 'change', 1440, 2880, 'loosens', false],
      ['policy.grants.roles.GlobalAdmin.approvalsRequired', 'change', 2, 1, 'loosens', true],
      ['policy.grants.roles.GlobalAdmin.maxDurationMinutes', 'change', 60, 120, 'loosens', true],
      [
        'policy.grants.roles.HelpdeskAdmin',
        'create',
        undefined,
        { privileged: false, maxDurationMinutes: 480, approvalsRequired: 0, requestableBy: ['operator'] },
        'loosens',
        false,
      ],
    ]);
    expect(plan.summary).toEqual({ changes: 11, loosens: 4, privileged: 3, unsupported: 0 });
    expect(plan.needsTenantApproval).toBe(true);
    expect(plan.items.every((i: Json) => i.unsupported === null)).toBe(true);

    // The tenant's approver sees the same plan; nothing anywhere has moved.
    expect((await call(id.tokens.approverA, 'POST', `/v1/tenants/${id.tenantA}/template/dry-run`, {})).body.items).toEqual(plan.items);
    expect(await state()).toEqual(before);
  });

  it('any version of any template can be planned for a tenant, with parameters for that plan only', async () => {
    const templateId = await approvedTemplate();
    const draft = await call(owner.token, 'POST', `/v1/templates/${templateId}/versions`, {
      document: { parameters: V1.parameters, directory: { roles: [{ name: 'Desk', description: 'by {{helpdesk}}' }] } },
    });
    const plan = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantB}/template/dry-run`, {
      templateId,
      version: draft.body.version,
      parameters: { helpdesk: 'Night shift' },
    });
    expect(plan.status).toBe(200);
    expect(plan.body.items).toEqual([
      expect.objectContaining({
        path: 'directory.roles.Desk',
        operation: 'create',
        after: { description: 'by Night shift', privileged: false },
      }),
    ]);
    expect(plan.body.needsTenantApproval).toBe(false);

    const missing = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantB}/template/dry-run`, {
      templateId: randomUUID(),
      version: 1,
    });
    expect(missing.status).toBe(404);
    const unpinned = await stack.db.pool.query('SELECT 1 FROM template_assignments WHERE tenant_id = $1', [id.tenantA]);
    expect(unpinned.rowCount).toBe(1);
  });

  it('a setting the tenant’s target cannot hold is in the plan as unsupported, never left out', async () => {
    const templateId = await approvedTemplate();
    lacking = 'sessionPolicy';
    try {
      const plan = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantA}/template/dry-run`, { templateId, version: 1 });
      expect(plan.status).toBe(200);
      expect(plan.body.items).toContainEqual(
        expect.objectContaining({
          path: 'directory.settings.sessionLifetimeMinutes',
          after: 2880,
          unsupported: 'sessionPolicy: not supported by target',
        }),
      );
      expect(plan.body.summary.unsupported).toBe(1);
    } finally {
      lacking = null;
    }
  });

  it('the CLI authors, approves, diffs, pins and plans through the API', async () => {
    const env = (token: string) => ({ TENURE_URL: stack.baseUrl, TENURE_TOKEN: token });
    const { writeFile, mkdtemp } = await import('node:fs/promises');
    const path = await import('node:path');
    const os = await import('node:os');
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'tpl-')), 'template.json');
    await writeFile(file, JSON.stringify(V1));
    const created = JSON.parse(
      (await runCliOk(['template', 'create', '--json', '--name', name(), '--file', file], env(owner.token))).stdout,
    ) as Json;
    const templateId = created.template.id as string;
    await runCliOk(['template', 'propose', templateId, '1'], env(owner.token));
    await runCliOk(['template', 'approve', templateId, '1', '--comment', 'ok'], env(owner2.token));
    await runCliOk(['template', 'assign', templateId, '1', '--tenant', id.tenantB, '--param', 'helpdesk=B desk'], env(id.tokens.operator!));
    const plan = JSON.parse(
      (await runCliOk(['template', 'dry-run', '--json', '--tenant', id.tenantB], env(id.tokens.operator!))).stdout,
    ) as Json;
    expect(plan).toMatchObject({ templateId, version: 1, parameters: { helpdesk: 'B desk' } });
    const diff = JSON.parse(
      (await runCliOk(['template', 'diff', '--json', templateId, '--from', '1', '--to', '1'], env(owner.token))).stdout,
    ) as Json;
    expect(diff).toEqual({ templateId, from: 1, to: 1, items: [], loosens: false });
  });
});

describe('applying the pin', () => {
  /** A fresh tenant (nothing else touches it) with its own approver. */
  async function freshTenant(): Promise<{ tenantId: string; approver: string }> {
    const slug = `t-${randomBytes(4).toString('hex')}`;
    const created = await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug, name: `Tenant ${slug}` });
    expect(created.status).toBe(201);
    const tenantId = created.body.id as string;
    const approver = (await tenantStaff(call, id.tokens.mspAdmin!, tenantId, 'Approver', ['tenant_approver'])).token;
    return { tenantId, approver };
  }
  const applyPath = (tenantId: string) => `/v1/tenants/${tenantId}/template`;
  const waitForApply = (tenantId: string, rolloutId: string, status: string) =>
    eventually(
      async () => (await call(id.tokens.operator, 'GET', `${applyPath(tenantId)}/applies/${rolloutId}`)).body,
      (view) => view.status === status,
      30_000,
    );

  it('a tenant whose approvers decide every change gets its gate for a version that only tightens its directory', async () => {
    const { tenantId, approver } = await freshTenant();
    const { put, approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver }, tenantId, {
      expectedVersion: 1,
      document: { governance: { approveEveryChange: true } },
    });
    // Asking to decide every change tightens the tenant's control: it applies at once, or once approved.
    expect(put.status === 202 ? approval?.body.status : put.status).toBe(put.status === 202 ? 'applied' : 201);
    const policy = (await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/policy`)).body;
    expect(policy.document.governance.approveEveryChange).toBe(true);
    const templateId = await approvedTemplate({ directory: { settings: { mfaRequired: true, passwordMinLength: 14 } } });
    const plan = await call(id.tokens.operator, 'POST', `${applyPath(tenantId)}/dry-run`, { templateId, version: 1 });
    expect(plan.status).toBe(200);
    expect(plan.body.items.map((i: Json) => i.effect)).toEqual(['tightens', 'tightens']);
    expect(plan.body.needsTenantApproval).toBe(true);
    expect((await call(id.tokens.operator, 'PUT', applyPath(tenantId), { templateId, version: 1 })).status).toBe(200);
    const started = await call(id.tokens.operator, 'POST', `${applyPath(tenantId)}/apply`, {});
    expect(started.status).toBe(202);
    await waitForApply(tenantId, started.body.rolloutId, 'awaiting_approval');
    expect((await directory.getSecuritySettings(tenantId)).passwordMinLength).not.toBe(14);
  });

  it('a version that keeps the tenant’s control applies at once: read back through the connector, pinned exactly, and nothing left to plan', async () => {
    const { tenantId } = await freshTenant();
    const templateId = await approvedTemplate({
      directory: {
        roles: [{ name: 'Ops', description: 'Operators of {{tenant.slug}}', privileged: true }],
        settings: { mfaRequired: true, passwordMinLength: 12, lockoutThreshold: 5 },
      },
    });
    expect((await call(id.tokens.operator, 'PUT', applyPath(tenantId), { templateId, version: 1 })).status).toBe(200);
    const before = await directory.getSecuritySettings(tenantId);

    const started = await call(id.tokens.operator, 'POST', `${applyPath(tenantId)}/apply`, {});
    expect(started.status).toBe(202);
    expect(started.body.workflowId).toBe(`rollout/${started.body.rolloutId}/${tenantId}`);
    const done = await waitForApply(tenantId, started.body.rolloutId, 'applied');
    expect(done).toMatchObject({ needsApproval: false, applied: { roles: 1, settings: 3, policyVersion: null, unsupported: [] } });
    expect(done.plan.items.map((i: Json) => i.path)).toEqual([
      'directory.roles.Ops',
      'directory.settings.lockoutThreshold',
      'directory.settings.mfaRequired',
      'directory.settings.passwordMinLength',
    ]);

    const slug = (await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}`)).body.slug as string;
    expect(await directory.getRoles(tenantId, ['Ops'])).toEqual([{ name: 'Ops', description: `Operators of ${slug}`, privileged: true }]);
    expect(await directory.getSecuritySettings(tenantId)).toEqual({
      ...before,
      mfaRequired: true,
      passwordMinLength: 12,
      lockoutThreshold: 5,
    });
    expect((await call(id.tokens.operator, 'GET', applyPath(tenantId))).body).toMatchObject({ templateId, version: 1, appliedVersion: 1 });
    expect((await call(id.tokens.operator, 'POST', `${applyPath(tenantId)}/dry-run`, {})).body.items).toEqual([]);

    const snapshot = await stack.db.pool.query('SELECT state FROM template_snapshots WHERE tenant_id = $1 AND snapshot_id = $2', [
      tenantId,
      done.snapshotId,
    ]);
    expect(snapshot.rows[0].state).toMatchObject({ target: 'postgres', settings: before, policyVersion: 1 });
    const events = await stack.db.pool.query(
      `SELECT action, workflow_id FROM audit_events WHERE tenant_id = $1 AND action LIKE 'template.%' ORDER BY seq`,
      [tenantId],
    );
    expect(events.rows.map((r) => r.action)).toEqual([
      'template.assigned',
      'template.apply.requested',
      'template.apply.planned',
      'template.apply.applied',
      'template.applied',
    ]);
    expect(events.rows.slice(1).every((r) => r.workflow_id === started.body.workflowId)).toBe(true);
  });

  it('a version that loosens control waits for the tenant’s own approver, never MSP staff; approved, the policy becomes its next version on that approval', async () => {
    const { tenantId, approver } = await freshTenant();
    const templateId = await approvedTemplate();
    expect((await call(id.tokens.operator, 'PUT', applyPath(tenantId), { templateId, version: 1 })).status).toBe(200);
    const started = await call(id.tokens.operator, 'POST', `${applyPath(tenantId)}/apply`, { approvalTimeoutMinutes: 60 });
    const rolloutId = started.body.rolloutId as string;
    const gated = await waitForApply(tenantId, rolloutId, 'awaiting_approval');
    expect(gated).toMatchObject({ needsApproval: true, approvalsRequired: 1, snapshotId: null });

    for (const token of [id.tokens.operator, id.tokens.mspAdmin]) {
      expect((await call(token, 'POST', `${applyPath(tenantId)}/applies/${rolloutId}/approve`, {})).status).toBe(403);
    }
    expect((await call(id.tokens.approverA, 'POST', `${applyPath(tenantId)}/applies/${rolloutId}/approve`, {})).status).toBe(404);
    // One apply at a time per tenant.
    expect((await call(id.tokens.operator, 'POST', `${applyPath(tenantId)}/apply`, {})).status).toBe(409);
    // The tenant's approver decides from the CLI.
    const approved = JSON.parse(
      (
        await runCliOk(['template', 'approve-apply', '--json', rolloutId, '--tenant', tenantId, '--comment', 'fine'], {
          TENURE_URL: stack.baseUrl,
          TENURE_TOKEN: approver,
        })
      ).stdout,
    ) as Json;
    expect(approved.approvals).toEqual([expect.objectContaining({ comment: 'fine' })]);
    const done = await waitForApply(tenantId, rolloutId, 'applied');
    expect(done.applied).toMatchObject({ roles: 3, policyVersion: 2 });

    const policy = (await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/policy`)).body;
    expect(policy).toMatchObject({
      version: 2,
      document: { grants: { roles: { GlobalAdmin: { maxDurationMinutes: 120, approvalsRequired: 1 } } } },
    });
    const written = await stack.db.pool.query(
      `SELECT authority, payload FROM audit_events WHERE tenant_id = $1 AND action = 'policy.updated'`,
      [tenantId],
    );
    expect(written.rows).toHaveLength(1);
    expect(written.rows[0].authority).toMatchObject({ rolloutId, templateId, approvalIds: [done.approvals[0].approvalId] });
    expect((await call(id.tokens.operator, 'POST', `${applyPath(tenantId)}/dry-run`, {})).body.items).toEqual([]);
  });

  it('a plan that changed after the tenant approved it is refused at apply: nothing the approvers did not see is written', async () => {
    const { tenantId, approver } = await freshTenant();
    const templateId = await approvedTemplate();
    expect((await call(id.tokens.operator, 'PUT', applyPath(tenantId), { templateId, version: 1 })).status).toBe(200);
    const started = await call(id.tokens.operator, 'POST', `${applyPath(tenantId)}/apply`, { approvalTimeoutMinutes: 60 });
    const rolloutId = started.body.rolloutId as string;
    await waitForApply(tenantId, rolloutId, 'awaiting_approval');
    const shown = (await call(approver, 'GET', `${applyPath(tenantId)}/applies/${rolloutId}`)).body.plan;
    // What the approvers see: the version's lockout tightens the tenant's.
    expect(shown.items.find((i: Json) => i.path === 'directory.settings.lockoutThreshold')).toMatchObject({ after: 5, effect: 'tightens' });
    // Meanwhile the tenant's lockout is made stricter than the version's: the same value would now loosen it.
    await directory.applySecuritySettings(tenantId, { lockoutThreshold: 3 });
    const before = { settings: await directory.getSecuritySettings(tenantId), roles: await directory.listAllRoles(tenantId) };
    expect((await call(approver, 'POST', `${applyPath(tenantId)}/applies/${rolloutId}/approve`, {})).status).toBe(200);
    const failed = await waitForApply(tenantId, rolloutId, 'failed');
    expect(failed.outcome).toMatch(/^apply: .*changed since the tenant's approvers approved it: directory\.settings\.lockoutThreshold/);
    expect({ settings: await directory.getSecuritySettings(tenantId), roles: await directory.listAllRoles(tenantId) }).toEqual(before);
    expect((await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/policy`)).body.version).toBe(1);
  });

  it('two applies for one tenant never interleave: one started past the API while another waits at its gate stops at plan, changing nothing', async () => {
    const { tenantId } = await freshTenant();
    const templateId = await approvedTemplate();
    expect((await call(id.tokens.operator, 'PUT', applyPath(tenantId), { templateId, version: 1 })).status).toBe(200);
    const first = (await call(id.tokens.operator, 'POST', `${applyPath(tenantId)}/apply`, { approvalTimeoutMinutes: 60 })).body;
    await waitForApply(tenantId, first.rolloutId, 'awaiting_approval');
    // The API answers 409 here; a start straight on Temporal (or one racing the API's check) meets the workflow's own check.
    const second = randomUUID();
    await stack.temporal.workflow.start(TEMPLATE_APPLY_WORKFLOW_TYPE, {
      taskQueue: TEMPLATES_TASK_QUEUE,
      workflowId: templateApplyWorkflowId(second, tenantId),
      args: [
        {
          rolloutId: second,
          tenantId,
          templateId,
          version: 1,
          parameters: {},
          requester: { id: id.actors.operator!.id, type: 'user' },
          authority: { roles: ['operator'] },
          approvalTimeoutSeconds: 3600,
        },
      ],
      typedSearchAttributes: templateApplySearchAttributes(tenantId),
    });
    const refused = await waitForApply(tenantId, second, 'failed');
    expect(refused.outcome).toBe(
      `plan: an apply of rollout ${first.rolloutId} is under way for the tenant; one at a time, so nothing was changed`,
    );
    expect(refused.snapshotId).toBeNull();
    expect((await call(id.tokens.operator, 'GET', `${applyPath(tenantId)}/applies/${first.rolloutId}`)).body.status).toBe(
      'awaiting_approval',
    );
  });
});
