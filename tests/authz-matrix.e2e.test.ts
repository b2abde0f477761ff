import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERMISSIONS, type Permission } from '../core/tenancy/authz.js';
import { apiClient } from './support/http.js';
import { seedTenancy, setPolicy, type TestTenancy } from './support/tenancy.js';
import { createPostgresDirectory } from '../connectors/directory/postgres.js';
import { eventually, startTestStack, type TestStack } from './support/stack.js';

/**
 * Every endpoint × every way a caller can be refused: no token, a malformed one, an expired or
 * revoked one, the right role in the wrong tenant, the wrong role in the right tenant. Each must
 * get its status and change nothing. The endpoint list is checked against the OpenAPI document,
 * so a new endpoint cannot be added without a row here.
 */
type Scope = 'tenant' | 'msp' | 'any';
/**
 * `wrongRole` names the tenant-A caller to use where the rule is not a plain permission (grants follow the tenant policy).
 * `tenantDecides`: a decision only the tenant's own people take; MSP staff are refused whatever their MSP-wide roles.
 */
type Rule = { permission?: Permission; scope: Scope; wrongRole?: string; tenantDecides?: boolean };
const ENDPOINTS: Record<string, Rule> = {
  'GET /v1/me': { scope: 'any' },
  'GET /v1/tenants': { scope: 'any' },
  'POST /v1/tenants': { permission: 'tenant.create', scope: 'msp' },
  'GET /v1/tenants/{tenantId}': { permission: 'tenant.read', scope: 'tenant' },
  'PATCH /v1/tenants/{tenantId}': { permission: 'tenant.update', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/suspend': { permission: 'tenant.update', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/resume': { permission: 'tenant.update', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/policy': { permission: 'policy.read', scope: 'tenant' },
  'PUT /v1/tenants/{tenantId}/policy': { permission: 'policy.write', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/policy/versions': { permission: 'policy.read', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/policy/versions/{version}': { permission: 'policy.read', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/policy/changes': { permission: 'policy.read', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/policy/changes/{changeId}': { permission: 'policy.read', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/policy/changes/{changeId}/approve': { scope: 'tenant', wrongRole: 'reviewerA' },
  'POST /v1/tenants/{tenantId}/policy/changes/{changeId}/deny': { scope: 'tenant', wrongRole: 'auditorA' },
  'POST /v1/tenants/{tenantId}/policy/changes/{changeId}/withdraw': { scope: 'tenant', wrongRole: 'approverA' },
  'GET /v1/tenants/{tenantId}/webhook-secret': { permission: 'tenant.update', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/directory/test': { permission: 'directory.test', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/webhook-secret/rotate': { permission: 'tenant.update', scope: 'tenant' },
  'POST /v1/actors': { permission: 'actor.manage', scope: 'msp' },
  'GET /v1/actors': { permission: 'actor.read', scope: 'msp' },
  'GET /v1/actors/{actorId}': { permission: 'actor.read', scope: 'msp' },
  'GET /v1/tenants/{tenantId}/actors/{actorId}': { permission: 'tenant.read', scope: 'tenant' },
  'POST /v1/actors/{actorId}/disable': { permission: 'actor.manage', scope: 'msp' },
  'POST /v1/role-bindings': { permission: 'binding.manage', scope: 'msp' },
  'GET /v1/role-bindings': { permission: 'actor.read', scope: 'msp' },
  'DELETE /v1/role-bindings/{bindingId}': { permission: 'binding.manage', scope: 'msp' },
  'POST /v1/tokens': { permission: 'token.manage', scope: 'msp' },
  'GET /v1/tokens': { permission: 'token.manage', scope: 'msp' },
  'DELETE /v1/tokens/{tokenId}': { permission: 'token.manage', scope: 'msp' },
  'POST /v1/diagnostics/pings': { permission: 'diagnostics.run', scope: 'msp' },
  'GET /v1/diagnostics/pings/{pingId}': { permission: 'diagnostics.run', scope: 'msp' },
  'POST /v1/codec/decode': { permission: 'temporal.codec', scope: 'msp' },
  'POST /v1/codec/encode': { permission: 'temporal.codec', scope: 'msp' },
  'GET /v1/audit/{chainId}/events': { permission: 'audit.read', scope: 'tenant' },
  'GET /v1/audit/{chainId}/export': { permission: 'audit.read', scope: 'tenant' },
  'GET /v1/audit/{chainId}/verify': { permission: 'audit.read', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/grants': { scope: 'tenant', wrongRole: 'reviewerA' },
  'GET /v1/tenants/{tenantId}/grants': { permission: 'grant.read', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/grants/{grantId}': { permission: 'grant.read', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/grants/{grantId}/approve': { scope: 'tenant', wrongRole: 'reviewerA' },
  'POST /v1/tenants/{tenantId}/grants/{grantId}/deny': { scope: 'tenant', wrongRole: 'auditorA' },
  'POST /v1/tenants/{tenantId}/grants/{grantId}/extend': { scope: 'tenant', wrongRole: 'reviewerA' },
  'POST /v1/tenants/{tenantId}/grants/{grantId}/revoke': { scope: 'tenant', wrongRole: 'reviewerA' },
  'POST /v1/tenants/{tenantId}/grants/{grantId}/relinquish': { scope: 'tenant', wrongRole: 'approverA' },
  'POST /v1/tenants/{tenantId}/hr-events': { permission: 'person.event', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/hr-events/preview': { permission: 'person.event', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/hr-events/import': { permission: 'person.event', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/hr-events/imports': { permission: 'person.event', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/hr-events/imports/{importId}': { permission: 'person.event', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/people': { permission: 'person.read', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/people/{personId}': { permission: 'person.read', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/people/{personId}/timeline': { permission: 'person.read', scope: 'tenant' },
  'POST /v1/campaigns': { permission: 'campaign.manage', scope: 'msp' },
  'GET /v1/campaigns': { permission: 'campaign.read', scope: 'msp' },
  'GET /v1/campaigns/{definitionId}': { permission: 'campaign.read', scope: 'msp' },
  'PUT /v1/campaigns/{definitionId}': { permission: 'campaign.manage', scope: 'msp' },
  'DELETE /v1/campaigns/{definitionId}': { permission: 'campaign.manage', scope: 'msp' },
  'GET /v1/campaigns/{definitionId}/versions': { permission: 'campaign.read', scope: 'msp' },
  'GET /v1/campaigns/{definitionId}/versions/{version}': { permission: 'campaign.read', scope: 'msp' },
  'POST /v1/campaigns/{definitionId}/runs': { permission: 'campaign.manage', scope: 'msp' },
  'GET /v1/campaigns/{definitionId}/runs': { permission: 'campaign.read', scope: 'msp' },
  'GET /v1/campaign-runs/{runId}': { permission: 'campaign.read', scope: 'msp' },
  'POST /v1/campaign-runs/{runId}/cancel': { permission: 'campaign.manage', scope: 'msp' },
  'GET /v1/campaigns/{definitionId}/schedule': { permission: 'campaign.read', scope: 'msp' },
  'POST /v1/campaigns/{definitionId}/schedule/pause': { permission: 'campaign.manage', scope: 'msp' },
  'POST /v1/campaigns/{definitionId}/schedule/unpause': { permission: 'campaign.manage', scope: 'msp' },
  'POST /v1/campaigns/{definitionId}/schedule/trigger': { permission: 'campaign.manage', scope: 'msp' },
  'GET /v1/tenants/{tenantId}/reviews': { permission: 'review.read', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/reviews/items': { permission: 'review.read', scope: 'tenant' },
  // Decisions: the tenant's own reviewers and approvers; an auditor of the tenant is refused.
  'POST /v1/tenants/{tenantId}/reviews/items/{itemId}/decision': { scope: 'tenant', wrongRole: 'auditorA', tenantDecides: true },
  'POST /v1/tenants/{tenantId}/reviews/decisions': { scope: 'tenant', wrongRole: 'auditorA', tenantDecides: true },
  'POST /v1/tenants/{tenantId}/reviews/{runId}/deadline': { scope: 'tenant', wrongRole: 'auditorA' },
  // MSP staff reassign and nudge; a tenant's own reviewer cannot move work to someone else.
  'POST /v1/tenants/{tenantId}/reviews/{runId}/reassign': { permission: 'campaign.manage', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/reviews/{runId}/nudge': { permission: 'campaign.manage', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/reviews/{runId}/cancel': { permission: 'campaign.manage', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/reviews/{runId}/report': { permission: 'review.report', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/standing-privilege': { permission: 'privilege.report', scope: 'tenant' },
  'GET /v1/standing-privilege': { permission: 'privilege.report', scope: 'msp' },
  'GET /v1/overview': { permission: 'overview.read', scope: 'msp' },
  'POST /v1/standing-privilege/reviews': { permission: 'campaign.manage', scope: 'msp' },
  'POST /v1/tenants/{tenantId}/actions': { scope: 'tenant', wrongRole: 'reviewerA' },
  'GET /v1/tenants/{tenantId}/actions': { permission: 'action.read', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/actions/{actionId}': { permission: 'action.read', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/actions/{actionId}/approve': { scope: 'tenant', wrongRole: 'reviewerA' },
  'POST /v1/tenants/{tenantId}/actions/{actionId}/deny': { scope: 'tenant', wrongRole: 'auditorA' },
  'POST /v1/tenants/{tenantId}/actions/{actionId}/cancel': { scope: 'tenant', wrongRole: 'approverA' },
  'POST /v1/templates': { permission: 'template.write', scope: 'msp' },
  'GET /v1/templates': { permission: 'template.read', scope: 'msp' },
  'GET /v1/templates/{templateId}': { permission: 'template.read', scope: 'msp' },
  'GET /v1/templates/{templateId}/versions': { permission: 'template.read', scope: 'msp' },
  'POST /v1/templates/{templateId}/versions': { permission: 'template.write', scope: 'msp' },
  'GET /v1/templates/{templateId}/versions/{version}': { permission: 'template.read', scope: 'msp' },
  'PUT /v1/templates/{templateId}/versions/{version}': { permission: 'template.write', scope: 'msp' },
  'POST /v1/templates/{templateId}/versions/{version}/propose': { permission: 'template.write', scope: 'msp' },
  'POST /v1/templates/{templateId}/versions/{version}/approve': { permission: 'template.approve', scope: 'msp' },
  'POST /v1/templates/{templateId}/versions/{version}/reject': { permission: 'template.approve', scope: 'msp' },
  'POST /v1/templates/{templateId}/versions/{version}/deprecate': { permission: 'template.approve', scope: 'msp' },
  'GET /v1/templates/{templateId}/diff': { permission: 'template.read', scope: 'msp' },
  'GET /v1/templates/{templateId}/assignments': { permission: 'template.read', scope: 'msp' },
  'GET /v1/templates/rbac-report': { permission: 'template.read', scope: 'msp' },
  'POST /v1/tenants/{tenantId}/clone': { permission: 'tenant.create', scope: 'msp' },
  'PUT /v1/tenants/{tenantId}/template': { permission: 'template.assign', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/template': { permission: 'template.plan', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/template/dry-run': { permission: 'template.plan', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/template/apply': { permission: 'template.assign', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/template/applies': { permission: 'template.plan', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/template/applies/{rolloutId}': { permission: 'template.plan', scope: 'tenant' },
  // Decisions at the gate: the tenant's own approvers only.
  'POST /v1/tenants/{tenantId}/template/applies/{rolloutId}/approve': { scope: 'tenant', wrongRole: 'reviewerA' },
  'POST /v1/tenants/{tenantId}/template/applies/{rolloutId}/deny': { scope: 'tenant', wrongRole: 'auditorA' },
  // Rollouts: MSP-wide; operators and MSP admins run them, template readers follow them.
  'POST /v1/rollouts': { permission: 'template.assign', scope: 'msp' },
  'GET /v1/rollouts': { permission: 'template.read', scope: 'msp' },
  'GET /v1/rollouts/{rolloutId}': { permission: 'template.read', scope: 'msp' },
  'POST /v1/rollouts/{rolloutId}/pause': { permission: 'template.assign', scope: 'msp' },
  'POST /v1/rollouts/{rolloutId}/resume': { permission: 'template.assign', scope: 'msp' },
  'POST /v1/rollouts/{rolloutId}/cancel': { permission: 'template.assign', scope: 'msp' },
  'POST /v1/rollouts/{rolloutId}/skip': { permission: 'template.assign', scope: 'msp' },
  'POST /v1/rollouts/{rolloutId}/approve-wave': { permission: 'template.assign', scope: 'msp' },
  'GET /v1/tenants/{tenantId}/template/drift': { permission: 'template.plan', scope: 'tenant' },
  'POST /v1/tenants/{tenantId}/template/drift/check': { permission: 'template.assign', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/template/drift/exceptions': { permission: 'template.plan', scope: 'tenant' },
  // Exceptions: asked for by the tenant's operators or its approvers; approved by its own approvers only.
  'POST /v1/tenants/{tenantId}/template/drift/exceptions': { scope: 'tenant', wrongRole: 'auditorA' },
  'POST /v1/tenants/{tenantId}/template/drift/exceptions/{exceptionId}/approve': { scope: 'tenant', wrongRole: 'reviewerA' },
  'POST /v1/tenants/{tenantId}/template/drift/exceptions/{exceptionId}/expire': { scope: 'tenant', wrongRole: 'auditorA' },
  'GET /v1/templates/drift-schedule': { permission: 'template.assign', scope: 'msp' },
  'POST /v1/templates/drift-schedule/pause': { permission: 'template.assign', scope: 'msp' },
  'POST /v1/templates/drift-schedule/unpause': { permission: 'template.assign', scope: 'msp' },
  'POST /v1/templates/drift-schedule/trigger': { permission: 'template.assign', scope: 'msp' },
  'POST /v1/tenants/{tenantId}/template/applies/{rolloutId}/rollback': { permission: 'template.assign', scope: 'tenant' },
  'GET /v1/tenants/{tenantId}/template/applies/{rolloutId}/rollback': { permission: 'template.plan', scope: 'tenant' },
  'POST /v1/rollouts/{rolloutId}/rollback': { permission: 'template.assign', scope: 'msp' },
  'GET /v1/rollouts/{rolloutId}/rollback': { permission: 'template.read', scope: 'msp' },
};
/** Public by design: operations, and the console's sign-in page's own endpoints (tested below). */
const OPS = new Set(['/healthz', '/readyz', '/metrics', '/console/config.json', '/console/demo-sign-in']);

let stack: TestStack;
let id: TestTenancy;
let params: Record<string, string>;
const call = apiClient(() => stack.baseUrl);

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  const binding = await stack.db.pool.query<{ id: string }>('SELECT id FROM role_bindings WHERE actor_id = $1', [id.actors.approverA!.id]);
  const token = await stack.db.pool.query<{ id: string }>('SELECT id FROM api_tokens WHERE actor_id = $1', [id.actors.approverA!.id]);
  params = {
    tenantId: id.tenantA,
    chainId: id.tenantA,
    version: '1',
    actorId: id.actors.approverA!.id,
    bindingId: binding.rows[0]!.id,
    tokenId: token.rows[0]!.id,
    pingId: randomUUID(),
    personId: 'matrix-person',
    grantId: await pendingGrant(),
    actionId: await pendingAction(),
    changeId: await pendingPolicyChange(),
    importId: await settledImport(),
    definitionId: randomUUID(),
    runId: randomUUID(),
    itemId: randomUUID(),
    templateId: randomUUID(),
    rolloutId: randomUUID(),
    exceptionId: randomUUID(),
  };
});

/** A real import in tenant A, completed (its one row is malformed, so it starts no person), so import endpoints have something to refuse. */
async function settledImport(): Promise<string> {
  const posted = await call(id.tokens.hrA, 'POST', `/v1/tenants/${id.tenantA}/hr-events/import`, 'eventId,personId\nonly-one-column', {
    contentType: 'text/csv',
  });
  expect(posted.status).toBe(202);
  await eventually(
    async () => (await call(id.tokens.hrA, 'GET', posted.headers.get('location')!)).body.status as string,
    (status) => status === 'completed',
  );
  return posted.body.importId as string;
}

/** A real grant in tenant A, left waiting for approval, so grant endpoints have something to refuse. */
async function pendingGrant(): Promise<string> {
  const directory = createPostgresDirectory(stack.pool);
  await directory.upsertRole(id.tenantA, { name: 'GlobalAdmin' });
  await directory.upsertUser(id.tenantA, { id: 'alex', username: 'alex', displayName: 'Alex' });
  const headers = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
  // Making a role grantable waits for the tenant: its approver approves.
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
    expectedVersion: 1,
    document: {
      grants: { roles: { GlobalAdmin: { maxDurationMinutes: 60, approvalsRequired: 1 } } },
      actions: { allowed: { unlock: { approvalsRequired: 1 } } },
    },
  });
  expect(approval?.body.status).toBe('applied');
  const created = await fetch(`${stack.baseUrl}/v1/tenants/${id.tenantA}/grants`, {
    method: 'POST',
    headers: headers(id.tokens.operator!),
    body: JSON.stringify({ subjectId: 'alex', role: 'GlobalAdmin', durationMinutes: 30, justification: 'matrix' }),
  });
  const { grantId } = (await created.json()) as { grantId: string };
  // Settled: the workflow has recorded its request and waits for an approver.
  await eventually(
    async () => (await stack.db.pool.query('SELECT version FROM grants WHERE grant_id = $1', [grantId])).rows[0].version as number,
    (v) => v >= 1,
  );
  return grantId;
}

/** A real remote action in tenant A (on the user pendingGrant made), left waiting for approval. */
async function pendingAction(): Promise<string> {
  const created = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantA}/actions`, {
    action: 'unlock',
    subjectId: 'alex',
    justification: 'matrix',
  });
  expect(created.status).toBe(201);
  const actionId = created.body.actionId as string;
  await eventually(
    async () =>
      (await stack.db.pool.query('SELECT version FROM remote_actions WHERE action_id = $1', [actionId])).rows[0].version as number,
    (v) => v >= 1,
  );
  return actionId;
}

/** A real policy change in tenant A, left waiting for the tenant's approvers. */
async function pendingPolicyChange(): Promise<string> {
  const current = await call(id.tokens.mspAdmin, 'GET', `/v1/tenants/${id.tenantA}/policy`);
  const put = await call(id.tokens.mspAdmin, 'PUT', `/v1/tenants/${id.tenantA}/policy`, {
    expectedVersion: current.body.version,
    document: { ...current.body.document, contactEmail: 'matrix@a.example' },
  });
  expect(put.status).toBe(202);
  await eventually(
    async () => (await call(id.tokens.mspAdmin, 'GET', `/v1/tenants/${id.tenantA}/policy/changes/${put.body.changeId}`)).body.version,
    (v: number) => v >= 1,
  );
  return put.body.changeId as string;
}

afterAll(async () => {
  await stack?.stop();
});

/** Row counts of every table and the audit chains, plus workflows started: what a refusal must not change. */
async function snapshot(): Promise<Record<string, unknown>> {
  const tables = [
    'tenants',
    'tenant_policies',
    'actors',
    'role_bindings',
    'api_tokens',
    'audit_events',
    'audit_chain_heads',
    'diagnostic_pings',
    'grants',
    'entitlements',
    'directory_memberships',
    'tenant_webhook_secrets',
    'people',
    'hr_events',
    'policy_changes',
    'hr_imports',
    'hr_import_rows',
    'campaign_definitions',
    'campaign_definition_versions',
    'campaign_runs',
    'reviews',
    'review_items',
    'review_decisions',
    'review_reports',
    'review_notices',
    'remote_actions',
    'templates',
    'template_versions',
    'template_assignments',
    'directory_settings',
    'template_applies',
    'template_snapshots',
    'template_rollouts',
    'template_rollout_tenants',
    'template_drift_state',
    'template_drift_items',
    'template_drift_exceptions',
    'tenant_clones',
    'template_rollbacks',
    'rollout_rollbacks',
  ];
  // One statement, not one per table: the matrix takes two snapshots in each of its ~900 cases.
  const columns = new Map<string, string>(tables.map((table) => [table, `(SELECT count(*)::int FROM ${table})`]));
  columns.set('state', "(SELECT string_agg(id || status || name, ',' ORDER BY id) FROM tenants)");
  columns.set('actors', "(SELECT string_agg(id || status, ',' ORDER BY id) FROM actors)");
  columns.set('grantViews', "(SELECT string_agg(grant_id || ':' || version, ',') FROM grants)");
  columns.set('actionViews', "(SELECT string_agg(action_id || ':' || version, ',') FROM remote_actions)");
  columns.set('policyChanges', "(SELECT string_agg(change_id || status || version, ',') FROM policy_changes)");
  columns.set('revoked', '(SELECT count(*)::int FROM api_tokens WHERE revoked_at IS NOT NULL)');
  const select = [...columns].map(([key, expression]) => `${expression} AS "${key}"`).join(', ');
  const counts = (await stack.db.pool.query<Record<string, unknown>>(`SELECT ${select}`)).rows[0]!;
  let workflows = 0;
  for await (const _ of stack.temporal.workflow.list({ query: stack.workflowQuery })) workflows++;
  counts.workflows = workflows;
  return counts;
}

function send(key: string, authorization: string | undefined): Promise<Response> {
  const [method, template] = key.split(' ') as [string, string];
  const path = template.replace(/\{(\w+)\}/g, (_m, name: string) => params[name]!);
  const hasBody = ['POST', 'PUT', 'PATCH'].includes(method);
  return fetch(`${stack.baseUrl}${path}`, {
    method,
    headers: { ...(authorization ? { authorization } : {}), ...(hasBody ? { 'content-type': 'application/json' } : {}) },
    ...(hasBody ? { body: '{}' } : {}),
  });
}

/** The tenant-A caller whose roles do not include the permission, if there is one. */
const TENANT_A_ROLES: Record<string, string> = {
  reviewerA: 'tenant_reviewer',
  approverA: 'tenant_approver',
  auditorA: 'auditor',
  hrA: 'hr_integration',
};
function wrongRoleInTenantA(permission: Permission): string | undefined {
  const allowed: readonly string[] = PERMISSIONS[permission];
  return Object.keys(TENANT_A_ROLES).find((key) => !allowed.includes(TENANT_A_ROLES[key]!));
}

describe('authorization matrix', () => {
  it('covers every endpoint in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${stack.baseUrl}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths)
      .filter(([path]) => !OPS.has(path))
      .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual(Object.keys(ENDPOINTS).sort());
  });

  // Each case names the caller (resolved once the cast exists) and the status it must get.
  type Caller = { token?: string; header?: string };
  const cases: [string, (rule: Rule) => { caller: Caller; status: number } | undefined][] = [
    ['no token', () => ({ caller: {}, status: 401 })],
    ['a malformed Authorization header', () => ({ caller: { header: 'Basic dXNlcjpwYXNz' }, status: 401 })],
    ['a token that is not one of ours', () => ({ caller: { header: 'Bearer tnr_forgedforgedforgedforgedforgedforgedforg' }, status: 401 })],
    ['an expired token', () => ({ caller: { token: 'expiredAdmin' }, status: 401 })],
    ['a revoked token', () => ({ caller: { token: 'revokedAdmin' }, status: 401 })],
    [
      'the right role in the wrong tenant',
      (rule) => (rule.scope === 'any' ? undefined : { caller: { token: 'tenantAdminB' }, status: rule.scope === 'tenant' ? 404 : 403 }),
    ],
    [
      'the wrong role in the right tenant',
      (rule) => {
        if (rule.scope === 'msp') return { caller: { token: 'approverA' }, status: 403 };
        const key = rule.wrongRole ?? (rule.permission && wrongRoleInTenantA(rule.permission));
        return key ? { caller: { token: key }, status: 403 } : undefined;
      },
    ],
    ['an MSP admin (MSP-wide)', (rule) => (rule.tenantDecides ? { caller: { token: 'mspAdmin' }, status: 403 } : undefined)],
    ['an MSP operator (MSP-wide)', (rule) => (rule.tenantDecides ? { caller: { token: 'operator' }, status: 403 } : undefined)],
  ];

  for (const [endpoint, rule] of Object.entries(ENDPOINTS)) {
    for (const [situation, expectation] of cases) {
      const expected = expectation(rule);
      if (!expected) continue; // e.g. every tenant role may read its tenant: there is no wrong role
      it(`${endpoint} with ${situation} → ${expected.status}, nothing changed`, async () => {
        const { token, header } = expected.caller;
        const before = await snapshot();
        const response = await send(endpoint, token ? `Bearer ${id.tokens[token]!}` : header);
        expect(response.status).toBe(expected.status);
        const body = (await response.json()) as { error: { code: string; message: string } };
        expect(body.error.code).toBe({ 401: 'unauthorized', 403: 'forbidden', 404: 'not_found' }[expected.status]);
        expect(await snapshot()).toEqual(before);
      });
    }
  }

  it('offers no demo sign-in without a demo: 404 for any actor, and the console config lists only the token mode', async () => {
    const config = await fetch(`${stack.baseUrl}/console/config.json`);
    expect(await config.json()).toEqual({ modes: ['token'], demo: null, oidc: null });
    for (const body of ['{"actor":"msp-admin"}', '{}']) {
      const response = await fetch(`${stack.baseUrl}/console/demo-sign-in`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('not_found');
    }
  });

  it('answers "not yours" exactly like "absent": same status and body shape for tenant B and a random tenant', async () => {
    const auth = { authorization: `Bearer ${id.tokens.approverA}` };
    const notMine = await fetch(`${stack.baseUrl}/v1/tenants/${id.tenantB}`, { headers: auth });
    const absent = await fetch(`${stack.baseUrl}/v1/tenants/${randomUUID()}`, { headers: auth });
    expect(notMine.status).toBe(404);
    expect(absent.status).toBe(404);
    const strip = (b: { error: { requestId: string } }) => ({ ...b, error: { ...b.error, requestId: '' } });
    expect(strip((await notMine.json()) as never)).toEqual(strip((await absent.json()) as never));
  });
});
