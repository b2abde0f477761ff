import { randomUUID } from 'node:crypto';
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowIdConflictPolicy,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import { scheduleRuns, taskQueueName } from '../core/temporal.js';
import { MSP_CHAIN } from '../core/audit/chain.js';
import type { ActionContext } from '../core/audit/context.js';
import {
  CAMPAIGN_RUN_WORKFLOW_TYPE,
  CAMPAIGNS_TASK_QUEUE,
  campaignRunSearchAttributes,
  campaignRunWorkflowId,
  campaignRunInput,
  campaignScheduleId,
  SCHEDULED_CAMPAIGN_RUN_WORKFLOW_TYPE,
  cancelCampaignRunUpdate,
  cancelReviewUpdate,
  CampaignRunRejection,
  moveReviewDeadlineUpdate,
  nudgeReviewUpdate,
  reassignReviewUpdate,
  reviewDecisionsSignal,
  ReviewRejection,
  tenantReviewWorkflowId,
  type ReviewDecision,
} from '../core/campaigns/contract.js';
import type {
  BulkDecisionBody,
  CampaignDefinitionDocument,
  CampaignRunView,
  CampaignVersionView,
  CampaignView,
  DecisionResultView,
  ReviewItemsQuery,
  ReviewItemView,
  ReviewNoticeView,
  ReviewView,
  ScheduleView,
} from '../core/campaigns/schemas.js';
import { badRequest, conflict, forbidden, notFound } from '../core/errors.js';
import { flowOf } from '../core/campaigns/review.js';
import type { Binding, Principal } from '../core/tenancy/authz.js';
import { appendActionEvent } from '../db/audit.js';
import {
  allocateRun,
  definitionVersionRow,
  getDefinitionRow,
  actorDisplayNames,
  getReport,
  getReviewRow,
  getRunRow,
  inboxNotices,
  insertDefinition,
  insertDefinitionVersion,
  itemsForDecision,
  lockReviewerDecisions,
  unfinishedRunRows,
  listDefinitionRows,
  listDefinitionVersionRows,
  markDefinitionDeleted,
  listItemRows,
  listReviewRows,
  listRunRows,
  reportRecordedEvent,
  reviewCounts,
  reviewerCandidates,
  setDefinitionVersion,
  upsertDecisions,
  type DefinitionRow,
  type DefinitionVersionRow,
  type ItemRow,
  type NoticeRow,
  type ReviewRow,
  type RunRow,
} from '../db/campaigns.js';
import type { Pool, PoolClient } from '../db/pool.js';
import { inScope, mspScope, tenantScope } from '../db/scope.js';
import type { campaignRunWorkflow } from '../workflows/campaigns/run.js';
import { updateRefusal } from './update-refusal.js';
import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import { REPORT_CSV_HEADER, reportCsvRecord, reportStatus, type ReviewReport } from '../core/campaigns/report.js';
import { neutraliseCsvCell } from '../core/text.js';
import { reportHtml } from '../core/campaigns/report-html.js';
import { getTenantRow } from '../db/tenancy.js';

export interface CampaignDeps {
  pool: Pool;
  temporal: Client;
  /** TEMPORAL_TASK_QUEUE_PREFIX: a Schedule's action names its queue itself (no client interceptor applies). */
  taskQueuePrefix: string;
}

// ---------------------------------------------------------------- views

function definitionView(row: DefinitionRow): CampaignView {
  return {
    id: row.id,
    name: row.name,
    version: row.current_version,
    definition: row.document,
    lastRunNo: row.last_run_no,
    createdAt: row.created_at.toISOString(),
    createdBy: row.created_by,
    updatedAt: row.updated_at.toISOString(),
  };
}

function versionView(row: DefinitionVersionRow): CampaignVersionView {
  return {
    definitionId: row.definition_id,
    version: row.version,
    definition: row.document,
    createdAt: row.created_at.toISOString(),
    createdBy: row.created_by,
  };
}

function runView(row: RunRow): CampaignRunView {
  return {
    runId: row.id,
    definitionId: row.definition_id,
    runNo: row.run_no,
    definitionVersion: row.definition_version,
    workflowId: row.workflow_id,
    status: row.status,
    trigger: row.trigger,
    startedBy: row.started_by,
    tenantCount: row.tenant_count,
    materialisedCount: row.materialised_count,
    completedCount: row.completed_count,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

async function reviewView(client: PoolClient, row: ReviewRow): Promise<ReviewView> {
  return {
    tenantId: row.tenant_id,
    runId: row.run_id,
    definitionId: row.definition_id,
    workflowId: row.workflow_id,
    status: row.status,
    stage: row.stage,
    stageCount: row.stage_count,
    stageClosesAt: row.stage_closes_at?.toISOString() ?? null,
    round: row.round,
    itemCount: row.item_count,
    ...(await reviewCounts(client, row.tenant_id, row.run_id)),
    createdAt: row.created_at.toISOString(),
    completedAt: row.completed_at?.toISOString() ?? null,
  };
}

function itemView(row: ItemRow & { my_decision: ReviewDecision | null }): ReviewItemView {
  return {
    itemId: row.id,
    tenantId: row.tenant_id,
    runId: row.run_id,
    subjectId: row.subject_id,
    subjectStatus: row.subject_status,
    role: row.role,
    privileged: row.privileged,
    sources: row.sources,
    lastActivityAt: row.last_activity_at?.toISOString() ?? null,
    breakGlass: row.break_glass,
    serviceAccount: row.service_account,
    recommendation: row.recommendation,
    recommendationReason: row.recommendation_reason,
    stage: row.stage,
    myDecision: row.my_decision,
    outcome: row.outcome,
    outcomeBy: row.outcome_by,
    outcomeReason: row.outcome_reason,
    result: row.result,
    resultDetail: row.result_detail,
    resultAt: row.result_at?.toISOString() ?? null,
  };
}

function noticeView(row: NoticeRow): ReviewNoticeView {
  return {
    noticeId: row.id,
    runId: row.run_id,
    stage: row.stage,
    kind: row.kind,
    items: row.items,
    closesAt: row.closes_at?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
  };
}

// ---------------------------------------------------------------- definitions (MSP)

export async function createCampaign(
  deps: CampaignDeps,
  ctx: ActionContext,
  body: { name: string; definition: CampaignDefinitionDocument },
): Promise<CampaignView> {
  const view = await inScope(deps.pool, mspScope, async (client) => {
    const id = randomUUID();
    await insertDefinition(client, { id, name: body.name, document: body.definition, createdBy: ctx.actor.id });
    await appendActionEvent(client, ctx, {
      tenantId: MSP_CHAIN,
      action: 'campaign.created',
      target: { type: 'campaign', id },
      payload: { name: body.name, version: 1, definition: body.definition },
    });
    return definitionView((await getDefinitionRow(client, id))!);
  });
  await syncSchedule(deps, view.id, view.definition.schedule);
  return view;
}

/** A new version; `expectedVersion` must be the current one (409 otherwise). */
export async function updateCampaign(
  deps: CampaignDeps,
  ctx: ActionContext,
  id: string,
  body: { expectedVersion: number; name?: string; definition: CampaignDefinitionDocument },
): Promise<CampaignView> {
  const view = await inScope(deps.pool, mspScope, async (client) => {
    const current = await getDefinitionRow(client, id, true);
    if (!current) throw notFound('campaign');
    if (current.current_version !== body.expectedVersion)
      throw conflict(`The campaign is at version ${current.current_version}, not ${body.expectedVersion}; read it again and retry.`);
    const version = current.current_version + 1;
    await insertDefinitionVersion(client, { definitionId: id, version, document: body.definition, createdBy: ctx.actor.id });
    await setDefinitionVersion(client, id, version, body.name);
    await appendActionEvent(client, ctx, {
      tenantId: MSP_CHAIN,
      action: 'campaign.version_created',
      target: { type: 'campaign', id },
      payload: {
        before: { version: current.current_version, name: current.name, definition: current.document },
        after: { version, name: body.name ?? current.name, definition: body.definition },
      },
    });
    return definitionView((await getDefinitionRow(client, id))!);
  });
  await syncSchedule(deps, id, view.definition.schedule);
  return view;
}

/**
 * Deletes a definition once no run of it is going (409 otherwise: cancel it first). It leaves the
 * list, takes no new version or run, and its Schedule is deleted; its versions, runs, reviews and
 * reports stay (they are evidence). One `campaign.deleted` event on the MSP chain.
 */
export async function deleteCampaign(deps: CampaignDeps, ctx: ActionContext, id: string): Promise<void> {
  await inScope(deps.pool, mspScope, async (client) => {
    const current = await getDefinitionRow(client, id, true);
    if (!current) throw notFound('campaign');
    const going = await unfinishedRunRows(client, id);
    if (going.length > 0)
      throw conflict(
        `Run ${going.map((r) => r.run_no).join(', ')} of this campaign is still going; cancel it or let it finish, then delete the campaign.`,
      );
    await markDefinitionDeleted(client, id, ctx.actor.id);
    await appendActionEvent(client, ctx, {
      tenantId: MSP_CHAIN,
      action: 'campaign.deleted',
      target: { type: 'campaign', id },
      payload: { name: current.name, version: current.current_version },
    });
  });
  // After the commit, as for a version: should this fail, the Schedule's next start finds no campaign and starts nothing.
  await syncSchedule(deps, id, null);
}

// ---------------------------------------------------------------- schedules (MSP)

/**
 * Makes the definition's Temporal Schedule match its recurrence: created, updated, or deleted
 * when there is none. After the version commits: a failure here is reported (503/500) and the
 * next version write brings the Schedule in line again.
 */
async function syncSchedule(deps: CampaignDeps, definitionId: string, schedule: CampaignDefinitionDocument['schedule']): Promise<void> {
  const scheduleId = campaignScheduleId(definitionId);
  const handle = deps.temporal.schedule.getHandle(scheduleId);
  if (!schedule) {
    await handle.delete().catch((error: unknown) => {
      if (!(error instanceof ScheduleNotFoundError)) throw error;
    });
    return;
  }
  const options = {
    spec: scheduleSpec(schedule),
    action: {
      type: 'startWorkflow' as const,
      workflowType: SCHEDULED_CAMPAIGN_RUN_WORKFLOW_TYPE,
      workflowId: scheduleId,
      taskQueue: taskQueueName(deps.taskQueuePrefix, CAMPAIGNS_TASK_QUEUE),
      args: [{ definitionId, scheduleId }],
      typedSearchAttributes: campaignRunSearchAttributes(),
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
    state: { paused: schedule.paused, ...(schedule.paused ? { note: 'paused by the campaign definition' } : {}) },
  };
  try {
    await deps.temporal.schedule.create({ scheduleId, ...options });
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
    await handle.update((previous) => ({ ...previous, ...options, state: { ...previous.state, ...options.state } }));
  }
}

/**
 * The Schedule's spec from a recurrence: an interval (Temporal keeps whole seconds), or a cron
 * expression read in its time zone (UTC when none is given), daylight-saving changes included.
 */
function scheduleSpec(schedule: NonNullable<CampaignDefinitionDocument['schedule']>) {
  if (schedule.cron !== undefined) return { cronExpressions: [schedule.cron], timezone: schedule.timezone ?? 'UTC' };
  return { intervals: [{ every: Math.max(1, Math.round(schedule.intervalMinutes! * 60)) * 1000 }] };
}

export async function getCampaignSchedule(deps: CampaignDeps, definitionId: string): Promise<ScheduleView> {
  const { definition } = await getCampaign(deps.pool, definitionId);
  const scheduleId = campaignScheduleId(definitionId);
  try {
    const description = await deps.temporal.schedule.getHandle(scheduleId).describe();
    // As the definition states it: the server turns a cron expression into calendars of its own.
    const recurrence = definition.schedule;
    return {
      scheduleId,
      intervalMinutes: recurrence?.intervalMinutes ?? null,
      cron: recurrence?.cron ?? null,
      timezone: recurrence?.cron !== undefined ? (recurrence.timezone ?? 'UTC') : null,
      ...scheduleRuns(description),
    };
  } catch (error) {
    if (error instanceof ScheduleNotFoundError) throw notFound('schedule');
    throw error;
  }
}

/** Pause, unpause or trigger the definition's Schedule now; audited on the MSP chain. */
export async function controlCampaignSchedule(
  deps: CampaignDeps,
  ctx: ActionContext,
  definitionId: string,
  action: 'pause' | 'unpause' | 'trigger',
  note?: string,
): Promise<ScheduleView> {
  const campaign = await getCampaign(deps.pool, definitionId); // 404 when there is no such campaign
  if (!campaign.definition.schedule) {
    throw conflict(
      `Campaign ${definitionId} has no recurrence, so it has no Schedule to ${action}: give its definition a schedule first` +
        (action === 'trigger' ? ', or start a run now with POST /v1/campaigns/{definitionId}/runs.' : '.'),
    );
  }
  await getCampaignSchedule(deps, definitionId);
  const handle = deps.temporal.schedule.getHandle(campaignScheduleId(definitionId));
  if (action === 'pause') await handle.pause(note ?? `paused by ${ctx.actor.id}`);
  else if (action === 'unpause') await handle.unpause(note ?? `unpaused by ${ctx.actor.id}`);
  // An explicit start is never lost: it waits for a run still going rather than being skipped.
  else await handle.trigger(ScheduleOverlapPolicy.BUFFER_ONE);
  await inScope(deps.pool, mspScope, (client) =>
    appendActionEvent(client, ctx, {
      tenantId: MSP_CHAIN,
      action: `campaign.schedule_${action === 'trigger' ? 'triggered' : `${action}d`}`,
      target: { type: 'campaign', id: definitionId },
      payload: { scheduleId: campaignScheduleId(definitionId), ...(note ? { note } : {}) },
    }),
  );
  return getCampaignSchedule(deps, definitionId);
}

export async function getCampaign(pool: Pool, id: string): Promise<CampaignView> {
  return inScope(pool, mspScope, async (client) => {
    const row = await getDefinitionRow(client, id);
    if (!row) throw notFound('campaign');
    return definitionView(row);
  });
}

export async function listCampaigns(pool: Pool): Promise<CampaignView[]> {
  return inScope(pool, mspScope, async (client) => (await listDefinitionRows(client)).map(definitionView));
}

export async function listCampaignVersions(pool: Pool, id: string): Promise<CampaignVersionView[]> {
  return inScope(pool, mspScope, async (client) => {
    const rows = await listDefinitionVersionRows(client, id);
    if (rows.length === 0) throw notFound('campaign');
    return rows.map(versionView);
  });
}

export async function getCampaignVersion(pool: Pool, id: string, version: number): Promise<CampaignVersionView> {
  return inScope(pool, mspScope, async (client) => {
    const row = await definitionVersionRow(client, id, version);
    if (!row) throw notFound('campaign version');
    return versionView(row);
  });
}

// ---------------------------------------------------------------- runs (MSP)

/**
 * Starts a run of the definition's current version now: the run row and its number commit
 * first (audited), then `campaign/<definitionId>/<runNo>` starts on the campaigns queue.
 */
export async function startCampaignRun(
  deps: CampaignDeps,
  ctx: ActionContext,
  definitionId: string,
  trigger: 'api' | 'schedule' = 'api',
): Promise<CampaignRunView> {
  const { run, document } = await inScope(deps.pool, mspScope, async (client) => {
    const allocated = await allocateRun(client, ctx, {
      id: randomUUID(),
      definitionId,
      trigger,
      workflowIdOf: (runNo) => campaignRunWorkflowId(definitionId, runNo),
    });
    if (!allocated) throw notFound('campaign');
    return allocated;
  });
  await deps.temporal.workflow.start<typeof campaignRunWorkflow>(CAMPAIGN_RUN_WORKFLOW_TYPE, {
    taskQueue: CAMPAIGNS_TASK_QUEUE,
    workflowId: run.workflow_id,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    args: [campaignRunInput(run, document)],
    typedSearchAttributes: campaignRunSearchAttributes(),
  });
  return runView(run);
}

export async function listCampaignRuns(pool: Pool, definitionId: string): Promise<CampaignRunView[]> {
  return inScope(pool, mspScope, async (client) => {
    if (!(await getDefinitionRow(client, definitionId))) throw notFound('campaign');
    return (await listRunRows(client, definitionId)).map(runView);
  });
}

/** A run with each tenant's review and its counts (progress, never the items). */
export async function getCampaignRun(pool: Pool, runId: string): Promise<CampaignRunView & { reviews: ReviewView[] }> {
  return inScope(pool, mspScope, async (client) => {
    const run = await getRunRow(client, runId);
    if (!run) throw notFound('campaign run');
    const reviews: ReviewView[] = [];
    for (const row of await listReviewRows(client, { runId })) reviews.push(await reviewView(client, row));
    return { ...runView(run), reviews };
  });
}

// ---------------------------------------------------------------- one tenant's reviews

export async function listReviews(pool: Pool, tenantId: string): Promise<ReviewView[]> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const out: ReviewView[] = [];
    for (const row of await listReviewRows(client, { tenantId })) out.push(await reviewView(client, row));
    return out;
  });
}

export async function listReviewItems(
  pool: Pool,
  principal: Principal,
  tenantId: string,
  query: ReviewItemsQuery,
): Promise<{ items: ReviewItemView[]; nextCursor: string | null; notices?: ReviewNoticeView[] }> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const rows = await listItemRows(client, tenantId, {
      viewer: principal.actorId,
      ...(query.assignedTo === 'me' ? { assignedTo: principal.actorId } : {}),
      ...(query.runId ? { runId: query.runId } : {}),
      ...(query.role ? { role: query.role } : {}),
      ...(query.subjectId ? { subjectId: query.subjectId } : {}),
      ...(query.recommendation ? { recommendation: query.recommendation } : {}),
      ...(query.decided ? { decided: query.decided === 'true' } : {}),
      ...(query.cursor ? { afterId: query.cursor } : {}),
      limit: query.limit + 1,
    });
    const page = rows.slice(0, query.limit);
    const nextCursor = rows.length > query.limit ? page.at(-1)!.id : null;
    if (query.assignedTo !== 'me') return { items: page.map(itemView), nextCursor };
    // The inbox also shows the reviewer's notices (reminders, escalations, reassignments, nudges) of reviews still open.
    const notices = (await inboxNotices(client, tenantId, principal.actorId, query.runId ?? null)).map(noticeView);
    return { items: page.map(itemView), nextCursor, notices };
  });
}

/**
 * The bindings through which the caller decides in this tenant: tenant_reviewer or
 * tenant_approver bound in the tenant itself, never MSP staff (whatever their bindings).
 */
export function deciderBindings(principal: Principal, tenantId: string): Binding[] {
  if (principal.kind === 'msp_staff') throw forbidden('MSP staff run campaigns; only the tenant’s own reviewers decide its items.');
  const bindings = principal.bindings.filter(
    (b) => b.tenantId === tenantId && (b.role === 'tenant_reviewer' || b.role === 'tenant_approver'),
  );
  if (bindings.length === 0) throw forbidden('Only a tenant_reviewer or tenant_approver of this tenant decides its review items.');
  return bindings;
}

/**
 * Records the caller's decisions, all or none: each item must be waiting at its current stage
 * for this caller, in a review whose stage is open. A decision may change until the stage closes
 * (the last one wins); one already recorded exactly so changes nothing, so a retried call is
 * harmless. One audit event per review touched lists every change with what it replaced.
 */
export async function decideItems(
  deps: Pick<CampaignDeps, 'pool' | 'temporal'>,
  principal: Principal,
  ctx: ActionContext,
  tenantId: string,
  body: BulkDecisionBody,
  /** One item named in the path: an unknown one is 404 rather than a field to fix. */
  single = false,
): Promise<DecisionResultView> {
  const ids = body.decisions.map((d) => d.itemId);
  const onDecision: string[] = [];
  const result = await inScope(deps.pool, tenantScope(tenantId), async (client) => {
    await lockReviewerDecisions(client, tenantId, principal.actorId);
    const existing = await itemsForDecision(client, tenantId, ids, principal.actorId);
    if (single && existing.length === 0) throw notFound('review item');
    const known = new Set(existing.map((i) => i.id));
    const issues = body.decisions.flatMap((d, i) =>
      known.has(d.itemId) ? [] : [{ path: `body.decisions.${i}.itemId`, message: 'no such review item in this tenant' }],
    );
    if (issues.length) throw badRequest('Some items do not exist in this tenant.', issues);
    // Share-lock each review: its stage cannot close, escalate, be reassigned or settle revocations until these
    // decisions commit. Then read the items again: what the first read saw may have changed before the locks.
    const runs = [...new Set(existing.map((i) => i.run_id))].sort();
    const reviews = new Map<string, Awaited<ReturnType<typeof getReviewRow>>>();
    for (const runId of runs) reviews.set(runId, await getReviewRow(client, tenantId, runId, 'share'));
    const found = new Map((await itemsForDecision(client, tenantId, ids, principal.actorId)).map((i) => [i.id, i]));
    const notMine = body.decisions.filter((d) => !found.get(d.itemId)!.assigned);
    if (notMine.length)
      throw forbidden(
        `Not assigned to you at its current stage: ${notMine
          .slice(0, 10)
          .map((d) => d.itemId)
          .join(', ')}.`,
      );
    for (const runId of runs) {
      const review = reviews.get(runId);
      const stale = [...found.values()].filter(
        (i) => i.run_id === runId && (i.outcome !== null || review?.status !== 'open' || review.stage !== i.stage),
      );
      if (stale.length)
        throw conflict(
          stale[0]!.outcome !== null && review?.status === 'open'
            ? `${stale[0]!.id} is settled already (its revocation is applied on decision); it can no longer change.`
            : `The stage deciding ${stale[0]!.id} has closed; decisions are no longer taken for it.`,
        );
      if (flowOf(review!.settings).remediation === 'on_decision') onDecision.push(runId);
    }
    const writes = body.decisions.map((d) => {
      const item = found.get(d.itemId)!;
      return {
        item_id: d.itemId,
        stage: item.stage,
        decision: d.decision === 'recommended' ? item.recommendation : d.decision,
        justification: body.justification ?? null,
      };
    });
    const changed = new Map((await upsertDecisions(client, tenantId, principal.actorId, writes)).map((c) => [c.item_id, c.previous]));
    for (const runId of runs) {
      const inRun = writes.filter((w) => found.get(w.item_id)!.run_id === runId && changed.has(w.item_id));
      if (inRun.length === 0) continue;
      await appendActionEvent(client, ctx, {
        tenantId,
        action: 'review.decisions_recorded',
        target: { type: 'review', id: runId },
        payload: {
          decisions: inRun.map((w) => ({
            itemId: w.item_id,
            stage: w.stage,
            decision: w.decision,
            previous: changed.get(w.item_id) ?? null,
            justification: w.justification,
          })),
        },
      });
    }
    return {
      recorded: changed.size,
      unchanged: writes.length - changed.size,
      items: writes.map((w) => ({ itemId: w.item_id, decision: w.decision, changed: changed.has(w.item_id) })),
    };
  });
  // Remediating on decision: the review settles and applies revocations now (a retried call signals again, harmlessly).
  for (const runId of onDecision) {
    await deps.temporal.workflow
      .getHandle(tenantReviewWorkflowId(tenantId, runId))
      .signal(reviewDecisionsSignal)
      .catch((error: unknown) => {
        // Finished meanwhile: its close settled everything.
        if (!(error instanceof WorkflowNotFoundError)) throw error;
      });
  }
  return result;
}

/** Moves the open stage's deadline (a time already past closes it now), through the review's workflow. */
export async function moveReviewDeadline(
  deps: CampaignDeps,
  tenantId: string,
  runId: string,
  args: {
    actorId: string;
    closesAt: string;
    authority: Record<string, unknown>;
  },
): Promise<ReviewView> {
  // Who may bring a deadline forward while items wait (the tenant's approvers only) is decided
  // where the deadline is written, so a call straight to Temporal meets the same rule: the
  // moveReviewDeadline activity. Its refusal comes back as a 409.
  await askReview(
    deps,
    tenantId,
    runId,
    (handle) =>
      handle.executeUpdate(moveReviewDeadlineUpdate, {
        args: [{ actorId: args.actorId, closesAt: args.closesAt, authority: args.authority }],
      }),
    { [ReviewRejection.InvalidInput]: (message) => badRequest(message, [{ path: 'body.closesAt', message }]) },
  );
  return inScope(deps.pool, tenantScope(tenantId), async (client) => reviewView(client, (await getReviewRow(client, tenantId, runId))!));
}

/** A finished review's report as stored (completed or cancelled; its hash is in the tenant's chain), or 404. */
export async function getReviewReport(pool: Pool, tenantId: string, runId: string): Promise<{ report: ReviewReport; hash: string }> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const found = await getReport(client, tenantId, runId);
    if (!found) throw notFound('review report');
    return found as { report: ReviewReport; hash: string };
  });
}

/** Records as CSV with a header row, formula-like cells neutralised. */
export function recordsCsv(records: readonly Record<string, string | null>[], columns: readonly string[]): Readable {
  return Readable.from(
    records.map((record) => Object.fromEntries(Object.entries(record).map(([column, value]) => [column, neutraliseCsvCell(value)]))),
  ).pipe(stringify({ header: true, columns: [...columns] }));
}

/** The report's items as CSV (header row; nested values as JSON; formula-like cells neutralised). */
export function reviewReportCsv(report: ReviewReport): Readable {
  return recordsCsv(
    report.items.map((item) => reportCsvRecord(item, reportStatus(report))),
    REPORT_CSV_HEADER,
  );
}

/**
 * The report as a printable HTML page: the stored report with its hash, the tenant's name, the
 * chain event that carries the hash, and the reviewers' names. Reads only; the same 404 as JSON.
 */
export async function reviewReportPage(pool: Pool, tenantId: string, runId: string): Promise<{ html: string; hash: string }> {
  const { report, hash } = await getReviewReport(pool, tenantId, runId);
  const { tenantName, recorded } = await inScope(pool, tenantScope(tenantId), async (client) => ({
    tenantName: (await getTenantRow(client, tenantId))?.name ?? tenantId,
    recorded: await reportRecordedEvent(client, tenantId, runId),
  }));
  const reviewerNames = await inScope(pool, mspScope, (client) =>
    actorDisplayNames(client, [
      ...new Set([...report.reviewers.map((r) => r.reviewerId), ...(report.cancellation ? [report.cancellation.cancelledBy] : [])]),
    ]),
  );
  const html = reportHtml(report, {
    tenantName,
    hash,
    recorded:
      recorded && recorded.report_hash === hash
        ? { seq: recorded.seq, at: recorded.occurred_at.toISOString(), eventHash: recorded.hash }
        : null,
    reviewerNames,
  });
  return { html, hash };
}

// ---------------------------------------------------------------- MSP staff run the flow

/**
 * Cancels a run: no further review starts, and each review not yet settled stops (decisions
 * already recorded are settled, settled revocations applied, nothing else changes). Answers once
 * the run has recorded the cancellation; its reviews follow within moments (see their status).
 */
export async function cancelCampaignRun(
  deps: CampaignDeps,
  runId: string,
  args: { actorId: string; authority: Record<string, unknown>; reason?: string },
): Promise<CampaignRunView & { reviews: ReviewView[] }> {
  const run = await inScope(deps.pool, mspScope, (client) => getRunRow(client, runId));
  if (!run) throw notFound('campaign run');
  if (run.status === 'completed' || run.status === 'cancelled') throw conflict(`The run is ${run.status}; there is nothing to cancel.`);
  try {
    await deps.temporal.workflow.getHandle(run.workflow_id).executeUpdate(cancelCampaignRunUpdate, {
      args: [{ actorId: args.actorId, authority: args.authority, ...(args.reason ? { comment: args.reason } : {}) }],
    });
  } catch (error) {
    const refusal = updateRefusal(error, {
      [CampaignRunRejection.NotCancellable]: (message) => conflict(message),
    });
    if (refusal) throw refusal;
    if (error instanceof WorkflowNotFoundError) throw conflict('The run has finished; there is nothing to cancel.');
    throw error;
  }
  return getCampaignRun(deps.pool, runId);
}

/** The review's workflow answers an MSP staff request, or a refusal as the caller's error. */
async function askReview<T>(
  deps: CampaignDeps,
  tenantId: string,
  runId: string,
  ask: (handle: ReturnType<Client['workflow']['getHandle']>) => Promise<T>,
  byType: Parameters<typeof updateRefusal>[1] = {},
): Promise<T> {
  const review = await inScope(deps.pool, tenantScope(tenantId), (client) => getReviewRow(client, tenantId, runId));
  if (!review) throw notFound('review');
  try {
    return await ask(deps.temporal.workflow.getHandle(tenantReviewWorkflowId(tenantId, runId)));
  } catch (error) {
    const refusal = updateRefusal(error, byType);
    if (refusal) throw refusal;
    if (error instanceof WorkflowNotFoundError) throw conflict('The review has finished; no stage is open.');
    throw error;
  }
}

/**
 * MSP staff move a reviewer's undecided items at the open stage to another member of the
 * tenant's own staff who holds tenant_reviewer or tenant_approver there. MSP staff are never a
 * target (they never decide). Items the reviewer decided already stay with their decision.
 */
export async function reassignReviewItems(
  deps: CampaignDeps,
  tenantId: string,
  runId: string,
  args: { actorId: string; authority: Record<string, unknown>; from: string; to: string; itemIds?: string[]; comment?: string },
): Promise<{ moved: number; skipped: { itemId: string; reason: string }[] }> {
  if (!(await inScope(deps.pool, tenantScope(tenantId), (client) => getReviewRow(client, tenantId, runId)))) throw notFound('review');
  const staff = await inScope(deps.pool, mspScope, (client) => reviewerCandidates(client, tenantId));
  const notStaff = 'not a member of this tenant’s own staff holding tenant_reviewer or tenant_approver here';
  if (!staff.some((c) => c.id === args.to))
    throw badRequest('The new reviewer must be one of the tenant’s own reviewers or approvers.', [{ path: 'body.to', message: notStaff }]);
  return askReview(
    deps,
    tenantId,
    runId,
    (handle) =>
      handle.executeUpdate(reassignReviewUpdate, {
        args: [
          {
            actorId: args.actorId,
            authority: args.authority,
            fromReviewerId: args.from,
            toReviewerId: args.to,
            ...(args.itemIds ? { itemIds: args.itemIds } : {}),
            ...(args.comment ? { comment: args.comment } : {}),
          },
        ],
      }),
    { [ReviewRejection.NotTenantReviewer]: (message) => badRequest(message, [{ path: 'body.to', message: notStaff }]) },
  );
}

/**
 * Cancels one tenant's review of a run (the others go on): as a run's cancellation does to each
 * of its reviews. The run finishes once its other reviews have.
 */
export async function cancelReview(
  deps: CampaignDeps,
  tenantId: string,
  runId: string,
  args: { actorId: string; authority: Record<string, unknown>; reason?: string },
): Promise<ReviewView> {
  await askReview(
    deps,
    tenantId,
    runId,
    (handle) =>
      handle.executeUpdate(cancelReviewUpdate, {
        args: [{ actorId: args.actorId, authority: args.authority, ...(args.reason ? { comment: args.reason } : {}) }],
      }),
    {},
  );
  return inScope(deps.pool, tenantScope(tenantId), async (client) => reviewView(client, (await getReviewRow(client, tenantId, runId))!));
}

/** Reminds the reviewers still owing decisions at the open stage now (or only `reviewerIds`). */
export async function nudgeReviewers(
  deps: CampaignDeps,
  tenantId: string,
  runId: string,
  args: { actorId: string; authority: Record<string, unknown>; reviewerIds?: string[]; comment?: string },
): Promise<{ notices: number }> {
  return askReview(deps, tenantId, runId, (handle) =>
    handle.executeUpdate(nudgeReviewUpdate, {
      args: [
        {
          actorId: args.actorId,
          authority: args.authority,
          ...(args.reviewerIds ? { reviewerIds: args.reviewerIds } : {}),
          ...(args.comment ? { comment: args.comment } : {}),
        },
      ],
    }),
  );
}
