import { createHash, randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import type { ActionContext } from '../core/audit/context.js';
import { AppError, badRequest, notFound, type FieldIssue } from '../core/errors.js';
import { rolloutWorkflowId, TEMPLATES_TASK_QUEUE, TemplateRefusal } from '../core/templates/contract.js';
import { renderForTenant } from '../core/templates/plan.js';
import type { StartRolloutRequest } from '../core/templates/rollout-schemas.js';
import {
  approveRolloutWaveUpdate,
  cancelRolloutUpdate,
  initialRolloutView,
  MAX_ROLLOUT_TENANTS,
  pauseRolloutUpdate,
  planWaves,
  resumeRolloutUpdate,
  RolloutRefusal,
  RolloutRejection,
  skipRolloutWaveUpdate,
  TEMPLATE_ROLLOUT_WORKFLOW_TYPE,
  type RolloutTenantStart,
  type RolloutTenantState,
  type TemplateRolloutInput,
  type TemplateRolloutView,
} from '../core/templates/rollouts.js';
import { storedTemplateDocument } from '../core/templates/schemas.js';
import { TenantPolicyDocument } from '../core/tenancy/schemas.js';
import type { Authority } from '../core/audit/chain.js';
import type { Pool, PoolClient } from '../db/pool.js';
import { lockTemplateStarts } from '../db/template-starts.js';
import { openRollbackOf } from '../db/template-rollbacks.js';
import {
  deleteUnstartedRollout,
  getRolloutRow,
  insertRollout,
  insertRolloutTenants,
  listRolloutTenants,
  listRolloutViews,
  rolloutByKey,
  tenantsInOpenRollouts,
  type RolloutRow,
} from '../db/rollouts.js';
import { inScope, mspScope } from '../db/scope.js';
import { getAssignmentRow, getVersionRow, listAssignmentRows, openApplyOf } from '../db/templates.js';
import { currentPolicy, getTenantRow } from '../db/tenancy.js';
import type { templateRolloutWorkflow } from '../workflows/templates/rollout.js';
import { updateRefusal } from './update-refusal.js';

/**
 * Rollouts: an approved template version applied to tenants in waves by `templateRolloutWorkflow`.
 * Creating one fixes its tenants, their waves and what each apply starts from (the tenant's pin's
 * parameter values when it is pinned to this template, else the template's defaults) in
 * PostgreSQL before the workflow starts; its steps are audited by the workflow on the MSP chain.
 */
export interface RolloutDeps {
  pool: Pool;
  temporal: Client;
}

const wrongState = (message: string) => new AppError(409, RolloutRefusal.WrongState, message);

export interface RolloutDetail extends TemplateRolloutView {
  tenantStates: {
    tenantId: string;
    tenantName: string;
    wave: number;
    position: number;
    state: RolloutTenantState;
    applyStatus: string | null;
    outcome: string | null;
  }[];
  /** More tenants follow (`wave.position` of the last one here). */
  nextCursor: string | null;
}

/** One apply per tenant at a time: a tenant under way elsewhere would interleave snapshots and writes. */
async function refuseBusy(client: PoolClient, ids: string[]): Promise<void> {
  const busy = [
    ...(await tenantsInOpenRollouts(client, ids)).map((b) => `${b.tenantId} (rollout ${b.rolloutId})`),
    ...(await Promise.all(ids.map(async (tenantId) => ({ tenantId, open: await openApplyOf(client, tenantId) })))).flatMap((b) =>
      b.open ? [`${b.tenantId} (rollout ${b.open})`] : [],
    ),
    // A tenant being rolled back: a new apply would write while the rollback restores.
    ...(await Promise.all(ids.map(async (tenantId) => ({ tenantId, open: await openRollbackOf(client, tenantId) })))).flatMap((b) =>
      b.open ? [`${b.tenantId} (rollback of rollout ${b.open})`] : [],
    ),
  ];
  if (busy.length) {
    throw new AppError(409, RolloutRefusal.TenantBusy, `Tenants are in a rollout under way: ${busy.slice(0, 20).join(', ')}.`);
  }
}

/** What the rollout starts from: checked against the template, each tenant and the waves, or refused naming the field. */
async function prepare(
  pool: Pool,
  ctx: ActionContext,
  body: StartRolloutRequest,
): Promise<{ input: TemplateRolloutInput; tenants: (RolloutTenantStart & { wave: number })[] }> {
  return inScope(pool, mspScope, async (client) => {
    const version = await getVersionRow(client, body.templateId, body.version);
    if (!version) throw badRequest('No such template version.', [{ path: 'body.version', message: 'no such template version' }]);
    if (version.status !== 'approved') {
      throw new AppError(
        409,
        TemplateRefusal.WrongStatus,
        `Version ${version.version} is ${version.status}; only an approved version rolls out.`,
      );
    }
    const listed = body.tenants === 'pinned' ? null : body.tenants;
    const ids = listed ?? (await listAssignmentRows(client, body.templateId)).map((a) => a.tenant_id);
    if (!ids.length)
      throw badRequest('No tenant is pinned to the template.', [{ path: 'body.tenants', message: 'no tenant is pinned to the template' }]);
    // A listed rollout is bounded by its schema; `pinned` by the same bound here.
    if (ids.length > MAX_ROLLOUT_TENANTS)
      throw badRequest(`${ids.length} tenants are pinned to the template; one rollout takes at most ${MAX_ROLLOUT_TENANTS}.`, [
        { path: 'body.tenants', message: `more than ${MAX_ROLLOUT_TENANTS} tenants: list them in several rollouts` },
      ]);
    const document = storedTemplateDocument(version.document);
    const issues: FieldIssue[] = [];
    const starts = new Map<string, RolloutTenantStart>();
    for (const [i, tenantId] of ids.entries()) {
      const at = listed ? `body.tenants.${i}` : 'body.tenants';
      const tenant = await getTenantRow(client, tenantId);
      const policy = tenant?.status === 'active' ? await currentPolicy(client, tenantId) : undefined;
      if (!tenant || !policy) {
        issues.push({ path: at, message: 'no such active tenant' });
        continue;
      }
      const pin = await getAssignmentRow(client, tenantId);
      const parameters = pin?.template_id === body.templateId ? pin.parameters : {};
      const rendered = renderForTenant(document, parameters, tenant, at);
      if ('issues' in rendered) {
        issues.push(...rendered.issues.map((issue) => ({ ...issue, message: `${tenant.slug}: ${issue.message}` })));
        continue;
      }
      const timeoutSeconds = body.approvalTimeoutMinutes
        ? body.approvalTimeoutMinutes * 60
        : TenantPolicyDocument.parse(policy.document).governance.policyChangeTimeoutDays * 86_400;
      starts.set(tenantId, { tenantId, position: 0, parameters, approvalTimeoutSeconds: timeoutSeconds });
    }
    if (issues.length) throw badRequest('Some tenants cannot take this version.', issues.slice(0, 100));
    const planned = planWaves(ids, { ...(body.canary ? { canary: body.canary } : {}), ...(body.waves ? { waves: body.waves } : {}) });
    if ('issues' in planned) throw badRequest('The waves do not fit the tenants.', planned.issues);

    await refuseBusy(client, ids);
    const rolloutId = randomUUID();
    const input: TemplateRolloutInput = {
      rolloutId,
      templateId: body.templateId,
      version: body.version,
      requester: ctx.actor,
      authority: ctx.authority,
      waves: planned.waves.map((w) => ({ name: w.name, size: w.tenants.length })),
      options: {
        window: body.window,
        bakeSeconds: body.bakeSeconds,
        approveBetweenWaves: body.approveBetweenWaves,
        // A budget that names no limit is the default one: the first failure halts.
        errorBudget:
          body.errorBudget.maxFailures === undefined && body.errorBudget.maxFailurePercent === undefined
            ? { maxFailures: 0, maxFailurePercent: null }
            : { maxFailures: body.errorBudget.maxFailures ?? null, maxFailurePercent: body.errorBudget.maxFailurePercent ?? null },
        approvalTimeoutMinutes: body.approvalTimeoutMinutes ?? null,
      },
    };
    const tenants = planned.waves.flatMap((w, wave) =>
      w.tenants.map((tenantId, i) => ({ ...starts.get(tenantId)!, position: i + 1, wave })),
    );
    return { input, tenants };
  });
}

async function startWorkflow(deps: RolloutDeps, input: TemplateRolloutInput): Promise<void> {
  try {
    // A running id is joined; a closed one is refused, so a rollout id runs once.
    await deps.temporal.workflow.start<typeof templateRolloutWorkflow>(TEMPLATE_ROLLOUT_WORKFLOW_TYPE, {
      taskQueue: TEMPLATES_TASK_QUEUE,
      workflowId: rolloutWorkflowId(input.rolloutId),
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      args: [input],
    });
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
}

/**
 * Starts a rollout. With an `Idempotency-Key`, a retry of the same request answers with the same
 * rollout (and starts its workflow if the first attempt did not get that far), never a second one;
 * the same key for another request is a 409.
 */
export async function startRollout(
  deps: RolloutDeps,
  ctx: ActionContext,
  body: StartRolloutRequest,
  idempotencyKey: string | undefined,
): Promise<{ view: TemplateRolloutView; replayed: boolean }> {
  const requestHash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
  const earlier = async (): Promise<RolloutRow | undefined> =>
    idempotencyKey ? inScope(deps.pool, mspScope, (client) => rolloutByKey(client, ctx.actor.id, idempotencyKey)) : undefined;
  const replay = async (row: RolloutRow) => {
    if (row.request_hash !== requestHash)
      throw new AppError(409, 'conflict', 'This Idempotency-Key was already used for a different request.');
    await startWorkflow(deps, row.input);
    return { view: (await inScope(deps.pool, mspScope, (client) => getRolloutRow(client, row.id)))!.view, replayed: true };
  };
  const stored = await earlier();
  if (stored) return replay(stored);

  let prepared: Awaited<ReturnType<typeof prepare>>;
  try {
    prepared = await prepare(deps.pool, ctx, body);
  } catch (error) {
    // A concurrent request with the same key may have taken the tenants meanwhile: answer with its rollout.
    const won = await earlier();
    if (won) return replay(won);
    throw error;
  }
  const { input, tenants } = prepared;
  const view = initialRolloutView(input, rolloutWorkflowId(input.rolloutId), new Date().toISOString());
  const inserted = await inScope(deps.pool, mspScope, async (client) => {
    // Checked again under the lock with the insert, so two rollouts at once never both take a tenant.
    await lockTemplateStarts(client);
    if (idempotencyKey && (await rolloutByKey(client, ctx.actor.id, idempotencyKey))) return false;
    await refuseBusy(
      client,
      tenants.map((t) => t.tenantId),
    );
    if (!(await insertRollout(client, { view, input, createdBy: ctx.actor.id, idempotencyKey: idempotencyKey ?? null, requestHash }))) {
      return false;
    }
    await insertRolloutTenants(client, input.rolloutId, tenants);
    return true;
  });
  if (!inserted) return replay((await earlier())!); // a concurrent request with the same key won
  try {
    await startWorkflow(deps, input);
  } catch (error) {
    // Without a key nobody retries this one: take it back rather than leave a rollout nobody runs.
    if (!idempotencyKey)
      await inScope(deps.pool, mspScope, (client) => deleteUnstartedRollout(client, input.rolloutId)).catch(() => undefined);
    throw error;
  }
  return { view, replayed: false };
}

export async function listRollouts(
  pool: Pool,
  query: { status?: string; templateId?: string; limit: number },
): Promise<TemplateRolloutView[]> {
  return inScope(pool, mspScope, (client) => listRolloutViews(client, query));
}

/** The rollout's progress by wave, and each tenant's place: not started, its apply's status, passed over or cancelled. */
/** A rollout and a page of its tenants, in wave and position order after `cursor` (`wave.position`). */
export async function getRollout(pool: Pool, rolloutId: string, page: { cursor?: string; limit: number }): Promise<RolloutDetail> {
  const [wave, position] = (page.cursor ?? '').split('.').map(Number);
  const after = page.cursor ? { wave: wave!, position: position! } : undefined;
  return inScope(pool, mspScope, async (client) => {
    const row = await getRolloutRow(client, rolloutId);
    if (!row) throw notFound('rollout');
    const read = await listRolloutTenants(client, rolloutId, { ...(after ? { after } : {}), limit: page.limit + 1 });
    const tenants = read.slice(0, page.limit);
    const last = tenants.at(-1);
    return {
      ...row.view,
      nextCursor: read.length > page.limit && last ? `${last.wave}.${last.position}` : null,
      tenantStates: tenants.map((t) => ({
        tenantId: t.tenant_id,
        tenantName: t.tenant_name,
        wave: t.wave,
        position: t.position,
        // Started but its apply not yet recorded: the rollout's counter says so first.
        state: t.apply_status ?? (t.state === 'pending' && t.position <= (row.view.waves[t.wave]?.started ?? 0) ? 'started' : t.state),
        applyStatus: t.apply_status,
        outcome: t.outcome,
      })),
    };
  });
}

export const ROLLOUT_STEPS = {
  pause: pauseRolloutUpdate,
  resume: resumeRolloutUpdate,
  cancel: cancelRolloutUpdate,
  skip: skipRolloutWaveUpdate,
  'approve-wave': approveRolloutWaveUpdate,
} as const;
export type RolloutStep = keyof typeof ROLLOUT_STEPS;

/** An operator's step; the workflow's validators refuse it in the wrong state (409 `rollout_state`). */
export async function stepRollout(
  deps: RolloutDeps,
  rolloutId: string,
  step: RolloutStep,
  args: { actorId: string; comment?: string; authority: Authority },
): Promise<TemplateRolloutView> {
  const row = await inScope(deps.pool, mspScope, (client) => getRolloutRow(client, rolloutId));
  if (!row) throw notFound('rollout');
  if (row.view.status === 'completed' || row.view.status === 'cancelled') {
    throw wrongState(`The rollout is ${row.view.status}; it takes no more steps.`);
  }
  try {
    return await deps.temporal.workflow.getHandle(rolloutWorkflowId(rolloutId)).executeUpdate(ROLLOUT_STEPS[step], {
      args: [{ actorId: args.actorId, comment: args.comment ?? null, authority: args.authority }],
    });
  } catch (error) {
    const refusal = updateRefusal(error, {
      [RolloutRejection.WrongState]: wrongState,
      [RolloutRejection.InvalidInput]: (message) => badRequest(message),
    });
    if (refusal) throw refusal;
    if (error instanceof WorkflowNotFoundError) throw wrongState(`The rollout is ${row.view.status}; it takes no more steps.`);
    throw error;
  }
}
