import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import type { Authority } from '../../core/audit/chain.js';
import { DIRECTORY_TARGET_REJECTED as TARGET_REJECTED } from '../../core/directory/connector.js';
import {
  DEFAULT_MAX_EVENTS_PER_RUN,
  hrEventReceiptQuery,
  LIFECYCLE_MISCONFIGURED,
  LIFECYCLE_SYSTEM_ACTOR,
  personQuery,
  PersonRejection,
  submitHrEventUpdate,
  type BirthrightHolding,
  type HrEventReceipt,
  type PendingRemoval,
  type PersonView,
  type PersonWorkflowInput,
  type SubmittedHrEvent,
} from '../../core/lifecycle/contract.js';
import { nextDue, type DueStep } from './due.js';
import { admission, dequeue, enqueue, inputProblem, pendingEvents, type Carried, type Queued } from './queue.js';
import { receiptFor, RecentReceipts, registerRows, submissionRecord } from './receipts.js';
import {
  afterErasure,
  afterGraceRemoval,
  afterJoining,
  afterLeaving,
  graceRemovalAuthority,
  holdingsOnly,
  holdingsSnapshot,
  iso,
  newPersonView,
  planMove,
  planProvision,
} from './view.js';

// Lifecycle steps retry without a maximum: a directory outage delays a leaver, never abandons it.
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    nonRetryableErrorTypes: [TARGET_REJECTED, LIFECYCLE_MISCONFIGURED],
  },
});

// A leaver's access ends in one step, a target call per role: the step beats after each, so a
// lost worker is noticed in seconds while a person with many roles on a slow target still has
// time to finish (a retry calls the target again for every role).
const { endPersonAccess } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    nonRetryableErrorTypes: [TARGET_REJECTED, LIFECYCLE_MISCONFIGURED],
  },
});

/**
 * Leavers from here on ask endPersonSessions, which answers "sessions: not supported by target"
 * for a target without sessions instead of failing the leaver; runs recorded before it replay
 * revokePersonSessions.
 */
const LEAVER_SESSIONS_PATCH = 'leaver-sessions-capability';

/**
 * Leavers from here on end their remaining access in one activity (endPersonAccess: every listed
 * entitlement, the unmanaged roles and the read-back) and list access once when no grant was
 * ended; runs recorded before it replay endAccess per entitlement, removeUnmanagedRoles and
 * verifyPersonAccessGone.
 */
const LEAVER_ONE_STEP_PATCH = 'leaver-access-end-in-one-step';

const reject = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });
const authorityFor = (s: SubmittedHrEvent, ruleIds: string[]): Authority => ({
  ...s.authority,
  hrEventId: s.event.eventId,
  policyVersion: s.policyVersion,
  ruleIds,
});

export async function personWorkflow(input: PersonWorkflowInput): Promise<PersonView> {
  const { tenantId, personId } = input;
  const maxEvents = input.maxEventsPerRun ?? DEFAULT_MAX_EVENTS_PER_RUN;
  const carry = input.carry as Carried | undefined;
  const view: PersonView = carry?.view ?? newPersonView(tenantId, personId, workflowInfo().workflowId);
  let queue: Queued[] = carry?.queue ?? [];
  const receipts = new RecentReceipts(carry?.receipts);
  let arrivals = carry?.arrivals ?? 0;
  let everJoined = carry?.everJoined ?? false;
  let updatesThisRun = 0;
  let changed = false;
  /** The event being applied (out of the queue, not yet applied): new arrivals are ordered after it. */
  let applying: Queued | undefined;

  const syncPending = () => {
    view.pendingEvents = pendingEvents(queue);
  };

  /** Persists the view and one audit event, exactly once (event id made here). */
  async function record(
    action: string,
    actor: { id: string; type: 'user' | 'service' | 'system' },
    authority: Authority,
    payload: Record<string, unknown>,
    hrEvents: Parameters<Activities['recordPersonEvent']>[0]['hrEvents'] = [],
  ) {
    view.version++;
    syncPending();
    await acts.recordPersonEvent({
      eventId: uuid4(),
      action,
      actor,
      authority,
      payload,
      view: JSON.parse(JSON.stringify(view)) as PersonView,
      hrEvents,
    });
  }

  // ---------------------------------------------------------------- HR events (Updates)
  setHandler(personQuery, () => {
    syncPending();
    return view;
  });
  setHandler(hrEventReceiptQuery, (eventId: string) => receipts.get(eventId) ?? null);

  const admit = (s: SubmittedHrEvent) => admission({ view, everJoined, queue, applying }, s);

  function validate(s: SubmittedHrEvent) {
    if (receipts.has(s.event.eventId)) return; // a duplicate: answered with the first receipt
    const problem = inputProblem(s, personId, view);
    if (problem) throw reject(PersonRejection.InvalidInput, problem);
    const decided = admit(s);
    if (decided.kind === 'reject') throw reject(PersonRejection[decided.rejection], decided.message);
  }

  setHandler(
    submitHrEventUpdate,
    async (s: SubmittedHrEvent): Promise<HrEventReceipt> => {
      updatesThisRun++;
      const again = receipts.again(s.event.eventId);
      if (again) return again;
      // Decided again here: the state may have moved since the validator ran.
      const decided = admit(s);
      if (decided.kind === 'reject') throw reject(PersonRejection[decided.rejection], decided.message);
      const { event } = s;
      const receipt = receiptFor(personId, event, decided, iso(Date.now()));
      receipts.remember(receipt);
      const arrival = ++arrivals;
      if (decided.kind === 'accept') {
        queue = enqueue(queue, { submitted: s, arrival, phase: 'waiting' }, decided);
        if (event.type === 'joiner') everJoined = true;
        changed = true;
      }
      const { action, payload } = submissionRecord(event, decided);
      await record(action, s.actor, authorityFor(s, []), payload, registerRows(event, decided, receipt));
      return receipt;
    },
    { validator: validate },
  );

  // ---------------------------------------------------------------- steps
  /** Runs what `nextDue` found due. */
  function run(due: DueStep): Promise<void> {
    switch (due.kind) {
      case 'remove_after_grace':
        return removeAfterGrace(due.removals);
      case 'pre_provision':
        return preProvision(due.item);
      case 'apply':
        return apply(due.item);
      case 'erase':
        return erase();
    }
  }

  async function apply(q: Queued) {
    queue = dequeue(queue, q);
    applying = q;
    const { event } = q.submitted;
    try {
      if (event.type === 'joiner') await applyJoiner(q);
      else if (event.type === 'mover') await applyMover(q);
      else await applyLeaver(q);
    } catch (error) {
      // The directory refused for good (e.g. the username belongs to someone else): record it
      // and keep the lifecycle running; transient failures never get here (retried forever).
      if (!(error instanceof ActivityFailure) || (error.cause as { type?: string } | undefined)?.type !== TARGET_REJECTED) throw error;
      const reason = (error.cause as Error).message;
      markApplied(q.submitted);
      await record(
        'person.hr_event_failed',
        q.submitted.actor,
        authorityFor(q.submitted, []),
        { hrEvent: { eventId: event.eventId, type: event.type }, reason },
        [{ eventId: event.eventId, status: 'rejected', reason }],
      );
    }
    applying = undefined;
  }

  async function grantAll(list: BirthrightHolding[]) {
    for (const h of list)
      await acts.grantAccess({ tenantId, subjectId: personId, role: h.role, sourceType: 'birthright', sourceId: h.ruleId });
  }
  async function endAll(list: BirthrightHolding[], reason: string) {
    for (const h of list)
      await acts.endAccess({ tenantId, subjectId: personId, role: h.role, sourceType: 'birthright', sourceId: h.ruleId, reason });
  }

  /** Account and roles for a joiner: `disabled` ahead of the start (pre-provisioning). */
  async function provision(
    q: Queued,
    status: 'active' | 'disabled',
  ): Promise<{ added: BirthrightHolding[]; removed: BirthrightHolding[]; ruleIds: string[] }> {
    const plan = planProvision(view, q.submitted);
    await acts.provisionPersonAccount({ tenantId, personId, profile: plan.profile, attributes: plan.attributes, status });
    // Leftovers of an earlier start (a corrected joiner) go at once: this person has not started with them.
    await endAll(plan.diff.removed, 'joiner_corrected');
    await grantAll(plan.diff.added);
    Object.assign(view, plan.after);
    return { added: plan.diff.added, removed: plan.diff.removed, ruleIds: plan.ruleIds };
  }

  async function preProvision(q: Queued) {
    const before = holdingsSnapshot(view);
    const { added, removed, ruleIds } = await provision(q, 'disabled');
    q.phase = 'pre_provisioned';
    view.status = 'pre_provisioned';
    await record('person.pre_provisioned', q.submitted.actor, authorityFor(q.submitted, ruleIds), {
      account: 'created_disabled',
      startsAt: q.submitted.event.effectiveAt,
      added,
      removed,
      before,
      after: holdingsSnapshot(view),
    });
  }

  async function applyJoiner(q: Queued) {
    const s = q.submitted;
    const before = holdingsSnapshot(view);
    const rehire = ['leaving', 'left', 'deleted', 'anonymised'].includes(view.status);
    if (view.deletion) {
      const cancelledDeletion = view.deletion;
      view.deletion = null;
      await record('person.deletion_cancelled', s.actor, authorityFor(s, []), {
        deletion: cancelledDeletion,
        reason: 'rehired within the retention period',
      });
    }
    const account = view.status === 'pre_provisioned' ? 'enabled' : rehire ? 're_enabled' : 'created';
    const { added, removed, ruleIds } = await provision(q, 'active');
    Object.assign(view, afterJoining(s, Date.now()));
    markApplied(s);
    await record(
      rehire ? 'person.rehired' : 'person.joined',
      s.actor,
      authorityFor(s, ruleIds),
      { account, added, removed, before, after: holdingsSnapshot(view) },
      [{ eventId: s.event.eventId, status: 'applied' }],
    );
  }

  async function applyMover(q: Queued) {
    const s = q.submitted;
    const { event, policy } = s;
    const before = holdingsSnapshot(view);
    const attributesBefore = view.attributes;
    const move = planMove(view, s, Date.now());

    // Move-back: old roles waiting out their grace that the new position gives again stay.
    view.pendingRemovals = move.stillPending;
    await grantAll(move.diff.added);
    if (!move.withGrace) await endAll(move.removedNow, 'mover');
    else view.pendingRemovals = move.pendingRemovals;

    view.profile = move.profile;
    if (event.attributes || event.profile)
      await acts.provisionPersonAccount({ tenantId, personId, profile: view.profile, attributes: move.attributes });
    Object.assign(view, move.after);
    const authority = authorityFor(s, move.ruleIds);
    markApplied(s);
    await record(
      'person.moved',
      s.actor,
      authority,
      {
        attributes: { before: attributesBefore, after: move.attributes },
        added: move.diff.added,
        removalsScheduled: view.pendingRemovals.filter((p) => p.hrEventId === event.eventId),
        removedNow: move.removedNow,
        removalsCancelled: holdingsOnly(move.removalsCancelled),
        before,
        after: holdingsSnapshot(view),
      },
      [{ eventId: event.eventId, status: 'applied' }],
    );

    const lost = move.lostGrantRoles;
    const needsAccess = (policy.endGrantsNotEligible && lost.length > 0) || policy.moverReviewsPrivilegedAccess;
    if (!needsAccess) return;
    const access = await acts.listPersonAccess({ tenantId, personId });
    if (policy.endGrantsNotEligible && lost.length > 0) {
      const ineligible = access.grants.filter((g) => lost.includes(g.role) && g.status !== 'revoking');
      if (ineligible.length > 0) {
        const outcome = await acts.endPersonGrants({
          tenantId,
          grantIds: ineligible.map((g) => g.grantId),
          actorId: s.actor.id,
          comment: `mover ${event.eventId}: the new position no longer makes ${lost.join(', ')} eligible`,
          authority: { ...authority, reason: 'mover_ineligible' },
        });
        await record('person.grants_end_requested', s.actor, authority, { reason: 'no_longer_eligible', grants: ineligible, ...outcome });
      }
    }
    if (policy.moverReviewsPrivilegedAccess) {
      // A target that cannot say which roles are privileged (privileged: null) has every one reviewed.
      const privileged = access.entitlements.filter((e) => e.privileged !== false);
      await record('person.review_requested', s.actor, authority, {
        reason: 'mover',
        privilegedEntitlements: privileged,
        ...(access.notSupported?.length ? { notSupported: access.notSupported } : {}),
      });
    }
  }

  async function applyLeaver(q: Queued) {
    const s = q.submitted;
    const { event } = s;
    const authority = authorityFor(s, []);
    const before = holdingsSnapshot(view);
    view.status = 'leaving';
    await record('person.leaving', s.actor, authority, { before });

    const disabled = await acts.setPersonAccountStatus({ tenantId, personId, status: 'disabled' });
    const sessions = patched(LEAVER_SESSIONS_PATCH)
      ? await acts.endPersonSessions({ tenantId, personId })
      : { supported: true as const, revoked: await acts.revokePersonSessions({ tenantId, personId }) };
    const access = await acts.listPersonAccess({ tenantId, personId });
    let grants: { requested: string[]; alreadyEnding: string[] } = { requested: [], alreadyEnding: [] };
    if (access.grants.length > 0) {
      const grantIds = access.grants.map((g) => g.grantId);
      grants = await acts.endPersonGrants({
        tenantId,
        grantIds,
        actorId: s.actor.id,
        comment: `leaver ${event.eventId}`,
        authority: { ...authority, reason: 'leaver' },
      });
      await acts.awaitGrantsEnded({ tenantId, personId, grantIds });
    }
    // Everything else the ledger still shows (birthright, manual, template, any grant leftover).
    // Listed again only when grants were ended: without any, nothing has changed since the first listing.
    const lean = patched(LEAVER_ONE_STEP_PATCH);
    const remaining = lean && access.grants.length === 0 ? access : await acts.listPersonAccess({ tenantId, personId });
    let unmanaged: { removed: string[] };
    if (lean) {
      const ended = await endPersonAccess({
        tenantId,
        personId,
        entitlements: remaining.entitlements.map(({ role, sourceType, sourceId }) => ({ role, sourceType, sourceId })),
        reason: 'leaver',
      });
      unmanaged = { removed: ended.unmanagedRolesRemoved };
      // Read back inside the step unless it removed unmanaged roles or found access left; else here, until gone.
      if (!ended.verified) await acts.verifyPersonAccessGone({ tenantId, personId });
    } else {
      for (const e of remaining.entitlements) {
        await acts.endAccess({
          tenantId,
          subjectId: personId,
          role: e.role,
          sourceType: e.sourceType,
          sourceId: e.sourceId,
          reason: 'leaver',
        });
      }
      unmanaged = await acts.removeUnmanagedRoles({ tenantId, personId });
      await acts.verifyPersonAccessGone({ tenantId, personId });
    }
    // What the target could not do is part of the evidence, never left out.
    const notSupported = [
      ...(sessions.supported ? [] : [sessions.gap]),
      ...(access.notSupported ?? []),
      ...(remaining.notSupported ?? []),
    ].filter((gap, i, all) => all.findIndex((g) => g.capability === gap.capability) === i);

    Object.assign(view, afterLeaving(s, Date.now()));
    markApplied(s);
    await record(
      'person.left',
      s.actor,
      authority,
      {
        accountDisabled: disabled.changed,
        sessionsRevoked: sessions.supported ? sessions.revoked : null,
        ...(notSupported.length ? { notSupported } : {}),
        grantsEnded: access.grants.map((g) => ({ grantId: g.grantId, role: g.role, status: g.status })),
        grantRevocations: grants,
        entitlementsEnded: remaining.entitlements,
        unmanagedRolesRemoved: unmanaged.removed,
        verified: true,
        before: { ...before, entitlements: access.entitlements, directoryRoles: access.directoryRoles },
        after: { entitlements: [], directoryRoles: [] },
        deletion: view.deletion,
      },
      [{ eventId: event.eventId, status: 'applied' }],
    );
  }

  function markApplied({ event }: SubmittedHrEvent) {
    view.lastApplied = { eventId: event.eventId, type: event.type, effectiveAt: event.effectiveAt };
  }

  async function removeAfterGrace(due: PendingRemoval[]) {
    const before = holdingsSnapshot(view);
    await endAll(due, 'mover_grace_ended');
    Object.assign(view, afterGraceRemoval(view, due));
    await record('person.birthright_removed', LIFECYCLE_SYSTEM_ACTOR, graceRemovalAuthority(due), {
      reason: 'mover_grace_ended',
      removed: due.map(({ role, ruleId, dueAt }) => ({ role, ruleId, dueAt })),
      before,
      after: holdingsSnapshot(view),
    });
  }

  async function erase() {
    const deletion = view.deletion!;
    await acts.erasePerson({ tenantId, personId, mode: deletion.mode });
    Object.assign(view, afterErasure(deletion.mode));
    await record(
      `person.${view.status}`,
      LIFECYCLE_SYSTEM_ACTOR,
      { hrEventId: deletion.hrEventId, reason: 'retention_period_ended' },
      { dueAt: deletion.dueAt, mode: deletion.mode },
    );
  }

  // ---------------------------------------------------------------- main loop
  const finished = () => (view.status === 'deleted' || view.status === 'anonymised') && queue.length === 0 && !view.deletion;

  for (;;) {
    // Checked between steps, also while a backlog is being worked off: the queue is carried.
    if (updatesThisRun >= maxEvents || workflowInfo().continueAsNewSuggested) {
      // Handlers first (each recorded its receipt), then the next run takes over everything
      // waiting: the queue, grace removals, a scheduled deletion and the recent event ids.
      await condition(allHandlersFinished);
      syncPending();
      const next: Carried = { view, queue, receipts: receipts.carry(), arrivals, everJoined };
      await continueAsNew<typeof personWorkflow>({
        tenantId,
        personId,
        ...(input.maxEventsPerRun ? { maxEventsPerRun: input.maxEventsPerRun } : {}),
        carry: next,
      });
    }
    const due = nextDue(view, queue, Date.now());
    if (due && due.at <= Date.now()) {
      await run(due);
      continue;
    }
    if (finished()) {
      await condition(allHandlersFinished);
      if (finished()) return view;
      continue;
    }
    changed = false;
    const timeout = due ? Math.max(1, due.at - Date.now()) : undefined;
    if (timeout === undefined) await condition(() => changed || updatesThisRun >= maxEvents);
    else await condition(() => changed || updatesThisRun >= maxEvents, timeout);
  }
}
