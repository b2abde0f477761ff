import {
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
} from '../../core/campaigns/contract.js';
import { tenantReviewWorkflow } from './review.js';

const { startCampaignRun, campaignRunTenants, recordCampaignRunProgress } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * One campaign run: fixes its tenants in PostgreSQL, then starts one review per tenant
 * (`review/<tenant>/<runId>`) while at most `window` of them are still materialising; each
 * review signals when its items are stored and when it has finished. Tenants are paged from
 * PostgreSQL, never held here; after `childrenPerRun` starts the run continues as new with its
 * cursor and counters, so its history stays bounded however many tenants there are. Reviews are
 * abandoned, not cancelled, when a run continues: they report to whichever run is current.
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

  if (!carried) progress.total = (await startCampaignRun({ runId: input.runId, eventId: uuid4() })).total;
  const report = (completedEventId?: string) =>
    recordCampaignRunProgress({
      runId: input.runId,
      status: completedEventId ? 'completed' : 'running',
      total: progress.total,
      materialised: progress.materialised,
      finished: progress.finished,
      ...(completedEventId ? { completedEventId } : {}),
    });

  let after = carried?.afterTenantId ?? null;
  let startedHere = 0;
  const continueWithCounters = async () => {
    await report();
    await condition(allHandlersFinished);
    return continueAsNew<typeof campaignRunWorkflow>({
      ...input,
      carried: {
        afterTenantId: after,
        total: progress.total ?? 0,
        started: progress.started,
        materialised: progress.materialised,
        finished: progress.finished,
      },
    });
  };
  // As many reviews at once as the window has room for: one at a time, each start waited for its
  // own round trip to the server, and a thousand tenants took minutes just to start.
  const concurrentStarts = patched('campaign-run-concurrent-starts');
  const ownScope = patched('campaign-review-own-scope');
  for (;;) {
    const page = await campaignRunTenants({ runId: input.runId, after, limit: TENANT_PAGE_SIZE });
    if (page.length === 0) break;
    for (let i = 0; i < page.length;) {
      await condition(() => progress.started - progress.materialised < input.window);
      const room = concurrentStarts
        ? Math.min(
            input.window - Math.max(0, progress.started - progress.materialised),
            input.childrenPerRun - startedHere,
            page.length - i,
          )
        : 1;
      const starting = page.slice(i, i + room);
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
  if (patched('campaign-run-bounded-wait')) {
    const limit = input.historyLimit ?? RUN_HISTORY_LIMIT;
    await condition(() => progress.finished >= progress.started || workflowInfo().historyLength > limit);
    if (progress.finished < progress.started) return await continueWithCounters();
  } else await condition(() => progress.finished >= progress.started);
  await report(uuid4());
  await condition(allHandlersFinished);
  return progress;
}
