import type { Role } from '../core/tenancy/authz.js';
import { TenantPolicyDocument, type ActorView, type TenantView } from '../core/tenancy/schemas.js';
import type { Pool } from '../db/pool.js';
import { systemContext, type ActionContext } from '../core/audit/context.js';
import { createActor } from '../usecases/tenancy/actors.js';
import { createBinding } from '../usecases/tenancy/bindings.js';
import { getPolicy, putPolicy } from '../usecases/tenancy/policies.js';
import { createTenant } from '../usecases/tenancy/tenants.js';
import { createToken } from '../usecases/tenancy/tokens.js';
import type { DirectoryConnector } from '../core/directory/connector.js';
import { ActionPolicy } from '../core/actions/policy.js';
import { GrantPolicy } from '../core/grants/policy.js';
import { LifecyclePolicy } from '../core/lifecycle/policy.js';

/** A set of tenants and actors with roles and API tokens: the demo MSP, or a test's cast. */
export interface CastSpec {
  tenants: { slug: string; name: string }[];
  actors: {
    key: string;
    displayName: string;
    kind: ActorView['kind'];
    /** Slug of the home tenant, for tenant staff. */
    homeTenant?: string;
    roles: { role: Role; tenant: string | null }[];
    tokenExpiresInDays?: number;
  }[];
}

export interface Cast {
  tenants: Record<string, TenantView>;
  actors: Record<string, ActorView & { token: string; roles: { role: Role; tenant: string | null }[] }>;
}

/** Creates the cast through the same audited use cases the API calls. */
export async function createCast(pool: Pool, ctx: ActionContext, spec: CastSpec): Promise<Cast> {
  const tenants: Cast['tenants'] = {};
  for (const t of spec.tenants) tenants[t.slug] = await createTenant(pool, ctx, { ...t, policy: TenantPolicyDocument.parse({}) });
  const tenantId = (slug: string) => {
    const tenant = tenants[slug];
    if (!tenant) throw new Error(`cast: unknown tenant ${slug}`);
    return tenant.id;
  };
  const actors: Cast['actors'] = {};
  for (const a of spec.actors) {
    const actor = await createActor(pool, ctx, {
      kind: a.kind,
      displayName: a.displayName,
      ...(a.homeTenant ? { homeTenantId: tenantId(a.homeTenant) } : {}),
    });
    for (const r of a.roles)
      await createBinding(pool, ctx, { actorId: actor.id, role: r.role, tenantId: r.tenant ? tenantId(r.tenant) : null });
    const days = a.tokenExpiresInDays ?? 90;
    const { token } = await createToken(pool, ctx, {
      actorId: actor.id,
      name: `${a.key} token`,
      expiresAt: new Date(Date.now() + days * 86_400_000),
    });
    actors[a.key] = { ...actor, token, roles: a.roles };
  }
  return { tenants, actors };
}

export const DEMO_CAST: CastSpec = {
  tenants: [
    { slug: 'contoso', name: 'Contoso Ltd' },
    { slug: 'fabrikam', name: 'Fabrikam Inc' },
  ],
  actors: [
    { key: 'msp-admin', displayName: 'Alice Admin (MSP admin)', kind: 'msp_staff', roles: [{ role: 'msp_admin', tenant: null }] },
    { key: 'msp-operator', displayName: 'Oscar Operator (MSP operator)', kind: 'msp_staff', roles: [{ role: 'operator', tenant: null }] },
    { key: 'msp-auditor', displayName: 'Ada Auditor (MSP auditor)', kind: 'msp_staff', roles: [{ role: 'auditor', tenant: null }] },
    {
      key: 'contoso-approver',
      displayName: 'Carla (Contoso approver)',
      kind: 'tenant_staff',
      homeTenant: 'contoso',
      roles: [{ role: 'tenant_approver', tenant: 'contoso' }],
    },
    {
      key: 'contoso-reviewer',
      displayName: 'Cody (Contoso reviewer)',
      kind: 'tenant_staff',
      homeTenant: 'contoso',
      roles: [{ role: 'tenant_reviewer', tenant: 'contoso' }],
    },
    {
      key: 'fabrikam-approver',
      displayName: 'Fiona (Fabrikam approver)',
      kind: 'tenant_staff',
      homeTenant: 'fabrikam',
      roles: [{ role: 'tenant_approver', tenant: 'fabrikam' }],
    },
    {
      key: 'contoso-hr-feed',
      displayName: 'Contoso HR feed',
      kind: 'service_account',
      roles: [{ role: 'hr_integration', tenant: 'contoso' }],
    },
  ],
};

/**
 * The demo tenants' directories and grant, lifecycle and action policies, so a first `npm start`
 * can request, approve and watch a grant expire straight away.
 */
export async function seedDemoGrants(pool: Pool, cast: Cast, directory: DirectoryConnector): Promise<void> {
  const ctx = systemContext('demo MSP seeded on first start');
  const people = [
    { id: 'ana.lima', displayName: 'Ana Lima' },
    { id: 'ben.okafor', displayName: 'Ben Okafor' },
    { id: 'chen.wei', displayName: 'Chen Wei' },
  ];
  for (const tenant of Object.values(cast.tenants)) {
    await directory.upsertRole(tenant.id, { name: 'GlobalAdmin', description: 'Full administrative access', privileged: true });
    await directory.upsertRole(tenant.id, { name: 'HelpdeskAdmin', description: 'Password resets and unlocks', privileged: true });
    for (const role of ['AllStaff', 'FinanceReaders', 'ServiceDesk'])
      await directory.upsertRole(tenant.id, { name: role, description: `${role} (birthright)` });
    for (const person of people)
      await directory.upsertUser(tenant.id, { ...person, username: person.id, email: `${person.id}@${tenant.slug}.example` });
    const current = await getPolicy(pool, tenant.id);
    await putPolicy({ pool, directory }, ctx, tenant.id, current.version, {
      ...current.document,
      grants: GrantPolicy.parse({
        roles: {
          GlobalAdmin: { maxDurationMinutes: 240, approvalsRequired: 1, requestableBy: ['operator', 'msp_admin'] },
          HelpdeskAdmin: { maxDurationMinutes: 480, approvalsRequired: 0, requestableBy: ['operator', 'msp_admin'] },
        },
        ticketPattern: 'INC-\\d+',
      }),
      // Joiner / mover / leaver: everyone gets AllStaff; Finance and IT get their department's role.
      lifecycle: LifecyclePolicy.parse({
        attributes: ['department', 'employmentType'],
        rules: [
          { id: 'all-staff', roles: ['AllStaff'] },
          { id: 'finance', when: { department: 'Finance' }, roles: ['FinanceReaders'] },
          {
            id: 'it',
            when: { department: 'IT', employmentType: 'employee' },
            roles: ['ServiceDesk'],
            eligibleGrantRoles: ['HelpdeskAdmin'],
          },
        ],
        moverGraceMinutes: 60,
        leaver: { retentionDays: 30, afterRetention: 'anonymise' },
      }),
      // Remote actions: unlock and ending sessions run at once; the rest waits for the tenant's approver.
      actions: ActionPolicy.parse({
        allowed: {
          unlock: { approvalsRequired: 0, requestableBy: ['operator', 'msp_admin'] },
          revoke_sessions: { approvalsRequired: 0, requestableBy: ['operator', 'msp_admin'] },
          reset_mfa: { approvalsRequired: 1, requestableBy: ['operator', 'msp_admin'] },
          force_password_reset: { approvalsRequired: 1, requestableBy: ['operator', 'msp_admin'] },
          disable_account: { approvalsRequired: 1, requestableBy: ['operator', 'msp_admin'] },
        },
        ticketPattern: 'INC-\\d+',
      }),
    });
  }
}
