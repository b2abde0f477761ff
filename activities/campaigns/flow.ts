import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { MSP_CHAIN, type Authority } from '../../core/audit/chain.js';
import {
  CAMPAIGN_ACTOR,
  cancelReviewUpdate,
  tenantReviewWorkflowId,
  type ReassignInput,
  type ReviewNoticeKind,
  type ReviewStatus,
} from '../../core/campaigns/contract.js';
import { flowOf, settleClose, stageOutcome, type CloseItem } from '../../core/campaigns/review.js';
import type { CampaignDefinitionDocument } from '../../core/campaigns/schemas.js';
import {
  actorEmails,
  assignedItems,
  countItems,
  getReviewRow,
  insertNotices,
  insertReview,
  markRunCancelled,
  noticesById,
  noticesOfEvent,
  removeAssignments,
  restoreAssignments,
  reviewerCandidates,
  runTenantsPage,
  setReviewState,
  stageItems,
  unansweredItems,
  waitingReviewers,
  type NewAssignment,
  type NoticeRow,
} from '../../db/campaigns.js';
import type { PoolClient } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { currentWebhookUrl } from '../../db/tenancy.js';
import { appendWorkflowEvent } from '../audit/record.js';
import { deliverTenantWebhook } from '../tenancy/webhooks.js';
import { closeItemOf, requireUnchanged, writeOutcomes } from './activities.js';
import { derivedUuid, heartbeat, reviewersOfSubject, reviewHelpers, type ReviewEventInput } from './helpers.js';
import type { CampaignActivityDeps } from './helpers.js';

/** Notices written, and whether the tenant has a webhook to send them to. */
export interface NoticesSent {
  noticeIds: string[];
  webhook: boolean;
}

type Actor = { id: string; type: 'user' | 'system' };

/** The audit action of each kind of notice sent on its own (escalations and reassignments have theirs). */
const NOTICE_ACTIONS: Record<'reminder' | 'nudge' | 'reiteration', string> = {
  reminder: 'review.reminders_sent',
  nudge: 'review.nudged',
  reiteration: 'review.reiteration_notices_sent',
};

/**
 * The campaign flow while a stage is open and around it: reminders, escalation, MSP staff's
 * reassignments and nudges, remediation on decision, and cancellation of a review or a run.
 * Each writes its rows and its one audit event in one transaction, idempotent by the event id
 * the workflow made.
 */
export function createCampaignFlowActivities({ pool, directories, clock, temporal, webhooks }: CampaignActivityDeps) {
  const { reviewEvent, activeHolders, candidatesOf, usersOf } = reviewHelpers({ pool, directories, clock });

  /** Stores one notice per reviewer, ids derived from the event, and answers them with whether there is a webhook. */
  async function writeNotices(
    client: PoolClient,
    input: ReviewEventInput & { stage: number; closesAt: string | null },
    kind: ReviewNoticeKind,
    actor: Actor,
    reviewers: readonly { reviewer_id: string; items: number }[],
  ): Promise<{ ids: string[]; webhook: boolean }> {
    const notices = reviewers.map((r) => ({
      id: derivedUuid([input.eventId, r.reviewer_id]),
      event_id: input.eventId,
      run_id: input.runId,
      stage: input.stage,
      reviewer_id: r.reviewer_id,
      kind,
      items: r.items,
      actor_id: actor.id,
    }));
    await insertNotices(client, input.tenantId, notices, input.closesAt);
    return { ids: notices.map((n) => n.id), webhook: Boolean(await currentWebhookUrl(client, input.tenantId)) };
  }

  /** A retried activity whose transaction committed: the notices its event wrote. */
  async function alreadySent(client: PoolClient, input: ReviewEventInput): Promise<NoticesSent | undefined> {
    const previous = await noticesOfEvent(client, input.tenantId, input.eventId);
    if (previous.length === 0) return undefined;
    return { noticeIds: previous.map((n) => n.id), webhook: Boolean(await currentWebhookUrl(client, input.tenantId)) };
  }

  /**
   * Settles the items at the open `stage` whose decisions already decide them (revocations only,
   * or every decided item), under the last-holder guardrail; `then` runs in the same transaction
   * under the review's row lock. Nothing is settled unless the review is open at that stage.
   */
  async function settleDecided(
    input: ReviewEventInput,
    stage: number,
    definition: CampaignDefinitionDocument,
    which: 'revocations' | 'all',
    then: (client: PoolClient, settled: { revoke: number; keep: number; held: number }) => Promise<void>,
  ): Promise<{ revoke: number; keep: number; held: number; open: boolean }> {
    const { tenantId, runId } = input;
    const strategy = definition.stages[stage - 1]!.strategy;
    const items = await inScope(pool, tenantScope(tenantId), (client) => stageItems(client, tenantId, runId, stage));
    const close: CloseItem[] = [];
    for (const item of items) {
      const decided = stageOutcome(strategy, item.reviewers, item.decisions);
      if (decided === null || (decided === 'keep' && which === 'revocations')) continue;
      close.push(closeItemOf(item, decided));
    }
    const holders = await activeHolders(
      tenantId,
      close.filter((c) => c.privileged && c.decided === 'revoke').map((c) => c.role),
    );
    const itemCount = await inScope(pool, tenantScope(tenantId), (client) => countItems(client, tenantId, runId));
    const settled = settleClose(close, definition, itemCount, holders);
    const counts = {
      revoke: settled.filter((s) => s.outcome === 'revoke').length,
      keep: settled.filter((s) => s.outcome === 'keep').length,
      held: settled.filter((s) => s.outcome === 'held').length,
    };
    return inScope(pool, tenantScope(tenantId), async (client) => {
      const review = await getReviewRow(client, tenantId, runId, 'update');
      if (review?.status !== 'open' || review.stage !== stage) return { revoke: 0, keep: 0, held: 0, open: false };
      await requireUnchanged(client, tenantId, runId, stage, items);
      await writeOutcomes(client, tenantId, settled);
      await then(client, counts);
      return { ...counts, open: true };
    });
  }

  return {
    /**
     * Remediation on decision: revocations the open stage's decisions already settle (by its
     * strategy, under the last-holder guardrail) are settled now, so they can be applied at once;
     * they can no longer change. One `review.revocations_settled` event when any was.
     */
    async settleDecidedRevocations(
      input: ReviewEventInput & { stage: number; definition: CampaignDefinitionDocument },
    ): Promise<{ revoke: number; held: number }> {
      const settled = await settleDecided(input, input.stage, input.definition, 'revocations', async (client, counts) => {
        if (counts.revoke + counts.held > 0)
          await reviewEvent(client, input, 'review.revocations_settled', { stage: input.stage, revoke: counts.revoke, held: counts.held });
      });
      return { revoke: settled.revoke, held: settled.held };
    },

    /**
     * Cancels the review for MSP staff: decisions already recorded at the open stage are settled
     * by its strategy (the tenant's decisions stand), items nobody decided keep their access with
     * no outcome, and no stage opens again; `review.cancelled` records who, why and what was
     * settled. A review whose items are not stored yet is recorded as cancelled with none.
     */
    async cancelReview(
      input: ReviewEventInput & {
        definitionId: string;
        stage: number;
        definition: CampaignDefinitionDocument;
        actorId: string;
        authority: Authority;
        comment?: string;
      },
    ): Promise<{ cancelled: boolean; settled: { revoke: number; keep: number; held: number } | null }> {
      const { tenantId, runId } = input;
      const actor: Actor = { id: input.actorId, type: 'user' };
      const workflowId = tenantReviewWorkflowId(tenantId, runId);
      let cancelled = false;
      const mark = async (
        client: PoolClient,
        from: ReviewStatus | null,
        settled: { revoke: number; keep: number; held: number } | null,
      ) => {
        cancelled = await setReviewState(client, tenantId, runId, ['materialising', 'open', 'settling'], {
          status: 'cancelled',
          closesAt: null,
        });
        if (cancelled)
          await reviewEvent(
            client,
            input,
            'review.cancelled',
            { stage: input.stage, before: { status: from }, settled, ...(input.comment ? { comment: input.comment } : {}) },
            actor,
            input.authority,
          );
      };
      const review = await inScope(pool, tenantScope(tenantId), (client) => getReviewRow(client, tenantId, runId));
      if (review?.status === 'open') {
        const settled = await settleDecided(input, review.stage, input.definition, 'all', (client, counts) => mark(client, 'open', counts));
        if (settled.open) return { cancelled, settled: { revoke: settled.revoke, keep: settled.keep, held: settled.held } };
      }
      return inScope(pool, tenantScope(tenantId), async (client) => {
        // Cancelled before its items were stored: the review is recorded, with none, so the cancellation has a home.
        await insertReview(client, {
          tenantId,
          runId,
          definitionId: input.definitionId,
          workflowId,
          stageCount: input.definition.stages.length,
          settings: input.definition,
        });
        const current = await getReviewRow(client, tenantId, runId, 'update');
        await mark(client, current?.status ?? null, null);
        return { cancelled, settled: null };
      });
    },

    /**
     * Writes a notice for each reviewer still owing a decision at the open stage (or only
     * `reviewerIds`), shown in their inbox and then sent to the tenant's webhook, with one audit
     * event naming them: a reminder before the deadline, an MSP nudge, or a reiteration.
     */
    async sendReviewNotices(
      input: ReviewEventInput & {
        stage: number;
        closesAt: string | null;
        kind: 'reminder' | 'nudge' | 'reiteration';
        actor?: Actor;
        authority?: Authority;
        comment?: string;
        reviewerIds?: string[];
      },
    ): Promise<NoticesSent> {
      const { tenantId, runId } = input;
      const actor = input.actor ?? CAMPAIGN_ACTOR;
      return inScope(pool, tenantScope(tenantId), async (client) => {
        const previous = await alreadySent(client, input);
        if (previous) return previous;
        const review = await getReviewRow(client, tenantId, runId, 'share');
        if (review?.status !== 'open' || review.stage !== input.stage) return { noticeIds: [], webhook: false };
        const waiting = await waitingReviewers(client, tenantId, runId, input.stage, input.reviewerIds ?? null);
        if (waiting.length === 0) return { noticeIds: [], webhook: false };
        const { ids, webhook } = await writeNotices(client, input, input.kind, actor, waiting);
        await reviewEvent(
          client,
          input,
          NOTICE_ACTIONS[input.kind],
          {
            stage: input.stage,
            round: review.round,
            closesAt: input.closesAt,
            reviewers: waiting.map((w, i) => ({ reviewerId: w.reviewer_id, items: w.items, noticeId: ids[i] })),
            ...(input.comment ? { comment: input.comment } : {}),
          },
          actor,
          input.authority ?? {},
        );
        return { noticeIds: ids, webhook };
      });
    },

    /**
     * The stage's escalation: each item nobody has answered gets a reviewer from the escalation's
     * chain (the tenant's own staff, never the subject), added beside the current ones or
     * replacing them; an item for which the chain gives nobody new stays as it is and is counted.
     * The new reviewers get a notice; one `review.escalated` event.
     */
    async escalateReview(
      input: ReviewEventInput & { stage: number; closesAt: string | null; definition: CampaignDefinitionDocument },
    ): Promise<NoticesSent & { escalated: number }> {
      const { tenantId, runId, stage, definition } = input;
      const escalation = flowOf(definition).escalation;
      const none = { noticeIds: [], webhook: false, escalated: 0 };
      if (!escalation) return none;
      const items = await inScope(pool, tenantScope(tenantId), (client) => unansweredItems(client, tenantId, runId, stage));
      if (items.length === 0) return none;
      const candidates = await candidatesOf(tenantId);
      const users = await usersOf(
        tenantId,
        items.map((i) => i.subject_id),
      );
      const adds: NewAssignment[] = [];
      const replaced: string[] = [];
      let unescalated = 0;
      for (const item of items) {
        const { reviewerIds, via } = reviewersOfSubject(escalation.chain, users.get(item.subject_id), candidates, definition);
        const fresh = reviewerIds.filter((r) => !item.reviewers.includes(r));
        if (fresh.length === 0) {
          unescalated++;
          continue;
        }
        for (const reviewer_id of fresh) adds.push({ item_id: item.id, stage, reviewer_id, via: `escalation:${via!}` });
        if (escalation.action === 'replace') replaced.push(item.id);
      }
      return inScope(pool, tenantScope(tenantId), async (client) => {
        const previous = await alreadySent(client, input);
        if (previous) return { ...previous, escalated: 0 };
        const review = await getReviewRow(client, tenantId, runId, 'update');
        if (review?.status !== 'open' || review.stage !== stage) return none;
        await removeAssignments(client, tenantId, stage, replaced, null, 'escalation');
        await restoreAssignments(client, tenantId, adds);
        const escalated = new Set(adds.map((a) => a.item_id)).size;
        const newReviewers = [...new Set(adds.map((a) => a.reviewer_id))];
        const waiting = newReviewers.length ? await waitingReviewers(client, tenantId, runId, stage, newReviewers) : [];
        const { ids, webhook } = await writeNotices(client, input, 'escalation', CAMPAIGN_ACTOR, waiting);
        await reviewEvent(client, input, 'review.escalated', {
          stage,
          action: escalation.action,
          escalated,
          replaced: replaced.length,
          unescalated,
          reviewers: waiting.map((w, i) => ({ reviewerId: w.reviewer_id, items: w.items, noticeId: ids[i] })),
        });
        return { noticeIds: ids, webhook, escalated };
      });
    },

    /**
     * MSP staff move a reviewer's undecided items at the open stage to another member of the
     * tenant's own staff holding tenant_reviewer or tenant_approver there (never MSP staff, never
     * the item's subject). Items the reviewer has decided stay, with their decision. One
     * `review.reassigned` event; the new reviewer gets a notice.
     */
    async reassignReviewItems(
      input: ReviewEventInput & ReassignInput & { stage: number; closesAt: string | null },
    ): Promise<NoticesSent & { moved: number; skipped: { itemId: string; reason: string }[]; refused?: string }> {
      const { tenantId, runId, stage } = input;
      const to = (await inScope(pool, mspScope, (client) => reviewerCandidates(client, tenantId))).find((c) => c.id === input.toReviewerId);
      if (!to)
        return {
          noticeIds: [],
          webhook: false,
          moved: 0,
          skipped: [],
          refused: 'The new reviewer must be a member of the tenant’s own staff holding tenant_reviewer or tenant_approver there.',
        };
      const named = input.itemIds ?? null;
      const before = await inScope(pool, tenantScope(tenantId), (client) =>
        assignedItems(client, tenantId, runId, stage, input.fromReviewerId, named),
      );
      const users = await usersOf(
        tenantId,
        before.map((i) => i.subject_id),
      );
      return inScope(pool, tenantScope(tenantId), async (client) => {
        const previous = await alreadySent(client, input);
        if (previous) return { ...previous, moved: 0, skipped: [] };
        await getReviewRow(client, tenantId, runId, 'update'); // no decision lands while items move
        const mine = await assignedItems(client, tenantId, runId, stage, input.fromReviewerId, named);
        const skipped: { itemId: string; reason: string }[] = [];
        const moving: string[] = [];
        for (const item of mine) {
          const email = users.get(item.subject_id)?.email;
          if (item.decided) skipped.push({ itemId: item.id, reason: 'decided already by the current reviewer' });
          else if (email && to.email && email.toLowerCase() === to.email.toLowerCase())
            skipped.push({ itemId: item.id, reason: 'the new reviewer is its subject' });
          else moving.push(item.id);
        }
        const found = new Set(mine.map((i) => i.id));
        for (const itemId of named ?? [])
          if (!found.has(itemId)) skipped.push({ itemId, reason: 'not waiting for the current reviewer at the open stage' });
        if (moving.length === 0) return { noticeIds: [], webhook: false, moved: 0, skipped };
        await removeAssignments(client, tenantId, stage, moving, [input.fromReviewerId], input.actorId);
        await restoreAssignments(
          client,
          tenantId,
          moving.map((item_id) => ({ item_id, stage, reviewer_id: to.id, via: 'reassigned' })),
        );
        const waiting = await waitingReviewers(client, tenantId, runId, stage, [to.id]);
        const actor: Actor = { id: input.actorId, type: 'user' };
        const { ids, webhook } = await writeNotices(client, input, 'reassignment', actor, waiting);
        await reviewEvent(
          client,
          input,
          'review.reassigned',
          {
            stage,
            from: input.fromReviewerId,
            to: to.id,
            moved: moving.length,
            items: moving,
            skipped,
            ...(input.comment ? { comment: input.comment } : {}),
          },
          actor,
          input.authority,
        );
        return { noticeIds: ids, webhook, moved: moving.length, skipped };
      });
    },

    /**
     * Sends each notice to the tenant's webhook, signed, once per notice (its id is the event
     * id). Every notice is tried; if any failed, the activity fails (retryable) naming how many.
     */
    async deliverReviewNotices(input: { tenantId: string; runId: string; noticeIds: string[] }): Promise<{ delivered: number }> {
      const { tenantId } = input;
      const notices: NoticeRow[] = await inScope(pool, tenantScope(tenantId), (client) => noticesById(client, tenantId, input.noticeIds));
      const emails = await inScope(pool, mspScope, (client) =>
        actorEmails(
          client,
          notices.map((n) => n.reviewer_id),
        ),
      );
      const failures: string[] = [];
      for (const n of notices) {
        try {
          await deliverTenantWebhook(
            { pool, clock, transport: webhooks },
            {
              tenantId,
              eventId: n.id,
              action: `review.${n.kind}`,
              subject: {
                notice: {
                  noticeId: n.id,
                  runId: n.run_id,
                  stage: n.stage,
                  kind: n.kind,
                  reviewerId: n.reviewer_id,
                  reviewerEmail: emails.get(n.reviewer_id) ?? null,
                  items: n.items,
                  closesAt: n.closes_at?.toISOString() ?? null,
                  inbox: `/v1/tenants/${tenantId}/reviews/items?assignedTo=me&runId=${n.run_id}`,
                },
              },
            },
          );
        } catch (error) {
          failures.push((error as Error).message);
        }
        heartbeat({ notice: n.id });
      }
      if (failures.length > 0)
        throw ApplicationFailure.retryable(
          `${failures.length} of ${notices.length} notices not delivered: ${failures[0]}`,
          'WebhookDeliveryFailed',
        );
      return { delivered: notices.length };
    },

    /** Records the run cancelled (once) with `campaign.run_cancelled` on the MSP chain. */
    async cancelCampaignRun(input: {
      runId: string;
      eventId: string;
      actorId: string;
      authority: Authority;
      comment?: string;
    }): Promise<{ cancelled: boolean }> {
      return inScope(pool, mspScope, async (client) => {
        const run = await markRunCancelled(client, input.runId, input.actorId);
        if (run)
          await appendWorkflowEvent(
            client,
            clock,
            MSP_CHAIN,
            { type: 'campaign_run', id: input.runId },
            {
              eventId: input.eventId,
              action: 'campaign.run_cancelled',
              actor: { id: input.actorId, type: 'user' },
              authority: input.authority,
              payload: { definitionId: run.definition_id, runNo: run.run_no, ...(input.comment ? { comment: input.comment } : {}) },
            },
          );
        return { cancelled: Boolean(run) };
      });
    },

    /**
     * Cancels every review of the run still running, one Update each, with the run's canceller
     * as actor. A review already applying its settled revocations finishes as decided. Beats
     * with its cursor, so a retry goes on where the last attempt stopped.
     */
    async cancelRunReviews(input: { runId: string; actorId: string; authority: Authority; comment?: string }): Promise<{
      cancelled: number;
      finishing: number;
      notRunning: number;
    }> {
      if (!temporal)
        throw ApplicationFailure.nonRetryable('no Temporal client was given to the campaign activities', 'CampaignMisconfigured');
      const resumed = Context.current().info.heartbeatDetails as
        { after: string | null; counts: { cancelled: number; finishing: number; notRunning: number } } | undefined;
      const counts = resumed?.counts ?? { cancelled: 0, finishing: 0, notRunning: 0 };
      let after = resumed?.after ?? null;
      for (;;) {
        const page = await inScope(pool, mspScope, (client) => runTenantsPage(client, input.runId, after, 100));
        if (page.length === 0) break;
        for (const tenantId of page) {
          const handle = temporal.workflow.getHandle(tenantReviewWorkflowId(tenantId, input.runId));
          const running = await handle.describe().then(
            (d) => d.status.name === 'RUNNING',
            (error: unknown) => {
              if (error instanceof WorkflowNotFoundError) return false; // never started: the run stopped first
              throw error;
            },
          );
          if (!running) counts.notRunning++;
          else {
            try {
              await handle.executeUpdate(cancelReviewUpdate, {
                args: [
                  {
                    actorId: input.actorId,
                    authority: { ...input.authority, cancelledWithRun: input.runId },
                    ...(input.comment ? { comment: input.comment } : {}),
                  },
                ],
              });
              counts.cancelled++;
            } catch (error) {
              // Refused: the review is applying its settled revocations (or just finished).
              if (!(error instanceof WorkflowUpdateFailedError || error instanceof WorkflowNotFoundError)) throw error;
              counts.finishing++;
            }
          }
          after = tenantId;
          heartbeat({ after, counts });
        }
      }
      return counts;
    },
  };
}

export type CampaignFlowActivities = ReturnType<typeof createCampaignFlowActivities>;
