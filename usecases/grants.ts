import { updateRefusal } from './update-refusal.js';
import { createHash, randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  type Client,
} from '@temporalio/client';
import {
  approveGrantUpdate,
  denyGrantUpdate,
  extendGrantUpdate,
  GRANT_WORKFLOW_TYPE,
  grantSearchAttributes,
  grantWorkflowId,
  GrantRejection,
  GRANTS_TASK_QUEUE,
  relinquishGrantUpdate,
  revokeGrantUpdate,
  type GrantInput,
  type GrantStatus,
  type GrantView,
} from '../core/grants/contract.js';
import { bindingsWithRoles, tenantApproverBindings, type Binding, type Principal, type Role } from '../core/tenancy/authz.js';
import { AppError, badRequest, conflict, forbidden, notFound } from '../core/errors.js';
import { ticketMatches, type GrantableRole, type GrantPolicy } from '../core/grants/policy.js';
import { decodeGrantCursor, encodeGrantCursor, type RequestGrantBody } from '../core/grants/schemas.js';
import { TenantPolicyDocument } from '../core/tenancy/schemas.js';
import { DirectoryError, resolverOf, type DirectoryDeps } from '../core/directory/connector.js';
import { deleteUnstartedGrant, grantByIdempotencyKey, grantViewOf, listGrantRows, requestInputOf, upsertGrantRow } from '../db/grants.js';
import { currentPolicy } from '../db/tenancy.js';
import { appendAuditEvent } from '../db/audit.js';
import { endAccessEarly } from '../connectors/directory/ledger-steps.js';
import type { Pool } from '../db/pool.js';
import { inScope, readInScope, tenantScope } from '../db/scope.js';
import type { grantWorkflow } from '../workflows/grants/workflow.js';

/** `directory` / `directories`: the tenants' directories, asked whether a grant's subject exists. */
export interface GrantDeps extends DirectoryDeps {
  pool: Pool;
  temporal: Client;
}

export async function loadGrantPolicy(pool: Pool, tenantId: string): Promise<{ version: number; grants: GrantPolicy }> {
  return readInScope(pool, tenantScope(tenantId), async (client) => {
    const row = await currentPolicy(client, tenantId);
    if (!row) throw notFound('tenant');
    return { version: row.version, grants: TenantPolicyDocument.parse(row.document).grants };
  });
}

/** Gate before the body is read: the caller must hold a role this tenant lets request something. */
export function authorizeRequester(principal: Principal, tenantId: string, policy: GrantPolicy): Binding[] {
  const roles = [...new Set(Object.values(policy.roles).flatMap((r) => r.requestableBy))];
  const bindings = bindingsWithRoles(principal, tenantId, roles);
  if (bindings.length === 0) throw forbidden('Your roles may not request grants in this tenant.');
  return bindings;
}

const MINUTE = 60_000;

/** The policy a grant is decided by, frozen into its workflow input at request time. */
export function policySnapshot(policy: { version: number; grants: GrantPolicy }, rule: GrantableRole): GrantInput['policy'] {
  return {
    policyVersion: policy.version,
    privileged: rule.privileged,
    approvalsRequired: rule.approvalsRequired,
    approvalTimeoutSeconds: policy.grants.approvalTimeoutMinutes * 60,
    maxDurationSeconds: rule.maxDurationMinutes * 60,
    extensionRequiresApproval: policy.grants.extensionRequiresApproval,
    maxTotalSeconds: policy.grants.maxTotalDurationMinutes * 60,
    revocationAlertPeriodSeconds: policy.grants.revocationAlertMinutes * 60,
  };
}

export async function requestGrant(
  deps: GrantDeps,
  principal: Principal,
  tenantId: string,
  policy: { version: number; grants: GrantPolicy },
  body: RequestGrantBody,
  meta: { idempotencyKey?: string; requestId: string },
): Promise<{ view: GrantView; replayed: boolean }> {
  const rule = policy.grants.roles[body.role];
  if (!rule)
    throw badRequest('That role cannot be requested in this tenant.', [
      { path: 'body.role', message: `not grantable under policy version ${policy.version}` },
    ]);
  if (bindingsWithRoles(principal, tenantId, rule.requestableBy).length === 0) {
    throw forbidden(`Your roles may not request ${body.role}; it needs one of: ${rule.requestableBy.join(', ')}.`);
  }
  const now = Date.now();
  const startAt = body.startAt ? Date.parse(body.startAt) : now;
  const endAt = body.endAt ? Date.parse(body.endAt) : startAt + body.durationMinutes! * MINUTE;
  const issues: { path: string; message: string }[] = [];
  if (startAt < now - MINUTE) issues.push({ path: 'body.startAt', message: 'is in the past' });
  if (endAt <= startAt) issues.push({ path: 'body.endAt', message: 'must be after startAt' });
  if (endAt - startAt > rule.maxDurationMinutes * MINUTE) {
    issues.push({
      path: body.endAt ? 'body.endAt' : 'body.durationMinutes',
      message: `longer than the policy maximum of ${rule.maxDurationMinutes} minutes for ${body.role}`,
    });
  }
  if (policy.grants.justificationRequired && !body.justification)
    issues.push({ path: 'body.justification', message: 'required by the tenant policy' });
  if (policy.grants.ticketPattern !== null && !(body.ticket && ticketMatches(policy.grants.ticketPattern, body.ticket))) {
    issues.push({ path: 'body.ticket', message: `must match ${policy.grants.ticketPattern}` });
  }
  if (issues.length) throw badRequest('The request does not meet the tenant grant policy.', issues);

  const requestHash = createHash('sha256')
    .update(JSON.stringify({ ...body, tenantId }))
    .digest('hex');
  const input: GrantInput = {
    grantId: randomUUID(),
    tenantId,
    subjectId: body.subjectId,
    role: body.role,
    requesterId: principal.actorId,
    justification: body.justification ?? null,
    ticket: body.ticket ?? null,
    startAt: new Date(startAt).toISOString(),
    durationSeconds: Math.round((endAt - startAt) / 1000),
    requestId: meta.requestId,
    policy: policySnapshot(policy, rule),
  };

  const directory = await resolverOf(deps).directoryFor(tenantId);
  const user = await directory.getUser(tenantId, body.subjectId);
  if (user?.status !== 'active')
    throw badRequest('No such active user in this tenant’s directory.', [
      { path: 'body.subjectId', message: 'no active directory user with this id' },
    ]);

  // The read-model row and the idempotency key commit together before the workflow starts; a
  // retry with the same key finds the row and (re)starts the same workflow id, never a second one.
  const { view, replayed, stored } = await inScope(deps.pool, tenantScope(tenantId), async (client) => {
    if (meta.idempotencyKey) {
      const row = await grantByIdempotencyKey(client, tenantId, principal.actorId, meta.idempotencyKey);
      if (row) {
        if (row.request_hash !== requestHash) throw conflict('This Idempotency-Key was already used for a different request.');
        return { view: row.view, replayed: true, stored: undefined };
      }
    }
    const initial: GrantView = {
      grantId: input.grantId,
      tenantId,
      workflowId: grantWorkflowId(tenantId, input.grantId),
      subjectId: input.subjectId,
      role: input.role,
      requesterId: input.requesterId,
      status: 'pending_approval',
      endReason: null,
      justification: input.justification,
      ticket: input.ticket,
      policyVersion: policy.version,
      approvalsRequired: rule.approvalsRequired,
      approvals: [],
      deniedBy: null,
      startAt: input.startAt,
      endAt: new Date(endAt).toISOString(),
      activatedAt: null,
      endedAt: null,
      revocationVerifiedAt: null,
      pendingExtension: null,
      version: 0,
    };
    await upsertGrantRow(client, initial, { idempotencyKey: meta.idempotencyKey ?? null, requestHash, requestInput: input });
    return { view: initial, replayed: false, stored: input };
  }).catch(async (error: { code?: string }) => {
    if (error.code === '23505' && meta.idempotencyKey) {
      // A concurrent request with the same key won: answer with its grant.
      return { view: await grantByKey(deps.pool, tenantId, principal.actorId, meta.idempotencyKey), replayed: true, stored: undefined };
    }
    throw error;
  });

  // A replay of a grant that has already left pending/active answers with the record: starting
  // its workflow again would re-open a denied or ended grant.
  if (replayed && !OPEN_STATUSES.has(view.status)) return { view: await getGrant(deps.pool, tenantId, view.grantId), replayed };
  const startInput = stored ?? (await storedInput(deps.pool, tenantId, view.grantId));
  try {
    // A running id is joined; a closed one is refused (REJECT_DUPLICATE), so a grant id runs once.
    await deps.temporal.workflow.start<typeof grantWorkflow>(GRANT_WORKFLOW_TYPE, {
      taskQueue: GRANTS_TASK_QUEUE,
      workflowId: grantWorkflowId(tenantId, view.grantId),
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      args: [startInput],
      typedSearchAttributes: grantSearchAttributes(tenantId),
    });
  } catch (error) {
    // The grant's run has closed since the read above: it already exists, nothing to start.
    if (error instanceof WorkflowExecutionAlreadyStartedError) return { view: await getGrant(deps.pool, tenantId, view.grantId), replayed };
    // With a key, the row stays: a retry with the same key starts this same workflow. Without one
    // there is no retry to finish it, so the request is taken back rather than left as a pending
    // grant nobody runs. Should the start have reached Temporal after all, the workflow's first
    // event writes the row again. (Failing to withdraw leaves the row as before; the start's
    // error is the one to report.)
    if (stored && !meta.idempotencyKey) await withdrawRequest(deps.pool, tenantId, view.grantId).catch(() => undefined);
    throw error;
  }
  return { view: replayed ? await getGrant(deps.pool, tenantId, view.grantId) : view, replayed };
}

/** Statuses whose grant workflow may still be running (or not yet started, after a failed start). */
const OPEN_STATUSES: ReadonlySet<GrantStatus> = new Set<GrantStatus>(['pending_approval', 'scheduled', 'active', 'revoking']);

async function withdrawRequest(pool: Pool, tenantId: string, grantId: string): Promise<void> {
  await inScope(pool, tenantScope(tenantId), (client) => deleteUnstartedGrant(client, tenantId, grantId));
}

async function grantByKey(pool: Pool, tenantId: string, requesterId: string, key: string): Promise<GrantView> {
  return inScope(pool, tenantScope(tenantId), async (client) => (await grantByIdempotencyKey(client, tenantId, requesterId, key))!.view);
}

async function storedInput(pool: Pool, tenantId: string, grantId: string): Promise<GrantInput> {
  return inScope(pool, tenantScope(tenantId), async (client) => (await requestInputOf(client, tenantId, grantId))!);
}

export async function getGrant(pool: Pool, tenantId: string, grantId: string): Promise<GrantView> {
  return readInScope(pool, tenantScope(tenantId), async (client) => {
    const view = await grantViewOf(client, tenantId, grantId);
    if (!view) throw notFound('grant');
    return view;
  });
}

export interface GrantFilter {
  status?: string;
  subjectId?: string;
  role?: string;
  requesterId?: string;
  expiringBefore?: string;
  limit: number;
  cursor?: string;
}

function decodeCursor(cursor: string): { createdAt: string; grantId: string } {
  const position = decodeGrantCursor(cursor);
  if (!position) throw badRequest('Invalid cursor.', [{ path: 'query.cursor', message: 'not a cursor returned by this endpoint' }]);
  return position;
}

export async function listGrants(
  pool: Pool,
  tenantId: string,
  filter: GrantFilter,
): Promise<{ grants: GrantView[]; nextCursor: string | null }> {
  const after = filter.cursor ? decodeCursor(filter.cursor) : undefined;
  return readInScope(pool, tenantScope(tenantId), async (client) => {
    const rows = await listGrantRows(client, tenantId, {
      ...(filter.status ? { status: filter.status } : {}),
      ...(filter.subjectId ? { subjectId: filter.subjectId } : {}),
      ...(filter.role ? { role: filter.role } : {}),
      ...(filter.requesterId ? { requesterId: filter.requesterId } : {}),
      ...(filter.expiringBefore ? { expiringBefore: filter.expiringBefore } : {}),
      ...(after ? { after } : {}),
      limit: filter.limit + 1,
    });
    const page = rows.slice(0, filter.limit);
    const last = page.at(-1);
    return {
      grants: page.map((r) => r.view),
      nextCursor: rows.length > filter.limit && last ? encodeGrantCursor(last.created_at, last.grant_id) : null,
    };
  });
}

export type Decision = 'approve' | 'deny' | 'extend' | 'revoke' | 'relinquish';

/** Who may take a decision, before the workflow's own validator has its say. */
/**
 * Who may take a decision, before the workflow's own validator has its say. Returns the role
 * bindings that allowed it, for the audit trail.
 */
export function authorizeDecision(
  principal: Principal,
  tenantId: string,
  decision: Decision,
  grant: GrantView,
  policy: GrantPolicy,
): Binding[] {
  const inTenant = (roles: Role[]) => principal.bindings.filter((b) => roles.includes(b.role) && b.tenantId === tenantId);
  const anywhere = (roles: Role[]) => bindingsWithRoles(principal, tenantId, roles);
  const isRequester = principal.actorId === grant.requesterId;
  switch (decision) {
    case 'approve':
    case 'deny': {
      // The client tenant owns the decision: only its own approvers, bound in this tenant.
      const approvers = tenantApproverBindings(principal, tenantId);
      if (approvers.length === 0) throw forbidden('Only a tenant_approver of this tenant may decide on its grants.');
      return approvers;
    }
    case 'revoke': {
      const allowed = [...anywhere(['msp_admin', 'operator']), ...inTenant(['tenant_approver'])];
      if (allowed.length === 0) throw forbidden('Your roles may not revoke grants in this tenant.');
      return allowed;
    }
    case 'extend': {
      const allowed = anywhere(policy.roles[grant.role]?.requestableBy ?? []);
      if (!isRequester && allowed.length === 0) throw forbidden('Only the requester or someone who may request this role can extend it.');
      return allowed;
    }
    case 'relinquish':
      if (!isRequester) throw forbidden('Only the requester can relinquish a grant.');
      return [];
  }
}

const UPDATES = {
  approve: approveGrantUpdate,
  deny: denyGrantUpdate,
  revoke: revokeGrantUpdate,
  relinquish: relinquishGrantUpdate,
} as const;

/** Grants whose access an early end closes before the workflow takes it up (see closeAccessBeforeEnd). */
const ACCESS_MAY_BE_GIVEN: readonly GrantStatus[] = ['scheduled', 'active'];

/**
 * An early end (revoke, relinquish) closes the grant's access at the target before the request
 * goes to the workflow, which may be waiting for a worker (the Update is only taken up by one):
 * the access must not outlive the request by that wait. The entitlement's end becomes now and
 * stays there; `grant.access_closed` records it in the same transaction, once (a retried request
 * finds the end already requested and changes nothing). The workflow then ends the grant as
 * usual, closing the entitlement and verifying the target.
 *
 * Nothing to do for a grant that gives no access (pending, ended) or whose entitlement is not open
 * yet. The database down fails the request (503, changing nothing); a target that fails here
 * leaves the closing to the workflow, which retries until confirmed.
 */
async function closeAccessBeforeEnd(
  deps: GrantDeps,
  tenantId: string,
  grant: GrantView,
  decision: 'revoke' | 'relinquish',
  args: { actorId: string; comment?: string; authority?: Record<string, unknown> },
): Promise<void> {
  if (!ACCESS_MAY_BE_GIVEN.includes(grant.status)) return;
  const workflowId = grantWorkflowId(tenantId, grant.grantId);
  const key = { tenantId, subjectId: grant.subjectId, role: grant.role, sourceType: 'grant' as const, sourceId: grant.grantId };
  try {
    const directory = await resolverOf(deps).directoryFor(tenantId);
    await endAccessEarly(deps.pool, directory, key, async (client, request) => {
      await appendAuditEvent(client, {
        tenantId,
        eventId: randomUUID(),
        occurredAt: request.endRequestedAt,
        actor: { id: args.actorId, type: 'user' },
        action: 'grant.access_closed',
        target: { type: 'grant', id: grant.grantId },
        authority: args.authority ?? {},
        workflowId,
        runId: null,
        payload: {
          decision,
          comment: args.comment ?? null,
          subjectId: grant.subjectId,
          role: grant.role,
          previousEnd: request.previousEnd,
          removedFromTarget: request.removedFromTarget,
        },
      });
    });
  } catch (error) {
    // The database down is the caller's 503 (a retry closes the access at once); the target down
    // or refusing is the workflow's to retry, with alerts, so the request goes on to it.
    if (!(error instanceof DirectoryError)) throw error;
    console.warn(
      `grant ${grant.grantId}: access not closed ahead of the ${decision} (${(error as Error).message}); the workflow closes it`,
    );
  }
}

/** Sends a decision as a Temporal Update; the workflow validator's rejection becomes a 4xx. */
export async function decide(
  deps: GrantDeps,
  tenantId: string,
  grant: GrantView,
  decision: Decision,
  args: { actorId: string; comment?: string; additionalMinutes?: number; justification?: string; authority?: Record<string, unknown> },
): Promise<GrantView> {
  const handle = deps.temporal.workflow.getHandle(grantWorkflowId(tenantId, grant.grantId));
  if (decision === 'revoke' || decision === 'relinquish') await closeAccessBeforeEnd(deps, tenantId, grant, decision, args);
  try {
    if (decision === 'extend') {
      return await handle.executeUpdate(extendGrantUpdate, {
        args: [
          {
            actorId: args.actorId,
            additionalSeconds: args.additionalMinutes! * 60,
            justification: args.justification ?? null,
            authority: args.authority ?? {},
          },
        ],
      });
    }
    return await handle.executeUpdate(UPDATES[decision], {
      args: [{ actorId: args.actorId, comment: args.comment ?? null, authority: args.authority ?? {} }],
    });
  } catch (error) {
    const refusal = updateRefusal(error, {
      [GrantRejection.SelfApproval]: forbidden,
      [GrantRejection.NotTenantApprover]: forbidden,
      [GrantRejection.Unavailable]: (message) => new AppError(503, 'unavailable', message),
      [GrantRejection.ExtensionOverCap]: (message) =>
        badRequest(message, [{ path: 'body.additionalMinutes', message: 'exceeds the policy cap on total duration' }]),
      [GrantRejection.InvalidInput]: (message) => badRequest(message),
    });
    if (refusal) throw refusal;
    // A finished workflow accepts no updates: the decision no longer applies.
    if (error instanceof WorkflowNotFoundError)
      throw conflict(
        `The grant is ${grant.status === 'ended' || grant.status === 'denied' ? grant.status : 'no longer open'}; this decision no longer applies.`,
      );
    throw error;
  }
}
