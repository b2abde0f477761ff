import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import {
  cancelCampaignRunUpdate,
  CampaignRunRejection,
  campaignRunQuery,
  reviewFinishedSignal,
  reviewMaterialisedSignal,
  reviewDefinition,
  reviewSearchAttributes,
  RUN_HISTORY_LIMIT,
  TENANT_PAGE_SIZE,
  tenantReviewWorkflowId,
  type CampaignRunInput,
  type CampaignRunProgress,
  type ReviewActorInput,
} from '../../core/campaigns/contract.js';
import { tenantReviewWorkflow } from './review.js';

const { startCampaignRun, campaignRunTenants, recordCampaignRunProgress, cancelCampaignRun } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
// Tells every review of the run, one Update each; it beats with its cursor so a retry resumes.
const { cancelRunReviews } = proxyActivities<Activities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * One campaign run: fixes its tenants in PostgreSQL, then starts one review per tenant
 * (`review/<tenant>/<runId>`) while at most `window` of them are still materialising; each
 * review signals when its items are stored and when it has finished. Tenants are paged from
 * PostgreSQL, never held here; after `childrenPerRun` starts the run continues as new with its
 * cursor and counters, so its history stays bounded however many tenants there are. Reviews are
 * abandoned, not cancelled, when a run continues: they report to whichever run is current.
 * MSP staff may cancel a run: it starts no more reviews and cancels every review not yet settled
 * (each applies what its reviewers already settled, and nothing else), then ends once they have.
 */
export async function campaignRunWorkflow(input: CampaignRunInput): Promise<CampaignRunProgress> {
  const carried = input.carried;
  const progress: CampaignRunProgress = {
    runId: input.runId,
    total: carried?.total ?? null,
    started: carried?.started ?? 0,
    materialised: carried?.materialised ?? 0,
    finished: carried?.finished ?? 0,
  };
  setHandler(reviewMaterialisedSignal, () => void progress.materialised++);
  setHandler(reviewFinishedSignal, () => void progress.finished++);
  setHandler(campaignRunQuery, () => progress);
  let cancel: ReviewActorInput | undefined;
  let cancelled = carried?.cancelled ?? false;
  let startingChildren = false;
  let finishing = false;
  let reviewsTold = false;
  const refuseCancel = (_request?: ReviewActorInput) => {
    if (cancelled || cancel || finishing)
      throw ApplicationFailure.create({
        type: CampaignRunRejection.NotCancellable,
        message: finishing ? 'The run has finished.' : 'The run is cancelled already.',
        nonRetryable: true,
      });
  };
  setHandler(
    cancelCampaignRunUpdate,
    async (request: ReviewActorInput) => {
      // A child being started is let finish starting, so the cancellation reaches it.
      await condition(() => !startingChildren);
      refuseCancel();
      cancel = request;
      // Recorded (and audited) before any review hears of it.
      await cancelCampaignRun({ runId: input.runId, eventId: uuid4(), ...request });
      cancelled = true;
      progress.cancelled = true;
      return progress;
    },
    { validator: refuseCancel },
  );
  if (cancelled) progress.cancelled = true;

  if (!carried) progress.total = (await startCampaignRun({ runId: input.runId, eventId: uuid4() })).total;
  const report = (completedEventId?: string) =>
    recordCampaignRunProgress({
      runId: input.runId,
      status: completedEventId ? (cancelled ? 'cancelled' : 'completed') : 'running',
      total: progress.total,
      materialised: progress.materialised,
      finished: progress.finished,
      ...(completedEventId ? { completedEventId } : {}),
    });

  let after = carried?.afterTenantId ?? null;
  let startedHere = 0;
  // A cancellation accepted in this execution: once it is recorded, every review still open is told.
  const tellReviews = async () => {
    await condition(allHandlersFinished);
    if (!cancel || !cancelled || reviewsTold) return;
    reviewsTold = true;
    await cancelRunReviews({ runId: input.runId, ...cancel });
  };
  const continueWithCounters = async () => {
    await report();
    await condition(allHandlersFinished);
    // Cancelled meanwhile: the reviews hear of it here, the next execution only waits for them.
    await tellReviews();
    return continueAsNew<typeof campaignRunWorkflow>({
      ...input,
      carried: {
        afterTenantId: after,
        total: progress.total ?? 0,
        started: progress.started,
        materialised: progress.materialised,
        finished: progress.finished,
        ...(cancelled ? { cancelled: true } : {}),
      },
    });
  };
  // As many reviews at once as the window has room for: one at a time, each start waited for its
  // own round trip to the server, and a thousand tenants took minutes just to start.
  const concurrentStarts = patched('campaign-run-concurrent-starts');
  const ownScope = patched('campaign-review-own-scope');
  pages: while (!cancelled) {
    const page = await campaignRunTenants({ runId: input.runId, after, limit: TENANT_PAGE_SIZE });
    if (page.length === 0) break;
    for (let i = 0; i < page.length;) {
      await condition(() => cancelled || progress.started - progress.materialised < input.window);
      if (cancelled) break pages;
      const room = concurrentStarts
        ? Math.min(
            input.window - Math.max(0, progress.started - progress.materialised),
            input.childrenPerRun - startedHere,
            page.length - i,
          )
        : 1;
      const starting = page.slice(i, i + room);
      startingChildren = true;
      await Promise.all(
        starting.map((tenantId) =>
          startChild(tenantReviewWorkflow, {
            workflowId: tenantReviewWorkflowId(tenantId, input.runId),
            args: [
              {
                runId: input.runId,
                tenantId,
                definitionId: input.definitionId,
                definitionVersion: input.definitionVersion,
                definition: ownScope ? reviewDefinition(input.definition, tenantId) : input.definition,
                parentWorkflowId: workflowInfo().workflowId,
              },
            ],
            parentClosePolicy: ParentClosePolicy.ABANDON,
            typedSearchAttributes: reviewSearchAttributes(tenantId),
          }),
        ),
      );
      startingChildren = false;
      progress.started += starting.length;
      startedHere += starting.length;
      after = starting.at(-1)!;
      i += starting.length;
      if (startedHere >= input.childrenPerRun) {
        return await continueWithCounters();
      }
    }
    await report();
  }
  // Every review signals its end to the current execution: with thousands of tenants the last one
  // would take them all. Past the limit it continues as new and waits there (nothing left to start).
  const boundedWait = patched('campaign-run-bounded-wait');
  const limit = input.historyLimit ?? RUN_HISTORY_LIMIT;
  const waited = () => progress.finished >= progress.started || (boundedWait && workflowInfo().historyLength > limit);
  await condition(() => cancelled || waited());
  await tellReviews();
  await condition(waited);
  if (progress.finished < progress.started) return await continueWithCounters();
  // A cancellation accepted as the last review finished: recorded before the run ends cancelled.
  await tellReviews();
  finishing = true;
  await report(uuid4());
  await condition(allHandlersFinished);
  return progress;
}
