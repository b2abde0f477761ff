import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
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
  type PersonCarry,
  type PersonView,
  type PersonWorkflowInput,
  type SubmittedHrEvent,
} from '../../core/lifecycle/contract.js';
import { admitEvent, diffHoldings, evaluateBirthright, mergedAttributes, preProvisionAt, sameHolding } from '../../core/lifecycle/rules.js';

/** Event ids remembered for deduplication across runs; older re-sends are answered by the hr_events register. */
const REMEMBERED_RECEIPTS = 1000;
const DAY_MS = 86_400_000;

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

interface Queued {
  submitted: SubmittedHrEvent;
  arrival: number;
  phase: 'waiting' | 'pre_provisioned';
}

interface Carried extends PersonCarry {
  queue: Queued[];
}

const iso = (ms: number) => new Date(ms).toISOString();
const reject = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });
const holdingsOnly = (list: readonly BirthrightHolding[]) => list.map(({ role, ruleId }) => ({ role, ruleId }));

export async function personWorkflow(input: PersonWorkflowInput): Promise<PersonView> {
  const { tenantId, personId } = input;
  const maxEvents = input.maxEventsPerRun ?? DEFAULT_MAX_EVENTS_PER_RUN;
  const carry = input.carry as Carried | undefined;
  const view: PersonView = carry?.view ?? {
    tenantId,
    personId,
    workflowId: workflowInfo().workflowId,
    status: 'pending',
    profile: null,
    attributes: {},
    birthright: [],
    matchedRuleIds: [],
    eligibleGrantRoles: [],
    pendingRemovals: [],
    pendingEvents: [],
    deletion: null,
    lastApplied: null,
    policyVersion: null,
    joinedAt: null,
    leftAt: null,
    version: 0,
  };
  let queue: Queued[] = carry?.queue ?? [];
  const receipts = new Map<string, HrEventReceipt>((carry?.receipts ?? []).map((r) => [r.eventId, r]));
  let arrivals = carry?.arrivals ?? 0;
  let everJoined = carry?.everJoined ?? false;
  let updatesThisRun = 0;
  let changed = false;
  /** The event being applied (out of the queue, not yet applied): new arrivals are ordered after it. */
  let applying: Queued | undefined;

  const syncPending = () => {
    view.pendingEvents = queue.map((q) => ({
      eventId: q.submitted.event.eventId,
      type: q.submitted.event.type,
      effectiveAt: q.submitted.event.effectiveAt,
      phase: q.phase,
    }));
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

  const authorityFor = (s: SubmittedHrEvent, ruleIds: string[]): Authority => ({
    ...s.authority,
    hrEventId: s.event.eventId,
    policyVersion: s.policyVersion,
    ruleIds,
  });

  // ---------------------------------------------------------------- HR events (Updates)
  setHandler(personQuery, () => {
    syncPending();
    return view;
  });
  setHandler(hrEventReceiptQuery, (eventId: string) => receipts.get(eventId) ?? null);

  function admission(s: SubmittedHrEvent) {
    const queueRefs = queue.map((q) => ({
      eventId: q.submitted.event.eventId,
      type: q.submitted.event.type,
      effectiveAt: q.submitted.event.effectiveAt,
    }));
    const current = applying
      ? {
          eventId: applying.submitted.event.eventId,
          type: applying.submitted.event.type,
          effectiveAt: applying.submitted.event.effectiveAt,
        }
      : undefined;
    return admitEvent({ status: view.status, everJoined, lastApplied: view.lastApplied }, queueRefs, s.event, current);
  }

  function validate(s: SubmittedHrEvent) {
    if (receipts.has(s.event.eventId)) return; // a duplicate: answered with the first receipt
    const { event } = s;
    if (event.personId !== personId)
      throw reject(PersonRejection.InvalidInput, `This lifecycle is for person ${personId}, not ${event.personId}.`);
    if (!['joiner', 'mover', 'leaver'].includes(event.type))
      throw reject(PersonRejection.InvalidInput, `Unknown HR event type ${String(event.type)}.`);
    if (Number.isNaN(Date.parse(event.effectiveAt))) throw reject(PersonRejection.InvalidInput, 'effectiveAt is not a time.');
    if (event.type === 'joiner' && !event.profile && !view.profile)
      throw reject(PersonRejection.InvalidInput, 'A joiner needs a profile (username, displayName).');
    const decided = admission(s);
    if (decided.kind === 'reject') throw reject(PersonRejection[decided.rejection], decided.message);
  }

  setHandler(
    submitHrEventUpdate,
    async (s: SubmittedHrEvent): Promise<HrEventReceipt> => {
      updatesThisRun++;
      const first = receipts.get(s.event.eventId);
      if (first) return { ...first, duplicate: true };
      // Decided again here: the state may have moved since the validator ran.
      const decided = admission(s);
      if (decided.kind === 'reject') throw reject(PersonRejection[decided.rejection], decided.message);
      const { event } = s;
      const cancelled = decided.kind === 'accept' ? decided.cancels : [];
      const receipt: HrEventReceipt = {
        eventId: event.eventId,
        personId,
        type: event.type,
        effectiveAt: event.effectiveAt,
        disposition: decided.kind === 'accept' ? 'accepted' : 'superseded',
        cancelled,
        receivedAt: iso(Date.now()),
        duplicate: false,
      };
      remember(receipt);
      const arrival = ++arrivals;
      if (decided.kind === 'accept') {
        // The queue is kept in apply order; admission said where this event goes among those left.
        const remaining = queue.filter((q) => !cancelled.includes(q.submitted.event.eventId));
        queue = [
          ...remaining.slice(0, decided.position),
          { submitted: s, arrival, phase: 'waiting' },
          ...remaining.slice(decided.position),
        ];
        if (event.type === 'joiner') everJoined = true;
        changed = true;
      }
      const hrEvents = [
        {
          eventId: event.eventId,
          status: decided.kind === 'accept' ? ('accepted' as const) : ('superseded' as const),
          reason: decided.kind === 'superseded' ? decided.reason : null,
          receipt,
        },
        ...cancelled.map((id) => ({ eventId: id, status: 'cancelled' as const, reason: `cancelled by ${event.type} ${event.eventId}` })),
      ];
      await record(
        decided.kind === 'accept' ? 'person.hr_event_accepted' : 'person.hr_event_superseded',
        s.actor,
        authorityFor(s, []),
        {
          hrEvent: { eventId: event.eventId, type: event.type, effectiveAt: event.effectiveAt, attributes: event.attributes ?? null },
          cancelled,
          ...(decided.kind === 'superseded' ? { reason: decided.reason } : {}),
        },
        hrEvents,
      );
      return receipt;
    },
    { validator: validate },
  );

  function remember(receipt: HrEventReceipt) {
    receipts.set(receipt.eventId, receipt);
    while (receipts.size > REMEMBERED_RECEIPTS) receipts.delete(receipts.keys().next().value!);
  }

  // ---------------------------------------------------------------- steps
  const holdingsSnapshot = () => ({
    status: view.status,
    birthright: holdingsOnly(view.birthright),
    pendingRemovals: view.pendingRemovals.map((p) => ({ role: p.role, ruleId: p.ruleId, dueAt: p.dueAt })),
  });

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
    const { event, policy } = q.submitted;
    const attributes = mergedAttributes({}, event);
    const target = evaluateBirthright(policy, attributes);
    const diff = diffHoldings(view.birthright, target.holdings);
    const profile = event.profile
      ? { username: event.profile.username, displayName: event.profile.displayName, email: event.profile.email ?? null }
      : view.profile;
    await acts.provisionPersonAccount({ tenantId, personId, profile, attributes, status });
    // Leftovers of an earlier start (a corrected joiner) go at once: this person has not started with them.
    await endAll(diff.removed, 'joiner_corrected');
    await grantAll(diff.added);
    view.profile = profile;
    view.attributes = attributes;
    view.birthright = holdingsOnly(target.holdings);
    view.pendingRemovals = [];
    view.matchedRuleIds = target.ruleIds;
    view.eligibleGrantRoles = target.eligibleGrantRoles;
    view.policyVersion = q.submitted.policyVersion;
    return { added: diff.added, removed: diff.removed, ruleIds: target.ruleIds };
  }

  async function preProvision(q: Queued) {
    const before = holdingsSnapshot();
    const { added, removed, ruleIds } = await provision(q, 'disabled');
    q.phase = 'pre_provisioned';
    view.status = 'pre_provisioned';
    await record('person.pre_provisioned', q.submitted.actor, authorityFor(q.submitted, ruleIds), {
      account: 'created_disabled',
      startsAt: q.submitted.event.effectiveAt,
      added,
      removed,
      before,
      after: holdingsSnapshot(),
    });
  }

  async function applyJoiner(q: Queued) {
    const s = q.submitted;
    const before = holdingsSnapshot();
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
    view.status = 'active';
    view.joinedAt = iso(Math.max(Date.now(), Date.parse(s.event.effectiveAt)));
    view.leftAt = null;
    markApplied(s);
    await record(
      rehire ? 'person.rehired' : 'person.joined',
      s.actor,
      authorityFor(s, ruleIds),
      { account, added, removed, before, after: holdingsSnapshot() },
      [{ eventId: s.event.eventId, status: 'applied' }],
    );
  }

  async function applyMover(q: Queued) {
    const s = q.submitted;
    const { event, policy } = s;
    const before = holdingsSnapshot();
    const attributesBefore = view.attributes;
    const oldEligible = new Set(view.eligibleGrantRoles);
    const attributes = mergedAttributes(view.attributes, event);
    const target = evaluateBirthright(policy, attributes);
    const diff = diffHoldings(view.birthright, target.holdings);
    const appliedAt = Math.max(Date.now(), Date.parse(event.effectiveAt));

    // Move-back: old roles waiting out their grace that the new position gives again stay.
    const kept = view.pendingRemovals.filter((p) => target.holdings.some((h) => sameHolding(h, p)));
    view.pendingRemovals = view.pendingRemovals.filter((p) => !kept.includes(p));
    await grantAll(diff.added);
    const leaving = diff.removed.filter((h) => !view.pendingRemovals.some((p) => sameHolding(p, h)));
    const graceMs = policy.moverGraceMinutes * 60_000;
    if (graceMs === 0) await endAll(leaving, 'mover');
    else
      view.pendingRemovals.push(
        ...leaving.map((h) => ({
          role: h.role,
          ruleId: h.ruleId,
          dueAt: iso(appliedAt + graceMs),
          hrEventId: event.eventId,
          policyVersion: s.policyVersion,
        })),
      );

    if (event.profile)
      view.profile = { username: event.profile.username, displayName: event.profile.displayName, email: event.profile.email ?? null };
    if (event.attributes || event.profile) await acts.provisionPersonAccount({ tenantId, personId, profile: view.profile, attributes });
    view.attributes = attributes;
    view.birthright = [...holdingsOnly(target.holdings), ...view.pendingRemovals.map(({ role, ruleId }) => ({ role, ruleId }))];
    view.matchedRuleIds = target.ruleIds;
    view.eligibleGrantRoles = target.eligibleGrantRoles;
    view.policyVersion = s.policyVersion;
    const authority = authorityFor(s, target.ruleIds);
    markApplied(s);
    await record(
      'person.moved',
      s.actor,
      authority,
      {
        attributes: { before: attributesBefore, after: attributes },
        added: diff.added,
        removalsScheduled: view.pendingRemovals.filter((p) => p.hrEventId === event.eventId),
        removedNow: graceMs === 0 ? leaving : [],
        removalsCancelled: kept.map(({ role, ruleId }) => ({ role, ruleId })),
        before,
        after: holdingsSnapshot(),
      },
      [{ eventId: event.eventId, status: 'applied' }],
    );

    const lost = [...oldEligible].filter((role) => !target.eligibleGrantRoles.includes(role));
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
      const privileged = access.entitlements.filter((e) => e.privileged);
      await record('person.review_requested', s.actor, authority, { reason: 'mover', privilegedEntitlements: privileged });
    }
  }

  async function applyLeaver(q: Queued) {
    const s = q.submitted;
    const { event, policy } = s;
    const authority = authorityFor(s, []);
    const before = holdingsSnapshot();
    view.status = 'leaving';
    await record('person.leaving', s.actor, authority, { before });

    const disabled = await acts.setPersonAccountStatus({ tenantId, personId, status: 'disabled' });
    const sessionsRevoked = await acts.revokePersonSessions({ tenantId, personId });
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
    const remaining = await acts.listPersonAccess({ tenantId, personId });
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
    const unmanaged = await acts.removeUnmanagedRoles({ tenantId, personId });
    await acts.verifyPersonAccessGone({ tenantId, personId });

    const leftAt = Math.max(Date.now(), Date.parse(event.effectiveAt));
    view.status = 'left';
    view.leftAt = iso(leftAt);
    view.birthright = [];
    view.pendingRemovals = [];
    view.matchedRuleIds = [];
    view.eligibleGrantRoles = [];
    view.policyVersion = s.policyVersion;
    view.deletion = {
      dueAt: iso(Date.parse(event.effectiveAt) + policy.leaver.retentionDays * DAY_MS),
      mode: policy.leaver.afterRetention,
      hrEventId: event.eventId,
    };
    markApplied(s);
    await record(
      'person.left',
      s.actor,
      authority,
      {
        accountDisabled: disabled.changed,
        sessionsRevoked,
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

  async function removeAfterGrace(due: PersonView['pendingRemovals']) {
    const before = holdingsSnapshot();
    await endAll(due, 'mover_grace_ended');
    view.pendingRemovals = view.pendingRemovals.filter((p) => !due.includes(p));
    // A holding waiting for removal is never one the current position gives (a move-back cancels it).
    view.birthright = view.birthright.filter((h) => !due.some((d) => sameHolding(d, h)));
    const byEvent = [...new Set(due.map((d) => d.hrEventId))];
    await record(
      'person.birthright_removed',
      LIFECYCLE_SYSTEM_ACTOR,
      {
        hrEventId: byEvent.length === 1 ? byEvent[0] : byEvent,
        policyVersion: due[0]!.policyVersion,
        ruleIds: [...new Set(due.map((d) => d.ruleId))],
      },
      {
        reason: 'mover_grace_ended',
        removed: due.map(({ role, ruleId, dueAt }) => ({ role, ruleId, dueAt })),
        before,
        after: holdingsSnapshot(),
      },
    );
  }

  async function erase() {
    const deletion = view.deletion!;
    await acts.erasePerson({ tenantId, personId, mode: deletion.mode });
    view.deletion = null;
    view.status = deletion.mode === 'delete' ? 'deleted' : 'anonymised';
    view.profile = null;
    view.attributes = {};
    await record(
      `person.${view.status}`,
      LIFECYCLE_SYSTEM_ACTOR,
      { hrEventId: deletion.hrEventId, reason: 'retention_period_ended' },
      { dueAt: deletion.dueAt, mode: deletion.mode },
    );
  }

  // ---------------------------------------------------------------- main loop
  type Due = { at: number; order: number; run: () => Promise<void> };
  function nextDue(): Due | undefined {
    const candidates: Due[] = [];
    const head = queue[0];
    if (head) {
      const { event, policy } = head.submitted;
      const early = preProvisionAt(event, policy);
      const effective = Date.parse(event.effectiveAt);
      if (early && head.phase === 'waiting' && view.status === 'pending' && Date.now() < effective) {
        candidates.push({ at: Date.parse(early), order: 1, run: () => preProvision(head) });
      } else {
        candidates.push({ at: effective, order: 1, run: () => apply(head) });
      }
    }
    if (view.pendingRemovals.length > 0) {
      const at = Math.min(...view.pendingRemovals.map((p) => Date.parse(p.dueAt)));
      candidates.push({ at, order: 0, run: () => removeAfterGrace(view.pendingRemovals.filter((p) => Date.parse(p.dueAt) <= at)) });
    }
    if (view.deletion) candidates.push({ at: Date.parse(view.deletion.dueAt), order: 2, run: erase });
    return candidates.sort((a, b) => a.at - b.at || a.order - b.order)[0];
  }

  async function apply(q: Queued) {
    queue = queue.filter((x) => x !== q);
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

  const finished = () => (view.status === 'deleted' || view.status === 'anonymised') && queue.length === 0 && !view.deletion;

  for (;;) {
    // Checked between steps, also while a backlog is being worked off: the queue is carried.
    if (updatesThisRun >= maxEvents || workflowInfo().continueAsNewSuggested) {
      // Handlers first (each recorded its receipt), then the next run takes over everything
      // waiting: the queue, grace removals, a scheduled deletion and the recent event ids.
      await condition(allHandlersFinished);
      syncPending();
      const next: Carried = { view, queue, receipts: [...receipts.values()], arrivals, everJoined };
      await continueAsNew<typeof personWorkflow>({
        tenantId,
        personId,
        ...(input.maxEventsPerRun ? { maxEventsPerRun: input.maxEventsPerRun } : {}),
        carry: next,
      });
    }
    const due = nextDue();
    if (due && due.at <= Date.now()) {
      await due.run();
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
