import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import type { ActorType, Authority } from '../../core/audit/chain.js';
import {
  approveGrantUpdate,
  denyGrantUpdate,
  extendGrantUpdate,
  grantQuery,
  GrantRejection,
  relinquishGrantUpdate,
  REVOCATION_ALERT_THRESHOLD,
  revokeGrantUpdate,
  type DecisionInput,
  type EndReason,
  type ExtendInput,
  type GrantInput,
  type GrantView,
  type PendingExtension,
} from '../../core/grants/contract.js';
import { DIRECTORY_TARGET_REJECTED } from '../../core/directory/connector.js';
/** How long before expiry the "expiring soon" notification goes out (at most a tenth of the grant). */
const EXPIRY_WARNING_MS = 15 * 60_000;

const { recordGrantEvent, checkGrantEligibility, checkGrantApprovers } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});
const { grantAccess, extendAccess } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: [DIRECTORY_TARGET_REJECTED],
  },
});
// Revocation: bounded attempts per round so the workflow sees persistent failure and can alert;
// the rounds themselves never stop.
const { endAccess, verifyAccessGone } = proxyActivities<Activities>({
  // Short, so an attempt lost with a killed worker is retried within seconds, not half a minute.
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200 ms', backoffCoefficient: 2, maximumInterval: '5 seconds', maximumAttempts: REVOCATION_ALERT_THRESHOLD },
});
const { notifyGrant } = proxyActivities<Activities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 20 },
});

const iso = (ms: number) => new Date(ms).toISOString();
const reject = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });

export async function grantWorkflow(input: GrantInput): Promise<GrantView> {
  const { workflowId } = workflowInfo();
  const view: GrantView = {
    grantId: input.grantId,
    tenantId: input.tenantId,
    workflowId,
    subjectId: input.subjectId,
    role: input.role,
    requesterId: input.requesterId,
    status: 'pending_approval',
    endReason: null,
    justification: input.justification,
    ticket: input.ticket,
    policyVersion: input.policy.policyVersion,
    approvalsRequired: input.policy.approvalsRequired,
    approvals: [],
    deniedBy: null,
    startAt: input.startAt,
    endAt: iso(Date.parse(input.startAt) + input.durationSeconds * 1000),
    activatedAt: null,
    endedAt: null,
    revocationVerifiedAt: null,
    pendingExtension: null,
    version: 0,
  };
  let endRequested: { reason: EndReason; actorId: string; comment: string | null; authority: Authority } | undefined;
  let endAtMoved = false;
  // An extension's requester is being checked; no second extension starts meanwhile.
  let extensionChecking = false;
  // Counted once an approval's audit event is durable, so "approved" is never recorded before it.
  let approvalsRecorded = 0;
  // An Update sent with the start runs as soon as its handler exists; decisions wait until the
  // request itself is on record, so the audit trail is in lifecycle order.
  let requestRecorded = false;
  // Returns condition's own promise: an async wrapper would resume its caller a tick later, time
  // enough for another handler to change the state the caller has just re-checked.
  const afterRequest = () => condition(() => requestRecorded);
  const notifications: Promise<unknown>[] = [];
  // Whether the tenant had a webhook when the last event was recorded; no webhook, no delivery to run.
  let notifying = false;

  const baseAuthority: Authority = {
    policyVersion: input.policy.policyVersion,
    ...(input.ticket ? { ticket: input.ticket } : {}),
    grantId: input.grantId,
  };

  /** Persists the current view and one audit event, exactly once (event id made here). */
  async function record(
    action: string,
    actor: { id: string; type: ActorType },
    authority: Authority = {},
    payload: Record<string, unknown> = {},
  ) {
    view.version++;
    const eventId = uuid4();
    ({ notify: notifying } = await recordGrantEvent({
      eventId,
      action,
      actor,
      authority: { ...baseAuthority, ...authority },
      payload,
      view: { ...view },
    }));
    if (notifying) notifications.push(notifyGrant({ eventId, action, view: { ...view } }).catch(() => undefined));
  }
  const approvalIds = () => view.approvals.map((a) => a.approvalId);

  // ---------------------------------------------------------------- queries and updates
  setHandler(grantQuery, () => view);

  setHandler(
    approveGrantUpdate,
    async ({ actorId, comment, authority }: DecisionInput) => {
      await afterRequest();
      approveValidator({ actorId }); // again: another decision may have run while this one waited
      const approval = { approverId: actorId, approvalId: uuid4(), at: iso(Date.now()), comment: comment ?? null };
      if (view.status === 'pending_approval') {
        view.approvals.push(approval);
        await record(
          'grant.approval_recorded',
          { id: actorId, type: 'user' },
          { ...authority, approvalIds: [approval.approvalId] },
          { approvals: view.approvals.length, required: view.approvalsRequired },
        );
        approvalsRecorded++;
      } else {
        const extension = view.pendingExtension!;
        extension.approvals.push(approval);
        await record(
          'grant.extension_approval_recorded',
          { id: actorId, type: 'user' },
          { ...authority, approvalIds: [approval.approvalId] },
          { extensionId: extension.extensionId },
        );
        // Another decision may have run meanwhile: a concurrent approval already applied it, a
        // denial or the grant's end cleared it. Only the extension still pending is applied, once.
        if (view.pendingExtension === extension && extension.approvals.length >= Math.max(1, view.approvalsRequired))
          await applyExtension(extension);
      }
      return view;
    },
    { validator: (decision: DecisionInput) => approveValidator(decision) },
  );

  function approveValidator({ actorId }: Pick<DecisionInput, 'actorId'>) {
    const pending = view.status === 'pending_approval' ? view.approvals : view.pendingExtension?.approvals;
    if (!pending) throw reject(GrantRejection.NotApplicable, `The grant is ${view.status}; there is nothing to approve.`);
    const requesters = view.status === 'pending_approval' ? [view.requesterId] : [view.pendingExtension!.requestedBy, view.requesterId];
    // The grant's own requester does not approve an extension of it, whoever asked for it.
    if (requesters.includes(actorId)) throw reject(GrantRejection.SelfApproval, 'The requester cannot approve their own request.');
    if (pending.some((a) => a.approverId === actorId))
      throw reject(GrantRejection.DuplicateApprover, 'This approver has already approved; a quorum needs distinct approvers.');
  }

  setHandler(
    denyGrantUpdate,
    async ({ actorId, comment, authority }: DecisionInput) => {
      await afterRequest();
      denyValidator({ actorId });
      if (view.status === 'pending_approval') {
        view.status = 'denied';
        view.deniedBy = actorId;
        view.endedAt = iso(Date.now());
        await record('grant.denied', { id: actorId, type: 'user' }, { ...authority }, { comment: comment ?? null });
      } else {
        const extension = view.pendingExtension!;
        view.pendingExtension = null;
        await record(
          'grant.extension_denied',
          { id: actorId, type: 'user' },
          { ...authority },
          { extensionId: extension.extensionId, comment: comment ?? null },
        );
      }
      return view;
    },
    { validator: (decision: DecisionInput) => denyValidator(decision) },
  );

  function denyValidator({ actorId }: Pick<DecisionInput, 'actorId'>) {
    if (view.status !== 'pending_approval' && !view.pendingExtension)
      throw reject(GrantRejection.NotApplicable, `The grant is ${view.status}; there is nothing to deny.`);
    const requesters = view.status === 'pending_approval' ? [view.requesterId] : [view.pendingExtension!.requestedBy, view.requesterId];
    if (requesters.includes(actorId)) throw reject(GrantRejection.SelfApproval, 'The requester cannot decide on their own request.');
  }

  /** Applies `extension`, which the caller has just seen pending (no await in between). */
  async function applyExtension(extension: PendingExtension) {
    const approvals = extension.approvals.map((a) => a.approvalId);
    view.pendingExtension = null;
    const before = view.endAt;
    // Moved at once, so the expiry timer re-arms before anything else can run.
    view.endAt = iso(Date.parse(view.endAt) + extension.additionalSeconds * 1000);
    endAtMoved = true;
    // The target's own end moves too (a scheduled grant passes its end when it activates).
    if (view.status === 'active') {
      await extendAccess({
        tenantId: input.tenantId,
        subjectId: input.subjectId,
        role: input.role,
        sourceType: 'grant',
        sourceId: input.grantId,
        expiresAt: view.endAt,
      });
    }
    await record(
      'grant.extended',
      { id: extension.requestedBy, type: 'user' },
      { approvalIds: approvals },
      { before: { endAt: before }, after: { endAt: view.endAt }, extensionId: extension.extensionId },
    );
  }

  setHandler(
    extendGrantUpdate,
    async (extension: ExtendInput) => {
      const { actorId, additionalSeconds, justification, authority } = extension;
      // The one asking must still be allowed to request the role (as a grant's requester is at
      // activation); a second extension waits out this check rather than racing it.
      if (patched('extension-eligibility')) {
        extensionChecking = true;
        const eligibility = await checkGrantEligibility({
          tenantId: input.tenantId,
          subjectId: input.subjectId,
          role: input.role,
          requesterId: actorId,
        }).finally(() => (extensionChecking = false));
        if (!eligibility.eligible)
          throw reject(GrantRejection.NotApplicable, `The extension cannot be requested: ${eligibility.reason ?? 'not eligible'}.`);
        // The grant may have ended or been extended meanwhile.
        extendValidator(extension);
      }
      view.pendingExtension = {
        extensionId: uuid4(),
        requestedBy: actorId,
        additionalSeconds,
        justification: justification ?? null,
        approvals: [],
      };
      if (input.policy.extensionRequiresApproval && input.policy.approvalsRequired > 0) {
        await record(
          'grant.extension_requested',
          { id: actorId, type: 'user' },
          { ...authority },
          { extensionId: view.pendingExtension.extensionId, additionalSeconds, justification: justification ?? null },
        );
      } else {
        await applyExtension(view.pendingExtension);
      }
      return view;
    },
    { validator: (extension: ExtendInput) => extendValidator(extension) },
  );

  function extendValidator({ additionalSeconds }: ExtendInput) {
    if (view.status !== 'active' && view.status !== 'scheduled')
      throw reject(GrantRejection.NotApplicable, `The grant is ${view.status}; only a scheduled or active grant can be extended.`);
    if (view.pendingExtension || extensionChecking)
      throw reject(GrantRejection.NotApplicable, 'An extension is already waiting for approval.');
    if (!Number.isInteger(additionalSeconds) || additionalSeconds <= 0)
      throw reject(GrantRejection.InvalidInput, 'additionalSeconds must be a positive whole number.');
    const total = (Date.parse(view.endAt) - Date.parse(view.startAt)) / 1000 + additionalSeconds;
    if (total > input.policy.maxTotalSeconds) {
      throw reject(
        GrantRejection.ExtensionOverCap,
        `The grant would last ${total} s in total; policy allows at most ${input.policy.maxTotalSeconds} s.`,
      );
    }
  }

  const endValidator = (what: string) => (_decision: DecisionInput) => {
    if (!['pending_approval', 'scheduled', 'active'].includes(view.status) || endRequested) {
      throw reject(GrantRejection.NotApplicable, `The grant is ${view.status}; it cannot be ${what}.`);
    }
  };
  // Returns once the lifecycle has taken the request up (revoking or cancelled), not when the
  // target confirms: that can take as long as the target is down, and the caller should not wait.
  const endHandler =
    (reason: EndReason) =>
    async ({ actorId, comment, authority }: DecisionInput) => {
      endRequested = { reason, actorId, comment: comment ?? null, authority: { ...authority } };
      await condition(() => ['revoking', 'ended', 'cancelled'].includes(view.status));
      return view;
    };
  setHandler(revokeGrantUpdate, endHandler('revoked'), { validator: endValidator('revoked') });
  setHandler(relinquishGrantUpdate, endHandler('relinquished'), {
    validator: (decision: DecisionInput) => {
      endValidator('relinquished')(decision);
      if (decision.actorId !== view.requesterId) throw reject(GrantRejection.NotApplicable, 'Only the requester can relinquish a grant.');
    },
  });

  // ---------------------------------------------------------------- lifecycle
  const system = { id: 'system', type: 'system' as const };
  await record('grant.requested', { id: input.requesterId, type: 'user' }, input.requestId ? { requestId: input.requestId } : {}, {
    subjectId: input.subjectId,
    role: input.role,
    startAt: view.startAt,
    endAt: view.endAt,
    justification: input.justification,
    privileged: input.policy.privileged,
  });
  requestRecorded = true;

  if (input.policy.approvalsRequired === 0) {
    view.status = 'scheduled';
    await record('grant.approved', system, { autoApproved: true });
  } else {
    const decided = await condition(
      () => approvalsRecorded >= input.policy.approvalsRequired || view.status === 'denied' || endRequested !== undefined,
      input.policy.approvalTimeoutSeconds * 1000,
    );
    if (view.status === 'denied') return finish();
    if (endRequested) {
      view.status = 'cancelled';
      view.endedAt = iso(Date.now());
      await record('grant.cancelled', { id: endRequested.actorId, type: 'user' }, endRequested.authority, {
        comment: endRequested.comment,
      });
      return finish();
    }
    if (!decided) {
      view.status = 'approval_timed_out';
      view.endedAt = iso(Date.now());
      await record('grant.approval_timed_out', system);
      return finish();
    }
    view.status = 'scheduled';
    await record('grant.approved', system, { approvalIds: approvalIds() });
  }

  // Scheduled: wait for the start time (or a cancellation).
  const untilStart = Date.parse(view.startAt) - Date.now();
  if (untilStart > 0 && (await condition(() => endRequested !== undefined, untilStart))) {
    view.status = 'cancelled';
    view.endedAt = iso(Date.now());
    await record('grant.cancelled', { id: endRequested!.actorId, type: 'user' }, endRequested!.authority, {
      comment: endRequested!.comment,
    });
    return finish();
  }

  // Approval or a start that came too late: the window has closed, so access is never granted.
  if (Date.now() >= Date.parse(view.endAt)) return windowPassed();

  // Eligibility is checked again now, not only when the request was made.
  const eligibility = await checkGrantEligibility({
    tenantId: input.tenantId,
    subjectId: input.subjectId,
    role: input.role,
    requesterId: input.requesterId,
  });
  if (!eligibility.eligible) {
    view.status = 'ended';
    view.endReason = 'ineligible';
    view.endedAt = iso(Date.now());
    await record('grant.activation_refused', system, {}, { reason: eligibility.reason });
    return finish();
  }

  // Approvals count only from approvers who still are approvers now. Below quorum, the grant is
  // refused like an ineligible one: it never activates, and a new request gathers fresh approvals.
  if (input.policy.approvalsRequired > 0 && patched('activation-approvers')) {
    const { counting } = await checkGrantApprovers({
      tenantId: input.tenantId,
      approverIds: view.approvals.map((a) => a.approverId),
    });
    const lapsed = view.approvals.filter((a) => !counting.includes(a.approverId));
    if (view.approvals.length - lapsed.length < input.policy.approvalsRequired) {
      view.status = 'ended';
      view.endReason = 'ineligible';
      view.endedAt = iso(Date.now());
      await record(
        'grant.activation_refused',
        system,
        { approvalIds: approvalIds() },
        { reason: 'approvals from approvers no longer bound or active do not count', lapsedApprovalIds: lapsed.map((a) => a.approvalId) },
      );
      return finish();
    }
  }
  // A revoke that came while activation was checked: access is never given.
  if (endRequested && patched('revoke-during-activation')) {
    view.status = 'cancelled';
    view.endedAt = iso(Date.now());
    await record('grant.cancelled', { id: endRequested.actorId, type: 'user' }, endRequested.authority, {
      comment: endRequested.comment,
    });
    return finish();
  }

  // The check can take long (a database outage): the window may have closed meanwhile.
  if (Date.now() >= Date.parse(view.endAt)) return windowPassed();
  // The target is told the end too, so access stops on time even if this workflow is late.
  await grantAccess({
    tenantId: input.tenantId,
    subjectId: input.subjectId,
    role: input.role,
    sourceType: 'grant',
    sourceId: input.grantId,
    expiresAt: view.endAt,
  });
  view.status = 'active';
  view.activatedAt = iso(Date.now());
  await record('grant.activated', system, { approvalIds: approvalIds() }, { endAt: view.endAt });

  // Active until expiry, re-armed whenever an extension moves the end, or until ended early.
  // Approvers and the requester hear of the coming expiry once per end time.
  let warnedFor: string | undefined;
  for (;;) {
    endAtMoved = false;
    const remaining = Date.parse(view.endAt) - Date.now();
    if (remaining <= 0) break;
    const warnAhead = Math.min(EXPIRY_WARNING_MS, (Date.parse(view.endAt) - Date.parse(view.activatedAt)) / 10);
    // Only with a webhook to tell: otherwise the warning would be a timer that notifies nobody.
    if (notifying && warnedFor !== view.endAt && remaining > warnAhead) {
      if (await condition(() => endAtMoved || endRequested !== undefined, remaining - warnAhead)) {
        if (endRequested) break;
        continue;
      }
      warnedFor = view.endAt;
      notifications.push(notifyGrant({ eventId: uuid4(), action: 'grant.expiring_soon', view: { ...view } }).catch(() => undefined));
      continue;
    }
    await condition(() => endAtMoved || endRequested !== undefined, remaining);
    if (endRequested) break;
  }

  const reason: EndReason = endRequested?.reason ?? 'expired';
  const endedBy = endRequested ? { id: endRequested.actorId, type: 'user' as const } : system;
  view.status = 'revoking';
  view.pendingExtension = null;
  await record(
    `grant.${reason === 'expired' ? 'expiring' : reason === 'revoked' ? 'revoking' : 'relinquishing'}`,
    endedBy,
    endRequested?.authority ?? {},
    { comment: endRequested?.comment ?? null },
  );

  // endAccess reads the target back after removing; only when that does not confirm is it read again.
  const removal = await untilDone('remove', () =>
    endAccess({
      tenantId: input.tenantId,
      subjectId: input.subjectId,
      role: input.role,
      sourceType: 'grant',
      sourceId: input.grantId,
      reason,
    }),
  );
  const confirmation = removal.verification.gone
    ? removal.verification
    : await untilDone('verify', async () => {
        const check = await verifyAccessGone({
          tenantId: input.tenantId,
          subjectId: input.subjectId,
          role: input.role,
          sourceType: 'grant',
          sourceId: input.grantId,
        });
        if (!check.gone) throw ApplicationFailure.retryable('the target still shows the role', 'RevocationNotConfirmed');
        return check;
      });

  view.status = 'ended';
  view.endReason = reason;
  view.endedAt = iso(Date.now());
  view.revocationVerifiedAt = view.endedAt;
  await record(
    `grant.${reason}`,
    endedBy,
    {},
    { verified: true, stillHeldBy: confirmation.heldBy, lateByMs: Math.max(0, Date.now() - Date.parse(view.endAt)) },
  );
  return finish();

  /** Retries a revocation step in rounds forever; after the first failed round, raises one alert. */
  async function untilDone<T>(step: string, attempt: () => Promise<T>): Promise<T> {
    let alerted = false;
    for (let round = 1; ; round++) {
      try {
        return await attempt();
      } catch (error) {
        if (!alerted) {
          alerted = true;
          await record(
            'grant.revocation_alert',
            system,
            {},
            { step, attempts: round * REVOCATION_ALERT_THRESHOLD, error: (error as Error).message },
          );
        }
        await sleep(Math.min(60_000, 5_000 * round));
      }
    }
  }

  /** The window closed before access was given: it never will be. */
  async function windowPassed(): Promise<GrantView> {
    view.status = 'ended';
    view.endReason = 'expired';
    view.endedAt = iso(Date.now());
    await record('grant.window_passed', system, { approvalIds: approvalIds() }, { endAt: view.endAt });
    return finish();
  }

  async function finish(): Promise<GrantView> {
    await condition(allHandlersFinished);
    await Promise.all(notifications);
    return view;
  }
}
