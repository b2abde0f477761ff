import type { DirectoryConnector, DirectoryResolver } from '../../core/directory/connector.js';
import type { RunTargets } from '../../bench/directory-targets.js';
import { randomBytes } from 'node:crypto';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import type { Principal, Role } from '../../core/tenancy/authz.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import type { Pool } from '../../db/pool.js';
import { createCast } from '../../runtime/demo.js';
import { systemContext } from '../../core/audit/context.js';
import { loadGrantPolicy } from '../../usecases/grants.js';
import { putPolicy } from '../../usecases/tenancy/policies.js';
import { APPROVED_ROLE, AUTO_ROLE, USERS_PER_TENANT } from './plan.js';

export interface GrantsFaultsSeed {
  tenantIds: string[];
  policies: Awaited<ReturnType<typeof loadGrantPolicy>>[];
  /** The MSP operator who requests (and revokes). */
  operator: Principal;
  /** Each tenant's approver, by tenant index. */
  approvers: Principal[];
  /** The built-in directory. */
  directory: DirectoryConnector;
  /** With `--target`: each tenant's own target, resolved as the API does. */
  directories?: DirectoryResolver;
  /** A connector straight to each tenant's target (by tenant index), to sample and check it. */
  targets: DirectoryConnector[];
}

/**
 * Two tenants with their approvers, a grant policy for both roles, and directory users; through
 * the same use cases the API calls. With `remote`, each tenant's policy puts it on a target of its
 * own there (users and roles created there first).
 */
export async function seedGrantsFaults(
  pool: Pool,
  owner: Pool,
  remote?: { run: RunTargets; directories: DirectoryResolver },
): Promise<GrantsFaultsSeed> {
  const suffix = randomBytes(3).toString('hex');
  const ctx = systemContext('fault run seed');
  const slugs = [`faults-a-${suffix}`, `faults-b-${suffix}`];
  const cast = await createCast(pool, ctx, {
    tenants: slugs.map((slug) => ({ slug, name: `Fault tenant ${slug}` })),
    actors: [
      { key: 'operator', displayName: 'Fault-run operator', kind: 'msp_staff', roles: [{ role: 'operator', tenant: null }] },
      ...slugs.map((slug) => ({
        key: `approver-${slug}`,
        displayName: `Approver of ${slug}`,
        kind: 'tenant_staff' as const,
        homeTenant: slug,
        roles: [{ role: 'tenant_approver' as const, tenant: slug }],
      })),
    ],
  });
  const tenantIds = slugs.map((slug) => cast.tenants[slug]!.id);
  const directory = createPostgresDirectory(pool);
  const policies: GrantsFaultsSeed['policies'] = [];
  const targets: DirectoryConnector[] = [];
  for (const [t, tenantId] of tenantIds.entries()) {
    const own = remote ? await remote.run.addTenant(slugs[t]!) : undefined;
    const target = own?.connector ?? directory;
    targets.push(target);
    // A policy may name only roles the tenant directory has.
    await target.upsertRole(tenantId, { name: APPROVED_ROLE, privileged: true });
    await target.upsertRole(tenantId, { name: AUTO_ROLE, privileged: true });
    for (let u = 0; u < USERS_PER_TENANT; u++) {
      const id = `user${String(u).padStart(2, '0')}`;
      await target.upsertUser(tenantId, { id, username: id, displayName: `Fault user ${id}` });
    }
    await putPolicy(
      { pool, directory, ...(remote ? { directories: remote.directories } : {}) },
      ctx,
      tenantId,
      1,
      TenantPolicyDocument.parse({
        grants: {
          roles: {
            [APPROVED_ROLE]: { maxDurationMinutes: 5, approvalsRequired: 1, requestableBy: ['operator'] },
            [AUTO_ROLE]: { maxDurationMinutes: 5, approvalsRequired: 0, requestableBy: ['operator'] },
          },
          approvalTimeoutMinutes: 10,
          ticketPattern: 'FLT-\\d+',
        },
        ...(own ? { directory: own.target } : {}),
      }),
    );
    policies.push(await loadGrantPolicy(pool, tenantId));
  }
  // Each actor as the API would authenticate them: the actor and their role bindings.
  const principalOf = async (actor: { id: string; kind: Principal['kind']; displayName: string }): Promise<Principal> => {
    const { rows } = await owner.query<{ id: string; role: Role; tenant_id: string | null }>(
      'SELECT id, role, tenant_id FROM role_bindings WHERE actor_id = $1',
      [actor.id],
    );
    return {
      actorId: actor.id,
      kind: actor.kind,
      displayName: actor.displayName,
      via: 'api_token',
      bindings: rows.map((b) => ({ id: b.id, role: b.role, tenantId: b.tenant_id })),
    };
  };
  return {
    tenantIds,
    policies,
    operator: await principalOf(cast.actors.operator!),
    approvers: await Promise.all(slugs.map((slug) => principalOf(cast.actors[`approver-${slug}`]!))),
    directory,
    ...(remote ? { directories: remote.directories } : {}),
    targets,
  };
}
