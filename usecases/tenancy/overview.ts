import type { OverviewPage, OverviewQuery } from '../../core/tenancy/overview.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope } from '../../db/scope.js';
import { tenantOverviewRows } from '../../db/tenancy.js';

/** The MSP overview: per tenant, what waits for approval, what is in effect, what is undecided or drifting. */
export async function tenantOverview(pool: Pool, query: OverviewQuery): Promise<OverviewPage> {
  const rows = await inScope(pool, mspScope, (client) =>
    tenantOverviewRows(client, {
      limit: query.limit + 1,
      ...(query.after ? { after: query.after } : {}),
      ...(query.status ? { status: query.status } : {}),
    }),
  );
  const page = rows.slice(0, query.limit);
  return {
    tenants: page.map((row) => ({
      tenantId: row.id,
      slug: row.slug,
      name: row.name,
      status: row.status,
      pendingApprovals: { grants: row.pending_grants, policyChanges: row.pending_policy_changes, actions: row.pending_actions },
      activeGrants: row.active_grants,
      openReviewItems: row.open_review_items,
      drift: { open: row.open_drift, checkedAt: row.drift_checked_at?.toISOString() ?? null, error: row.drift_error },
    })),
    nextCursor: rows.length > query.limit ? page.at(-1)!.slug : null,
  };
}
