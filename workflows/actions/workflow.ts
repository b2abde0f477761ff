import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  patched,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import type { ActorType, Authority } from '../../core/audit/chain.js';
import {
  ACTION_REFUSED,
  actionQuery,
  ActionRejection,
  approveActionUpdate,
  cancelActionUpdate,
  denyActionUpdate,
  initialActionView,
  type ActionDecision,
  type ActionInput,
  type ActionView,
} from '../../core/actions/contract.js';
import { DIRECTORY_TARGET_REJECTED } from '../../core/directory/connector.js';
import { boundedTargetRetry, readBackRetry } from '../../core/temporal.js';

const { recordActionEvent, checkActionApprovers } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});
// Bounded: an unlock the target takes hours to accept is no longer the unlock that was approved,
// so after about five minutes of a target that does not answer the action fails, visibly.
const { prepareAction, executeAction } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: boundedTargetRetry([DIRECTORY_TARGET_REJECTED, ACTION_REFUSED]),
});
const { verifyAction } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: readBackRetry([DIRECTORY_TARGET_REJECTED, ACTION_REFUSED]),
});

const iso = (ms: number) => new Date(ms).toISOString();
const reject = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });
const user = (id: string) => ({ id, type: 'user' as const });
const system = { id: 'system', type: 'system' as const };

/**
 * One remote action on one directory user: requested, approved by the tenant's own approvers
 * where its policy asks (or expired, denied, cancelled), carried out through the connector, and
 * confirmed by reading the target back. Every step is one audit event, written once by the id
 * made here. The history is bounded by the quorum: a handful of updates and activities.
 */
export async function actionWorkflow(input: ActionInput): Promise<ActionView> {
  const required = input.policy.approvalsRequired;
  // The id the workflow runs under, whoever started it (a test may start it under another id).
  const view: ActionView = { ...initialActionView(input, Date.now()), workflowId: workflowInfo().workflowId };
  const baseAuthority: Authority = {
    policyVersion: input.policy.policyVersion,
    ...(input.ticket ? { ticket: input.ticket } : {}),
    actionId: input.actionId,
  };
  // Counted once an approval's audit event is durable, so "approved" is never recorded before it.
  let approvalsRecorded = 0;
  // An Update sent with the start runs as soon as its handler exists; decisions wait until the
  // request itself is on record, so the audit trail is in lifecycle order.
  let requestRecorded = false;

  const snapshot = (): ActionView => ({ ...view, approvals: [...view.approvals] });

  /** Persists the current view and one audit event, exactly once (event id made here). */
  async function record(action: string, actor: { id: string; type: ActorType }, authority: Authority = {}, payload = {}) {
    view.version++;
    await recordActionEvent({ eventId: uuid4(), action, actor, authority: { ...baseAuthority, ...authority }, payload, view: snapshot() });
  }

  // ---------------------------------------------------------------- queries and updates
  setHandler(actionQuery, () => view);

  /** Decisions apply only while pending and short of the quorum (once reached, the action is under way). */
  function pending(what: string, { actorId }: ActionDecision) {
    if (typeof actorId !== 'string' || actorId === '') throw reject(ActionRejection.InvalidInput, 'actorId is required.');
    if (view.status !== 'pending_approval')
      throw reject(ActionRejection.NotApplicable, `The action is ${view.status}; it cannot be ${what}.`);
    if (view.approvals.length >= required)
      throw reject(ActionRejection.NotApplicable, `The action has its ${required} approval(s) and is under way; it cannot be ${what}.`);
  }
  function approveValidator(decision: ActionDecision) {
    pending('approved', decision);
    if (decision.actorId === view.requesterId)
      throw reject(ActionRejection.SelfApproval, 'The requester cannot approve their own request.');
    if (view.approvals.some((a) => a.approverId === decision.actorId))
      throw reject(ActionRejection.DuplicateApprover, 'This approver has already approved; a quorum needs distinct approvers.');
  }
  function denyValidator(decision: ActionDecision) {
    pending('denied', decision);
    if (decision.actorId === view.requesterId)
      throw reject(ActionRejection.SelfApproval, 'The requester cannot decide on their own request; cancel it instead.');
  }
  const cancelValidator = (decision: ActionDecision) => pending('cancelled', decision);

  /** Waits for the request to be on record, then checks again: other decisions may have run meanwhile. */
  async function whenRequested(check: () => void) {
    if (!requestRecorded) await condition(() => requestRecorded);
    check();
  }

  setHandler(
    approveActionUpdate,
    async (decision: ActionDecision) => {
      await whenRequested(() => approveValidator(decision));
      const approval = { approverId: decision.actorId, approvalId: uuid4(), at: iso(Date.now()), comment: decision.comment ?? null };
      view.approvals.push(approval);
      await record(
        'action.approval_recorded',
        user(decision.actorId),
        { ...decision.authority, approvalIds: [approval.approvalId] },
        { approvals: view.approvals.length, required, comment: approval.comment },
      );
      approvalsRecorded++;
      // With the quorum reached, answer once the action is under way rather than "pending".
      if (view.approvals.length >= required) await condition(() => view.status !== 'pending_approval');
      return view;
    },
    { validator: approveValidator },
  );

  const ending = (status: 'denied' | 'cancelled', validate: (decision: ActionDecision) => void) => async (decision: ActionDecision) => {
    await whenRequested(() => validate(decision));
    view.status = status;
    view.decidedBy = decision.actorId;
    await record(`action.${status}`, user(decision.actorId), { ...decision.authority }, { comment: decision.comment ?? null });
    return view;
  };
  setHandler(denyActionUpdate, ending('denied', denyValidator), { validator: denyValidator });
  setHandler(cancelActionUpdate, ending('cancelled', cancelValidator), { validator: cancelValidator });

  // ---------------------------------------------------------------- lifecycle
  await record('action.requested', user(input.requesterId), input.authority, {
    action: input.action,
    subjectId: input.subjectId,
    justification: input.justification,
    approvalsRequired: required,
    approvalExpiresAt: view.approvalExpiresAt,
  });
  requestRecorded = true;

  let approvedBy: Authority;
  if (required === 0) {
    view.status = 'executing';
    approvedBy = { autoApproved: true };
  } else {
    await condition(() => approvalsRecorded >= required || view.status !== 'pending_approval', input.policy.approvalTimeoutSeconds * 1000);
    if (view.status !== 'pending_approval') return finish(); // denied or cancelled
    if (view.approvals.length < required) {
      view.status = 'expired';
      view.outcome = `No quorum of ${required} approval(s) by ${view.approvalExpiresAt}; nothing was done.`;
      await record('action.expired', system, {}, { approvals: view.approvals.length, required });
      return finish();
    }
    // The last approval came in time, though its record may still be on its way.
    await condition(() => approvalsRecorded >= required);
    // Approvals count only from approvers who still are approvers now, just before the action
    // runs; below the quorum it is refused, nothing is done, and a new request gathers new ones.
    if (patched('action-approvers-recount')) {
      const { counting } = await checkActionApprovers({ tenantId: input.tenantId, approverIds: view.approvals.map((a) => a.approverId) });
      const lapsed = view.approvals.filter((a) => !counting.includes(a.approverId));
      if (view.approvals.length - lapsed.length < required) {
        view.status = 'refused';
        view.outcome =
          `Only ${view.approvals.length - lapsed.length} of the ${required} approval(s) still count: ` +
          `${lapsed.map((a) => a.approverId).join(', ')} no longer ${lapsed.length === 1 ? 'is an active approver' : 'are active approvers'} ` +
          'of the tenant; nothing was done.';
        await record(
          'action.refused',
          system,
          { approvalIds: view.approvals.filter((a) => counting.includes(a.approverId)).map((a) => a.approvalId) },
          { reason: view.outcome, lapsedApprovers: lapsed.map((a) => a.approverId), approvals: view.approvals.length, required },
        );
        return finish();
      }
    }
    view.status = 'executing';
    approvedBy = { approvalIds: view.approvals.map((a) => a.approvalId) };
  }
  await record('action.approved', system, approvedBy);

  const step = { tenantId: input.tenantId, subjectId: input.subjectId, action: input.action };
  let target: string;
  try {
    const prepared = await prepareAction(step);
    view.before = prepared.before;
    target = prepared.target;
  } catch (error) {
    return failed('prepare', error);
  }
  try {
    view.outcome = (await executeAction(step)).outcome;
  } catch (error) {
    return failed('execute', error);
  }
  view.executedAt = iso(Date.now());
  await record('action.executed', system, approvedBy, { target, before: view.before, outcome: view.outcome });

  try {
    view.after = (await verifyAction(step)).after;
  } catch (error) {
    return failed('verify', error);
  }
  view.status = 'completed';
  view.verifiedAt = iso(Date.now());
  await record('action.completed', system, approvedBy, { verified: true, after: view.after });
  return finish();

  /** The target refused, failed past the retries, or never showed the action done. */
  async function failed(stage: 'prepare' | 'execute' | 'verify', error: unknown): Promise<ActionView> {
    if (!(error instanceof ActivityFailure)) throw error;
    view.status = 'failed';
    view.outcome = error.cause?.message ?? error.message;
    await record('action.failed', system, approvedBy, { stage, error: view.outcome, before: view.before });
    return finish();
  }

  async function finish(): Promise<ActionView> {
    await condition(allHandlersFinished);
    return view;
  }
}
