import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import { confirmDecider, DECIDER_CHECK_OPTIONS } from '../decider.js';
import type { ActorType, Authority } from '../../core/audit/chain.js';
import { DIRECTORY_TARGET_REJECTED } from '../../core/directory/connector.js';
import { boundedTargetRetry, readBackRetry } from '../../core/temporal.js';
import {
  APPLY_REFUSED,
  applyQuery,
  ApplyRejection,
  approveApplyUpdate,
  denyApplyUpdate,
  initialApplyView,
  type ApplyDecision,
  type TemplateApplyInput,
  type TemplateApplyView,
} from '../../core/templates/contract.js';
import { applyFinishedSignal, cancelApplySignal, type ApplyOutcome } from '../../core/templates/rollouts.js';
import { unstorableText } from '../../core/unstorable.js';

const { recordApplyEvent, pinApplied } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});
const { confirmApplyDecider } = proxyActivities<Activities>(DECIDER_CHECK_OPTIONS);
// Bounded: a target that does not answer for about five minutes fails this tenant, visibly,
// rather than hold a rollout's wave.
const { planApply, snapshotTenant, applyVersion } = proxyActivities<Activities>({
  startToCloseTimeout: '60 seconds',
  retry: boundedTargetRetry([DIRECTORY_TARGET_REJECTED, APPLY_REFUSED]),
});
const { verifyApply } = proxyActivities<Activities>({
  startToCloseTimeout: '60 seconds',
  retry: readBackRetry([DIRECTORY_TARGET_REJECTED, APPLY_REFUSED]),
});

/** Before a denial is taken, the tenant's approvers are asked whether its actor is one of them. */
const DENY_CHECKS_APPROVER = 'template-apply-deny-checks-approver';
/** Before an approval is taken, likewise (it can close the gate on the tenant). */
const APPROVE_CHECKS_APPROVER = 'template-apply-approve-checks-approver';

const iso = (ms: number) => new Date(ms).toISOString();
const reject = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });
const user = (id: string) => ({ id, type: 'user' as const });
const system = { id: 'system', type: 'system' as const };

/**
 * One tenant's part of a rollout: plan, the tenant's approval gate when the plan loosens its
 * control, snapshot, apply through its connector, read back, pin. Every step is one audit event
 * on the tenant's chain, written once by the id made here; the plan and the snapshot live in
 * PostgreSQL, so the history holds ids and counters whatever the template's size.
 */
export async function templateApplyWorkflow(input: TemplateApplyInput): Promise<TemplateApplyView> {
  const view: TemplateApplyView = initialApplyView(input, workflowInfo().workflowId, iso(Date.now()));
  const baseAuthority: Authority = { rolloutId: input.rolloutId, templateId: input.templateId, templateVersion: input.version };
  const step = {
    rolloutId: input.rolloutId,
    tenantId: input.tenantId,
    templateId: input.templateId,
    version: input.version,
    parameters: input.parameters,
  };
  let approvalsRecorded = 0;
  let requestRecorded = false;
  // Its rollout was cancelled: if the apply has not begun, the tenant is skipped and nothing changes.
  let cancelledBy: string | null = null;

  async function record(action: string, actor: { id: string; type: ActorType }, authority: Authority = {}, payload = {}) {
    view.revision++;
    await recordApplyEvent({
      eventId: uuid4(),
      action,
      actor,
      authority: { ...baseAuthority, ...authority },
      payload,
      view: { ...view, approvals: [...view.approvals] },
    });
  }

  setHandler(applyQuery, () => view);
  setHandler(cancelApplySignal, (signal) => {
    // Anyone who can reach Temporal can send it: a payload without an actor id (which used to fail
    // every workflow task, wedging the tenant's gate) is ignored.
    const actorId: unknown = (signal as { actorId?: unknown } | null | undefined)?.actorId;
    if ((typeof actorId !== 'string' || actorId === '') && patched('template-apply-ignores-malformed-cancel')) return;
    cancelledBy ??= actorId as string;
  });

  /** Decisions apply only at the gate and short of the quorum. */
  function atGate(what: string, { actorId }: ApplyDecision) {
    if (typeof actorId !== 'string' || actorId === '') throw reject(ApplyRejection.InvalidInput, 'actorId is required.');
    if (view.status !== 'awaiting_approval' || view.approvals.length >= view.approvalsRequired) {
      throw reject(ApplyRejection.NotApplicable, `The apply is ${view.status}, not waiting for the tenant; it cannot be ${what}.`);
    }
  }
  function approveValidator(decision: ApplyDecision) {
    atGate('approved', decision);
    if (decision.actorId === view.requesterId) throw reject(ApplyRejection.SelfApproval, 'Who started the apply cannot approve it.');
    if (view.approvals.some((a) => a.approverId === decision.actorId)) {
      throw reject(ApplyRejection.DuplicateApprover, 'This approver has already approved; a quorum needs distinct approvers.');
    }
  }
  const denyValidator = (decision: ApplyDecision) => atGate('denied', decision);
  /**
   * Only as the Updates' validators, never in the handlers (validators do not run on replay, so a
   * history that took such a decision before this check replays as it ran): taken, a decision the
   * audit trail cannot store would fail its record on every retry and never answer.
   */
  function storable(decision: ApplyDecision) {
    const unstorable = unstorableText({ actorId: decision?.actorId, authority: decision?.authority, comment: decision?.comment ?? null });
    if (unstorable.length > 0) throw reject(ApplyRejection.InvalidInput, `${unstorable[0]!.path} ${unstorable[0]!.message}.`);
  }
  async function whenRequested(check: () => void) {
    if (!requestRecorded) await condition(() => requestRecorded);
    check();
  }
  const refusals = {
    notApprover: ApplyRejection.NotTenantApprover,
    unavailable: ApplyRejection.Unavailable,
    decides: 'its apply',
  };
  const askDecider = (decision: ApplyDecision) => () => confirmApplyDecider({ tenantId: input.tenantId, actorId: decision.actorId });

  setHandler(
    approveApplyUpdate,
    async (decision: ApplyDecision) => {
      await whenRequested(() => approveValidator(decision));
      if (patched(APPROVE_CHECKS_APPROVER))
        await confirmDecider(askDecider(decision), refusals, 'approved', () => approveValidator(decision));
      const approval = { approverId: decision.actorId, approvalId: uuid4(), at: iso(Date.now()), comment: decision.comment ?? null };
      view.approvals.push(approval);
      await record(
        'template.apply.approval_recorded',
        user(decision.actorId),
        { ...decision.authority, approvalIds: [approval.approvalId] },
        {
          approvals: view.approvals.length,
          required: view.approvalsRequired,
          comment: approval.comment,
        },
      );
      approvalsRecorded++;
      return view;
    },
    {
      validator: (decision: ApplyDecision) => {
        approveValidator(decision);
        storable(decision);
      },
    },
  );
  setHandler(
    denyApplyUpdate,
    async (decision: ApplyDecision) => {
      await whenRequested(() => denyValidator(decision));
      // A denial ends the apply at once: it counts only from one of the tenant's own approvers.
      if (patched(DENY_CHECKS_APPROVER)) await confirmDecider(askDecider(decision), refusals, 'denied', () => denyValidator(decision));
      view.status = 'denied';
      view.decidedBy = decision.actorId;
      view.outcome = 'denied by the tenant; nothing was changed';
      await record('template.apply.denied', user(decision.actorId), { ...decision.authority }, { comment: decision.comment ?? null });
      return view;
    },
    {
      validator: (decision: ApplyDecision) => {
        denyValidator(decision);
        storable(decision);
      },
    },
  );

  // ---------------------------------------------------------------- plan and gate
  // Declared before the plan: a plan that fails records its failure with it (it was in its
  // temporal dead zone there, so a failed plan failed the workflow task instead).
  let approvedBy: Authority = { autoApproved: true };
  await record('template.apply.requested', input.requester, input.authority, { parameters: input.parameters });
  requestRecorded = true;
  try {
    const planned = await planApply(step);
    view.summary = planned.summary;
    view.needsApproval = planned.needsApproval;
    view.approvalsRequired = planned.needsApproval ? planned.approvalsRequired : 0;
  } catch (error) {
    return failed('plan', error);
  }

  if (cancelledBy) return cancelled();
  if (view.needsApproval) {
    view.status = 'awaiting_approval';
    view.approvalExpiresAt = iso(Date.now() + input.approvalTimeoutSeconds * 1000);
    await record(
      'template.apply.planned',
      system,
      {},
      { summary: view.summary, needsApproval: true, approvalsRequired: view.approvalsRequired },
    );
    await condition(
      () => approvalsRecorded >= view.approvalsRequired || view.status !== 'awaiting_approval' || cancelledBy !== null,
      input.approvalTimeoutSeconds * 1000,
    );
    if (view.status !== 'awaiting_approval') return finish(); // denied
    if (cancelledBy && view.approvals.length < view.approvalsRequired) return cancelled();
    if (view.approvals.length < view.approvalsRequired) {
      view.status = 'skipped';
      view.outcome = `No quorum of ${view.approvalsRequired} tenant approval(s) by ${view.approvalExpiresAt}; the tenant was skipped and nothing changed.`;
      await record('template.apply.skipped', system, {}, { approvals: view.approvals.length, required: view.approvalsRequired });
      return finish();
    }
    await condition(() => approvalsRecorded >= view.approvalsRequired);
    approvedBy = { approvalIds: view.approvals.map((a) => a.approvalId) };
    view.status = 'applying';
    await record('template.apply.approved', system, approvedBy);
  } else {
    view.status = 'applying';
    await record('template.apply.planned', system, approvedBy, { summary: view.summary, needsApproval: false });
  }

  // ---------------------------------------------------------------- snapshot, apply, read back, pin
  try {
    view.snapshotId = (await snapshotTenant({ ...step, snapshotId: uuid4() })).snapshotId;
  } catch (error) {
    return failed('snapshot', error);
  }
  try {
    view.applied = await applyVersion({
      ...step,
      approved: view.needsApproval === true,
      policyEventId: uuid4(),
      actor: system,
      authority: { ...baseAuthority, ...approvedBy },
    });
  } catch (error) {
    return failed('apply', error);
  }
  view.appliedAt = iso(Date.now());
  await record('template.apply.applied', system, approvedBy, { snapshotId: view.snapshotId, applied: view.applied });
  try {
    await verifyApply(step);
  } catch (error) {
    return failed('verify', error);
  }
  await pinApplied({ ...step, by: input.requester.id });
  view.status = 'applied';
  view.verifiedAt = iso(Date.now());
  await record('template.applied', system, approvedBy, {
    verified: true,
    pinned: { templateId: input.templateId, version: input.version },
  });
  return finish();

  async function failed(stage: 'plan' | 'snapshot' | 'apply' | 'verify', error: unknown): Promise<TemplateApplyView> {
    if (!(error instanceof ActivityFailure)) throw error;
    view.status = 'failed';
    view.outcome = `${stage}: ${error.cause?.message ?? error.message}`;
    await record('template.apply.failed', system, approvedBy, { stage, error: view.outcome, snapshotId: view.snapshotId });
    return finish();
  }

  async function cancelled(): Promise<TemplateApplyView> {
    view.status = 'skipped';
    view.outcome = 'The rollout was cancelled before the apply began; the tenant was skipped and nothing changed.';
    await record('template.apply.cancelled', user(cancelledBy!), {}, { approvals: view.approvals.length });
    return finish();
  }

  async function finish(): Promise<TemplateApplyView> {
    await condition(allHandlersFinished);
    // Started by a rollout: it hears how the tenant ended (at its workflow id, whichever run is current).
    const parent = workflowInfo().parent;
    if (parent && patched('template-apply-reports-to-rollout')) {
      const status = view.status as ApplyOutcome;
      await getExternalWorkflowHandle(parent.workflowId)
        .signal(applyFinishedSignal, { tenantId: input.tenantId, status })
        .catch(() => undefined); // the rollout is gone (terminated): nobody to tell
    }
    return view;
  }
}
