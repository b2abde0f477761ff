import { randomUUID } from 'node:crypto';
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowIdConflictPolicy,
  type Client,
  type ScheduleOptions,
} from '@temporalio/client';
import type { ActionContext } from '../../core/audit/context.js';
import { MSP_CHAIN } from '../../core/audit/chain.js';
import { AppError, badRequest, conflict, notFound } from '../../core/errors.js';
import { scheduleRuns, taskQueueName } from '../../core/temporal.js';
import { TEMPLATES_TASK_QUEUE } from '../../core/templates/contract.js';
import {
  DRIFT_CHECK_WORKFLOW_TYPE,
  DRIFT_EXCEPTION_MAX_DAYS,
  DRIFT_SCAN_WORKFLOW_TYPE,
  DriftAction,
  driftCheckSearchAttributes,
  driftCheckWorkflowId,
  driftScanSearchAttributes,
  driftScheduleId,
  exceptionStatus,
  type DriftExceptionView,
  type DriftItemView,
  type DriftScanInput,
  type TenantDriftCheckResult,
  type TenantDriftView,
} from '../../core/templates/drift.js';
import { appendActionEvent } from '../../db/audit.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { getTenantRow } from '../../db/tenancy.js';
import { getAssignmentRow } from '../../db/templates.js';
import {
  approveDriftException,
  endDriftException,
  getDriftException,
  getDriftState,
  insertDriftException,
  listDriftExceptions,
  listDriftItems,
  type DriftExceptionRow,
  type DriftItemRow,
} from '../../db/templates/drift.js';
import type { templateDriftCheckWorkflow, templateDriftScanWorkflow } from '../../workflows/templates/drift.js';

/**
 * Drift as the API sees it: each tenant's items and exceptions (status computed at read time, so
 * an exception that ran out shows its item as drift at once), a check now, the exceptions' flow,
 * and the deployment's drift Schedule.
 */
export interface DriftDeps {
  pool: Pool;
  temporal: Client;
  /** TEMPORAL_TASK_QUEUE_PREFIX: the Schedule's id and its action's queue carry it. */
  taskQueuePrefix: string;
}

/** Resolved items shown beside the open ones. */
const RESOLVED_SHOWN = 50;
const iso = (d: Date | null) => (d ? d.toISOString() : null);

function exceptionView(row: DriftExceptionRow, now: Date): DriftExceptionView {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    path: row.path,
    owner: row.owner,
    justification: row.justification,
    expiresAt: row.expires_at.toISOString(),
    status: exceptionStatus({ approvedAt: row.approved_at, endedAt: row.ended_at, expiresAt: row.expires_at }, now),
    createdAt: row.created_at.toISOString(),
    createdBy: row.created_by,
    approvedAt: iso(row.approved_at),
    approvedBy: row.approved_by,
    endedAt: iso(row.ended_at),
    endedBy: row.ended_by,
  };
}

function itemView(row: DriftItemRow, active: Map<string, DriftExceptionView>): DriftItemView {
  const exception = row.resolved_at ? undefined : active.get(row.path);
  return {
    id: row.id,
    path: row.path,
    area: row.area,
    expected: row.expected,
    actual: row.actual,
    mode: row.mode,
    status: row.resolved_at ? 'resolved' : exception ? 'accepted' : 'open',
    templateId: row.template_id,
    version: row.version,
    firstSeenAt: row.first_seen_at.toISOString(),
    lastSeenAt: row.last_seen_at.toISOString(),
    resolvedAt: iso(row.resolved_at),
    resolution: row.resolution,
    alertedAt: iso(row.alerted_at),
    remediationError: row.resolved_at ? null : row.remediation_error,
    exceptionId: exception?.id ?? null,
  };
}

/** The tenant's drift now: items (open, accepted, recently resolved) and exceptions, statuses as of this read. */
export async function getTenantDrift(pool: Pool, tenantId: string): Promise<TenantDriftView> {
  const now = new Date();
  const pin = await inScope(pool, mspScope, async (client) => {
    if (!(await getTenantRow(client, tenantId))) throw notFound('tenant');
    return getAssignmentRow(client, tenantId);
  });
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const state = await getDriftState(client, tenantId);
    const exceptions = (await listDriftExceptions(client, tenantId)).map((row) => exceptionView(row, now));
    const active = new Map(exceptions.filter((e) => e.status === 'active').map((e) => [e.path, e]));
    const items = (await listDriftItems(client, tenantId, RESOLVED_SHOWN)).map((row) => itemView(row, active));
    const applied = pin?.applied_version ?? null;
    const checkedSinceApply =
      state?.checked_at &&
      pin?.applied_at &&
      state.checked_at >= pin.applied_at &&
      state.version === applied &&
      state.template_id === pin.template_id;
    const open = items.filter((i) => i.status === 'open').length;
    const accepted = items.filter((i) => i.status === 'accepted').length;
    return {
      tenantId,
      status: applied === null ? 'not_applied' : !checkedSinceApply ? 'unchecked' : open ? 'drifted' : accepted ? 'accepted' : 'in_sync',
      templateId: pin?.template_id ?? null,
      appliedVersion: applied,
      checkedAt: iso(state?.checked_at ?? null),
      checkError: state?.error ?? null,
      items,
      exceptions,
    };
  });
}

/** Checks the tenant now, through the worker (`template-drift/<tenantId>`; a check already running is joined), and answers its drift after. */
export async function checkTenantDrift(
  deps: DriftDeps,
  ctx: ActionContext,
  tenantId: string,
): Promise<TenantDriftView & { check: Omit<TenantDriftCheckResult, 'tenantId' | 'open'> }> {
  await getTenantDrift(deps.pool, tenantId); // 404 for a tenant that does not exist
  const result = await deps.temporal.workflow.execute<typeof templateDriftCheckWorkflow>(DRIFT_CHECK_WORKFLOW_TYPE, {
    taskQueue: TEMPLATES_TASK_QUEUE,
    workflowId: driftCheckWorkflowId(tenantId),
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    args: [{ tenantId, requestedBy: ctx.actor.id }],
    typedSearchAttributes: driftCheckSearchAttributes(tenantId),
  });
  const { outcome, reason, detected, resolved, remediated, alerted } = result;
  return { ...(await getTenantDrift(deps.pool, tenantId)), check: { outcome, reason, detected, resolved, remediated, alerted } };
}

// ---------------------------------------------------------------- exceptions

export async function listTenantDriftExceptions(pool: Pool, tenantId: string): Promise<DriftExceptionView[]> {
  return (await getTenantDrift(pool, tenantId)).exceptions;
}

/**
 * Asks to accept a deviation on one path until `expiresAt` (required, at most
 * DRIFT_EXCEPTION_MAX_DAYS ahead). It suppresses nothing until another of the tenant's own
 * approvers approves it.
 */
export async function createDriftException(
  pool: Pool,
  ctx: ActionContext,
  tenantId: string,
  input: { path: string; owner: string; justification: string; expiresAt: string },
): Promise<DriftExceptionView> {
  const now = new Date();
  const expiresAt = new Date(input.expiresAt);
  if (expiresAt.getTime() <= now.getTime()) {
    throw badRequest('An exception must end in the future.', [{ path: 'body.expiresAt', message: 'must be in the future' }]);
  }
  if (expiresAt.getTime() > now.getTime() + DRIFT_EXCEPTION_MAX_DAYS * 86_400_000) {
    throw badRequest(`An exception lasts at most ${DRIFT_EXCEPTION_MAX_DAYS} days.`, [
      { path: 'body.expiresAt', message: `at most ${DRIFT_EXCEPTION_MAX_DAYS} days from now` },
    ]);
  }
  await inScope(pool, mspScope, async (client) => {
    if (!(await getTenantRow(client, tenantId))) throw notFound('tenant');
  });
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const row = await insertDriftException(client, {
      id: randomUUID(),
      tenant_id: tenantId,
      path: input.path,
      owner: input.owner,
      justification: input.justification,
      expires_at: expiresAt,
      created_by: ctx.actor.id,
      at: now,
    });
    await appendActionEvent(client, ctx, {
      tenantId,
      action: DriftAction.ExceptionRequested,
      target: { type: 'template_drift_exception', id: row.id },
      payload: { path: row.path, owner: row.owner, justification: row.justification, expiresAt: row.expires_at.toISOString() },
    });
    return exceptionView(row, now);
  });
}

/** The exception, locked for a decision, with its status now; 404 when the tenant has no such exception. */
async function lockedException(client: PoolClient, tenantId: string, exceptionId: string, now: Date) {
  const row = await getDriftException(client, tenantId, exceptionId, true);
  if (!row) throw notFound('drift exception');
  return { row, status: exceptionStatus({ approvedAt: row.approved_at, endedAt: row.ended_at, expiresAt: row.expires_at }, now) };
}

/** The tenant's own approver (the route checks), never who asked for it; only a pending exception. */
export async function approveDriftExceptionFor(
  pool: Pool,
  ctx: ActionContext,
  tenantId: string,
  exceptionId: string,
  comment: string | null,
): Promise<DriftExceptionView> {
  const now = new Date();
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const { row, status } = await lockedException(client, tenantId, exceptionId, now);
    if (status !== 'pending') throw conflict(`The exception is ${status}; only a pending one is approved.`);
    if (row.created_by === ctx.actor.id) {
      throw new AppError(403, 'drift_exception_self_approval', 'Who asked for an exception cannot approve it.');
    }
    const approved = await approveDriftException(client, { tenantId, id: exceptionId, by: ctx.actor.id, at: now });
    if (!approved) throw conflict('The exception changed meanwhile; read it again.');
    await appendActionEvent(client, ctx, {
      tenantId,
      action: DriftAction.ExceptionApproved,
      target: { type: 'template_drift_exception', id: exceptionId },
      payload: { path: row.path, owner: row.owner, expiresAt: row.expires_at.toISOString(), requestedBy: row.created_by, comment },
    });
    return exceptionView(approved, now);
  });
}

/** Ends a pending or active exception now: its path is drift again at once. */
export async function expireDriftException(
  pool: Pool,
  ctx: ActionContext,
  tenantId: string,
  exceptionId: string,
  comment: string | null,
): Promise<DriftExceptionView> {
  const now = new Date();
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const { row, status: before } = await lockedException(client, tenantId, exceptionId, now);
    if (before === 'expired') throw conflict('The exception has already ended.');
    const ended = await endDriftException(client, { tenantId, id: exceptionId, by: ctx.actor.id, reason: comment, at: now });
    if (!ended) throw conflict('The exception changed meanwhile; read it again.');
    await appendActionEvent(client, ctx, {
      tenantId,
      action: DriftAction.ExceptionEnded,
      target: { type: 'template_drift_exception', id: exceptionId },
      payload: {
        path: row.path,
        before: { status: before },
        after: { status: 'expired' },
        expiresAt: row.expires_at.toISOString(),
        comment,
      },
    });
    return exceptionView(ended, now);
  });
}

// ---------------------------------------------------------------- the Schedule

export interface DriftScheduleView {
  scheduleId: string;
  intervalSeconds: number | null;
  paused: boolean;
  note: string | null;
  nextActionTimes: string[];
  recentActions: { scheduledAt: string; takenAt: string; workflowId: string }[];
}

function scheduleOptions(deps: Omit<DriftDeps, 'pool'>, intervalSeconds: number): ScheduleOptions {
  const scheduleId = driftScheduleId(deps.taskQueuePrefix);
  const args: [DriftScanInput] = [{}];
  return {
    scheduleId,
    spec: { intervals: [{ every: `${intervalSeconds}s` }] },
    action: {
      type: 'startWorkflow',
      workflowType: DRIFT_SCAN_WORKFLOW_TYPE,
      workflowId: scheduleId,
      taskQueue: taskQueueName(deps.taskQueuePrefix, TEMPLATES_TASK_QUEUE),
      args: args as Parameters<typeof templateDriftScanWorkflow>,
      typedSearchAttributes: driftScanSearchAttributes(),
    },
    // A scan still running when the next is due: the next is skipped, never doubled.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: `${Math.max(60, intervalSeconds)}s` },
    typedSearchAttributes: driftScanSearchAttributes(),
    state: { note: 'template drift checks: every tenant against the version applied to it' },
  };
}

/**
 * Makes the deployment's drift Schedule exist with the configured interval (TEMPLATE_DRIFT_INTERVAL_SECONDS),
 * keeping whether an operator paused it. Idempotent; run at start by the service.
 */
export async function syncDriftSchedule(deps: Omit<DriftDeps, 'pool'>, intervalSeconds: number): Promise<'created' | 'updated'> {
  const wanted = scheduleOptions(deps, intervalSeconds);
  try {
    await deps.temporal.schedule.create(wanted);
    return 'created';
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
  }
  await deps.temporal.schedule.getHandle(wanted.scheduleId).update((previous) => ({
    ...previous,
    spec: wanted.spec,
    action: wanted.action,
    policies: wanted.policies ?? {},
    state: { ...previous.state, note: previous.state.paused ? previous.state.note : wanted.state?.note },
  }));
  return 'updated';
}

export async function getDriftSchedule(deps: Omit<DriftDeps, 'pool'>): Promise<DriftScheduleView> {
  const scheduleId = driftScheduleId(deps.taskQueuePrefix);
  try {
    const description = await deps.temporal.schedule.getHandle(scheduleId).describe();
    const interval = description.spec.intervals?.[0]?.every;
    return {
      scheduleId,
      intervalSeconds: typeof interval === 'number' ? Math.round(interval / 1000) : null,
      ...scheduleRuns(description),
    };
  } catch (error) {
    if (error instanceof ScheduleNotFoundError) throw notFound('drift schedule');
    throw error;
  }
}

/** Pause, unpause, or trigger a scan now (waiting for one still running rather than skipped); audited on the MSP chain. */
export async function controlDriftSchedule(
  deps: DriftDeps,
  ctx: ActionContext,
  action: 'pause' | 'unpause' | 'trigger',
  note?: string,
): Promise<DriftScheduleView> {
  await getDriftSchedule(deps); // 404 when the service has not created it
  const handle = deps.temporal.schedule.getHandle(driftScheduleId(deps.taskQueuePrefix));
  if (action === 'pause') await handle.pause(note ?? `paused by ${ctx.actor.id}`);
  else if (action === 'unpause') await handle.unpause(note ?? `unpaused by ${ctx.actor.id}`);
  else await handle.trigger(ScheduleOverlapPolicy.BUFFER_ONE);
  await inScope(deps.pool, mspScope, (client) =>
    appendActionEvent(client, ctx, {
      tenantId: MSP_CHAIN,
      action: `template.drift.schedule_${action === 'trigger' ? 'triggered' : `${action}d`}`,
      target: { type: 'schedule', id: driftScheduleId(deps.taskQueuePrefix) },
      payload: { note: note ?? null },
    }),
  );
  return getDriftSchedule(deps);
}
