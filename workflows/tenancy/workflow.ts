import {
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
import { unstorableText } from '../../core/unstorable.js';
import { confirmDecider, DECIDER_CHECK_OPTIONS } from '../decider.js';
import type { ActorType, Authority } from '../../core/audit/chain.js';
import {
  approvePolicyChangeUpdate,
  denyPolicyChangeUpdate,
  policyChangeQuery,
  PolicyChangeRejection,
  withdrawPolicyChangeUpdate,
  type PolicyChangeDecision,
  type PolicyChangeInput,
  type PolicyChangeView,
} from '../../core/tenancy/contract.js';

const { recordPolicyChangeEvent, applyPolicyChange } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});
const { confirmPolicyDecider } = proxyActivities<Activities>(DECIDER_CHECK_OPTIONS);
/** Before an approval or a denial is taken, the tenant's approvers are asked whether its actor is one of them. */
const DECIDER_CHECK_PATCH = 'policy-change-decider-checked';
const { notifyPolicyChange } = proxyActivities<Activities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 20 },
});

const iso = (ms: number) => new Date(ms).toISOString();
const reject = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });
const user = (id: string) => ({ id, type: 'user' as const });
const system = { id: 'system', type: 'system' as const };

/**
 * One proposed change to a tenant's policy that loosens its control: pending until the tenant's
 * approvers reach the quorum (then applied, or conflicted if the policy moved on), deny it, the
 * proposer withdraws it, or it times out. Decisions, items and documents live in PostgreSQL; the
 * history holds one update and one record per decision, so it stays bounded by the quorum.
 */
export async function policyChangeWorkflow(input: PolicyChangeInput): Promise<PolicyChangeView> {
  const { workflowId } = workflowInfo();
  const required = Math.max(1, input.approvalsRequired);
  const proposedAt = Date.now();
  const view: PolicyChangeView = {
    changeId: input.changeId,
    tenantId: input.tenantId,
    workflowId,
    status: 'pending',
    proposerId: input.proposer.id,
    baseVersion: input.baseVersion,
    appliedVersion: null,
    diff: input.diff,
    approvalsRequired: required,
    approvals: [],
    deniedBy: null,
    withdrawnBy: null,
    comment: input.comment,
    reason: null,
    proposedAt: iso(proposedAt),
    expiresAt: iso(proposedAt + input.approvalTimeoutSeconds * 1000),
    decidedAt: null,
    version: 0,
  };
  const baseAuthority: Authority = { policyVersion: input.baseVersion, changeId: input.changeId };
  // Counted once an approval's audit event is durable, so the change is never applied before it.
  let approvalsRecorded = 0;
  // An Update can arrive with the start; decisions wait until the proposal itself is on record,
  // so the audit trail is in lifecycle order.
  let proposalRecorded = false;
  const notifications: Promise<unknown>[] = [];

  const snapshot = (): PolicyChangeView => ({ ...view, approvals: [...view.approvals] });

  /** Persists the current view and one audit event, exactly once (event id made here). */
  async function record(
    action: string,
    actor: { id: string; type: ActorType },
    authority: Authority = {},
    payload: Record<string, unknown> = {},
    includeBase = false,
  ) {
    view.version++;
    const eventId = uuid4();
    const at = snapshot();
    const { notify } = await recordPolicyChangeEvent({
      eventId,
      action,
      actor,
      authority: { ...baseAuthority, ...authority },
      payload,
      view: at,
      ...(includeBase ? { includeBase } : {}),
    });
    if (notify) notifications.push(notifyPolicyChange({ eventId, action, view: at }).catch(() => undefined));
  }

  // ---------------------------------------------------------------- queries and updates
  setHandler(policyChangeQuery, () => view);

  /** Decisions apply only while pending and short of the quorum (once reached, the change is being applied). */
  function stillOpen(what: string) {
    if (view.status !== 'pending')
      throw reject(PolicyChangeRejection.NotApplicable, `The change is ${view.status}; there is nothing to ${what}.`);
    if (view.approvals.length >= required)
      throw reject(
        PolicyChangeRejection.NotApplicable,
        `The change has its ${required} approval(s) and is being applied; it cannot be ${what}d.`,
      );
  }
  function validActor({ actorId }: PolicyChangeDecision) {
    if (typeof actorId !== 'string' || actorId === '') throw reject(PolicyChangeRejection.InvalidInput, 'actorId is required.');
  }
  /**
   * Only as the Updates' validators, never in the handlers (validators do not run on replay): taken,
   * a decision the audit trail cannot store would fail its record on every retry and never answer.
   */
  const storable =
    (validate: (decision: PolicyChangeDecision) => void) =>
    (decision: PolicyChangeDecision): void => {
      validate(decision);
      const unstorable = unstorableText({ actorId: decision.actorId, authority: decision.authority, comment: decision.comment ?? null });
      if (unstorable.length > 0) throw reject(PolicyChangeRejection.InvalidInput, `${unstorable[0]!.path} ${unstorable[0]!.message}.`);
    };
  function approveValidator(decision: PolicyChangeDecision) {
    validActor(decision);
    stillOpen('approve');
    if (decision.actorId === view.proposerId)
      throw reject(PolicyChangeRejection.SelfApproval, 'The proposer cannot approve their own change.');
    if (view.approvals.some((a) => a.approverId === decision.actorId))
      throw reject(PolicyChangeRejection.DuplicateApprover, 'This approver has already approved; a quorum needs distinct approvers.');
  }
  function denyValidator(decision: PolicyChangeDecision) {
    validActor(decision);
    stillOpen('deny');
    if (decision.actorId === view.proposerId)
      throw reject(PolicyChangeRejection.SelfApproval, 'The proposer cannot decide on their own change; withdraw it instead.');
  }
  function withdrawValidator(decision: PolicyChangeDecision) {
    validActor(decision);
    stillOpen('withdraw');
  }

  /**
   * Waits for the proposal to be on record, then checks the decision again: other decisions may
   * have changed the state meanwhile. Without that wait the state changes before the first await,
   * so a decision arriving in the same task is validated against it.
   */
  async function whenProposed(check: () => void) {
    if (!proposalRecorded) await condition(() => proposalRecorded);
    check();
  }
  const refusals = {
    notApprover: PolicyChangeRejection.NotTenantApprover,
    unavailable: PolicyChangeRejection.Unavailable,
    decides: 'its policy changes',
  };
  const askDecider = (decision: PolicyChangeDecision) => () =>
    confirmPolicyDecider({ tenantId: input.tenantId, actorId: decision.actorId });

  setHandler(
    approvePolicyChangeUpdate,
    async (decision: PolicyChangeDecision) => {
      await whenProposed(() => approveValidator(decision));
      if (patched(DECIDER_CHECK_PATCH)) await confirmDecider(askDecider(decision), refusals, 'approved', () => approveValidator(decision));
      const approval = { approverId: decision.actorId, approvalId: uuid4(), at: iso(Date.now()), comment: decision.comment ?? null };
      view.approvals.push(approval);
      await record(
        'policy_change.approval_recorded',
        user(decision.actorId),
        { ...decision.authority, approvalIds: [approval.approvalId] },
        { approvals: view.approvals.length, required, comment: approval.comment },
      );
      approvalsRecorded++;
      // With the quorum reached, answer with the outcome (applied or conflicted), not "pending".
      if (view.approvals.length >= required) await condition(() => view.status !== 'pending');
      return view;
    },
    { validator: storable(approveValidator) },
  );

  setHandler(
    denyPolicyChangeUpdate,
    async (decision: PolicyChangeDecision) => {
      await whenProposed(() => denyValidator(decision));
      if (patched(DECIDER_CHECK_PATCH)) await confirmDecider(askDecider(decision), refusals, 'denied', () => denyValidator(decision));
      view.status = 'denied';
      view.deniedBy = decision.actorId;
      view.decidedAt = iso(Date.now());
      await record('policy_change.denied', user(decision.actorId), { ...decision.authority }, { comment: decision.comment ?? null });
      return view;
    },
    { validator: storable(denyValidator) },
  );

  setHandler(
    withdrawPolicyChangeUpdate,
    async (decision: PolicyChangeDecision) => {
      await whenProposed(() => withdrawValidator(decision));
      view.status = 'withdrawn';
      view.withdrawnBy = decision.actorId;
      view.decidedAt = iso(Date.now());
      await record('policy_change.withdrawn', user(decision.actorId), { ...decision.authority }, { comment: decision.comment ?? null });
      return view;
    },
    { validator: storable(withdrawValidator) },
  );

  // ---------------------------------------------------------------- lifecycle
  await record(
    'policy_change.proposed',
    input.proposer,
    { ...input.authority, ...(input.requestId ? { requestId: input.requestId } : {}) },
    {
      after: { document: input.document },
      diff: input.diff,
      approvalsRequired: required,
      expiresAt: view.expiresAt,
      comment: input.comment,
    },
    true,
  );
  proposalRecorded = true;

  await condition(() => approvalsRecorded >= required || view.status !== 'pending', input.approvalTimeoutSeconds * 1000);
  if (view.status !== 'pending') return finish();
  if (view.approvals.length < required) {
    view.status = 'timed_out';
    view.decidedAt = iso(Date.now());
    view.reason = `No quorum of ${required} approval(s) by ${view.expiresAt}; nothing changed.`;
    await record('policy_change.timed_out', system, {}, { approvals: view.approvals.length, required });
    return finish();
  }
  // The last approval came in time, though its record may still be on its way.
  await condition(() => approvalsRecorded >= required);

  view.decidedAt = iso(Date.now());
  view.version++;
  const eventId = uuid4();
  const outcome = await applyPolicyChange({
    eventId,
    actor: system,
    authority: { ...baseAuthority, approvalIds: view.approvals.map((a) => a.approvalId) },
    view: snapshot(),
    document: input.document,
    diff: input.diff,
  });
  view.status = outcome.status;
  view.appliedVersion = outcome.appliedVersion;
  view.reason = outcome.reason;
  if (outcome.notify) {
    const action = `policy_change.${outcome.status}`;
    notifications.push(notifyPolicyChange({ eventId, action, view: snapshot() }).catch(() => undefined));
  }
  return finish();

  async function finish(): Promise<PolicyChangeView> {
    await condition(allHandlersFinished);
    await Promise.all(notifications);
    return view;
  }
}
