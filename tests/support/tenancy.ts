import { randomBytes } from 'node:crypto';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope } from '../../db/scope.js';
import { createCast, type Cast, type CastSpec } from '../../runtime/demo.js';
import { systemContext } from '../../core/audit/context.js';
import type { ApiResponse, Call } from './http.js';

/**
 * The test cast: tenants `a` and `b` (slugs made unique per call), and one actor with a token
 * per situation the authorization tests need, including an expired and a revoked token.
 */
export interface TestTenancy extends Cast {
  tenantA: string;
  tenantB: string;
  tokens: Record<string, string>;
}

export async function seedTenancy(pool: Pool): Promise<TestTenancy> {
  const suffix = randomBytes(3).toString('hex');
  const a = `a-${suffix}`;
  const b = `b-${suffix}`;
  const spec: CastSpec = {
    tenants: [
      { slug: a, name: `Tenant A ${suffix}` },
      { slug: b, name: `Tenant B ${suffix}` },
    ],
    actors: [
      { key: 'mspAdmin', displayName: 'MSP admin', kind: 'msp_staff', roles: [{ role: 'msp_admin', tenant: null }] },
      { key: 'operator', displayName: 'MSP operator', kind: 'msp_staff', roles: [{ role: 'operator', tenant: null }] },
      { key: 'mspAuditor', displayName: 'MSP auditor', kind: 'msp_staff', roles: [{ role: 'auditor', tenant: null }] },
      { key: 'approverA', displayName: 'Approver A', kind: 'tenant_staff', homeTenant: a, roles: [{ role: 'tenant_approver', tenant: a }] },
      { key: 'reviewerA', displayName: 'Reviewer A', kind: 'tenant_staff', homeTenant: a, roles: [{ role: 'tenant_reviewer', tenant: a }] },
      { key: 'auditorA', displayName: 'Auditor A', kind: 'tenant_staff', homeTenant: a, roles: [{ role: 'auditor', tenant: a }] },
      { key: 'approverB', displayName: 'Approver B', kind: 'tenant_staff', homeTenant: b, roles: [{ role: 'tenant_approver', tenant: b }] },
      { key: 'auditorB', displayName: 'Auditor B', kind: 'tenant_staff', homeTenant: b, roles: [{ role: 'auditor', tenant: b }] },
      {
        key: 'tenantAdminB',
        displayName: 'MSP admin bound to tenant B only',
        kind: 'msp_staff',
        roles: [{ role: 'msp_admin', tenant: b }],
      },
      { key: 'hrA', displayName: 'HR feed A', kind: 'service_account', roles: [{ role: 'hr_integration', tenant: a }] },
      { key: 'expiredAdmin', displayName: 'Admin with expired token', kind: 'msp_staff', roles: [{ role: 'msp_admin', tenant: null }] },
      { key: 'revokedAdmin', displayName: 'Admin with revoked token', kind: 'msp_staff', roles: [{ role: 'msp_admin', tenant: null }] },
    ],
  };
  const cast = await createCast(pool, systemContext('test seed'), spec);
  await inScope(pool, mspScope, async (client) => {
    await client.query("UPDATE api_tokens SET expires_at = now() - interval '1 hour' WHERE actor_id = $1", [cast.actors.expiredAdmin!.id]);
    await client.query('UPDATE api_tokens SET revoked_at = now() WHERE actor_id = $1', [cast.actors.revokedAdmin!.id]);
  });
  const tokens = Object.fromEntries(Object.entries(cast.actors).map(([key, actor]) => [key, actor.token]));
  return { ...cast, tenantA: cast.tenants[a]!.id, tenantB: cast.tenants[b]!.id, tokens };
}

/**
 * Gives a tenant a policy through the API the way it gets one now: `proposer` PUTs it, and a
 * change that waits for the tenant's approvers is approved by `approver` (one approval: the
 * default quorum). Answers the PUT's response and, when it waited, the approval's.
 */
export async function setPolicy(
  call: Call,
  tokens: { proposer: string; approver: string },
  tenantId: string,
  body: { expectedVersion: number; document: unknown },
): Promise<{ put: ApiResponse; approval?: ApiResponse }> {
  const put = await call(tokens.proposer, 'PUT', `/v1/tenants/${tenantId}/policy`, body);
  if (put.status !== 202) return { put };
  const approval = await call(tokens.approver, 'POST', `/v1/tenants/${tenantId}/policy/changes/${put.body.changeId}/approve`, {});
  return { put, approval };
}

/** A new member of `tenantId`'s own staff holding `roles` there, with an API token. */
export function tenantStaff(
  call: Call,
  adminToken: string,
  tenantId: string,
  displayName: string,
  roles: string[],
): Promise<{ actorId: string; token: string }> {
  return newActor(call, adminToken, { kind: 'tenant_staff', displayName, homeTenantId: tenantId }, tenantId, roles);
}

/** A new MSP staff member holding `roles` MSP-wide (e.g. a template owner), with an API token. */
export function mspStaff(
  call: Call,
  adminToken: string,
  displayName: string,
  roles: string[],
): Promise<{ actorId: string; token: string }> {
  return newActor(call, adminToken, { kind: 'msp_staff', displayName }, null, roles);
}

async function newActor(
  call: Call,
  adminToken: string,
  actorBody: Record<string, unknown>,
  tenantId: string | null,
  roles: string[],
): Promise<{ actorId: string; token: string }> {
  const displayName = String(actorBody.displayName);
  const actor = await call(adminToken, 'POST', '/v1/actors', actorBody);
  if (actor.status !== 201) throw new Error(`creating ${displayName}: ${actor.status} ${JSON.stringify(actor.body)}`);
  const actorId = actor.body.id as string;
  for (const role of roles) {
    const binding = await call(adminToken, 'POST', '/v1/role-bindings', { actorId, role, tenantId });
    if (binding.status !== 201) throw new Error(`binding ${displayName} as ${role}: ${binding.status} ${JSON.stringify(binding.body)}`);
  }
  const token = await call(adminToken, 'POST', '/v1/tokens', { actorId, name: 'e2e' });
  if (token.status !== 201) throw new Error(`token for ${displayName}: ${token.status}`);
  return { actorId, token: token.body.token as string };
}
