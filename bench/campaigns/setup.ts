import type { LedgerActivities } from '../../activities/directory/ledger.js';
import { systemContext, type ActionContext } from '../../core/audit/context.js';
import { CampaignDefinitionDocument } from '../../core/campaigns/schemas.js';
import type { DirectoryConnector } from '../../core/directory/connector.js';
import type { Principal } from '../../core/tenancy/authz.js';
import type { Pool } from '../../db/pool.js';
import { createCast, type CastSpec } from '../../runtime/demo.js';
import { createCampaign } from '../../usecases/campaigns.js';
import { listBindings } from '../../usecases/tenancy/bindings.js';
import { runConcurrently } from '../support.js';

/** The privileged role every seeded user holds: what the campaigns review. */
export const REVIEWED_ROLE = 'CampaignAdmin';
/** Tenants a cast call creates; several run at once. */
const CAST_CHUNK = 25;

export interface CampaignTenant {
  tenantId: string;
  /** The tenant's own reviewer (tenant staff, `tenant_reviewer` there), as the API authenticates them. */
  reviewer: { principal: Principal; token: string };
  /** The directory users holding REVIEWED_ROLE. */
  subjects: string[];
}

export interface CampaignCast {
  /** The MSP operator who defines and runs campaigns. */
  operator: ActionContext;
  tenants: CampaignTenant[];
}

/** Subject ids of one tenant: `u-00000`… (sorted as the directory lists them). */
export const subjectIds = (count: number) => Array.from({ length: count }, (_, u) => `u-${String(u).padStart(5, '0')}`);

/**
 * `tenantCount` tenants, each with a reviewer of its own staff holding `tenant_reviewer` there,
 * and an MSP operator; created through the audited use cases the API calls, a few chunks at a time.
 * Tenant t is to have `usersOf(t)` subjects (see loadSubjects / grantSubjects).
 */
export async function seedCampaignCast(
  pool: Pool,
  options: { prefix: string; tenantCount: number; usersOf: (t: number) => number; concurrency?: number },
): Promise<CampaignCast> {
  const ctx = systemContext('campaign benchmark or fault run seed');
  const slugs = Array.from({ length: options.tenantCount }, (_, t) => `${options.prefix}-${t}`);
  const operatorCast = await createCast(pool, ctx, {
    tenants: [],
    actors: [{ key: 'operator', displayName: 'Campaign operator', kind: 'msp_staff', roles: [{ role: 'operator', tenant: null }] }],
  });
  const chunks = Array.from({ length: Math.ceil(slugs.length / CAST_CHUNK) }, (_, c) => slugs.slice(c * CAST_CHUNK, (c + 1) * CAST_CHUNK));
  const tenants: CampaignTenant[] = new Array(slugs.length);
  await runConcurrently(chunks.length, options.concurrency ?? 4, new AbortController().signal, async (c) => {
    const mine = chunks[c]!;
    const spec: CastSpec = {
      tenants: mine.map((slug) => ({ slug, name: `Campaign tenant ${slug}` })),
      actors: mine.map((slug) => ({
        key: `reviewer-${slug}`,
        displayName: `Reviewer and approver of ${slug}`,
        kind: 'tenant_staff' as const,
        homeTenant: slug,
        // Also the tenant's approver: the one who may close its review before the deadline.
        roles: [
          { role: 'tenant_reviewer' as const, tenant: slug },
          { role: 'tenant_approver' as const, tenant: slug },
        ],
      })),
    };
    const cast = await createCast(pool, ctx, spec);
    for (const slug of mine) {
      const reviewer = cast.actors[`reviewer-${slug}`]!;
      const bindings = await listBindings(pool, { actorId: reviewer.id });
      tenants[slugs.indexOf(slug)] = {
        tenantId: cast.tenants[slug]!.id,
        reviewer: {
          token: reviewer.token,
          principal: {
            actorId: reviewer.id,
            kind: reviewer.kind,
            displayName: reviewer.displayName,
            bindings: bindings.map((b) => ({ id: b.id, role: b.role, tenantId: b.tenantId })),
            via: 'api_token',
          },
        },
        subjects: subjectIds(options.usersOf(slugs.indexOf(slug))),
      };
    }
  });
  const operator = operatorCast.actors.operator!;
  return { operator: { actor: { id: operator.id, type: 'user' }, authority: { roles: ['operator'] } }, tenants };
}

const userOf = (id: string) => ({ id, username: id, displayName: `User ${id}`, email: `${id}@example.test` });

/**
 * Each tenant's subjects hold REVIEWED_ROLE on the built-in directory with nothing in the ledger
 * to explain it (assigned outside Tenure), loaded in bulk.
 */
export async function loadSubjects(
  directory: DirectoryConnector & {
    loadUsers(tenantId: string, users: readonly ReturnType<typeof userOf>[], roles: readonly string[]): Promise<void>;
  },
  tenants: readonly CampaignTenant[],
  concurrency = 4,
): Promise<void> {
  await runConcurrently(tenants.length, concurrency, new AbortController().signal, async (t) => {
    const { tenantId, subjects } = tenants[t]!;
    await directory.upsertRole(tenantId, { name: REVIEWED_ROLE, privileged: true });
    await directory.loadUsers(tenantId, subjects.map(userOf), [REVIEWED_ROLE]);
  });
}

/**
 * Each tenant's subjects get REVIEWED_ROLE through the entitlement ledger as a manual entitlement
 * (`manual:seed-<subject>`), the path a campaign's revoke ends and reads back.
 */
export async function grantSubjects(
  directory: DirectoryConnector,
  ledger: Pick<LedgerActivities, 'grantAccess'>,
  tenants: readonly CampaignTenant[],
  concurrency = 8,
): Promise<void> {
  const pairs = tenants.flatMap((t) => t.subjects.map((subjectId) => ({ tenantId: t.tenantId, subjectId })));
  await runConcurrently(tenants.length, concurrency, new AbortController().signal, async (t) => {
    const { tenantId, subjects } = tenants[t]!;
    await directory.upsertRole(tenantId, { name: REVIEWED_ROLE, privileged: true });
    for (const id of subjects) await directory.upsertUser(tenantId, userOf(id));
  });
  await runConcurrently(pairs.length, concurrency, new AbortController().signal, async (i) => {
    const { tenantId, subjectId } = pairs[i]!;
    await ledger.grantAccess({ tenantId, subjectId, role: REVIEWED_ROLE, sourceType: 'manual', sourceId: `seed-${subjectId}` });
  });
}

/**
 * A one-stage campaign over exactly `tenantIds`, reviewing REVIEWED_ROLE, whose stage stays open
 * until an operator closes it; `remediation` `on_decision` applies each revoke as it is decided.
 */
export function campaignDefinition(
  tenantIds: string[],
  remediation: CampaignDefinitionDocument['remediation'] = 'at_close',
): CampaignDefinitionDocument {
  return CampaignDefinitionDocument.parse({
    scope: { tenantIds, includeLaterTenants: false },
    items: { roles: [REVIEWED_ROLE] },
    stages: [{ durationMinutes: 7 * 24 * 60 }],
    nonResponse: 'keep',
    remediation,
  });
}

/** Creates a campaign over `tenantIds` through the use case, as the operator. */
export async function defineCampaign(
  deps: Parameters<typeof createCampaign>[0],
  cast: CampaignCast,
  name: string,
  tenantIds: string[],
  remediation?: CampaignDefinitionDocument['remediation'],
): Promise<string> {
  return (await createCampaign(deps, cast.operator, { name, definition: campaignDefinition(tenantIds, remediation) })).id;
}
