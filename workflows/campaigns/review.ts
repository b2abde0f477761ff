import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import {
  moveReviewDeadlineUpdate,
  REMEDIATION_BATCH,
  REVIEW_HISTORY_LIMIT,
  reviewFinishedSignal,
  reviewMaterialisedSignal,
  reviewQuery,
  ReviewRejection,
  type MoveDeadlineInput,
  type ReviewProgress,
  type TenantReviewInput,
} from '../../core/campaigns/contract.js';

const { openReviewStage, moveReviewDeadline, closeReviewStage, finishReview } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
// A tenant's webhook may be down for a while: tried for hours, and never what the review's outcome waits on.
const { notifyRuleChanges } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 20 },
});
// Materialising and remediating read and write in batches; they beat while they work.
const { materialiseReview, remediateReviewItems } = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

const iso = (ms: number) => new Date(ms).toISOString();
const reject = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });

/**
 * One tenant's review in one campaign run (`review/<tenant>/<runId>`): stores its items, opens
 * each stage until its deadline (which MSP operators may move), closes it (decisions are rows
 * the API writes; the close adds them up), and after the last stage applies the revocations and
 * reads them back. The history holds no item: it is a handful of events per stage plus one
 * activity per remediation batch of REMEDIATION_BATCH items (retries sleep between rounds), and
 * past REVIEW_HISTORY_LIMIT events the review continues as new, still remediating. Once remediation
 * is over, the tenant's webhook hears of every item that needs a rule change (one notice each).
 */
export async function tenantReviewWorkflow(input: TenantReviewInput): Promise<ReviewProgress> {
  const { workflowId } = workflowInfo();
  const base = { tenantId: input.tenantId, runId: input.runId };
  const view: ReviewProgress = { ...base, status: input.resume ? 'remediating' : 'materialising', stage: 0, stageClosesAt: null };
  let deadlineMoved = false;
  // Set while a stage is being opened: a deadline move sent meanwhile waits for it instead of failing.
  let opening = false;

  setHandler(reviewQuery, () => view);
  setHandler(
    moveReviewDeadlineUpdate,
    async ({ actorId, closesAt, authority }: MoveDeadlineInput) => {
      await condition(() => !opening);
      if (view.status !== 'open') throw reject(ReviewRejection.NotOpen, `The review is ${view.status}; no stage is open.`);
      const stage = view.stage;
      const before = view.stageClosesAt;
      const at = iso(Math.max(Date.parse(closesAt), Date.now()));
      const { moved } = await moveReviewDeadline({ ...base, eventId: uuid4(), stage, closesAt: at, actorId, authority, before });
      if (!moved || view.stage !== stage || view.status !== 'open') throw reject(ReviewRejection.NotOpen, 'The stage closed meanwhile.');
      view.stageClosesAt = at;
      deadlineMoved = true;
      return view;
    },
    {
      validator: ({ closesAt }: MoveDeadlineInput) => {
        if (view.status !== 'open' && !opening) throw reject(ReviewRejection.NotOpen, `The review is ${view.status}; no stage is open.`);
        if (Number.isNaN(Date.parse(closesAt))) throw reject(ReviewRejection.InvalidInput, 'closesAt is not a time.');
      },
    },
  );
  const parent = input.parentWorkflowId ? getExternalWorkflowHandle(input.parentWorkflowId) : undefined;

  if (!input.resume) {
    await materialiseReview({ ...base, eventId: uuid4(), definitionId: input.definitionId, workflowId, definition: input.definition });
    if (parent) await parent.signal(reviewMaterialisedSignal, { tenantId: input.tenantId });

    for (let stage = 1; stage <= input.definition.stages.length; stage++) {
      const closesAt = iso(Date.now() + input.definition.stages[stage - 1]!.durationMinutes * 60_000);
      opening = true;
      await openReviewStage({ ...base, eventId: uuid4(), stage, closesAt });
      Object.assign(view, { status: 'open', stage, stageClosesAt: closesAt });
      opening = false;
      for (;;) {
        deadlineMoved = false;
        const remaining = Date.parse(view.stageClosesAt!) - Date.now();
        if (remaining <= 0) break;
        await condition(() => deadlineMoved, remaining);
      }
      view.status = 'settling';
      await closeReviewStage({ ...base, eventId: uuid4(), alertEventId: uuid4(), stage, definition: input.definition });
    }
    Object.assign(view, { status: 'remediating', stageClosesAt: null });
  }

  for (let idleRounds = 0; ;) {
    const batch = await remediateReviewItems({ ...base, limit: REMEDIATION_BATCH, workflowId });
    if (batch.remaining === 0) break;
    // Only unconfirmed ones left (a grant still revoking, a target down): wait before reading back again.
    if (batch.processed === batch.retrying) await sleep(Math.min(60_000, 2_000 * ++idleRounds));
    else idleRounds = 0;
    if (workflowInfo().historyLength > REVIEW_HISTORY_LIMIT) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof tenantReviewWorkflow>({ ...input, resume: 'remediating' });
    }
  }
  // Access a birthright rule still gives is not silently left: the tenant hears of each item, naming the rule.
  const notices = patched('review-rule-change-notice')
    ? notifyRuleChanges({ ...base, workflowId }).catch(() => undefined) // a failed delivery stays in webhook_deliveries
    : undefined;
  await finishReview({ ...base, eventId: uuid4(), reportEventId: uuid4(), definitionId: input.definitionId });
  view.status = 'completed';
  if (parent) await parent.signal(reviewFinishedSignal, { tenantId: input.tenantId });
  await notices;
  await condition(allHandlersFinished);
  return view;
}
