import { ActivityFailure, continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import {
  DRIFT_BATCH,
  DRIFT_TENANTS_PER_RUN,
  DRIFT_WINDOW,
  NO_DRIFT_COUNTS,
  type DriftCheckInput,
  type DriftCounts,
  type DriftScanInput,
  type DriftScanResult,
  type TenantDriftCheckResult,
} from '../../core/templates/drift.js';

// A batch reads a few dozen tenants' directories; it heartbeats per tenant, so a worker that dies
// mid-batch is noticed in a minute and the batch runs again (each check is safe to repeat).
const { listDriftTenants, checkDriftBatch, checkTenantDrift } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 },
});

function add(into: DriftCounts, more: DriftCounts): void {
  for (const key of Object.keys(into) as (keyof DriftCounts)[]) into[key] += more[key];
}

/**
 * The scheduled drift scan: every active tenant with a version applied, in pages, each page's
 * tenants checked by up to DRIFT_WINDOW batch activities at once. The history holds counters and
 * a cursor only (items live in PostgreSQL) and continues as new every DRIFT_TENANTS_PER_RUN
 * tenants, so it stays bounded whatever the number of tenants. A batch that fails for good counts
 * its tenants as failed; the next scheduled scan checks them again.
 */
export async function templateDriftScanWorkflow(input: DriftScanInput = {}): Promise<DriftScanResult> {
  const counts: DriftCounts = { ...NO_DRIFT_COUNTS, ...input.carried };
  const batchSize = input.batchSize ?? DRIFT_BATCH;
  const perRun = input.tenantsPerRun ?? DRIFT_TENANTS_PER_RUN;
  const limit = batchSize * DRIFT_WINDOW;
  let after = input.after ?? null;
  let visited = 0;
  for (;;) {
    const { tenantIds } = await listDriftTenants({ after, limit });
    const batches: string[][] = [];
    for (let i = 0; i < tenantIds.length; i += batchSize) batches.push(tenantIds.slice(i, i + batchSize));
    const results = await Promise.all(
      batches.map((batch) =>
        checkDriftBatch({ tenantIds: batch }).catch((error: unknown) => {
          if (!(error instanceof ActivityFailure)) throw error;
          return { ...NO_DRIFT_COUNTS, failed: batch.length };
        }),
      ),
    );
    for (const result of results) add(counts, result);
    if (tenantIds.length < limit) return counts;
    after = tenantIds[tenantIds.length - 1]!;
    visited += tenantIds.length;
    if (visited >= perRun) {
      await continueAsNew<typeof templateDriftScanWorkflow>({
        after,
        carried: counts,
        ...(input.tenantsPerRun ? { tenantsPerRun: input.tenantsPerRun } : {}),
        ...(input.batchSize ? { batchSize: input.batchSize } : {}),
      });
    }
  }
}

/** One tenant's drift check now (`template-drift/<tenantId>`, with its TenantId): the caller waits for the result. */
export async function templateDriftCheckWorkflow(input: DriftCheckInput): Promise<TenantDriftCheckResult> {
  return checkTenantDrift({ tenantId: input.tenantId, requestedBy: input.requestedBy });
}
