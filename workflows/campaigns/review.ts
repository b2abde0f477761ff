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
  cancelReviewUpdate,
  moveReviewDeadlineUpdate,
  nudgeReviewUpdate,
  reassignReviewUpdate,
  REMEDIATION_BATCH,
  REVIEW_HISTORY_LIMIT,
  reviewDecisionsSignal,
  reviewFinishedSignal,
  reviewMaterialisedSignal,
  reviewQuery,
  ReviewRejection,
  type MoveDeadlineInput,
  type NudgeInput,
  type ReassignInput,
  type ReviewActorInput,
  type ReviewProgress,
  type ReviewResume,
  type TenantReviewInput,
} from '../../core/campaigns/contract.js';
import { flowOf, nextReminder } from '../../core/campaigns/review.js';
import { unstorableText } from '../../core/unstorable.js';

const {
  openReviewStage,
  moveReviewDeadline,
  closeReviewStage,
  finishReview,
  cancelReview,
  sendReviewNotices,
  escalateReview,
  reassignReviewItems,
  settleDecidedRevocations,
} = proxyActivities<Activities>({
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
// A notice's webhook is retried for a while and never holds the review up.
const { deliverReviewNotices } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 20 },
});

const iso = (ms: number) => new Date(ms).toISOString();
const reject = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });
/** Settled revocations not yet confirmed during an open stage are read back again after this pause. */
const OPEN_STAGE_RETRY_MS = 30_000;

/**
 * One tenant's review in one campaign run (`review/<tenant>/<runId>`): stores its items, opens
 * each stage until its deadline (which MSP operators may move), closes it (decisions are rows
 * the API writes; the close adds them up), and after the last stage applies the revocations and
 * reads them back. While a stage is open it reminds reviewers before the deadline, escalates
 * items nobody answered, takes MSP staff's reassignments and nudges and, remediating on decision,
 * applies revocations as reviewers settle them. The last stage may be reiterated for its
 * non-responders. A cancellation stops it between steps: decisions already recorded are settled,
 * settled revocations are applied and read back, nothing else changes, and its report is recorded
 * all the same, saying it was cancelled.
 *
 * The history holds no item: it is a handful of events per stage, reminder and escalation plus
 * one activity per remediation batch of REMEDIATION_BATCH items; past REVIEW_HISTORY_LIMIT
 * events the review continues as new (during an open stage or while remediating). Once remediation
 * is over, the tenant's webhook hears of every item that needs a rule change (one notice each),
 * cancelled or not.
 */
export async function tenantReviewWorkflow(input: TenantReviewInput): Promise<ReviewProgress> {
  const { workflowId } = workflowInfo();
  const base = { tenantId: input.tenantId, runId: input.runId };
  const flow = flowOf(input.definition);
  const stages = input.definition.stages.length;
  const resume: ReviewResume | undefined = typeof input.resume === 'object' ? input.resume : undefined;
  const view: ReviewProgress = {
    ...base,
    status: input.resume === 'remediating' ? 'remediating' : resume ? (resume.cancelled ? 'cancelled' : 'open') : 'materialising',
    stage: resume?.stage ?? 0,
    stageClosesAt: resume?.cancelled ? null : (resume?.closesAt ?? null),
    round: resume?.round ?? 0,
  };
  let deadlineMoved = false;
  // Set while a stage is being opened: a deadline move sent meanwhile waits for it instead of failing.
  let opening = false;
  // Set while a step that changes the review's rows runs: a cancellation, reassignment or nudge waits for it.
  let busy = false;
  let cancelled = resume?.cancelled ?? false;
  let decisionsPending = resume?.decisionsPending ?? false;
  // Per stage (and round): reminder offsets sent, whether the escalation ran, when it opened.
  let reminded: number[] = resume?.reminded ?? [];
  let escalated = resume?.escalated ?? false;
  let openedAt = resume ? Date.parse(resume.openedAt) : 0;
  const deliveries: Promise<unknown>[] = [];
  const onDecision = flow.remediation === 'on_decision';

  /** Runs one step that changes the review's rows, unless the review was cancelled meanwhile. */
  async function step<T>(fn: () => Promise<T>): Promise<T | undefined> {
    await condition(() => !busy);
    if (cancelled) return undefined;
    busy = true;
    try {
      return await fn();
    } finally {
      busy = false;
    }
  }
  const deliver = (sent: { noticeIds: string[]; webhook: boolean }) => {
    if (sent.webhook && sent.noticeIds.length > 0)
      deliveries.push(deliverReviewNotices({ ...base, noticeIds: sent.noticeIds }).catch(() => undefined));
  };
  const whileOpen = (what: string) => {
    if (view.status !== 'open' && !opening) throw reject(ReviewRejection.NotOpen, `The review is ${view.status}; ${what}`);
  };

  setHandler(reviewQuery, () => view);
  setHandler(
    moveReviewDeadlineUpdate,
    async ({ actorId, closesAt, authority }: MoveDeadlineInput) => {
      await condition(() => !opening);
      if (view.status !== 'open') throw reject(ReviewRejection.NotOpen, `The review is ${view.status}; no stage is open.`);
      const stage = view.stage;
      const before = view.stageClosesAt;
      const at = iso(Math.max(Date.parse(closesAt), Date.now()));
      const { moved, undecided } = await moveReviewDeadline({ ...base, eventId: uuid4(), stage, closesAt: at, actorId, authority, before });
      if (undecided)
        throw reject(
          ReviewRejection.TenantDecides,
          `${undecided} item(s) still wait for the tenant’s reviewers: only the tenant’s approvers may bring this deadline forward; ` +
            'MSP staff may extend it.',
        );
      if (!moved || view.stage !== stage || view.status !== 'open') throw reject(ReviewRejection.NotOpen, 'The stage closed meanwhile.');
      view.stageClosesAt = at;
      deadlineMoved = true;
      return view;
    },
    {
      validator: ({ actorId, closesAt, authority }: MoveDeadlineInput) => {
        if (view.status !== 'open' && !opening) throw reject(ReviewRejection.NotOpen, `The review is ${view.status}; no stage is open.`);
        if (Number.isNaN(Date.parse(closesAt))) throw reject(ReviewRejection.InvalidInput, 'closesAt is not a time.');
        // Anyone reaching Temporal can send this: an actor or authority the database cannot store
        // would fail the deadline's activity on every retry and leave the Update hanging.
        if (typeof actorId !== 'string' || actorId === '' || unstorableText({ actorId, authority }).length > 0)
          throw reject(ReviewRejection.InvalidInput, 'actorId and authority must be text the audit trail can store.');
      },
    },
  );
  const notCancellable = () => ['remediating', 'completed', 'cancelled'].includes(view.status);
  setHandler(
    cancelReviewUpdate,
    async ({ actorId, authority, comment }: ReviewActorInput) => {
      await condition(() => !busy);
      if (notCancellable())
        throw reject(ReviewRejection.NotCancellable, `The review is ${view.status}; its settled revocations are applied as decided.`);
      busy = true;
      try {
        await cancelReview({
          ...base,
          eventId: uuid4(),
          definitionId: input.definitionId,
          stage: view.stage,
          definition: input.definition,
          actorId,
          authority,
          ...(comment ? { comment } : {}),
        });
      } finally {
        busy = false;
      }
      cancelled = true;
      Object.assign(view, { status: 'cancelled', stageClosesAt: null });
      return view;
    },
    {
      validator: (_request: ReviewActorInput) => {
        if (notCancellable()) throw reject(ReviewRejection.NotCancellable, `The review is ${view.status}; it can no longer be cancelled.`);
      },
    },
  );
  setHandler(
    reassignReviewUpdate,
    async (request: ReassignInput) => {
      await condition(() => !busy && !opening);
      whileOpen('nothing can be reassigned.');
      busy = true;
      try {
        const done = await reassignReviewItems({ ...base, eventId: uuid4(), stage: view.stage, closesAt: view.stageClosesAt, ...request });
        if (done.refused) throw reject(ReviewRejection.NotTenantReviewer, done.refused);
        deliver(done);
        return { moved: done.moved, skipped: done.skipped };
      } finally {
        busy = false;
      }
    },
    { validator: (_request: ReassignInput) => whileOpen('nothing can be reassigned.') },
  );
  setHandler(
    nudgeReviewUpdate,
    async ({ actorId, authority, comment, reviewerIds }: NudgeInput) => {
      await condition(() => !busy && !opening);
      whileOpen('nobody is waited for.');
      busy = true;
      try {
        const sent = await sendReviewNotices({
          ...base,
          eventId: uuid4(),
          stage: view.stage,
          closesAt: view.stageClosesAt,
          kind: 'nudge',
          actor: { id: actorId, type: 'user' },
          authority,
          ...(comment ? { comment } : {}),
          ...(reviewerIds ? { reviewerIds } : {}),
        });
        deliver(sent);
        return { notices: sent.noticeIds.length };
      } finally {
        busy = false;
      }
    },
    { validator: (_request: NudgeInput) => whileOpen('nobody is waited for.') },
  );
  setHandler(reviewDecisionsSignal, () => void (decisionsPending = onDecision));

  const parent = input.parentWorkflowId ? getExternalWorkflowHandle(input.parentWorkflowId) : undefined;
  let materialisedSignalled = Boolean(input.resume);

  /** Applies settled revocations batch by batch while they make progress; answers whether unconfirmed ones are left. */
  async function remediateSettled(): Promise<boolean> {
    for (;;) {
      const batch = await remediateReviewItems({ ...base, limit: REMEDIATION_BATCH, workflowId });
      if (batch.remaining === 0) return false;
      if (batch.processed === batch.retrying) return true;
    }
  }

  /** Holds the open stage until its deadline: reminders, the escalation, and remediation on decision meanwhile. */
  async function holdStage(stage: number): Promise<'deadline' | 'cancelled' | 'continue'> {
    let retryAt: number | undefined;
    for (;;) {
      if (cancelled) return 'cancelled';
      const now = Date.now();
      if ((decisionsPending || (retryAt !== undefined && retryAt <= now)) && patched('remediation-on-decision')) {
        decisionsPending = false;
        retryAt = undefined;
        const left = await step(async () => {
          await settleDecidedRevocations({ ...base, eventId: uuid4(), stage, definition: input.definition });
          return remediateSettled();
        });
        if (left) retryAt = Date.now() + OPEN_STAGE_RETRY_MS;
        continue;
      }
      const closesAt = Date.parse(view.stageClosesAt!);
      if (closesAt <= now) return 'deadline';
      const reminder = nextReminder(flow.remindersBefore, reminded, closesAt, openedAt);
      // Once per opening of the stage (a reiteration round is one), counted from that opening.
      const escalateAt = flow.escalation && !escalated ? openedAt + flow.escalation.afterMinutes * 60_000 : undefined;
      if (escalateAt !== undefined && escalateAt <= now && patched('review-reminders-escalation')) {
        escalated = true;
        const sent = await step(() =>
          escalateReview({ ...base, eventId: uuid4(), stage, closesAt: view.stageClosesAt, definition: input.definition }),
        );
        if (sent) deliver(sent);
        continue;
      }
      if (reminder && reminder.at <= now && patched('review-reminders-escalation')) {
        reminded = [...reminded, reminder.offset];
        const sent = await step(() =>
          sendReviewNotices({ ...base, eventId: uuid4(), stage, closesAt: view.stageClosesAt, kind: 'reminder' }),
        );
        if (sent) deliver(sent);
        continue;
      }
      if (workflowInfo().historyLength > REVIEW_HISTORY_LIMIT) return 'continue';
      const wakeAt = Math.min(
        closesAt,
        reminder?.at ?? Infinity,
        escalateAt !== undefined && escalateAt < closesAt ? escalateAt : Infinity,
        retryAt ?? Infinity,
      );
      deadlineMoved = false;
      // Updates (nudges, reassignments) grow the history too: past the limit the loop wakes to continue as new.
      await condition(
        () => deadlineMoved || cancelled || decisionsPending || workflowInfo().historyLength > REVIEW_HISTORY_LIMIT,
        wakeAt - now,
      );
    }
  }

  async function continueOpen(stage: number): Promise<never> {
    // Webhook deliveries still retrying are not waited for: the deadline comes first, and each notice is in the inbox anyway.
    await condition(allHandlersFinished);
    return continueAsNew<typeof tenantReviewWorkflow>({
      ...input,
      resume: {
        stage,
        round: view.round ?? 0,
        openedAt: iso(openedAt),
        closesAt: view.stageClosesAt ?? iso(openedAt),
        reminded,
        escalated,
        decisionsPending,
        ...(cancelled ? { cancelled } : {}),
      },
    });
  }

  if (input.resume !== 'remediating' && !cancelled) {
    if (!resume) {
      await step(() =>
        materialiseReview({ ...base, eventId: uuid4(), definitionId: input.definitionId, workflowId, definition: input.definition }),
      );
      if (parent) await parent.signal(reviewMaterialisedSignal, { tenantId: input.tenantId });
      materialisedSignalled = true;
    }

    stages: for (let stage = resume?.stage ?? 1; stage <= stages && !cancelled; stage++) {
      let reopen = !resume || stage !== resume.stage;
      for (;;) {
        if (reopen) {
          const round = view.stage === stage ? (view.round ?? 0) + 1 : 0;
          const minutes = round === 0 ? input.definition.stages[stage - 1]!.durationMinutes : flow.reiteration!.durationMinutes;
          const closesAt = iso(Date.now() + minutes * 60_000);
          opening = true;
          await step(() => openReviewStage({ ...base, eventId: uuid4(), stage, closesAt, ...(round > 0 ? { round } : {}) }));
          opening = false;
          if (cancelled) break stages;
          Object.assign(view, { status: 'open', stage, stageClosesAt: closesAt, ...(round > 0 || view.round ? { round } : {}) });
          reminded = [];
          escalated = false;
          openedAt = Date.now();
          if (round > 0) {
            const sent = await step(() => sendReviewNotices({ ...base, eventId: uuid4(), stage, closesAt, kind: 'reiteration' }));
            if (sent) deliver(sent);
          }
        }
        reopen = true;
        const held = await holdStage(stage);
        if (held === 'cancelled') break stages;
        if (held === 'continue') return continueOpen(stage);
        view.status = 'settling';
        const last = stage === stages;
        const reiterate = last && flow.reiteration !== null && (view.round ?? 0) < flow.reiteration.times;
        const closed = await step(() =>
          closeReviewStage({
            ...base,
            eventId: uuid4(),
            alertEventId: uuid4(),
            stage,
            definition: input.definition,
            ...(reiterate ? { reiterate } : {}),
          }),
        );
        if (!closed || cancelled) break stages;
        if (onDecision && !last && closed.decidedRevoke > 0 && patched('remediation-on-decision')) await step(remediateSettled);
        if (closed.reiterating) continue;
        break;
      }
    }
    if (!cancelled) Object.assign(view, { status: 'remediating', stageClosesAt: null });
  }
  if (!materialisedSignalled && parent) await parent.signal(reviewMaterialisedSignal, { tenantId: input.tenantId });

  // Remediation: everything settled, also when cancelled (the tenant's settled decisions stand).
  for (let idleRounds = 0; ;) {
    await condition(() => !busy);
    const batch = await remediateReviewItems({ ...base, limit: REMEDIATION_BATCH, workflowId });
    if (batch.remaining === 0) break;
    // Only unconfirmed ones left (a grant still revoking, a target down): wait before reading back again.
    if (batch.processed === batch.retrying) await sleep(Math.min(60_000, 2_000 * ++idleRounds));
    else idleRounds = 0;
    if (workflowInfo().historyLength > REVIEW_HISTORY_LIMIT) {
      await Promise.all(deliveries);
      await condition(allHandlersFinished);
      if (cancelled) return continueOpen(view.stage);
      return continueAsNew<typeof tenantReviewWorkflow>({ ...input, resume: 'remediating' });
    }
  }
  // Access a birthright rule still gives is not silently left: the tenant hears of each item, naming the rule.
  const notices = patched('review-rule-change-notice')
    ? notifyRuleChanges({ ...base, workflowId }).catch(() => undefined) // a failed delivery stays in webhook_deliveries
    : undefined;
  if (!cancelled) await finishReview({ ...base, eventId: uuid4(), reportEventId: uuid4(), definitionId: input.definitionId });
  // Evidence does not disappear with a cancellation: once its settled revocations are applied, a
  // cancelled review records its report too, saying so (reviews cancelled before this recorded none).
  else if (patched('review-cancelled-report'))
    await finishReview({ ...base, eventId: uuid4(), reportEventId: uuid4(), definitionId: input.definitionId, cancelled: true });
  view.status = cancelled ? 'cancelled' : 'completed';
  await Promise.all(deliveries);
  if (parent) await parent.signal(reviewFinishedSignal, { tenantId: input.tenantId });
  await notices;
  await condition(allHandlersFinished);
  return view;
}
