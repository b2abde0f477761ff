import type { Readable } from 'node:stream';
import type { ActionContext } from '../../core/audit/context.js';
import { CampaignDefinitionDocument, type CampaignRunView, type CampaignView } from '../../core/campaigns/schemas.js';
import {
  isServiceAccount,
  ownerOf,
  STANDING_CSV_COLUMNS,
  standingCsvRecord,
  standingEndsAt,
  standingReasons,
  type StandingEntryView,
  type StandingQuery,
  type StandingReportView,
  type StandingReviewBody,
} from '../../core/campaigns/standing.js';
import { DirectoryError, resolverOf, type DirectoryDeps, type DirectoryUser } from '../../core/directory/connector.js';
import { mapBounded } from '../../core/concurrency.js';
import { badRequest } from '../../core/errors.js';
import { activeTenantIds, lastReviewedAccess, personStatuses } from '../../db/campaigns/standing.js';
import { openEntitlementsForRoles } from '../../db/directory/ledger.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { createCampaign, recordsCsv, startCampaignRun, type CampaignDeps } from '../campaigns.js';

export type StandingDeps = Pick<CampaignDeps, 'pool'> & DirectoryDeps;

/** Subjects read from the target per call. */
const USER_BATCH = 500;
/**
 * Tenants read at once by the report across tenants: each is its own target, so a few overlap
 * (a thousand tenants one by one would take a thousand round trips in a row), and no more, so the
 * API's database pool and the targets are not flooded by one report.
 */
export const STANDING_TENANT_CONCURRENCY = 8;

/**
 * One tenant's standing privilege, read now: every member of every role its target marks
 * privileged, what the ledger records for it, the holder's account, the lifecycle's word on the
 * person, and when a reviewer last decided it. Entries without any reason are left out.
 */
async function tenantStanding(deps: StandingDeps, tenantId: string, query: StandingQuery, now: number): Promise<StandingEntryView[]> {
  const directory = await resolverOf(deps).directoryFor(tenantId);
  const roles = (await directory.listAllRoles(tenantId)).filter((r) => r.privileged).map((r) => r.name);
  if (roles.length === 0) return [];
  const pairs: { subjectId: string; role: string }[] = [];
  for (const role of roles) for (const subjectId of await directory.listMembers(tenantId, role)) pairs.push({ subjectId, role });
  const subjects = [...new Set(pairs.map((p) => p.subjectId))];
  const users = new Map<string, DirectoryUser>();
  for (let i = 0; i < subjects.length; i += USER_BATCH)
    for (const user of await directory.getUsers(tenantId, subjects.slice(i, i + USER_BATCH))) users.set(user.id, user);
  const { entitlements, reviewed, people } = await inScope(deps.pool, tenantScope(tenantId), async (client) => ({
    entitlements: await openEntitlementsForRoles(client, tenantId, roles),
    reviewed: await lastReviewedAccess(client, tenantId, roles),
    people: await personStatuses(client, tenantId, subjects),
  }));
  const sourcesOf = new Map<string, StandingEntryView['sources']>();
  for (const e of entitlements) {
    const key = JSON.stringify([e.subjectId, e.role]);
    sourcesOf.set(key, [...(sourcesOf.get(key) ?? []), { type: e.sourceType, id: e.sourceId, expiresAt: e.expiresAt }]);
  }
  const entries: StandingEntryView[] = [];
  for (const { subjectId, role } of pairs) {
    const key = JSON.stringify([subjectId, role]);
    const user = users.get(subjectId);
    const attributes = user?.attributes ?? {};
    const serviceAccount = isServiceAccount(attributes);
    const sources = sourcesOf.get(key) ?? [];
    const review = reviewed.get(key);
    const facts = {
      subjectStatus: user?.status ?? 'unknown',
      personStatus: people.get(subjectId) ?? null,
      serviceAccount,
      owner: serviceAccount ? ownerOf(attributes) : null,
      sources,
      lastReviewedAt: review?.reviewedAt.toISOString() ?? null,
    };
    const reasons = standingReasons(facts, now, query.reviewDays);
    if (reasons.length === 0 || (query.reason && !reasons.includes(query.reason))) continue;
    entries.push({
      tenantId,
      subjectId,
      subjectStatus: facts.subjectStatus,
      serviceAccount,
      owner: facts.owner,
      role,
      sources,
      endsAt: standingEndsAt(sources),
      lastReviewedAt: facts.lastReviewedAt,
      lastReviewRunId: review?.runId ?? null,
      reasons,
    });
  }
  return entries.sort((a, b) => a.role.localeCompare(b.role) || a.subjectId.localeCompare(b.subjectId));
}

/**
 * The report over `tenantIds` (one tenant, or every active one the MSP sees), read up to
 * `concurrency` tenants at once and listed in the order given. A tenant whose target cannot be
 * read now is listed as unavailable with the reason; its entries are never guessed.
 */
export async function standingPrivilege(
  deps: StandingDeps,
  tenantIds: readonly string[],
  query: StandingQuery,
  now = new Date(),
  concurrency = STANDING_TENANT_CONCURRENCY,
): Promise<StandingReportView> {
  const read = await mapBounded(tenantIds, concurrency, async (tenantId) => {
    try {
      return { entries: await tenantStanding(deps, tenantId, query, now.getTime()) };
    } catch (error) {
      if (!(error instanceof DirectoryError)) throw error;
      return { entries: [], unavailable: { tenantId, reason: error.message } };
    }
  });
  return {
    generatedAt: now.toISOString(),
    reviewDays: query.reviewDays,
    entries: read.flatMap((r) => r.entries),
    unavailable: read.flatMap((r) => (r.unavailable ? [r.unavailable] : [])),
  };
}

/** Every active tenant (or those with `tag`): the MSP-wide report's tenants. */
export function standingTenants(pool: Pool, tag?: string): Promise<string[]> {
  return inScope(pool, mspScope, (client) => activeTenantIds(client, tag));
}

export function standingCsv(report: StandingReportView): Readable {
  return recordsCsv(report.entries.map(standingCsvRecord), STANDING_CSV_COLUMNS);
}

/**
 * "Start a review of exactly these": an ad-hoc campaign whose scope is exactly the listed access
 * (its definition names each one, so the versions and the audit trail say what was asked), and
 * its first run, started now. Each review stores only the listed access its target still holds.
 */
export async function startStandingReview(
  deps: CampaignDeps,
  ctx: ActionContext,
  body: StandingReviewBody,
): Promise<{ campaign: CampaignView; run: CampaignRunView }> {
  const active = new Set(await standingTenants(deps.pool));
  const issues = body.items.flatMap((item, i) =>
    active.has(item.tenantId) ? [] : [{ path: `body.items.${i}.tenantId`, message: 'no such active tenant' }],
  );
  if (issues.length) throw badRequest('Every item must be in an active tenant.', issues);
  // The privileged roles' members (what the report lists), narrowed to exactly these.
  const definition = CampaignDefinitionDocument.parse({
    scope: { tenantIds: [...new Set(body.items.map((i) => i.tenantId))], includeLaterTenants: false },
    items: { exactly: body.items },
    stages: body.stages,
    nonResponse: body.nonResponse,
  });
  const campaign = await createCampaign(deps, ctx, { name: body.name, definition });
  const run = await startCampaignRun(deps, ctx, campaign.id);
  return { campaign, run };
}
