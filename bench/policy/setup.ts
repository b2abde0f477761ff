import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import type { ActionContext } from '../../core/audit/context.js';
import { systemContext } from '../../core/audit/context.js';
import type { DirectoryConnector } from '../../core/directory/connector.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import type { Pool } from '../../db/pool.js';
import { createCast, type CastSpec } from '../../runtime/demo.js';
import { putPolicy } from '../../usecases/tenancy/policies.js';

/** The one role whose duration cap the changes move: raising it loosens, lowering it tightens. */
export const ROLE = 'PolicyAdmin';
const BASE_CAP_MINUTES = 60;

export interface PolicyTenant {
  tenantId: string;
  /** Its two approvers (own staff); a quorum-2 change needs both. */
  approverIds: [string, string];
  quorum: 1 | 2;
  /** The version the seed left current. */
  version: number;
}

export interface PolicySetup {
  /** The MSP operator who proposes every change, as its audited context. */
  proposer: ActionContext;
  directory: DirectoryConnector;
  tenants: PolicyTenant[];
}

/** A tenant policy whose ROLE may last `capMinutes`, with the tenant's quorum for policy changes. */
export function policyDocument(capMinutes: number, quorum: number): TenantPolicyDocument {
  return TenantPolicyDocument.parse({
    grants: { roles: { [ROLE]: { maxDurationMinutes: capMinutes, approvalsRequired: 1, requestableBy: ['operator'] } } },
    governance: { policyChangeApprovals: quorum },
  });
}
export const baseCapMinutes = BASE_CAP_MINUTES;

/**
 * `tenantCount` tenants, each with two approvers of its own staff and a policy naming its quorum
 * for policy changes (`quorumOf(t)`); an MSP operator who proposes. Through the use cases the API calls.
 */
export async function seedPolicyTenants(
  pools: { apiPool: Pool; directoryPool: Pool },
  options: { prefix: string; tenantCount: number; quorumOf: (t: number) => 1 | 2 },
): Promise<PolicySetup> {
  const ctx = systemContext('policy-change benchmark or fault run seed');
  const slugs = Array.from({ length: options.tenantCount }, (_, t) => `${options.prefix}-${t}`);
  const spec: CastSpec = {
    tenants: slugs.map((slug) => ({ slug, name: `Policy tenant ${slug}` })),
    actors: [
      { key: 'operator', displayName: 'Policy operator', kind: 'msp_staff', roles: [{ role: 'operator', tenant: null }] },
      ...slugs.flatMap((slug) =>
        [0, 1].map((n) => ({
          key: `approver-${n}-${slug}`,
          displayName: `Approver ${n} of ${slug}`,
          kind: 'tenant_staff' as const,
          homeTenant: slug,
          roles: [{ role: 'tenant_approver' as const, tenant: slug }],
        })),
      ),
    ],
  };
  const cast = await createCast(pools.apiPool, ctx, spec);
  const directory = createPostgresDirectory(pools.directoryPool);
  const tenants: PolicyTenant[] = [];
  for (const [t, slug] of slugs.entries()) {
    const tenantId = cast.tenants[slug]!.id;
    const quorum = options.quorumOf(t);
    // A policy may name only roles the tenant directory has.
    await directory.upsertRole(tenantId, { name: ROLE, privileged: true });
    // The seed's own write, straight (not classified): version 2 with the tenant's quorum.
    const written = await putPolicy({ pool: pools.apiPool, directory }, ctx, tenantId, 1, policyDocument(BASE_CAP_MINUTES, quorum));
    tenants.push({
      tenantId,
      approverIds: [cast.actors[`approver-0-${slug}`]!.id, cast.actors[`approver-1-${slug}`]!.id],
      quorum,
      version: written.version,
    });
  }
  const operator = cast.actors.operator!;
  return { proposer: { actor: { id: operator.id, type: 'user' }, authority: { reason: 'policy-change run' } }, directory, tenants };
}
