import { z } from 'zod';
import { Slug, Uuid } from './schemas.js';

/** One page of the MSP overview: tenants in slug order, after the `after` slug. */
export const OverviewQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  after: Slug.optional().meta({ description: 'The `nextCursor` of the previous page (a tenant slug).' }),
  status: z.enum(['active', 'suspended']).optional(),
});
export type OverviewQuery = z.output<typeof OverviewQuery>;

const count = z.number().int().nonnegative();

/** What needs attention in one tenant, as counts; each links to the page that lists the items. */
export const TenantOverview = z
  .object({
    tenantId: Uuid,
    slug: z.string(),
    name: z.string(),
    status: z.enum(['active', 'suspended']),
    pendingApprovals: z
      .object({ grants: count, policyChanges: count, actions: count })
      .meta({ description: "Requests waiting for the tenant's approvers." }),
    activeGrants: count.meta({ description: 'Privileged grants in effect now (active, or being revoked).' }),
    openReviewItems: count.meta({ description: 'Review items of open reviews that no stage has decided yet.' }),
    drift: z
      .object({
        open: count.meta({ description: 'Differences from the applied template version that last checks still find.' }),
        checkedAt: z.string().nullable(),
        error: z.string().nullable().meta({ description: 'Why the last drift check could not run, when it could not.' }),
      })
      .meta({ description: 'From the stored drift checks (never read from the target here).' }),
  })
  .meta({ id: 'TenantOverview' });
export type TenantOverview = z.infer<typeof TenantOverview>;

export const OverviewPage = z.object({ tenants: z.array(TenantOverview), nextCursor: z.string().nullable() }).meta({ id: 'OverviewPage' });
export type OverviewPage = z.infer<typeof OverviewPage>;
