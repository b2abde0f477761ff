import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient } from '../support/http.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, setPolicy, type TestTenancy } from '../support/tenancy.js';

/** Issue 10, "no MSP-side bypass": a tenant's approvers and reviewers are only ever its own people. */
let stack: TestStack;
let id: TestTenancy;

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
});
afterAll(async () => {
  await stack?.stop();
});

const call = apiClient(() => stack.baseUrl);

async function bindingsOf(actorId: string): Promise<{ role: string; tenant_id: string | null }[]> {
  const { rows } = await stack.db.pool.query('SELECT role, tenant_id FROM role_bindings WHERE actor_id = $1 ORDER BY role', [actorId]);
  return rows as { role: string; tenant_id: string | null }[];
}

describe('tenant decision roles', () => {
  it.each(['tenant_approver', 'tenant_reviewer'])(
    'an MSP admin binding itself as %s of a client gets 403 and nothing changes',
    async (role) => {
      const before = await bindingsOf(id.actors.mspAdmin!.id);
      const res = await call(id.tokens.mspAdmin, 'POST', '/v1/role-bindings', {
        actorId: id.actors.mspAdmin!.id,
        role,
        tenantId: id.tenantA,
      });
      expect(res.status).toBe(403);
      expect(res.body.error.message).toMatch(/MSP staff never decide for a tenant/);
      expect(await bindingsOf(id.actors.mspAdmin!.id)).toEqual(before);
    },
  );

  it('an MSP operator cannot be made a client’s approver, even by an MSP admin', async () => {
    const res = await call(id.tokens.mspAdmin, 'POST', '/v1/role-bindings', {
      actorId: id.actors.operator!.id,
      role: 'tenant_approver',
      tenantId: id.tenantB,
    });
    expect(res.status).toBe(403);
    expect((await bindingsOf(id.actors.operator!.id)).map((b) => b.role)).toEqual(['operator']);
  });

  it('a service account the tenant does not own cannot approve for it', async () => {
    const res = await call(id.tokens.mspAdmin, 'POST', '/v1/role-bindings', {
      actorId: id.actors.hrA!.id,
      role: 'tenant_approver',
      tenantId: id.tenantA,
    });
    expect(res.status).toBe(403);
  });

  it('an MSP-wide approver binding is refused with 400 naming the tenant', async () => {
    const staff = await call(id.tokens.mspAdmin, 'POST', '/v1/actors', {
      kind: 'tenant_staff',
      displayName: 'A2',
      homeTenantId: id.tenantA,
    });
    const res = await call(id.tokens.mspAdmin, 'POST', '/v1/role-bindings', {
      actorId: staff.body.id,
      role: 'tenant_reviewer',
      tenantId: null,
    });
    expect(res.status).toBe(400);
    expect(res.body.error.issues).toEqual([expect.objectContaining({ path: 'body.tenantId' })]);
  });

  it.each(['tenant_approver', 'tenant_reviewer'])(
    '%s without a tenant is refused by the request schema (400 at body.tenantId), whoever the actor is, and nothing changes',
    async (role) => {
      const before = await bindingsOf(id.actors.operator!.id);
      const res = await call(id.tokens.mspAdmin, 'POST', '/v1/role-bindings', { actorId: id.actors.operator!.id, role, tenantId: null });
      expect(res.status).toBe(400);
      expect(res.body.error.issues).toEqual([{ path: 'body.tenantId', message: expect.stringMatching(/expected string, received null/) }]);
      expect(await bindingsOf(id.actors.operator!.id)).toEqual(before);
    },
  );

  it('the OpenAPI document says a decision role needs a tenant and only the other roles may be MSP-wide', async () => {
    type Schema = { oneOf?: { $ref: string }[]; properties?: Record<string, { enum?: string[]; type?: string | string[] }> };
    const doc = (await (await fetch(`${stack.baseUrl}/openapi.json`)).json()) as { components: { schemas: Record<string, Schema> } };
    const schemas = doc.components.schemas;
    const options = schemas.CreateRoleBindingRequest!.oneOf!.map((o) => schemas[o.$ref.split('/').at(-1)!]!);
    const decision = options.find((o) => o.properties!.role!.enum!.includes('tenant_approver'))!;
    expect(decision.properties!.role!.enum).toEqual(['tenant_approver', 'tenant_reviewer']);
    expect(decision.properties!.tenantId!.type).toBe('string');
    const scoped = options.find((o) => o !== decision)!;
    expect(scoped.properties!.role!.enum).not.toContain('tenant_reviewer');
    expect(scoped.properties!.tenantId!.type).toEqual(['string', 'null']);
  });

  it('the tenant’s own staff member becomes its approver: 201 and audited on the tenant chain', async () => {
    const staff = await call(id.tokens.mspAdmin, 'POST', '/v1/actors', {
      kind: 'tenant_staff',
      displayName: 'A3',
      homeTenantId: id.tenantA,
    });
    const res = await call(id.tokens.mspAdmin, 'POST', '/v1/role-bindings', {
      actorId: staff.body.id,
      role: 'tenant_approver',
      tenantId: id.tenantA,
    });
    expect(res.status).toBe(201);
    const { rows } = await stack.db.pool.query('SELECT action FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1', [
      id.tenantA,
    ]);
    expect(rows[0]).toEqual({ action: 'role_binding.created' });
  });
});

describe('a binding made before the rule', () => {
  it('an MSP staff member still bound as approver cannot approve a grant', async () => {
    // Written past the API, as a binding that predates the rule would be.
    await stack.db.pool.query(
      "INSERT INTO role_bindings (id, actor_id, role, tenant_id, created_by) VALUES (gen_random_uuid(), $1, 'tenant_approver', $2, 'test')",
      [id.actors.mspAuditor!.id, id.tenantA],
    );
    await stack.directory.upsertRole(id.tenantA, { name: 'LegacyAdmin', privileged: true });
    await stack.directory.upsertUser(id.tenantA, { id: 'legacy-user', username: 'legacy-user', displayName: 'Legacy user' });
    const policy = await call(id.tokens.mspAdmin, 'GET', `/v1/tenants/${id.tenantA}/policy`);
    const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
      expectedVersion: policy.body.version,
      document: { grants: { roles: { LegacyAdmin: { maxDurationMinutes: 60, approvalsRequired: 1, requestableBy: ['operator'] } } } },
    });
    expect(approval?.body.status).toBe('applied');
    const grant = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantA}/grants`, {
      subjectId: 'legacy-user',
      role: 'LegacyAdmin',
      durationMinutes: 30,
      justification: 'legacy binding check',
    });
    expect(grant.status).toBe(201);
    const approve = await call(id.tokens.mspAuditor, 'POST', `/v1/tenants/${id.tenantA}/grants/${grant.body.grantId}/approve`, {});
    expect(approve.status).toBe(403);
    const after = await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}/grants/${grant.body.grantId}`);
    expect(after.body).toMatchObject({ status: 'pending_approval', approvals: [] });
  });
});
