import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import { confirmDecider, DECIDER_CHECK_OPTIONS } from '../decider.js';
import type { ActorType, Authority } from '../../core/audit/chain.js';
import {
  approveGrantUpdate,
  denyGrantUpdate,
  extendGrantUpdate,
  grantQuery,
  GrantRejection,
  relinquishGrantUpdate,
  REVOCATION_ALERT_PERIOD_SECONDS,
  REVOCATION_ALERT_THRESHOLD,
  REVOCATION_ROUND_MAX_SECONDS,
  REVOCATION_RUN_MAX_EVENTS,
  revokeGrantUpdate,
  type DecisionInput,
  type EndReason,
  type ExtendInput,
  type GrantFailure,
  type GrantInput,
  type GrantRevocationState,
  type GrantView,
  type PendingExtension,
} from '../../core/grants/contract.js';
import { DIRECTORY_TARGET_REJECTED } from '../../core/directory/connector.js';
import { PERMANENT_DATA_ERROR } from '../../core/errors.js';
import { scrubUnstorable } from '../../core/unstorable.js';
/** How long before expiry the "expiring soon" notification goes out (at most a tenth of the grant). */
const EXPIRY_WARNING_MS = 15 * 60_000;

const { recordGrantEvent, checkGrantEligibility, checkGrantApprovers, checkGrantActivation, grantEventRecorded } =
  proxyActivities<Activities>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  });
const targetWrites: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: [DIRECTORY_TARGET_REJECTED],
  },
};
const { grantAccess, extendAccess } = proxyActivities<Activities>(targetWrites);
// An extension's move of the target's end: a revocation that starts meanwhile cancels it and waits
// for the attempt under way to finish, so it never lands after the revocation's own writes.
const { extendAccess: extendAccessUntilRevoked } = proxyActivities<Activities>({
  ...targetWrites,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});
// Revocation: bounded attempts per round so the workflow sees persistent failure and can alert;
// the rounds themselves never stop.
const { endAccess, verifyAccessGone, endGrantAccess } = proxyActivities<Activities>({
  // Short, so an attempt lost with a killed worker is retried within seconds, not half a minute.
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200 ms', backoffCoefficient: 2, maximumInterval: '5 seconds', maximumAttempts: REVOCATION_ALERT_THRESHOLD },
});
// Whether an extension's approver is one of the tenant's own, asked while the decision waits.
const { checkGrantApprovers: checkDecider } = proxyActivities<Activities>(DECIDER_CHECK_OPTIONS);
const { notifyGrant } = proxyActivities<Activities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 20 },
});

type EndAccessResult = Awaited<ReturnType<Activities['endAccess']>>;
type RevocationState = Omit<GrantRevocationState, 'view' | 'notifying' | 'failure'>;

/**
 * An extension's approval is taken only from one of the tenant's own approvers, asked first: it
 * moves the end of access at once, with no later recount (a grant's first approvals are counted
 * again at activation).
 */
const EXTENSION_APPROVER_PATCH = 'extension-approver-checked';
/** Activation's eligibility and approver checks in one activity (checkGrantActivation). */
const ACTIVATION_CHECK_PATCH = 'activation-check-in-one';
/** An expiry's record, removal, read-back and final record in one activity (endGrantAccess). */
const EXPIRY_IN_ONE_PATCH = 'expiry-in-one-activity';
/** An expiry whose activity failed asks whether an attempt recorded the end before the rounds start. */
const EXPIRY_END_RECORDED_PATCH = 'expiry-asks-end-recorded';
type GrantAccessResult = Awaited<ReturnType<Activities['grantAccess']>>;

const iso = (ms: number) => new Date(ms).toISOString();
const reject = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });

/** The failure of an activity that refused for good with `type` (e.g. PERMANENT_DATA_ERROR), if `error` is one. */
function activityRefusal(error: unknown, type: string): { type: string; message: string } | undefined {
  if (!(error instanceof ActivityFailure) || !(error.cause instanceof ApplicationFailure) || error.cause.type !== type) return undefined;
  return { type, message: scrubUnstorable(error.cause.message) };
}

export async function grantWorkflow(input: GrantInput): Promise<GrantView> {
  const { workflowId } = workflowInfo();
  const view: GrantView = input.resume?.view ?? {
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
  let requestRecorded = input.resume !== undefined;
  // What stopped the grant for good (the database refused its data): from then on it only ends.
  let failure: GrantFailure | undefined = input.resume?.failure ?? undefined;
  // Access was asked of the target, so ending means removing it and reading the target back.
  let accessRequested = input.resume !== undefined;
  // Extensions' moves of the target's end still in flight; a revocation settles them first.
  const extensionWrites = new Set<CancellationScope>();
  // Returns condition's own promise: an async wrapper would resume its caller a tick later, time
  // enough for another handler to change the state the caller has just re-checked.
  const afterRequest = () => condition(() => requestRecorded || failure !== undefined);
  const notifications: Promise<unknown>[] = [];
  // Whether the tenant had a webhook when the last event was recorded; no webhook, no delivery to run.
  let notifying = input.resume?.notifying ?? false;
  const alertPeriodMs = (input.policy.revocationAlertPeriodSeconds ?? REVOCATION_ALERT_PERIOD_SECONDS) * 1000;

  const baseAuthority: Authority = {
    policyVersion: input.policy.policyVersion,
    ...(input.ticket ? { ticket: input.ticket } : {}),
    grantId: input.grantId,
  };
  const access = {
    tenantId: input.tenantId,
    subjectId: input.subjectId,
    role: input.role,
    sourceType: 'grant' as const,
    sourceId: input.grantId,
  };

  /**
   * Persists the current view and one audit event, exactly once (event id made here). When the
   * database refuses the event for good, the grant has failed: the caller gets a failure and the
   * lifecycle takes its failure path. Once failed, events go scrubbed of unstorable text, and one
   * refused even so is logged and left out rather than retried forever.
   */
  async function record(
    action: string,
    actor: { id: string; type: ActorType },
    authority: Authority = {},
    payload: Record<string, unknown> = {},
    eventId = uuid4(),
  ) {
    view.version++;
    const event = { eventId, action, actor, authority: { ...baseAuthority, ...authority }, payload, view: { ...view } };
    const scrubbed = failure !== undefined;
    try {
      ({ notify: notifying } = await recordGrantEvent(scrubbed ? scrubUnstorable(event) : event));
    } catch (error) {
      const refused = activityRefusal(error, PERMANENT_DATA_ERROR);
      if (!refused) throw error;
      if (scrubbed) {
        log.error('a grant event was refused even with its text scrubbed; it is left out', { action, error: refused.message });
        return;
      }
      fail({ step: action, ...refused });
      throw reject(PERMANENT_DATA_ERROR, `The grant could not record ${action}: ${refused.message}. It is ending.`);
    }
    if (notifying) notifications.push(notifyGrant({ eventId, action, view: { ...view } }).catch(() => undefined));
  }

  /** The first failure stops the grant; the view loses the text that could not be stored. */
  function fail(what: GrantFailure) {
    failure ??= what;
    Object.assign(view, scrubUnstorable(view));
  }
  /** Fails the grant when `error` is the database refusing a lifecycle step's data for good. */
  function failIfRefused(step: string, error: unknown) {
    const refused = activityRefusal(error, PERMANENT_DATA_ERROR);
    if (refused) fail({ step, ...refused });
  }
  const failedRejection = () => reject(GrantRejection.NotApplicable, 'The grant has failed and is ending; no decision applies.');
  const approvalIds = () => view.approvals.map((a) => a.approvalId);

  // ---------------------------------------------------------------- queries and updates
  setHandler(grantQuery, () => view);

  setHandler(
    approveGrantUpdate,
    async ({ actorId, comment, authority }: DecisionInput) => {
      await afterRequest();
      approveValidator({ actorId }); // again: another decision may have run while this one waited
      if (view.status !== 'pending_approval' && patched(EXTENSION_APPROVER_PATCH)) {
        await confirmDecider(
          async () => ({ counts: (await checkDecider({ tenantId: input.tenantId, approverIds: [actorId] })).counting.includes(actorId) }),
          { notApprover: GrantRejection.NotTenantApprover, unavailable: GrantRejection.Unavailable, decides: 'an extension of its grants' },
          'approved',
          () => approveValidator({ actorId }),
        );
      }
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
    if (failure) throw failedRejection();
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
    if (failure) throw failedRejection();
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
    if (view.status === 'active' && patched('extension-write-settles-before-revocation')) {
      const write = new CancellationScope();
      extensionWrites.add(write);
      try {
        await write.run(() => extendAccessUntilRevoked({ ...access, expiresAt: view.endAt }));
      } catch (error) {
        // A revocation began and cancelled it (before an attempt, or stopped its retries after
        // one): the target keeps the revocation's outcome, and the extension is recorded as decided.
        const stopped = isCancellation(error) || (error instanceof ActivityFailure && error.retryState === 'CANCEL_REQUESTED');
        if (!stopped) throw error;
      } finally {
        extensionWrites.delete(write);
      }
    } else if (view.status === 'active') {
      await extendAccess({ ...access, expiresAt: view.endAt });
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
    if (failure) throw failedRejection();
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
    if (!['pending_approval', 'scheduled', 'active'].includes(view.status) || endRequested || failure) {
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

  // A revocation that continued as new picks up where it stood.
  if (input.resume) return revocation(input.resume);

  try {
    return await lifecycle();
  } catch (error) {
    if (!failure || error instanceof ContinueAsNew) throw error;
  }
  // The failure path: access that may have been given is removed and verified gone; the grant ends `failed`.
  view.pendingExtension = null;
  if (!accessRequested) {
    view.status = 'ended';
    view.endReason = 'failed';
    view.endedAt = iso(Date.now());
    await record('grant.failed', system, { approvalIds: approvalIds() }, { failure });
    return finish();
  }
  view.status = 'revoking';
  const closed = patched('early-end-closes-target-first') ? await closeAccessFirst('failed') : undefined;
  await record('grant.failing', system, {}, { failure });
  return revocation({ reason: 'failed', endedBy: system, step: 'remove', round: 0, alertedAt: null }, closed);

  /** Request to end: the grant's normal course. Throws once the grant has failed (see `failure`). */
  async function lifecycle(): Promise<GrantView> {
    const stopIfFailed = () => {
      if (failure) throw reject(PERMANENT_DATA_ERROR, `The grant failed at ${failure.step}: ${failure.message}`);
    };
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
        () =>
          approvalsRecorded >= input.policy.approvalsRequired ||
          view.status === 'denied' ||
          endRequested !== undefined ||
          failure !== undefined,
        input.policy.approvalTimeoutSeconds * 1000,
      );
      stopIfFailed();
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
    if (untilStart > 0 && (await condition(() => endRequested !== undefined || failure !== undefined, untilStart))) {
      stopIfFailed();
      view.status = 'cancelled';
      view.endedAt = iso(Date.now());
      await record('grant.cancelled', { id: endRequested!.actorId, type: 'user' }, endRequested!.authority, {
        comment: endRequested!.comment,
      });
      return finish();
    }

    // Approval or a start that came too late: the window has closed, so access is never granted.
    if (Date.now() >= Date.parse(view.endAt)) return windowPassed();

    // Eligibility is checked again now, not only when the request was made; with it, which
    // approvals still count (only from approvers who still are approvers now).
    const oneCheck = patched(ACTIVATION_CHECK_PATCH);
    const approverIds = view.approvals.map((a) => a.approverId);
    let eligibility: { eligible: boolean; reason: string | null; counting?: string[] };
    try {
      eligibility = oneCheck
        ? await checkGrantActivation({
            ...activationCheck(input.requesterId),
            approverIds: input.policy.approvalsRequired > 0 ? approverIds : [],
          })
        : await checkGrantEligibility(activationCheck(input.requesterId));
    } catch (error) {
      failIfRefused(oneCheck ? 'checkGrantActivation' : 'checkGrantEligibility', error);
      throw error;
    }
    stopIfFailed();
    if (!eligibility.eligible) {
      view.status = 'ended';
      view.endReason = 'ineligible';
      view.endedAt = iso(Date.now());
      await record('grant.activation_refused', system, {}, { reason: eligibility.reason });
      return finish();
    }

    // Below quorum, the grant is refused like an ineligible one: it never activates, and a new
    // request gathers fresh approvals.
    if (input.policy.approvalsRequired > 0 && patched('activation-approvers')) {
      let counting: string[];
      try {
        ({ counting } = oneCheck
          ? { counting: eligibility.counting ?? [] }
          : await checkGrantApprovers({ tenantId: input.tenantId, approverIds }));
      } catch (error) {
        failIfRefused('checkGrantApprovers', error);
        throw error;
      }
      stopIfFailed();
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
    if (endRequested && patched('revoke-during-activation')) return cancelledOnRequest(endRequested);

    // The check can take long (a database outage): the window may have closed meanwhile.
    if (Date.now() >= Date.parse(view.endAt)) return windowPassed();
    // The target is told the end too, so access stops on time even if this workflow is late.
    accessRequested = true;
    let targetEnd = view.endAt;
    let given: GrantAccessResult;
    try {
      given = await grantAccess({ ...access, expiresAt: targetEnd });
    } catch (error) {
      // The target will never take it (no such role or user any more): the grant ends here, with
      // its reason on record, rather than failing the workflow and leaving it `scheduled`.
      const rejected = activityRefusal(error, DIRECTORY_TARGET_REJECTED);
      if (!rejected) throw error;
      accessRequested = false; // the activity ended the entitlement and assigned nothing
      stopIfFailed();
      // Refused because a revoke had already closed the access (usecases/grants.ts): cancelled.
      if (endRequested && patched('activation-refused-after-revoke')) return cancelledOnRequest(endRequested);
      view.status = 'ended';
      view.endReason = 'failed';
      view.endedAt = iso(Date.now());
      await record('grant.activation_failed', system, { approvalIds: approvalIds() }, { reason: rejected.message });
      return finish();
    }
    // An extension approved while the access was being given moved the end after the target was
    // told: the target learns the extended end before the grant counts as active.
    while (view.endAt !== targetEnd && !endRequested && !failure && patched('activation-follows-extension')) {
      targetEnd = view.endAt;
      try {
        await extendAccess({ ...access, expiresAt: targetEnd });
      } catch (error) {
        // The target took the access but refuses the later end: it ends the access sooner, never later.
        if (!activityRefusal(error, DIRECTORY_TARGET_REJECTED)) throw error;
        break;
      }
    }
    stopIfFailed();
    view.status = 'active';
    // When the target took it, by the database's clock: a workflow task replayed after a worker
    // crash would otherwise date the activation by when it resumed, perhaps after the window.
    view.activatedAt = (patched('activated-at-target-clock') ? given.assignedAt : undefined) ?? iso(Date.now());
    await record('grant.activated', system, { approvalIds: approvalIds() }, { endAt: view.endAt });

    // Active until expiry, re-armed whenever an extension moves the end, or until ended early.
    // Approvers and the requester hear of the coming expiry once per end time.
    let warnedFor: string | undefined;
    const interrupted = () => endAtMoved || endRequested !== undefined || failure !== undefined;
    for (;;) {
      endAtMoved = false;
      const remaining = Date.parse(view.endAt) - Date.now();
      if (remaining <= 0) break;
      const warnAhead = Math.min(EXPIRY_WARNING_MS, (Date.parse(view.endAt) - Date.parse(view.activatedAt)) / 10);
      // Only with a webhook to tell: otherwise the warning would be a timer that notifies nobody.
      if (notifying && warnedFor !== view.endAt && remaining > warnAhead) {
        if (await condition(interrupted, remaining - warnAhead)) {
          if (endRequested || failure) break;
          continue;
        }
        warnedFor = view.endAt;
        notifications.push(notifyGrant({ eventId: uuid4(), action: 'grant.expiring_soon', view: { ...view } }).catch(() => undefined));
        continue;
      }
      await condition(interrupted, remaining);
      if (endRequested || failure) break;
    }
    stopIfFailed();

    const reason: EndReason = endRequested?.reason ?? 'expired';
    const endedBy = endRequested ? { id: endRequested.actorId, type: 'user' as const } : system;
    view.status = 'revoking';
    view.pendingExtension = null;
    const closed = reason !== 'expired' && patched('early-end-closes-target-first') ? await closeAccessFirst(reason) : undefined;
    // Nothing else can record meanwhile (every decision is refused once revoking), so the
    // expiry's two events can be numbered now.
    if (reason === 'expired' && extensionWrites.size === 0 && allHandlersFinished() && patched(EXPIRY_IN_ONE_PATCH)) return expireInOne();
    await record(
      `grant.${reason === 'expired' ? 'expiring' : reason === 'revoked' ? 'revoking' : 'relinquishing'}`,
      endedBy,
      endRequested?.authority ?? {},
      { comment: endRequested?.comment ?? null },
    );
    return revocation({ reason, endedBy, step: 'remove', round: 0, alertedAt: null }, closed);
  }

  function activationCheck(requesterId: string) {
    return { tenantId: input.tenantId, subjectId: input.subjectId, role: input.role, requesterId };
  }

  /**
   * An expiry in one activity (endGrantAccess): `grant.expiring`, the removal read back and, once
   * the access is confirmed gone, `grant.expired`, each as the steps one by one would record it.
   * When the read-back does not confirm, the revocation's rounds read again; when the activity
   * fails, `grant.expiring` is recorded on its own (the same event, so once) and the rounds take
   * over with this failure as their first.
   */
  async function expireInOne(): Promise<GrantView> {
    const state: RevocationState = { reason: 'expired', endedBy: system, step: 'remove', round: 0, alertedAt: null };
    const event = (action: string, payload: Record<string, unknown>, eventView: GrantView) => ({
      eventId: uuid4(),
      action,
      actor: system,
      authority: { ...baseAuthority },
      payload,
      view: eventView,
    });
    const expiring = event('grant.expiring', { comment: null }, { ...view, version: view.version + 1 });
    const ended = event('grant.expired', { verified: true }, { ...view, status: 'ended', endReason: 'expired', version: view.version + 2 });
    let result: Awaited<ReturnType<Activities['endGrantAccess']>>;
    try {
      result = await endGrantAccess({ access: { ...access, reason: 'expired' }, expiring, ended });
    } catch (error) {
      await record(expiring.action, system, {}, expiring.payload, expiring.eventId);
      // An attempt may have confirmed the access gone and recorded the end, then lost its answer
      // before every later attempt failed (PostgreSQL restarting): then the grant has ended, and
      // the rounds (whose first failure raises an alert) do not start.
      if (patched(EXPIRY_END_RECORDED_PATCH)) {
        const { occurredAt } = await grantEventRecorded({ tenantId: input.tenantId, eventId: ended.eventId });
        if (occurredAt !== null) {
          Object.assign(view, { status: 'ended', endReason: 'expired', endedAt: occurredAt, revocationVerifiedAt: occurredAt });
          view.version = ended.view.version;
          if (notifying)
            notifications.push(notifyGrant({ eventId: ended.eventId, action: ended.action, view: { ...view } }).catch(() => undefined));
          return finish();
        }
      }
      // The end keeps the id it had in the activity, so should an attempt record it after all (its
      // answer lost too), the rounds find the access gone and do not record it a second time.
      return revocation(state, undefined, error, ended.eventId);
    }
    view.version = expiring.view.version;
    notifying = result.notify;
    if (notifying)
      notifications.push(
        notifyGrant({ eventId: expiring.eventId, action: expiring.action, view: { ...expiring.view } }).catch(() => undefined),
      );
    if (result.endedAt === null) return revocation(state, result.removal);
    Object.assign(view, {
      status: 'ended',
      endReason: 'expired',
      endedAt: result.endedAt,
      revocationVerifiedAt: result.endedAt,
      version: ended.view.version,
    });
    if (notifying)
      notifications.push(notifyGrant({ eventId: ended.eventId, action: ended.action, view: { ...view } }).catch(() => undefined));
    return finish();
  }

  /**
   * An early end closes the access at the target before anything else is recorded or told: one
   * round of the removal runs first (after any extension's write still under way has settled).
   * When this round fails, the revocation's own rounds retry it without end, and alert.
   */
  async function closeAccessFirst(reason: EndReason): Promise<EndAccessResult | undefined> {
    if (extensionWrites.size > 0) await settleExtensionWrites();
    try {
      return await endAccess({ ...access, reason });
    } catch {
      return undefined; // the revocation's rounds take over
    }
  }

  /**
   * An extension's write of the target's end still under way is cancelled and its attempt awaited,
   * so it lands before the revocation's writes, never after them (and never re-opens the access).
   */
  async function settleExtensionWrites() {
    for (const write of extensionWrites) write.cancel();
    await condition(() => extensionWrites.size === 0);
  }

  /**
   * Removes the access and reads the target back until it is confirmed gone; then the grant has
   * ended. `closed` is a removal already done (closeAccessFirst).
   */
  async function revocation(
    state: RevocationState,
    closed?: EndAccessResult,
    failedOnce?: unknown,
    finalEventId?: string,
  ): Promise<GrantView> {
    if (extensionWrites.size > 0) await settleExtensionWrites();
    // endAccess reads the target back after removing; only when that does not confirm is it read again.
    let confirmation: { heldBy: string[] } | undefined;
    if (state.step === 'remove') {
      const removal = closed ?? (await untilDone(state, () => endAccess({ ...access, reason: state.reason }), failedOnce));
      if (removal.verification.gone) confirmation = removal.verification;
      else Object.assign(state, { step: 'verify', round: 0 });
    }
    confirmation ??= await untilDone(state, async () => {
      const check = await verifyAccessGone(access);
      if (!check.gone) throw ApplicationFailure.retryable('the target still shows the role', 'RevocationNotConfirmed');
      return check;
    });

    // A failure while the removal ran (a decision that could not be recorded) is the grant's end reason.
    const reason: EndReason = failure ? 'failed' : state.reason;
    view.status = 'ended';
    view.endReason = reason;
    view.endedAt = iso(Date.now());
    view.revocationVerifiedAt = view.endedAt;
    await record(
      `grant.${reason}`,
      reason === 'failed' ? system : state.endedBy,
      {},
      {
        verified: true,
        stillHeldBy: confirmation.heldBy,
        lateByMs: Math.max(0, Date.now() - Date.parse(view.endAt)),
        ...(failure ? { failure } : {}),
      },
      finalEventId,
    );
    return finish();
  }

  /**
   * Retries a revocation step in rounds forever. Rounds wait longer as they fail (up to
   * REVOCATION_ROUND_MAX_SECONDS); an alert is raised after the first failed round and then once
   * per alert period; a run whose history has grown long continues as new with `state`.
   * `failedOnce` is a first round that already failed (expireInOne's), handled as this one's own.
   */
  async function untilDone<T>(state: RevocationState, attempt: () => Promise<T>, failedOnce?: unknown): Promise<T> {
    let bounded: boolean | undefined;
    let alertedThisStep = false;
    let failed = failedOnce !== undefined;
    for (;;) {
      try {
        if (failed) throw failedOnce;
        return await attempt();
      } catch (error) {
        failed = false;
        state.round++;
        bounded ??= patched('revocation-alerts-per-period');
        const due = bounded ? state.alertedAt === null || Date.now() - Date.parse(state.alertedAt) >= alertPeriodMs : !alertedThisStep;
        if (due) {
          alertedThisStep = true;
          state.alertedAt = iso(Date.now());
          await record(
            'grant.revocation_alert',
            system,
            {},
            { step: state.step, attempts: state.round * REVOCATION_ALERT_THRESHOLD, error: (error as Error).message },
          );
        }
        if (!bounded) {
          await sleep(Math.min(60_000, 5_000 * state.round));
          continue;
        }
        if (workflowInfo().historyLength >= REVOCATION_RUN_MAX_EVENTS || workflowInfo().continueAsNewSuggested) {
          await condition(allHandlersFinished);
          await Promise.all(notifications);
          await continueAsNew<typeof grantWorkflow>({ ...input, resume: { ...state, view, notifying, failure: failure ?? null } });
        }
        await sleep(Math.min(REVOCATION_ROUND_MAX_SECONDS * 1000, 5_000 * state.round));
      }
    }
  }

  /** An early end that came before any access was given: the grant is cancelled, by whoever asked. */
  async function cancelledOnRequest(request: NonNullable<typeof endRequested>): Promise<GrantView> {
    view.status = 'cancelled';
    view.endedAt = iso(Date.now());
    await record('grant.cancelled', { id: request.actorId, type: 'user' }, request.authority, { comment: request.comment });
    return finish();
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
