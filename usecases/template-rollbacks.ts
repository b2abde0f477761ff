import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import type { ActionContext } from '../core/audit/context.js';
import { AppError, conflict, notFound } from '../core/errors.js';
import { ROLLOUT_OPEN_STATUSES, RolloutRefusal, rolloutQuery, type TemplateRolloutView } from '../core/templates/rollouts.js';
import { getRolloutRow } from '../db/rollouts.js';
import { stepRollout } from './rollouts.js';
import {
  rolloutWorkflowId,
  rolloutRollbackWorkflowId,
  templateApplySearchAttributes,
  templateRollbackWorkflowId,
  TEMPLATES_TASK_QUEUE,
} from '../core/templates/contract.js';
import {
  initialRollbackView,
  ROLLOUT_ROLLBACK_WORKFLOW_TYPE,
  TEMPLATE_ROLLBACK_WORKFLOW_TYPE,
  type RolloutRollbackInput,
  type RolloutRollbackView,
  type TemplateRollbackInput,
  type TemplateRollbackView,
} from '../core/templates/rollback.js';
import type { Pool } from '../db/pool.js';
import { inScope, mspScope, tenantScope } from '../db/scope.js';
import {
  getRollbackRow,
  getRolloutRollbackRow,
  listRollbackRows,
  openRollbackOf,
  rolloutApplyCounts,
  upsertRollbackRow,
} from '../db/template-rollbacks.js';
import { deleteUnstartedRollback, lockTemplateStarts } from '../db/template-starts.js';
import { getApplyRow, openApplyOf } from '../db/templates.js';
import type { rolloutRollbackWorkflow, templateRollbackWorkflow } from '../workflows/templates/rollback.js';

/**
 * Rolling back template applies: one tenant's (`rollout/<rolloutId>/<tenantId>/rollback`) or a
 * whole rollout's (`rollout/<rolloutId>/rollback`). Each is requested once: a second request
 * answers the first (`existing`), never restores twice.
 */
export interface TemplateRollbackDeps {
  pool: Pool;
  temporal: Client;
}

/** Per-tenant rollbacks a whole rollout's rollback runs at once, and tenants it reads per page (and run). */
export const ROLLOUT_ROLLBACK_WINDOW = 5;
export const ROLLOUT_ROLLBACK_PAGE = 50;

const UNDER_WAY = ['planning', 'awaiting_approval', 'applying'];

/** Starts the workflow once; false when that id already ran or runs (the request is answered by it). */
async function startOnce(start: () => Promise<unknown>): Promise<boolean> {
  try {
    await start();
    return true;
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) return false;
    throw error;
  }
}

/**
 * Rolls back the tenant's apply in the rollout: 409 while the apply (or another for the tenant) is
 * under way, and when it took no snapshot (it changed nothing). No tenant gate: restoring the
 * tenant's own prior state takes no decision from it, and paths it changed since are left alone.
 */
export async function startTenantRollback(
  deps: TemplateRollbackDeps,
  ctx: ActionContext,
  tenantId: string,
  rolloutId: string,
): Promise<{ rolloutId: string; tenantId: string; workflowId: string; existing: boolean }> {
  const workflowId = templateRollbackWorkflowId(rolloutId, tenantId);
  // The checks and the rollback's row (a placeholder its workflow's first step overwrites) are one
  // step under the lock applies and rollouts start under, so a new apply or another rollback of the
  // tenant at the same moment cannot both find it free.
  // A rollback that failed (its target refused or never read back as the snapshot) is requested
  // again once its run has ended: the restore plans from the tenant as it is now, so what the failed
  // attempt already restored reads as unchanged, and it does the rest.
  const before = await inScope(deps.pool, mspScope, (client) => getRollbackRow(client, tenantId, rolloutId));
  if (before?.status === 'failed' && (await runOpen(deps, workflowId))) return { rolloutId, tenantId, workflowId, existing: true };
  let failed: TemplateRollbackView | undefined;
  const prepared = await inScope(deps.pool, mspScope, async (client): Promise<TemplateRollbackInput | 'existing'> => {
    await lockTemplateStarts(client);
    const apply = await getApplyRow(client, tenantId, rolloutId);
    if (!apply) throw notFound('template apply');
    const earlier = await getRollbackRow(client, tenantId, rolloutId);
    if (earlier && (earlier.status !== 'failed' || earlier.revision !== before?.revision)) return 'existing';
    failed = earlier;
    const { view } = apply;
    if (UNDER_WAY.includes(view.status)) {
      throw conflict(`The apply is ${view.status}: wait for it to end (or its gate to be decided), then roll it back.`);
    }
    if (!view.snapshotId) {
      throw conflict(`The apply is ${view.status} and took no snapshot: it changed nothing, so there is nothing to roll back.`);
    }
    const open = await openApplyOf(client, tenantId);
    if (open) throw conflict(`Another apply is under way for the tenant (rollout ${open}); roll back once it has ended.`);
    const rollingBack = await openRollbackOf(client, tenantId);
    if (rollingBack)
      throw conflict(`The tenant's apply of rollout ${rollingBack} is being rolled back; roll back this one once that has ended.`);
    const made: TemplateRollbackInput = {
      rolloutId,
      tenantId,
      snapshotId: view.snapshotId,
      templateId: view.templateId,
      version: view.version,
      requester: ctx.actor,
      authority: ctx.authority,
      parentWorkflowId: null,
      // Past the failed attempt's revision: its row is replaced by the placeholder, then by this run's steps.
      ...(failed ? { revisionFrom: failed.revision + 1 } : {}),
    };
    await upsertRollbackRow(client, initialRollbackView(made, workflowId, new Date().toISOString()));
    return made;
  });
  if (prepared === 'existing') return { rolloutId, tenantId, workflowId, existing: true };
  const input = prepared;
  // Nobody will run it: the placeholder must not hold the tenant (a retry's row says it failed again).
  const release = () =>
    inScope(deps.pool, mspScope, (client) =>
      failed
        ? upsertRollbackRow(client, { ...failed, revision: input.revisionFrom! + 1 })
        : deleteUnstartedRollback(client, tenantId, rolloutId),
    ).catch(() => undefined);
  let started: boolean;
  try {
    started = await startOnce(() =>
      deps.temporal.workflow.start<typeof templateRollbackWorkflow>(TEMPLATE_ROLLBACK_WORKFLOW_TYPE, {
        taskQueue: TEMPLATES_TASK_QUEUE,
        workflowId,
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        // Only a failed rollback's id is used again; one that restored is never run twice.
        workflowIdReusePolicy: failed ? WorkflowIdReusePolicy.ALLOW_DUPLICATE : WorkflowIdReusePolicy.REJECT_DUPLICATE,
        args: [input],
        typedSearchAttributes: templateApplySearchAttributes(tenantId),
      }),
    );
  } catch (error) {
    await release();
    throw error;
  }
  if (!started && failed) await release();
  return { rolloutId, tenantId, workflowId, existing: !started };
}

/** Whether the workflow's latest run is still open (a failed rollback records its failure just before it ends). */
async function runOpen(deps: TemplateRollbackDeps, workflowId: string): Promise<boolean> {
  try {
    const { status } = await deps.temporal.workflow.getHandle(workflowId).describe();
    return status.name === 'RUNNING';
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return false;
    throw error;
  }
}

export async function getTenantRollback(pool: Pool, tenantId: string, rolloutId: string): Promise<TemplateRollbackView> {
  const row = await inScope(pool, tenantScope(tenantId), (client) => getRollbackRow(client, tenantId, rolloutId));
  if (!row) throw notFound('template rollback');
  return row;
}

/**
 * The rollout itself stops before it is rolled back, so no tenant starts while (or after) its
 * tenants are restored: a halted or paused rollout is cancelled on the way (its tenants waiting at
 * their gate end skipped, changing nothing); one still starting tenants is a 409 asking for a
 * pause or cancel first. The workflow is asked, not the read model, which may lag it.
 */
async function stopRolloutFor(deps: TemplateRollbackDeps, ctx: ActionContext, rolloutId: string): Promise<void> {
  const row = await inScope(deps.pool, mspScope, (client) => getRolloutRow(client, rolloutId));
  if (!row || !ROLLOUT_OPEN_STATUSES.includes(row.view.status)) return;
  let live: TemplateRolloutView;
  try {
    live = await deps.temporal.workflow.getHandle(rolloutWorkflowId(rolloutId)).query(rolloutQuery);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return; // closed meanwhile
    throw error;
  }
  if (!ROLLOUT_OPEN_STATUSES.includes(live.status) || live.status === 'cancelling') return;
  if (live.status !== 'halted' && live.status !== 'paused') {
    throw new AppError(
      409,
      RolloutRefusal.WrongState,
      `The rollout is ${live.status}: pause or cancel it first, so no tenant starts while it is rolled back.`,
    );
  }
  try {
    await stepRollout(deps, rolloutId, 'cancel', {
      actorId: ctx.actor.id,
      comment: 'cancelled to roll the rollout back',
      authority: { ...ctx.authority, rollback: true },
    });
  } catch (error) {
    // Another request (a second rollback at once) cancelled it first: it is stopped all the same.
    if (!(error instanceof AppError && error.code === RolloutRefusal.WrongState)) throw error;
    const after = await deps.temporal.workflow
      .getHandle(rolloutWorkflowId(rolloutId))
      .query(rolloutQuery)
      .catch(() => undefined);
    if (after && ROLLOUT_OPEN_STATUSES.includes(after.status) && after.status !== 'cancelling') throw error;
  }
}

/**
 * Rolls back every tenant of the rollout whose apply took a snapshot: 404 for a rollout with no
 * applies, 409 while the rollout still starts tenants (pause or cancel it first; a halted or
 * paused one is cancelled here), while any apply is under way, or when none took a snapshot.
 */
export async function startRolloutRollback(
  deps: TemplateRollbackDeps,
  ctx: ActionContext,
  rolloutId: string,
  options: { window?: number },
): Promise<{ rolloutId: string; workflowId: string; existing: boolean }> {
  const workflowId = rolloutRollbackWorkflowId(rolloutId);
  const { counts, existing } = await inScope(deps.pool, mspScope, async (client) => ({
    counts: await rolloutApplyCounts(client, rolloutId),
    existing: await getRolloutRollbackRow(client, rolloutId),
  }));
  if (!counts.total) throw notFound('rollout');
  if (existing) return { rolloutId, workflowId, existing: true };
  await stopRolloutFor(deps, ctx, rolloutId);
  const now = await inScope(deps.pool, mspScope, (client) => rolloutApplyCounts(client, rolloutId));
  if (now.running)
    throw conflict(
      `${now.running} apply(ies) of the rollout are under way (the rollout starts no more): wait for them to end, then roll back.`,
    );
  if (!now.snapshotted) throw conflict('No apply of the rollout took a snapshot: none changed anything, so there is nothing to roll back.');
  const input: RolloutRollbackInput = {
    rolloutId,
    requester: ctx.actor,
    authority: ctx.authority,
    window: options.window ?? ROLLOUT_ROLLBACK_WINDOW,
    pageSize: ROLLOUT_ROLLBACK_PAGE,
  };
  const started = await startOnce(() =>
    deps.temporal.workflow.start<typeof rolloutRollbackWorkflow>(ROLLOUT_ROLLBACK_WORKFLOW_TYPE, {
      taskQueue: TEMPLATES_TASK_QUEUE,
      workflowId,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      args: [input],
    }),
  );
  return { rolloutId, workflowId, existing: !started };
}

export async function getRolloutRollback(
  pool: Pool,
  rolloutId: string,
): Promise<
  RolloutRollbackView & {
    tenants: { tenantId: string; status: TemplateRollbackView['status']; conflicts: string[]; outcome: string | null }[];
  }
> {
  return inScope(pool, mspScope, async (client) => {
    const row = await getRolloutRollbackRow(client, rolloutId);
    if (!row) throw notFound('rollout rollback');
    const tenants = (await listRollbackRows(client, rolloutId)).map((t) => ({
      tenantId: t.tenantId,
      status: t.status,
      conflicts: t.conflicts.map((c) => c.path),
      outcome: t.outcome,
    }));
    return { ...row, tenants };
  });
}
