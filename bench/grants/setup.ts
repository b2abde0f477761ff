import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import type { DirectoryConnector, DirectoryResolver } from '../../core/directory/connector.js';
import type { Principal } from '../../core/tenancy/authz.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import type { Pool } from '../../db/pool.js';
import { createCast, type CastSpec } from '../../runtime/demo.js';
import { systemContext } from '../../core/audit/context.js';
import { loadGrantPolicy } from '../../usecases/grants.js';
import { listBindings } from '../../usecases/tenancy/bindings.js';
import { putPolicy } from '../../usecases/tenancy/policies.js';
import type { RunTargets } from '../directory-targets.js';

export const ROLE = 'BenchAdmin';

export interface BenchTenant {
  tenantId: string;
  /** A connector straight to the tenant's target, to check what is left there. */
  connector: DirectoryConnector;
  approverId: string;
  policy: Awaited<ReturnType<typeof loadGrantPolicy>>;
}

export interface GrantsBenchSetup {
  /** The operator who requests every grant, as the API would authenticate them. */
  principal: Principal;
  /** The built-in directory. */
  directory: DirectoryConnector;
  /** Each tenant's own target, when they are on real servers (`--target`). */
  directories?: DirectoryResolver;
  /** `builtin`, `ldap` or `scim`. */
  targetKind: string;
  tenants: BenchTenant[];
  /** Grant i's tenant and subject: its own (tenant, user), so no two grants in a batch share a ledger lock. */
  target(i: number): BenchTenant & { subjectId: string };
}

/**
 * `tenantCount` tenants, each with an approver, a policy that lets the operator request ROLE
 * (one approval), and `usersPerTenant` directory users; an MSP operator who requests. With
 * `targets`, each tenant's policy puts it on a target of its own there (its users and role
 * created there first), and `directories` resolves it as the API and worker do.
 */
export async function seedGrantsBench(
  pools: { apiPool: Pool; directoryPool: Pool },
  options: { suffix: string; tenantCount: number; usersPerTenant: number },
  targets?: { run: RunTargets; directories: DirectoryResolver },
): Promise<GrantsBenchSetup> {
  const { apiPool } = pools;
  const { tenantCount, usersPerTenant } = options;
  const label = targets ? `${options.suffix}-${targets.run.kind}` : options.suffix;
  const slugs = Array.from({ length: tenantCount }, (_, t) => `bench-${label}-${t}`);
  const spec: CastSpec = {
    tenants: slugs.map((slug) => ({ slug, name: `Bench tenant ${slug}` })),
    actors: [
      { key: 'operator', displayName: 'Bench operator', kind: 'msp_staff', roles: [{ role: 'operator', tenant: null }] },
      ...slugs.map((slug) => ({
        key: `approver-${slug}`,
        displayName: `Bench approver ${slug}`,
        kind: 'tenant_staff' as const,
        homeTenant: slug,
        roles: [{ role: 'tenant_approver' as const, tenant: slug }],
      })),
    ],
  };
  const cast = await createCast(apiPool, systemContext('grants benchmark'), spec);
  const operator = cast.actors.operator!;
  const principal: Principal = {
    actorId: operator.id,
    kind: operator.kind,
    displayName: operator.displayName,
    bindings: (await listBindings(apiPool, { actorId: operator.id })).map((b) => ({ id: b.id, role: b.role, tenantId: b.tenantId })),
    via: 'api_token',
  };
  const directory = createPostgresDirectory(pools.directoryPool);
  const tenants = await Promise.all(
    slugs.map(async (slug): Promise<BenchTenant> => {
      const tenantId = cast.tenants[slug]!.id;
      const own = targets ? await targets.run.addTenant(slug) : undefined;
      const connector = own?.connector ?? directory;
      // A policy may name only roles the tenant directory has.
      await connector.upsertRole(tenantId, { name: ROLE, privileged: true });
      for (let u = 0; u < usersPerTenant; u++)
        await connector.upsertUser(tenantId, { id: `user-${u}`, username: `user-${u}`, displayName: `User ${u}` });
      await putPolicy(
        { pool: apiPool, directory, ...(targets ? { directories: targets.directories } : {}) },
        systemContext('grants benchmark'),
        tenantId,
        1,
        TenantPolicyDocument.parse({
          grants: { roles: { [ROLE]: { maxDurationMinutes: 60, approvalsRequired: 1, requestableBy: ['operator'] } } },
          ...(own ? { directory: own.target } : {}),
        }),
      );
      return { tenantId, connector, approverId: cast.actors[`approver-${slug}`]!.id, policy: await loadGrantPolicy(apiPool, tenantId) };
    }),
  );
  return {
    principal,
    directory,
    ...(targets ? { directories: targets.directories } : {}),
    targetKind: targets?.run.kind ?? 'builtin',
    tenants,
    target: (i) => ({ ...tenants[i % tenantCount]!, subjectId: `user-${Math.floor(i / tenantCount)}` }),
  };
}
