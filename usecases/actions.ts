import { createHash, randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import {
  ACTION_CAPABILITY,
  ACTION_WORKFLOW_TYPE,
  ACTIONS_TASK_QUEUE,
  actionSearchAttributes,
  actionWorkflowId,
  ActionRejection,
  approveActionUpdate,
  cancelActionUpdate,
  denyActionUpdate,
  initialActionView,
  type ActionInput,
  type ActionView,
} from '../core/actions/contract.js';
import type { ActionPolicy } from '../core/actions/policy.js';
import type { RequestActionBody } from '../core/actions/schemas.js';
import type { Authority } from '../core/audit/chain.js';
import { decodeKeysetCursor, encodeKeysetCursor } from '../core/cursor.js';
import { DirectoryUnavailableError, resolverOf, type DirectoryConnector, type DirectoryDeps } from '../core/directory/connector.js';
import { AppError, badRequest, conflict, forbidden, notFound, type FieldIssue } from '../core/errors.js';
import { ticketMatches } from '../core/grants/policy.js';
import { bindingsWithRoles, tenantApproverBindings, type Binding, type Principal } from '../core/tenancy/authz.js';
import { TenantPolicyDocument } from '../core/tenancy/schemas.js';
import {
  actionByIdempotencyKey,
  actionRequestInput,
  actionViewOf,
  deleteUnstartedAction,
  listActionRows,
  upsertActionRow,
} from '../db/actions.js';
import type { Pool } from '../db/pool.js';
import { inScope, tenantScope } from '../db/scope.js';
import { currentPolicy } from '../db/tenancy.js';
import type { actionWorkflow } from '../workflows/actions/workflow.js';
import { updateRefusal } from './update-refusal.js';

/** `directory` / `directories`: the tenants' directories, asked whether the subject exists and what the target can do. */
export interface ActionDeps extends DirectoryDeps {
  pool: Pool;
  temporal: Client;
}

/** The connector of the tenant's own target: the one place the use cases choose it. */
export function actionTarget(deps: DirectoryDeps, tenantId: string): Promise<DirectoryConnector> {
  return resolverOf(deps).directoryFor(tenantId);
}

export interface LoadedActionPolicy {
  version: number;
  actions: ActionPolicy;
}

export async function loadActionPolicy(pool: Pool, tenantId: string): Promise<LoadedActionPolicy> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const row = await currentPolicy(client, tenantId);
    if (!row) throw notFound('tenant');
    return { version: row.version, actions: TenantPolicyDocument.parse(row.document).actions };
  });
}

/** Gate before the body is read: the caller must hold a role this tenant lets request some action. */
export function authorizeRequester(principal: Principal, tenantId: string, policy: ActionPolicy): Binding[] {
  const roles = [...new Set(Object.values(policy.allowed).flatMap((rule) => rule?.requestableBy ?? []))];
  const bindings = bindingsWithRoles(principal, tenantId, roles);
  if (bindings.length === 0) throw forbidden('Your roles may not request remote actions in this tenant.');
  return bindings;
}

/** A directory that cannot answer now is a 503 (nothing was started), not an internal error. */
async function askTarget<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof DirectoryUnavailableError) {
      throw new AppError(
        503,
        'unavailable',
        "The tenant's directory is unavailable right now; nothing was started. Try again shortly.",
        [],
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}

/**
 * Checks the request against the tenant's policy and target, all at once so a 400 names every
 * problem: the action allowed, the caller's roles, justification and ticket, the capability the
 * target needs, and the subject present in the directory.
 */
async function checkRequest(
  deps: ActionDeps,
  principal: Principal,
  tenantId: string,
  policy: LoadedActionPolicy,
  body: RequestActionBody,
): Promise<{ approvalsRequired: number }> {
  const rule = policy.actions.allowed[body.action];
  if (!rule)
    throw badRequest('That action is not allowed in this tenant.', [
      { path: 'body.action', message: `not allowed under policy version ${policy.version}` },
    ]);
  if (bindingsWithRoles(principal, tenantId, rule.requestableBy).length === 0)
    throw forbidden(`Your roles may not request ${body.action}; it needs one of: ${rule.requestableBy.join(', ')}.`);
  const issues: FieldIssue[] = [];
  if (policy.actions.justificationRequired && !body.justification)
    issues.push({ path: 'body.justification', message: 'required by the tenant policy' });
  const pattern = policy.actions.ticketPattern;
  if (pattern !== null && !(body.ticket && ticketMatches(pattern, body.ticket)))
    issues.push({ path: 'body.ticket', message: `must match ${pattern}` });
  const target = await askTarget(() => actionTarget(deps, tenantId));
  const capability = ACTION_CAPABILITY[body.action];
  if (capability && !target.capabilities[capability])
    issues.push({ path: 'body.action', message: `the tenant's ${target.kind} directory lacks the ${capability} capability` });
  const subject = await askTarget(() => target.getUser(tenantId, body.subjectId));
  if (!subject || subject.status === 'deleted') issues.push({ path: 'body.subjectId', message: 'no directory user with this id' });
  if (issues.length) throw badRequest('The request does not meet the tenant action policy or its directory.', issues);
  return { approvalsRequired: rule.approvalsRequired };
}

/**
 * Requests an action. The read-model row (with the workflow input and the idempotency key)
 * commits before the workflow starts, so a retry with the same key starts the same workflow id,
 * never a second one; without a key a failed start takes the request back.
 */
export async function requestAction(
  deps: ActionDeps,
  principal: Principal,
  tenantId: string,
  policy: LoadedActionPolicy,
  body: RequestActionBody,
  meta: { idempotencyKey?: string; authority: Authority },
): Promise<{ view: ActionView; replayed: boolean }> {
  const { approvalsRequired } = await checkRequest(deps, principal, tenantId, policy, body);
  const requestHash = createHash('sha256')
    .update(JSON.stringify({ ...body, tenantId }))
    .digest('hex');
  const input: ActionInput = {
    actionId: randomUUID(),
    tenantId,
    action: body.action,
    subjectId: body.subjectId,
    requesterId: principal.actorId,
    authority: meta.authority,
    justification: body.justification ?? null,
    ticket: body.ticket ?? null,
    policy: {
      policyVersion: policy.version,
      approvalsRequired,
      approvalTimeoutSeconds: policy.actions.approvalTimeoutMinutes * 60,
    },
  };

  const key = meta.idempotencyKey;
  const byKey = async () =>
    key
      ? inScope(deps.pool, tenantScope(tenantId), (client) => actionByIdempotencyKey(client, tenantId, principal.actorId, key))
      : undefined;
  const stored = await inScope(deps.pool, tenantScope(tenantId), async (client) => {
    const earlier = key ? await actionByIdempotencyKey(client, tenantId, principal.actorId, key) : undefined;
    if (earlier) return earlier;
    await upsertActionRow(client, initialActionView(input, Date.now()), { idempotencyKey: key ?? null, requestHash, input });
    return undefined;
  }).catch(async (error: { code?: string }) => {
    // A concurrent request with the same key won: answer with its action.
    if (error.code === '23505' && key) return (await byKey())!;
    throw error;
  });
  if (stored && stored.request_hash !== requestHash) throw conflict('This Idempotency-Key was already used for a different request.');
  const actionId = stored?.view.actionId ?? input.actionId;
  // A replay of an action that has ended answers with the record: once its closed run is past the
  // namespace's retention, starting it again would do the action a second time.
  if (stored && !['pending_approval', 'executing'].includes(stored.view.status)) {
    return { view: await getAction(deps.pool, tenantId, actionId), replayed: true };
  }
  const startInput = stored
    ? (await inScope(deps.pool, tenantScope(tenantId), (client) => actionRequestInput(client, tenantId, actionId)))!
    : input;

  try {
    // A running id is joined; a closed one is refused (REJECT_DUPLICATE), so an action id runs once.
    await deps.temporal.workflow.start<typeof actionWorkflow>(ACTION_WORKFLOW_TYPE, {
      taskQueue: ACTIONS_TASK_QUEUE,
      workflowId: actionWorkflowId(tenantId, actionId),
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      args: [startInput],
      typedSearchAttributes: actionSearchAttributes(tenantId),
    });
  } catch (error) {
    // The action's run has already closed: it exists, nothing to start.
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) {
      // Without a key there is no retry to finish it, so the request is taken back rather than left
      // pending with nobody running it (should the start have reached Temporal, its first event writes the row again).
      if (!stored && !key) {
        await inScope(deps.pool, tenantScope(tenantId), (client) => deleteUnstartedAction(client, tenantId, actionId)).catch(
          () => undefined,
        );
      }
      throw error;
    }
  }
  return {
    view: stored ? await getAction(deps.pool, tenantId, actionId) : initialActionView(input, Date.now()),
    replayed: Boolean(stored),
  };
}

export async function getAction(pool: Pool, tenantId: string, actionId: string): Promise<ActionView> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const view = await actionViewOf(client, tenantId, actionId);
    if (!view) throw notFound('action');
    return view;
  });
}

export interface ActionFilter {
  status?: string;
  action?: string;
  subjectId?: string;
  limit: number;
  cursor?: string;
}

export async function listActions(
  pool: Pool,
  tenantId: string,
  filter: ActionFilter,
): Promise<{ actions: ActionView[]; nextCursor: string | null }> {
  const after = filter.cursor ? decodeKeysetCursor(filter.cursor) : undefined;
  if (filter.cursor && !after)
    throw badRequest('Invalid cursor.', [{ path: 'query.cursor', message: 'not a cursor returned by this endpoint' }]);
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const rows = await listActionRows(client, tenantId, {
      ...(filter.status ? { status: filter.status } : {}),
      ...(filter.action ? { action: filter.action } : {}),
      ...(filter.subjectId ? { subjectId: filter.subjectId } : {}),
      ...(after ? { after } : {}),
      limit: filter.limit + 1,
    });
    const page = rows.slice(0, filter.limit);
    const last = page.at(-1);
    return {
      actions: page.map((r) => r.view),
      nextCursor: rows.length > filter.limit && last ? encodeKeysetCursor(last.created_at, last.action_id) : null,
    };
  });
}

export type ActionDecisionKind = 'approve' | 'deny' | 'cancel';

/**
 * Who may take a decision, before the workflow's own validator has its say (which refuses the
 * requester approving or denying their own request). Returns the bindings that allowed it.
 */
export function authorizeDecision(principal: Principal, tenantId: string, decision: ActionDecisionKind, action: ActionView): Binding[] {
  if (decision === 'cancel') {
    const operators = bindingsWithRoles(principal, tenantId, ['msp_admin', 'operator']);
    if (principal.actorId !== action.requesterId && operators.length === 0)
      throw forbidden('Only the requester, an operator or an MSP admin may cancel a remote action.');
    return operators;
  }
  // The client tenant owns the decision: only its own approvers, bound in this tenant.
  const approvers = tenantApproverBindings(principal, tenantId);
  if (approvers.length === 0) throw forbidden('Only a tenant_approver of this tenant may decide on its remote actions.');
  return approvers;
}

const UPDATES = { approve: approveActionUpdate, deny: denyActionUpdate, cancel: cancelActionUpdate } as const;

/** Sends a decision as a Temporal Update; the workflow validator's refusal becomes a 4xx. */
export async function decide(
  deps: ActionDeps,
  tenantId: string,
  action: ActionView,
  decision: ActionDecisionKind,
  args: { actorId: string; comment?: string; authority: Authority },
): Promise<ActionView> {
  const handle = deps.temporal.workflow.getHandle(actionWorkflowId(tenantId, action.actionId));
  try {
    return await handle.executeUpdate(UPDATES[decision], {
      args: [{ actorId: args.actorId, comment: args.comment ?? null, authority: args.authority }],
    });
  } catch (error) {
    const refusal = updateRefusal(error, {
      [ActionRejection.SelfApproval]: forbidden,
      [ActionRejection.InvalidInput]: (message) => badRequest(message),
    });
    if (refusal) throw refusal;
    // A finished workflow accepts no updates: the decision no longer applies.
    if (error instanceof WorkflowNotFoundError) throw conflict(`The action is ${action.status}; this decision no longer applies.`);
    throw error;
  }
}
