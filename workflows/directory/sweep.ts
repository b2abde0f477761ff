import { ActivityFailure, continueAsNew, proxyActivities, uuid4 } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import { DIRECTORY_TARGET_REJECTED } from '../../core/directory/connector.js';
import {
  SWEEP_PAGE,
  SWEEP_REMOVALS_PER_RUN,
  type SweepCandidate,
  type SweepCounts,
  type SweepInput,
  type SweepResult,
} from '../../core/directory/sweep.js';

// A target outage delays a sweep, never abandons it; a refusal for good is recorded and passed over.
// Retries stay a couple of seconds apart: the sweep is what ends access while a grant's workflow is
// late, and the next scheduled sweep is skipped while this one retries, so after PostgreSQL or the
// target comes back it must go on within seconds, not after a long backoff.
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '500 ms',
    backoffCoefficient: 2,
    maximumInterval: '2 seconds',
    nonRetryableErrorTypes: [DIRECTORY_TARGET_REJECTED],
  },
});

/** Removals in flight at once. */
const PARALLEL = 8;

const refusal = (error: unknown): string | undefined =>
  error instanceof ActivityFailure && (error.cause as { type?: string } | undefined)?.type === DIRECTORY_TARGET_REJECTED
    ? (error.cause as Error).message
    : undefined;

/**
 * One sweep of a tenant's target (started by the tenant's `sweep/<tenant>` schedule): page
 * through the managed roles' memberships, remove each that nothing explains any more, and
 * continue-as-new after SWEEP_REMOVALS_PER_RUN so the history stays bounded.
 */
export async function sweepWorkflow(input: SweepInput): Promise<SweepResult> {
  const { tenantId } = input;
  const counts: SweepCounts = { removed: input.carried?.removed ?? 0, failed: input.carried?.failed ?? 0 };
  let after = input.after ?? null;
  let visited = 0;

  async function sweep(candidate: SweepCandidate): Promise<void> {
    const eventId = uuid4();
    const membership = { tenantId, subjectId: candidate.subjectId, role: candidate.role, eventId };
    try {
      const { outcome } = await acts.sweepMembership(membership);
      if (outcome === 'removed' || outcome === 'confirmed_absent') counts.removed++;
    } catch (error) {
      const reason = refusal(error);
      if (reason === undefined) throw error;
      counts.failed++;
      await acts.recordSweepFailure({ ...membership, reason });
    }
  }

  for (;;) {
    const plan = await acts.planSweep({ tenantId, after, limit: SWEEP_PAGE });
    if (plan.skipped !== null) return { tenantId, ...counts, skipped: plan.skipped };
    for (let i = 0; i < plan.candidates.length; i += PARALLEL) {
      await Promise.all(plan.candidates.slice(i, i + PARALLEL).map(sweep));
    }
    visited += plan.candidates.length;
    if (plan.next === null) return { tenantId, ...counts, skipped: null };
    after = plan.next;
    if (visited >= (input.removalsPerRun ?? SWEEP_REMOVALS_PER_RUN)) {
      await continueAsNew<typeof sweepWorkflow>({
        tenantId,
        after,
        carried: counts,
        ...(input.removalsPerRun ? { removalsPerRun: input.removalsPerRun } : {}),
      });
    }
  }
}
