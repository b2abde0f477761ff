import type { BirthrightHolding, PendingRemoval, PersonProfile, PersonView, SubmittedHrEvent } from '../../core/lifecycle/contract.js';
import { diffHoldings, evaluateBirthright, mergedAttributes, sameHolding } from '../../core/lifecycle/rules.js';

/**
 * What each step does to the person view, as pure functions: the workflow calls the directory
 * and ledger in between and records the result. Times are passed in (ms since the epoch), so
 * the same inputs always give the same view.
 */

const DAY_MS = 86_400_000;

export const iso = (ms: number) => new Date(ms).toISOString();

export function newPersonView(tenantId: string, personId: string, workflowId: string): PersonView {
  return {
    tenantId,
    personId,
    workflowId,
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
}

export const holdingsOnly = (list: readonly BirthrightHolding[]): BirthrightHolding[] => list.map(({ role, ruleId }) => ({ role, ruleId }));

/** The `before` / `after` of an audit event: status and birthright, with grace removals and their due times. */
export const holdingsSnapshot = (view: Pick<PersonView, 'status' | 'birthright' | 'pendingRemovals'>) => ({
  status: view.status,
  birthright: holdingsOnly(view.birthright),
  pendingRemovals: view.pendingRemovals.map((p) => ({ role: p.role, ruleId: p.ruleId, dueAt: p.dueAt })),
});

const profileOf = (p: PersonProfile): PersonProfile => ({ username: p.username, displayName: p.displayName, email: p.email ?? null });

/**
 * A joiner's account and birthright, from its own attributes only. Roles of an earlier start
 * that it no longer gives (a corrected joiner) are in `diff.removed`.
 */
export function planProvision(view: Pick<PersonView, 'birthright' | 'profile'>, { event, policy, policyVersion }: SubmittedHrEvent) {
  const attributes = mergedAttributes({}, event);
  const target = evaluateBirthright(policy, attributes);
  const diff = diffHoldings(view.birthright, target.holdings);
  const profile = event.profile ? profileOf(event.profile) : view.profile;
  return {
    attributes,
    profile,
    diff,
    ruleIds: target.ruleIds,
    /** The view once account and roles are in place. */
    after: {
      profile,
      attributes,
      birthright: holdingsOnly(target.holdings),
      pendingRemovals: [],
      matchedRuleIds: target.ruleIds,
      eligibleGrantRoles: target.eligibleGrantRoles,
      policyVersion,
    } satisfies Partial<PersonView>,
  };
}

/**
 * A mover: roles of the new position at once; old ones at once without a grace period, otherwise
 * scheduled for removal when it ends. A removal still waiting that the new position gives again
 * is cancelled (a move-back).
 */
export function planMove(
  view: Pick<PersonView, 'attributes' | 'birthright' | 'pendingRemovals' | 'eligibleGrantRoles' | 'profile'>,
  { event, policy, policyVersion }: SubmittedHrEvent,
  now: number,
) {
  const attributes = mergedAttributes(view.attributes, event);
  const target = evaluateBirthright(policy, attributes);
  const diff = diffHoldings(view.birthright, target.holdings);
  const appliedAt = Math.max(now, Date.parse(event.effectiveAt));
  const removalsCancelled = view.pendingRemovals.filter((p) => target.holdings.some((h) => sameHolding(h, p)));
  const stillPending = view.pendingRemovals.filter((p) => !removalsCancelled.includes(p));
  // Already waiting out a grace period: the earlier due time stands.
  const leaving = diff.removed.filter((h) => !stillPending.some((p) => sameHolding(p, h)));
  const graceMs = policy.moverGraceMinutes * 60_000;
  const scheduled: PendingRemoval[] =
    graceMs === 0
      ? []
      : leaving.map((h) => ({ role: h.role, ruleId: h.ruleId, dueAt: iso(appliedAt + graceMs), hrEventId: event.eventId, policyVersion }));
  const pendingRemovals = [...stillPending, ...scheduled];
  return {
    attributes,
    diff,
    ruleIds: target.ruleIds,
    removalsCancelled,
    /** Removals still waiting once the cancelled ones are gone (before new ones are scheduled). */
    stillPending,
    /** False: old roles end at once (`removedNow`). */
    withGrace: graceMs !== 0,
    removedNow: graceMs === 0 ? leaving : [],
    pendingRemovals,
    profile: event.profile ? profileOf(event.profile) : view.profile,
    /** Grant roles the new position no longer makes the person eligible for. */
    lostGrantRoles: [...new Set(view.eligibleGrantRoles)].filter((role) => !target.eligibleGrantRoles.includes(role)),
    /** The view once the move is applied; roles in grace stay in the birthright until removed. */
    after: {
      attributes,
      birthright: [...holdingsOnly(target.holdings), ...holdingsOnly(pendingRemovals)],
      matchedRuleIds: target.ruleIds,
      eligibleGrantRoles: target.eligibleGrantRoles,
      policyVersion,
    } satisfies Partial<PersonView>,
  };
}

/** The view once grace removals are done. A holding waiting for removal is never one the current position gives (a move-back cancels it). */
export function afterGraceRemoval(view: Pick<PersonView, 'birthright' | 'pendingRemovals'>, removed: readonly PendingRemoval[]) {
  return {
    pendingRemovals: view.pendingRemovals.filter((p) => !removed.includes(p)),
    birthright: view.birthright.filter((h) => !removed.some((d) => sameHolding(d, h))),
  } satisfies Partial<PersonView>;
}

/** The authority of grace removals: the mover event(s) that scheduled them and their rules. */
export function graceRemovalAuthority(removed: readonly PendingRemoval[]) {
  const byEvent = [...new Set(removed.map((d) => d.hrEventId))];
  return {
    hrEventId: byEvent.length === 1 ? byEvent[0] : byEvent,
    policyVersion: removed[0]!.policyVersion,
    ruleIds: [...new Set(removed.map((d) => d.ruleId))],
  };
}

/** The view once a joiner has started (or a rehire has restarted). */
export function afterJoining({ event }: SubmittedHrEvent, now: number) {
  return {
    status: 'active',
    joinedAt: iso(Math.max(now, Date.parse(event.effectiveAt))),
    leftAt: null,
  } satisfies Partial<PersonView>;
}

/** The view once a leaver's access is gone: deletion scheduled a retention period after the effective date. */
export function afterLeaving({ event, policy, policyVersion }: SubmittedHrEvent, now: number) {
  return {
    status: 'left',
    leftAt: iso(Math.max(now, Date.parse(event.effectiveAt))),
    birthright: [],
    pendingRemovals: [],
    matchedRuleIds: [],
    eligibleGrantRoles: [],
    policyVersion,
    deletion: {
      dueAt: iso(Date.parse(event.effectiveAt) + policy.leaver.retentionDays * DAY_MS),
      mode: policy.leaver.afterRetention,
      hrEventId: event.eventId,
    },
  } satisfies Partial<PersonView>;
}

/** The view once the retention period has ended: deleted or anonymised, personal data gone. */
export function afterErasure(mode: NonNullable<PersonView['deletion']>['mode']) {
  return {
    deletion: null,
    status: mode === 'delete' ? 'deleted' : 'anonymised',
    profile: null,
    attributes: {},
  } satisfies Partial<PersonView>;
}
