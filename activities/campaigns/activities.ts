import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { MSP_CHAIN, type Authority } from '../../core/audit/chain.js';
import {
  CAMPAIGN_ACTOR,
  DEFAULT_REMEDIATION_CONCURRENCY,
  campaignRunInput,
  campaignRunWorkflowId,
  type CampaignRunInput,
  type CampaignRunStatus,
} from '../../core/campaigns/contract.js';
import { recommend, settleClose, stageOutcome, type CloseItem, type CloseOutcome } from '../../core/campaigns/review.js';
import { reportHash, UNDECIDED_AT_CANCELLATION, type ReportCancellation, type ReviewReport } from '../../core/campaigns/report.js';
import { isServiceAccount, ownerOf } from '../../core/campaigns/standing.js';
import type { CampaignDefinitionDocument, ReviewerSource } from '../../core/campaigns/schemas.js';
import { createSemaphore } from '../../core/concurrency.js';
import { requireCapability, type DirectoryUser } from '../../core/directory/connector.js';
import { grantWorkflowId, revokeGrantUpdate } from '../../core/grants/contract.js';
import {
  advanceItems,
  allocateRun,
  countItems,
  countPendingRevocations,
  definitionVersionRow,
  fixRunTenants,
  getReport,
  getReviewRow,
  getRunRow,
  insertAssignments,
  insertItems,
  insertReport,
  insertReview,
  pendingRevocations,
  reportSource,
  reviewCancelledEvent,
  reviewCounts,
  ruleChangeItems,
  runTenantsPage,
  setItemResult,
  setRemediationAttempt,
  setOutcomes,
  setReviewDeadline,
  setReviewState,
  stageItems,
  updateRunProgress,
  type ItemRow,
  type NewAssignment,
  type NewItem,
  type OutcomeWrite,
  type StageItem,
} from '../../db/campaigns.js';
import { entitlementsEndedFor, lockSubjectRole, openEntitlements, openEntitlementsForRoles } from '../../db/directory/ledger.js';
import type { PoolClient } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { appendWorkflowEvent } from '../audit/record.js';
import { countingApprovers } from '../../db/tenancy.js';
import { deliverTenantWebhook } from '../tenancy/webhooks.js';
import { createLedgerActivities, directoryCall } from '../directory/ledger.js';
import { chunks, derivedUuid, heartbeat, reviewersOfSubject, reviewHelpers, USER_BATCH, type ReviewEventInput } from './helpers.js';
import type { CampaignActivityDeps } from './helpers.js';

/** Items written per statement while materialising. */
const INSERT_BATCH = 500;
/** Items of one remediation batch applied at once (within the worker's cap, DEFAULT_REMEDIATION_CONCURRENCY). */
const REMEDIATION_CONCURRENCY = 8;
/** The ledger's end reason of an entitlement a review's revoke ended. */
const REVIEW_REVOKED = 'review_revoked';

/** An item's id, the same for the same (run, subject, role), so a retried batch finds its rows. */
export function reviewItemId(runId: string, subjectId: string, role: string): string {
  return derivedUuid([runId, subjectId, role]);
}

/** The one notice (webhook event and its audit event) an item needing a rule change gets, whatever the retries. */
export function ruleChangeNoticeId(itemId: string): string {
  return derivedUuid(['review.needs_rule_change', itemId]);
}

export type { ReviewEventInput };

export interface CloseStageResult {
  stage: number;
  decidedKeep: number;
  decidedRevoke: number;
  advanced: number;
  nonResponses: number;
  held: Record<string, number>;
  /** Items nobody answered, back with their reviewers for a reiteration of the last stage. */
  reiterating?: number;
}

/** What settling needs of a stage's item, with what its decisions add up to. */
export function closeItemOf(item: StageItem, decided: CloseItem['decided']): CloseItem {
  return {
    id: item.id,
    subjectId: item.subject_id,
    role: item.role,
    privileged: item.privileged,
    subjectStatus: item.subject_status,
    breakGlass: item.break_glass,
    recommendation: item.recommendation,
    decided,
  };
}

/** Settled outcomes as rows: a keep or a hold is final at once; a revoke waits for remediation. */
export async function writeOutcomes(client: PoolClient, tenantId: string, settled: readonly CloseOutcome[]): Promise<void> {
  const outcomes: OutcomeWrite[] = settled.map((s) => ({
    id: s.id,
    outcome: s.outcome,
    outcome_by: s.by,
    outcome_reason: s.reason,
    result: s.outcome === 'keep' ? 'kept' : s.outcome === 'held' ? 'held' : null,
    result_detail: s.guardrail ? { guardrail: s.guardrail } : null,
  }));
  for (const batch of chunks(outcomes, 2000)) await setOutcomes(client, tenantId, batch);
}

/**
 * Under the review's row lock: the stage's decisions are still those read before it, or the
 * activity fails (retryable) and settles again. Decisions share-lock the review row, so none
 * can arrive after this check until the caller's transaction commits.
 */
export async function requireUnchanged(
  client: PoolClient,
  tenantId: string,
  runId: string,
  stage: number,
  before: readonly { id: string; decisions: unknown }[],
): Promise<void> {
  const again = await stageItems(client, tenantId, runId, stage);
  const changed = again.some((i) => {
    const first = before.find((x) => x.id === i.id);
    return !first || JSON.stringify(first.decisions) !== JSON.stringify(i.decisions);
  });
  if (changed) throw ApplicationFailure.retryable('decisions arrived while the stage was settling; settling again', 'StageChanged');
}

export function createCampaignActivities({ pool, directories, clock, temporal, webhooks, remediationConcurrency }: CampaignActivityDeps) {
  // One worker's cap on remediation calls to targets, shared by every review it runs: a campaign of
  // ten thousand revokes reaches a tenant's directory this many at a time, not all its batches' lanes at once.
  const targetSlots = createSemaphore(remediationConcurrency ?? DEFAULT_REMEDIATION_CONCURRENCY);
  const ledger = createLedgerActivities({ pool, directories });
  const { directoryOf, reviewEvent, activeHolders, candidatesOf, usersOf } = reviewHelpers({ pool, directories, clock });

  /** An event of the run itself, on the MSP chain. */
  function runEvent(
    client: PoolClient,
    runId: string,
    eventId: string,
    action: string,
    { authority, payload }: { authority: Authority; payload: Record<string, unknown> },
  ) {
    return appendWorkflowEvent(
      client,
      clock,
      MSP_CHAIN,
      { type: 'campaign_run', id: runId },
      { eventId, action, actor: CAMPAIGN_ACTOR, authority, payload },
    );
  }

  return {
    // ------------------------------------------------------------ the run

    /** Fixes the run's tenants from its definition's scope (once) and marks it running; returns how many. */
    async startCampaignRun(input: { runId: string; eventId: string }): Promise<{ total: number }> {
      return inScope(pool, mspScope, async (client) => {
        const run = await getRunRow(client, input.runId);
        if (!run) throw ApplicationFailure.nonRetryable(`campaign run ${input.runId} is not recorded`, 'CampaignRunMissing');
        const version = (await definitionVersionRow(client, run.definition_id, run.definition_version))!;
        const total = await fixRunTenants(client, input.runId, version.document.scope, version.created_at.toISOString());
        await updateRunProgress(client, input.runId, { status: 'running', total, materialised: 0, finished: 0 });
        await runEvent(client, input.runId, input.eventId, 'campaign.run_started', {
          authority: { definitionId: run.definition_id, definitionVersion: run.definition_version, startedBy: run.started_by },
          payload: { runNo: run.run_no, tenants: total, trigger: run.trigger },
        });
        return { total };
      });
    },

    /** Numbers and records the run a Schedule started (idempotent by the workflow's run id). */
    async allocateScheduledCampaignRun(input: { runId: string; definitionId: string; scheduleId: string }): Promise<CampaignRunInput> {
      return inScope(pool, mspScope, async (client) => {
        const allocated = await allocateRun(
          client,
          { actor: { id: 'schedule', type: 'system' }, authority: { scheduleId: input.scheduleId } },
          {
            id: input.runId,
            definitionId: input.definitionId,
            trigger: 'schedule',
            workflowIdOf: (runNo) => campaignRunWorkflowId(input.definitionId, runNo),
          },
        );
        if (!allocated) throw ApplicationFailure.nonRetryable(`campaign ${input.definitionId} does not exist`, 'CampaignMissing');
        return campaignRunInput(allocated.run, allocated.document);
      });
    },

    async campaignRunTenants(input: { runId: string; after: string | null; limit: number }): Promise<string[]> {
      return inScope(pool, mspScope, (client) => runTenantsPage(client, input.runId, input.after, input.limit));
    },

    /** The run's counters; with an event id, also its completion event on the MSP chain. */
    async recordCampaignRunProgress(input: {
      runId: string;
      status: CampaignRunStatus;
      total: number | null;
      materialised: number;
      finished: number;
      completedEventId?: string;
    }): Promise<void> {
      await inScope(pool, mspScope, async (client) => {
        await updateRunProgress(client, input.runId, input);
        if (input.completedEventId) {
          await runEvent(client, input.runId, input.completedEventId, 'campaign.run_completed', {
            authority: {},
            payload: { tenants: input.total, finished: input.finished },
          });
        }
      });
    },

    // ------------------------------------------------------------ one tenant's review

    /**
     * Stores the tenant's items in batches, inside its row-level-security scope, from the
     * entitlement ledger and the directory (through the connector), each with its sources, last
     * sign-in and a recommendation, and assigns the first stage's reviewers. Idempotent: item ids
     * are derived from (run, subject, role), so a retry inserts only what is missing.
     */
    async materialiseReview(
      input: ReviewEventInput & { definitionId: string; workflowId: string; definition: CampaignDefinitionDocument },
    ): Promise<{ items: number; unassigned: number }> {
      const { tenantId, runId, definition } = input;
      const directory = await directoryOf(tenantId);
      await inScope(pool, tenantScope(tenantId), (client) =>
        insertReview(client, {
          tenantId,
          runId,
          definitionId: input.definitionId,
          workflowId: input.workflowId,
          stageCount: definition.stages.length,
          settings: definition,
        }),
      );

      let roles: { name: string; privileged: boolean }[];
      if (definition.items.roles.length === 0) {
        requireCapability(directory, 'roleLookup', tenantId);
        roles = (await directoryCall(() => directory.listAllRoles(tenantId))).filter((r) => r.privileged);
      } else {
        const known = directory.capabilities.roleLookup
          ? await directoryCall(() => directory.getRoles(tenantId, definition.items.roles))
          : [];
        roles = definition.items.roles.map((name) => ({ name, privileged: known.find((r) => r.name === name)?.privileged ?? false }));
      }
      const entitlements = await inScope(pool, tenantScope(tenantId), (client) =>
        openEntitlementsForRoles(
          client,
          tenantId,
          roles.map((r) => r.name),
        ),
      );
      const sourcesOf = new Map<string, { type: NewItem['sources'][number]['type']; id: string }[]>();
      for (const e of entitlements) {
        const key = JSON.stringify([e.subjectId, e.role]);
        sourcesOf.set(key, [...(sourcesOf.get(key) ?? []), { type: e.sourceType, id: e.sourceId }]);
      }
      // What is reviewed is what the target holds now; the ledger says why.
      let pairs: { subjectId: string; role: string; privileged: boolean }[] = [];
      for (const role of roles) {
        for (const subjectId of await directoryCall(() => directory.listMembers(tenantId, role.name))) {
          const sources = sourcesOf.get(JSON.stringify([subjectId, role.name])) ?? [];
          const filter = definition.items.sources;
          if (filter && !sources.some((s) => filter.includes(s.type))) continue;
          pairs.push({ subjectId, role: role.name, privileged: role.privileged });
        }
        heartbeat({ role: role.name });
      }

      // A review of exactly these (a standing-privilege list) keeps only the access it names in this tenant.
      if (definition.items.exactly) {
        const named = new Set(
          definition.items.exactly.filter((e) => e.tenantId === tenantId).map((e) => JSON.stringify([e.subjectId, e.role])),
        );
        pairs = pairs.filter((p) => named.has(JSON.stringify([p.subjectId, p.role])));
      }
      const subjects = [...new Set(pairs.map((p) => p.subjectId))];
      const users = new Map<string, DirectoryUser>();
      const lastSignIn: Record<string, string | null> = {};
      for (const batch of chunks(subjects, USER_BATCH)) {
        for (const user of await directoryCall(() => directory.getUsers(tenantId, batch))) users.set(user.id, user);
        if (directory.capabilities.sessions) Object.assign(lastSignIn, await directoryCall(() => directory.lastSignIns(tenantId, batch)));
        heartbeat({ users: users.size });
      }
      // Definitions written before `accounts` existed review everyone.
      const accounts = definition.items.accounts ?? 'all';
      if (accounts !== 'all')
        pairs = pairs.filter((p) => isServiceAccount(users.get(p.subjectId)?.attributes ?? {}) === (accounts === 'service_accounts'));

      const candidates = await candidatesOf(tenantId);
      const chain: readonly ReviewerSource[] = definition.stages[0]!.reviewers ?? definition.reviewers.chain;
      const now = clock.now().getTime();
      const breakGlass = new Set(definition.guardrails.breakGlassAccounts);
      let unassigned = 0;
      for (const batch of chunks(pairs, INSERT_BATCH)) {
        const items: NewItem[] = [];
        const assignments: NewAssignment[] = [];
        for (const pair of batch) {
          const user = users.get(pair.subjectId);
          const sources = sourcesOf.get(JSON.stringify([pair.subjectId, pair.role])) ?? [];
          const attributes = user?.attributes ?? {};
          const serviceAccount = isServiceAccount(attributes);
          const facts = {
            subjectStatus: user?.status ?? 'unknown',
            lastActivityAt: lastSignIn[pair.subjectId] ?? null,
            sources,
            ...(serviceAccount ? { serviceAccount: { owner: ownerOf(attributes) } } : {}),
          };
          const { recommendation, reason } = recommend(facts, now, definition.inactivityDays);
          const id = reviewItemId(runId, pair.subjectId, pair.role);
          items.push({
            id,
            subject_id: pair.subjectId,
            subject_status: facts.subjectStatus,
            role: pair.role,
            privileged: pair.privileged,
            sources,
            last_activity_at: facts.lastActivityAt,
            break_glass: user?.attributes.breakGlass === true || breakGlass.has(pair.subjectId),
            service_account: serviceAccount,
            recommendation,
            recommendation_reason: reason,
          });
          const { reviewerIds, via } = reviewersOfSubject(chain, user, candidates, definition);
          if (reviewerIds.length === 0) unassigned++;
          for (const reviewerId of reviewerIds) assignments.push({ item_id: id, stage: 1, reviewer_id: reviewerId, via: via! });
        }
        await inScope(pool, tenantScope(tenantId), async (client) => {
          await insertItems(client, tenantId, runId, items);
          await insertAssignments(client, tenantId, assignments);
        });
        heartbeat({ stored: items.length });
      }

      return inScope(pool, tenantScope(tenantId), async (client) => {
        const count = await countItems(client, tenantId, runId);
        if (await setReviewState(client, tenantId, runId, ['materialising'], { status: 'materialising', itemCount: count }))
          await reviewEvent(client, input, 'review.items_materialised', { items: count, unassigned, roles: roles.map((r) => r.name) });
        return { items: count, unassigned };
      });
    },

    /** Opens `stage` (or its reiteration `round`) until `closesAt` (guarded: a retry changes nothing twice). */
    async openReviewStage(input: ReviewEventInput & { stage: number; closesAt: string; round?: number }): Promise<void> {
      await inScope(pool, tenantScope(input.tenantId), async (client) => {
        const moved = await setReviewState(client, input.tenantId, input.runId, ['materialising', 'settling'], {
          status: 'open',
          stage: input.stage,
          closesAt: input.closesAt,
          round: input.round ?? 0,
        });
        if (moved)
          await reviewEvent(client, input, input.round ? 'review.stage_reiterated' : 'review.stage_opened', {
            stage: input.stage,
            closesAt: input.closesAt,
            ...(input.round ? { round: input.round } : {}),
          });
      });
    },

    /** An MSP operator moved the open stage's deadline. */
    async moveReviewDeadline(
      input: ReviewEventInput & { stage: number; closesAt: string; actorId: string; authority: Authority; before: string | null },
    ): Promise<{ moved: boolean; undecided?: number }> {
      // Bringing a deadline forward settles the items still undecided by the non-response rule
      // when the stage closes: that takes the decision from the tenant's reviewers. So only the
      // tenant's own approvers may do it while any item waits; anyone else (MSP staff, or a
      // direct call to Temporal) may only extend. Checked here, where the deadline is written.
      const tenantApprover =
        (await inScope(pool, mspScope, (client) => countingApprovers(client, [input.actorId], input.tenantId))).length > 0;
      return inScope(pool, tenantScope(input.tenantId), async (client) => {
        if (!tenantApprover) {
          const row = await getReviewRow(client, input.tenantId, input.runId);
          const current = row?.stage_closes_at?.getTime();
          if (current !== undefined && Date.parse(input.closesAt) < current) {
            const undecided = (await reviewCounts(client, input.tenantId, input.runId)).outcomes.pending ?? 0;
            if (undecided > 0) return { moved: false, undecided };
          }
        }
        const moved = await setReviewDeadline(client, input.tenantId, input.runId, input.stage, input.closesAt);
        if (moved) {
          await reviewEvent(
            client,
            input,
            'review.deadline_moved',
            { stage: input.stage, before: { closesAt: input.before }, after: { closesAt: input.closesAt } },
            { id: input.actorId, type: 'user' },
            input.authority,
          );
        }
        return { moved };
      });
    },

    /**
     * Closes `stage`: no decision is taken after this commits (decisions share-lock the review
     * row and check it is open at their item's stage). Each undecided item's decisions add up by
     * the stage's strategy; revocations are settled under the last-holder guardrail, kept items
     * move to the next stage with its reviewers, and at the last stage every remaining item is
     * settled by the non-response policy and the guardrails. One transaction: a retry after it
     * committed finds the review no longer open at this stage and only reports.
     */
    async closeReviewStage(
      input: ReviewEventInput & { stage: number; definition: CampaignDefinitionDocument; alertEventId: string; reiterate?: boolean },
    ): Promise<CloseStageResult> {
      const { tenantId, runId, stage, definition } = input;
      const last = stage === definition.stages.length;
      const reiterate = last && input.reiterate === true;
      const waiting: string[] = [];
      const strategy = definition.stages[stage - 1]!.strategy;
      const items = await inScope(pool, tenantScope(tenantId), (client) => stageItems(client, tenantId, runId, stage));
      const close: CloseItem[] = [];
      const advance: string[] = [];
      let decidedKeep = 0;
      let decidedRevoke = 0;
      let nonResponses = 0;
      for (const item of items) {
        const decided = stageOutcome(strategy, item.reviewers, item.decisions);
        if (decided === 'keep') decidedKeep++;
        if (decided === 'revoke') decidedRevoke++;
        if (decided === null) nonResponses++;
        // Reiterated: an item nobody answered goes back to its reviewers, the others settle now.
        if (reiterate && decided === null) {
          waiting.push(item.id);
          continue;
        }
        const closing = last || decided === 'revoke';
        if (!closing) {
          advance.push(item.id);
          continue;
        }
        close.push(closeItemOf(item, decided));
      }
      const privilegedRevoked = close.filter((c) => c.privileged && c.decided !== 'keep').map((c) => c.role);
      const holders = await activeHolders(tenantId, privilegedRevoked);
      const itemCount = await inScope(pool, tenantScope(tenantId), (client) => countItems(client, tenantId, runId));
      const settled = settleClose(close, definition, itemCount, holders);
      const held: Record<string, number> = {};
      for (const s of settled) if (s.guardrail) held[s.guardrail] = (held[s.guardrail] ?? 0) + 1;

      let nextAssignments: NewAssignment[] = [];
      if (!last && advance.length > 0) {
        const next = definition.stages[stage]!;
        const chain = next.reviewers ?? definition.reviewers.chain;
        const candidates = await candidatesOf(tenantId);
        const advancing = new Set(advance);
        const users = await usersOf(
          tenantId,
          items.filter((i) => advancing.has(i.id)).map((i) => i.subject_id),
        );
        nextAssignments = items
          .filter((i) => advancing.has(i.id))
          .flatMap((i) => {
            const { reviewerIds, via } = reviewersOfSubject(chain, users.get(i.subject_id), candidates, definition);
            return reviewerIds.map((reviewer_id) => ({ item_id: i.id, stage: stage + 1, reviewer_id, via: via! }));
          });
      }

      const result: CloseStageResult = {
        stage,
        decidedKeep,
        decidedRevoke,
        advanced: advance.length,
        nonResponses,
        held,
        ...(waiting.length > 0 ? { reiterating: waiting.length } : {}),
      };
      return inScope(pool, tenantScope(tenantId), async (client) => {
        const review = await getReviewRow(client, tenantId, runId, 'update');
        if (!review || review.status !== 'open' || review.stage !== stage) return result; // committed by an earlier attempt
        await requireUnchanged(client, tenantId, runId, stage, items);
        await writeOutcomes(client, tenantId, settled);
        await advanceItems(client, tenantId, advance, stage);
        for (const batch of chunks(nextAssignments, 2000)) await insertAssignments(client, tenantId, batch);
        await setReviewState(client, tenantId, runId, ['open'], {
          status: last && waiting.length === 0 ? 'remediating' : 'settling',
          closesAt: null,
        });
        await reviewEvent(client, input, 'review.stage_closed', { ...result, last });
        if (held.auto_revocation_cap) {
          await reviewEvent(client, { ...input, eventId: input.alertEventId }, 'review.guardrail_alert', {
            stage,
            held,
            message: 'automatic revocations over the cap wait for an explicit decision',
          });
        }
        return result;
      });
    },

    /**
     * Applies up to `limit` revocations through the ledger: a grant by its grant workflow's revoke,
     * a manual or template entitlement by ending it and removing the role, access no source
     * explains by removing it from the target; access a birthright rule still explains is
     * `needs_rule_change` naming the rule. Each is read back; an unconfirmed one stays `retrying`.
     * Each result is written (and audited) once: the write is guarded on the previous result.
     */
    async remediateReviewItems(input: { tenantId: string; runId: string; limit: number; workflowId: string }): Promise<{
      processed: number;
      remaining: number;
      retrying: number;
    }> {
      const { tenantId, runId } = input;
      const batch = await inScope(pool, tenantScope(tenantId), (client) => pendingRevocations(client, tenantId, runId, input.limit));
      let retrying = 0;
      // Items of a batch are distinct (subject, role) pairs, each under its own ledger lock: a few
      // at once, so one item's target round trips overlap another's ledger work.
      let next = 0;
      let stopped = false;
      const lane = async () => {
        while (next < batch.length && !stopped) {
          const item = batch[next++]!;
          const { result, detail } = await targetSlots.run(() => remediate(item, input.workflowId));
          if (result === 'retrying') retrying++;
          await inScope(pool, tenantScope(tenantId), async (client) => {
            if (await setItemResult(client, tenantId, item.id, result, detail)) {
              await appendWorkflowEvent(
                client,
                clock,
                tenantId,
                { type: 'review_item', id: item.id },
                {
                  eventId: randomUUID(), // written once: the guarded update above changes the row only once per result
                  action: `review.item_${result}`,
                  actor: CAMPAIGN_ACTOR,
                  authority: { campaignRunId: runId, outcomeBy: item.outcome_by, outcomeReason: item.outcome_reason },
                  payload: { subjectId: item.subject_id, role: item.role, ...detail },
                },
              );
            }
          });
          heartbeat({ item: item.id });
        }
      };
      // Every lane settles before the attempt ends, failed or not: a lane left running would race the retry's.
      const stopOnFailure = () =>
        lane().catch((error: unknown) => {
          stopped = true;
          throw error;
        });
      // Lanes waiting for the worker's cap beat too: a busy worker is not a dead one.
      const beating = setInterval(() => heartbeat({ waitingForTarget: targetSlots.waiting }), 10_000);
      const lanes = await Promise.allSettled(
        Array.from({ length: Math.min(REMEDIATION_CONCURRENCY, batch.length) }, stopOnFailure),
      ).finally(() => clearInterval(beating));
      const failed = lanes.find((l) => l.status === 'rejected');
      if (failed) throw failed.reason;
      const remaining = await inScope(pool, tenantScope(tenantId), (client) => countPendingRevocations(client, tenantId, runId));
      return { processed: batch.length, remaining, retrying };
    },

    /**
     * Tells the tenant, through its signed webhook, of each item whose revocation waits for a
     * birthright rule to change, naming the rule: once per item (the event id is derived from the
     * item, and a delivered event is never sent again), each delivery audited once
     * (`review.rule_change_notified`). Without a webhook there is no one to tell. A failed delivery
     * throws for Temporal to retry; the review never waits on it for its outcome.
     */
    async notifyRuleChanges(input: { tenantId: string; runId: string; workflowId: string }): Promise<{ notified: number }> {
      const { tenantId, runId } = input;
      const items = await inScope(pool, tenantScope(tenantId), (client) => ruleChangeItems(client, tenantId, runId));
      let notified = 0;
      let failure: Error | undefined;
      for (const item of items) {
        const eventId = ruleChangeNoticeId(item.id);
        const rules = Array.isArray(item.result_detail?.rules) ? item.result_detail.rules : [];
        try {
          const sent = await deliverTenantWebhook(
            { pool, clock, transport: webhooks },
            {
              tenantId,
              eventId,
              action: 'review.needs_rule_change',
              subject: {
                review: { runId, workflowId: input.workflowId },
                item: {
                  itemId: item.id,
                  subjectId: item.subject_id,
                  role: item.role,
                  rules,
                  resultAt: item.result_at?.toISOString() ?? null,
                },
                message: `Revoking ${item.role} from ${item.subject_id} needs a change to the birthright rule ${rules.join(', ')}: it still gives that access.`,
              },
            },
          );
          if (!sent.delivered) return { notified }; // no webhook: nobody to tell
        } catch (error) {
          failure ??= error as Error; // the others are still tried; this one is tried again
          continue;
        }
        notified++;
        await inScope(pool, tenantScope(tenantId), (client) =>
          appendWorkflowEvent(
            client,
            clock,
            tenantId,
            { type: 'review_item', id: item.id },
            {
              eventId,
              action: 'review.rule_change_notified',
              actor: CAMPAIGN_ACTOR,
              authority: { campaignRunId: runId },
              payload: { subjectId: item.subject_id, role: item.role, rules, webhookEventId: eventId },
            },
          ),
        );
        heartbeat({ item: item.id });
      }
      if (failure) throw failure;
      return { notified };
    },

    /**
     * Marks the review completed and records its report: stored whole, its hash in the tenant's
     * chain (`review.report_recorded`), then `review.completed` with the counts. One transaction,
     * guarded on the review's state, so a retry records nothing twice.
     *
     * `cancelled`: the review was cancelled by MSP staff and the revocations it had settled are
     * applied; its report is recorded all the same (evidence does not disappear with a
     * cancellation), saying who cancelled it, when and why, what was decided until then and what
     * was not. The review stays `cancelled`; a retry finds the report and records nothing twice.
     */
    async finishReview(
      input: ReviewEventInput & { reportEventId: string; definitionId: string; cancelled?: boolean },
    ): Promise<{ hash: string | null }> {
      const { tenantId, runId } = input;
      return inScope(pool, tenantScope(tenantId), async (client) => {
        const review = await getReviewRow(client, tenantId, runId, 'update');
        const existing = async () => ({ hash: (await getReport(client, tenantId, runId))?.hash ?? null });
        if (input.cancelled) {
          if (review?.status !== 'cancelled' || (await getReport(client, tenantId, runId))) return existing();
        } else if (review?.status !== 'remediating') return existing();
        const counts = await reviewCounts(client, tenantId, runId);
        const report = await buildReport(client, { ...input, settings: review.settings, counts });
        if (input.cancelled) {
          const event = await reviewCancelledEvent(client, tenantId, runId);
          const decided = report.items.filter((i) => i.outcome !== null).length;
          report.status = 'cancelled';
          report.cancellation = {
            cancelledAt: (event?.occurred_at ?? clock.now()).toISOString(),
            cancelledBy: event?.actor_id ?? 'unknown',
            authority: event?.authority ?? {},
            comment: typeof event?.payload.comment === 'string' ? event.payload.comment : null,
            stage: typeof event?.payload.stage === 'number' ? event.payload.stage : review.stage,
            settled: (event?.payload.settled as ReportCancellation['settled'] | undefined) ?? null,
            decided,
            undecided: report.items.length - decided,
          };
          for (const item of report.items) if (item.outcome === null) item.outcomeReason = UNDECIDED_AT_CANCELLATION;
        } else report.status = 'completed';
        // As stored and read back (jsonb), so the hash is of exactly what the API serves.
        const stored = JSON.parse(JSON.stringify(report)) as ReviewReport;
        const hash = reportHash(stored);
        await insertReport(client, tenantId, runId, stored, hash);
        await reviewEvent(client, { ...input, eventId: input.reportEventId }, 'review.report_recorded', {
          hash,
          algorithm: 'sha256-jcs',
          items: report.items.length,
          status: report.status,
        });
        if (!input.cancelled) {
          await setReviewState(client, tenantId, runId, ['remediating'], { status: 'completed' });
          await reviewEvent(client, input, 'review.completed', counts);
        }
        return { hash };
      });
    },
  };

  /** A review's report from its rows: settings, reviewers, counts, and every item with its decisions, outcome and result. */
  async function buildReport(
    client: PoolClient,
    input: { tenantId: string; runId: string; definitionId: string; settings: unknown; counts: ReviewReport['counts'] },
  ): Promise<ReviewReport> {
    const { tenantId, runId } = input;
    const source = await reportSource(client, tenantId, runId);
    return {
      tenantId,
      runId,
      definitionId: input.definitionId,
      generatedAt: clock.now().toISOString(),
      settings: input.settings,
      reviewers: source.assignments.map((a) => ({ reviewerId: a.reviewer_id, stage: a.stage, via: a.via, items: a.items })),
      counts: input.counts,
      items: source.items.map((i) => ({
        itemId: i.id,
        subjectId: i.subject_id,
        role: i.role,
        sources: i.sources,
        recommendation: i.recommendation,
        recommendationReason: i.recommendation_reason,
        decisions: source.decisions
          .filter((d) => d.item_id === i.id)
          .map((d) => ({
            stage: d.stage,
            reviewerId: d.reviewer_id,
            decision: d.decision,
            justification: d.justification,
            decidedAt: d.decided_at.toISOString(),
            changes: d.changes,
          })),
        outcome: i.outcome,
        outcomeBy: i.outcome_by,
        outcomeReason: i.outcome_reason,
        guardrail: typeof i.result_detail?.guardrail === 'string' ? i.result_detail.guardrail : null,
        result: i.result,
        resultDetail: i.result_detail,
        resultAt: i.result_at?.toISOString() ?? null,
      })),
    };
  }

  async function remediate(
    item: ItemRow,
    workflowId: string,
  ): Promise<{ result: 'applied_verified' | 'already_absent' | 'needs_rule_change' | 'retrying'; detail: Record<string, unknown> }> {
    const { tenant_id: tenantId, subject_id: subjectId, role } = item;
    const directory = await directoryOf(tenantId);
    const open = await inScope(pool, tenantScope(tenantId), (client) => openEntitlements(client, tenantId, subjectId, role));
    const firstLook = item.result === null;
    // With a recorded source the target is read back after the source ends; without one, now.
    const present = open.length === 0 && (await directoryCall(() => directory.hasRole(tenantId, subjectId, role)));
    if (firstLook && open.length === 0 && !present) {
      // An attempt that revoked the item's access and then failed before writing its result (a
      // worker killed, the database gone) leaves the access gone: that is this revoke, not an
      // absence. A manual or template end says so by its end reason; a grant's revoke and the
      // removal of unrecorded access by the attempt the item recorded before making them.
      const endedByReview = (
        await inScope(pool, tenantScope(tenantId), (client) => entitlementsEndedFor(client, tenantId, subjectId, role, REVIEW_REVOKED))
      ).filter((e) => item.sources.some((s) => s.type === e.sourceType && s.id === e.sourceId));
      const attempt = item.remediation_attempt;
      const ended = [...new Set([...endedByReview.map((e) => `${e.sourceType}:${e.sourceId}`), ...(attempt?.ended ?? [])])];
      const verifiedAt = clock.now().toISOString();
      if (ended.length === 0 && !attempt?.removedFromTarget) return { result: 'already_absent', detail: { verifiedAt } };
      return { result: 'applied_verified', detail: { ended, verifiedAt } };
    }

    const grants = open.filter((e) => e.sourceType === 'grant');
    const removable = open.filter((e) => e.sourceType === 'manual' || e.sourceType === 'template');
    const rules = open.filter((e) => e.sourceType === 'birthright').map((e) => e.sourceId);
    const unrecorded = open.length === 0 && present;
    if (firstLook && (grants.length > 0 || unrecorded)) {
      // Committed before the revoke or the removal: a retry after they landed knows them for its own.
      const attempt = { at: clock.now().toISOString(), ended: grants.map((e) => `grant:${e.sourceId}`), removedFromTarget: unrecorded };
      await inScope(pool, tenantScope(tenantId), (client) => setRemediationAttempt(client, tenantId, item.id, attempt));
    }
    for (const grant of grants) {
      if (!temporal)
        throw ApplicationFailure.nonRetryable('no Temporal client was given to the campaign activities', 'CampaignMisconfigured');
      try {
        await temporal.workflow.getHandle(grantWorkflowId(tenantId, grant.sourceId)).executeUpdate(revokeGrantUpdate, {
          args: [
            {
              actorId: CAMPAIGN_ACTOR.id,
              comment: 'revoked by access review',
              authority: { campaignRunId: item.run_id, reviewItemId: item.id, reviewWorkflowId: workflowId },
            },
          ],
        });
      } catch (error) {
        // Already ending or over: what counts is that its entitlement closes, read back below.
        if (!(error instanceof WorkflowUpdateFailedError || error instanceof WorkflowNotFoundError)) throw error;
      }
    }
    let lastEnd: Awaited<ReturnType<typeof ledger.endAccess>> | undefined;
    for (const e of removable) {
      lastEnd = await ledger.endAccess({
        tenantId,
        subjectId,
        role,
        sourceType: e.sourceType,
        sourceId: e.sourceId,
        reason: REVIEW_REVOKED,
      });
    }
    const ended = [...grants, ...removable].map((e) => `${e.sourceType}:${e.sourceId}`);
    // Only manual or template sources, the last one's end leaving nothing open and the target read
    // back without the role under the ledger's lock, in the same transaction: proven already.
    if (
      grants.length === 0 &&
      rules.length === 0 &&
      lastEnd &&
      lastEnd.remainingOpen === 0 &&
      lastEnd.verification.gone &&
      !lastEnd.verification.presentOnTarget
    )
      return { result: 'applied_verified', detail: { ended, verifiedAt: clock.now().toISOString() } };
    if (unrecorded) {
      // Held on the target with nothing recorded to explain it: removed under the ledger's lock.
      await inScope(pool, tenantScope(tenantId), async (client) => {
        await lockSubjectRole(client, tenantId, subjectId, role);
        if ((await openEntitlements(client, tenantId, subjectId, role)).length === 0)
          await directoryCall(() => directory.removeRole(tenantId, subjectId, role));
      });
    }

    // Read back: ledger and target under the lock.
    const after = await inScope(pool, tenantScope(tenantId), async (client) => {
      await lockSubjectRole(client, tenantId, subjectId, role);
      const still = await openEntitlements(client, tenantId, subjectId, role);
      return { still, present: await directoryCall(() => directory.hasRole(tenantId, subjectId, role)) };
    });
    const otherThanRules = after.still.filter((e) => e.sourceType !== 'birthright');
    if (otherThanRules.length > 0)
      return { result: 'retrying', detail: { waitingFor: otherThanRules.map((e) => `${e.sourceType}:${e.sourceId}`), ended } };
    if (rules.length > 0 || after.still.length > 0) {
      const stillRules = after.still.map((e) => e.sourceId);
      return {
        result: 'needs_rule_change',
        detail: { rules: stillRules.length ? stillRules : rules, ended, presentOnTarget: after.present },
      };
    }
    if (after.present) return { result: 'retrying', detail: { waitingFor: ['target'], ended } };
    return { result: 'applied_verified', detail: { ended, verifiedAt: clock.now().toISOString() } };
  }
}

export type CampaignActivities = ReturnType<typeof createCampaignActivities>;
