import { randomUUID } from 'node:crypto';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import type { Pool } from '../../db/pool.js';
import { createCast, type CastSpec } from '../../runtime/demo.js';
import { systemContext, type ActionContext } from '../../core/audit/context.js';
import { listBindings } from '../../usecases/tenancy/bindings.js';
import { putPolicy } from '../../usecases/tenancy/policies.js';
import { DIRECTORY_ROLES, LIFECYCLE } from './people.js';

export interface BenchTenant {
  tenantId: string;
  /** The tenant's HR feed as the API's import route sees it. */
  ctx: ActionContext;
}

/** `tenantCount` tenants, each with an HR feed account, the birthright rules and their directory roles. */
export async function seedLifecycleBench(
  pools: { apiPool: Pool; directoryPool: Pool },
  options: { suffix: string; tenantCount: number },
): Promise<BenchTenant[]> {
  const { apiPool } = pools;
  const slugs = Array.from({ length: options.tenantCount }, (_, t) => `bench-${options.suffix}-${t}`);
  const spec: CastSpec = {
    tenants: slugs.map((slug) => ({ slug, name: `Bench tenant ${slug}` })),
    actors: slugs.map((slug) => ({
      key: `hr-${slug}`,
      displayName: `Bench HR feed ${slug}`,
      kind: 'service_account' as const,
      roles: [{ role: 'hr_integration' as const, tenant: slug }],
    })),
  };
  const seedCtx = systemContext('lifecycle benchmark');
  const cast = await createCast(apiPool, seedCtx, spec);
  const directory = createPostgresDirectory(pools.directoryPool);
  const tenants: BenchTenant[] = [];
  for (const slug of slugs) {
    const tenantId = cast.tenants[slug]!.id;
    const feed = cast.actors[`hr-${slug}`]!;
    // Roles exist on the target before any rule names them, as an onboarding checklist has it.
    for (const name of DIRECTORY_ROLES) await directory.upsertRole(tenantId, { name, privileged: name === 'Developers' });
    await putPolicy({ pool: apiPool, directory }, seedCtx, tenantId, 1, TenantPolicyDocument.parse({ lifecycle: LIFECYCLE }));
    const bindings = await listBindings(apiPool, { actorId: feed.id });
    // What the API's import route builds for this caller (api/auth.ts actionContext + the route's authority).
    tenants.push({
      tenantId,
      ctx: {
        actor: { id: feed.id, type: 'service' },
        authority: {
          roles: [...new Set(bindings.map((b) => b.role))].sort(),
          bindingIds: bindings.map((b) => b.id).sort(),
          requestId: randomUUID(),
        },
      },
    });
  }
  return tenants;
}
