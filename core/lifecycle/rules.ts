import type { BirthrightHolding, HrEvent, HrEventType, PersonStatus, PersonView } from './contract.js';
import type { BirthrightRule, LifecyclePolicy } from './policy.js';

/**
 * Lifecycle decisions as pure functions: the workflow applies what they decide, the preview
 * shows it beforehand, and unit tests pin them down. Deterministic (no clock, no I/O), so the
 * workflow bundle can import this module.
 */

export interface BirthrightResult {
  /** (role, rule) pairs in rule order, each role once per rule. */
  holdings: BirthrightHolding[];
  /** Distinct roles, sorted. */
  roles: string[];
  /** Ids of the rules that matched, in rule order. */
  ruleIds: string[];
  /** Grant roles the matched rules make the person eligible for, sorted. */
  eligibleGrantRoles: string[];
}

export function ruleMatches(rule: BirthrightRule, attributes: Record<string, string>): boolean {
  return Object.entries(rule.when).every(([name, expected]) => {
    const actual = attributes[name];
    if (actual === undefined) return false;
    return Array.isArray(expected) ? expected.includes(actual) : expected === actual;
  });
}

/** Every rule whose conditions all match contributes its roles, in rule order. */
export function evaluateBirthright(policy: Pick<LifecyclePolicy, 'rules'>, attributes: Record<string, string>): BirthrightResult {
  const holdings: BirthrightHolding[] = [];
  const ruleIds: string[] = [];
  const eligible = new Set<string>();
  for (const rule of policy.rules) {
    if (!ruleMatches(rule, attributes)) continue;
    ruleIds.push(rule.id);
    for (const role of new Set(rule.roles)) holdings.push({ role, ruleId: rule.id });
    for (const role of rule.eligibleGrantRoles ?? []) eligible.add(role);
  }
  return {
    holdings,
    roles: [...new Set(holdings.map((h) => h.role))].sort(),
    ruleIds,
    eligibleGrantRoles: [...eligible].sort(),
  };
}

/** Attribute names the tenant has not declared (an event carrying them is refused). */
export function unknownAttributes(policy: Pick<LifecyclePolicy, 'attributes'>, attributes: Record<string, string> | undefined): string[] {
  const declared = new Set(policy.attributes);
  return Object.keys(attributes ?? {}).filter((name) => !declared.has(name));
}

const key = (h: BirthrightHolding) => `${h.ruleId}\u0000${h.role}`;

export function sameHolding(a: BirthrightHolding, b: BirthrightHolding): boolean {
  return a.role === b.role && a.ruleId === b.ruleId;
}

/** Set difference of two birthright sets, by (role, rule). */
export function diffHoldings(before: readonly BirthrightHolding[], after: readonly BirthrightHolding[]) {
  const beforeKeys = new Set(before.map(key));
  const afterKeys = new Set(after.map(key));
  return {
    added: after.filter((h) => !beforeKeys.has(key(h))),
    removed: before.filter((h) => !afterKeys.has(key(h))),
    kept: after.filter((h) => beforeKeys.has(key(h))),
  };
}

/** Attributes after an event: a mover's (or rehire's) values replace the named ones. */
export function mergedAttributes(current: Record<string, string>, event: Pick<HrEvent, 'attributes'>): Record<string, string> {
  return { ...current, ...(event.attributes ?? {}) };
}

// ------------------------------------------------------------------ admission and ordering

/** A queued event as ordering needs it. */
export interface QueuedRef {
  eventId: string;
  type: HrEventType;
  effectiveAt: string;
}

export type Admission =
  | { kind: 'superseded'; reason: string }
  | { kind: 'reject'; rejection: 'NotJoined' | 'Conflict'; message: string }
  /** `position`: where the event goes among the waiting events left after `cancels` (apply order). */
  | { kind: 'accept'; cancels: string[]; position: number };

type SimStatus = 'none' | 'active' | 'left';

function simStatus(status: PersonStatus): SimStatus {
  switch (status) {
    case 'pending':
    case 'pre_provisioned':
      return 'none';
    case 'active':
      return 'active';
    default:
      return 'left';
  }
}

/**
 * Decides what happens to a newly arrived event, given the person's state and the events still
 * waiting (in apply order). Events apply by effective time, ties by arrival; one dated before
 * the last applied event is superseded. A leaver cancels waiting leavers and any waiting event
 * dated at or after it (e.g. a joiner whose offer was withdrawn); a joiner cancels waiting
 * joiners (a corrected start date). What remains must make sense in order: a mover needs an
 * active person, a joiner one who is not active, a leaver one who has not left.
 */
export function admitEvent(
  person: { status: PersonStatus; everJoined: boolean; lastApplied: { effectiveAt: string } | null },
  queue: readonly QueuedRef[],
  event: QueuedRef,
  /** The event being applied right now, if any: it counts as applied and cannot be cancelled. */
  inProgress?: QueuedRef,
): Admission {
  const at = Date.parse(event.effectiveAt);
  const last = [person.lastApplied?.effectiveAt, inProgress?.effectiveAt]
    .filter((t): t is string => t !== undefined)
    .sort((a, b) => Date.parse(b) - Date.parse(a))[0];
  if (last !== undefined && at < Date.parse(last)) {
    return { kind: 'superseded', reason: `effective ${event.effectiveAt}, before the last applied event (${last})` };
  }
  if (!person.everJoined && event.type !== 'joiner') {
    return {
      kind: 'reject',
      rejection: 'NotJoined',
      message: `No joiner was ever received for this person; a ${event.type} cannot apply.`,
    };
  }
  const cancels = queue
    .filter((q) =>
      event.type === 'leaver' ? q.type === 'leaver' || Date.parse(q.effectiveAt) >= at : event.type === 'joiner' && q.type === 'joiner',
    )
    .map((q) => q.eventId);
  const remaining = queue.filter((q) => !cancels.includes(q.eventId));
  let position = remaining.findIndex((q) => Date.parse(q.effectiveAt) > at);
  if (position < 0) position = remaining.length;
  const ordered = [...remaining.slice(0, position), event, ...remaining.slice(position)];

  // An event being applied counts as done, whatever the view shows of it yet.
  let status: SimStatus = inProgress ? (inProgress.type === 'leaver' ? 'left' : 'active') : simStatus(person.status);
  for (const q of ordered) {
    const problem = transitionProblem(status, q.type);
    if (problem) {
      return {
        kind: 'reject',
        rejection: 'Conflict',
        message: q === event ? problem : `It would leave the waiting ${q.type} ${q.eventId} inapplicable: ${problem}`,
      };
    }
    status = q.type === 'leaver' ? 'left' : 'active';
  }
  return { kind: 'accept', cancels, position };
}

function transitionProblem(status: SimStatus, type: HrEventType): string | null {
  if (type === 'joiner' && status === 'active')
    return 'The person is already active (or will be by then); send a mover to change attributes.';
  if (type === 'mover' && status === 'none') return 'The person has not started yet; correct the joiner instead.';
  if (type === 'mover' && status === 'left') return 'The person has left (or will have by then); a mover cannot apply.';
  if (type === 'leaver' && status === 'left') return 'The person has already left (or will have by then).';
  return null;
}

/** When a waiting event acts: a pre-provisioned joiner first acts `preProvisionDays` early. */
export function preProvisionAt(
  event: Pick<HrEvent, 'type' | 'effectiveAt'>,
  policy: Pick<LifecyclePolicy, 'preProvisionDays'>,
): string | null {
  if (event.type !== 'joiner' || policy.preProvisionDays <= 0) return null;
  return new Date(Date.parse(event.effectiveAt) - policy.preProvisionDays * 86_400_000).toISOString();
}

// ------------------------------------------------------------------ preview

export interface GrantRef {
  grantId: string;
  role: string;
  status: string;
}

export interface EntitlementRef {
  role: string;
  sourceType: string;
  sourceId: string;
}

export interface PreviewInput {
  /** The person as the read model has them; null when no joiner was ever received. */
  person: Pick<
    PersonView,
    'status' | 'attributes' | 'birthright' | 'pendingRemovals' | 'pendingEvents' | 'eligibleGrantRoles' | 'deletion' | 'lastApplied'
  > | null;
  event: HrEvent;
  policy: LifecyclePolicy;
  policyVersion: number;
  /** ISO time the preview is made (events dated before it apply at once). */
  now: string;
  /** The person's grants that are not over (pending, scheduled, active). */
  openGrants?: GrantRef[];
  /** The person's open entitlements from the ledger (a leaver ends them all). */
  openEntitlements?: EntitlementRef[];
}

export type AccountChange = 'create' | 'create_disabled' | 'enable' | 're_enable' | 'disable' | 'none';

export interface LifecyclePreview {
  eventId: string;
  personId: string;
  type: HrEventType;
  policyVersion: number;
  outcome: 'apply' | 'superseded' | 'rejected';
  /** Why it would be superseded or refused. */
  reason: string | null;
  rejection: 'NotJoined' | 'Conflict' | null;
  /** When it would act (its effective time, or now for a past one). */
  appliesAt: string;
  /** For a pre-provisioned joiner: when the disabled account and its roles are created. */
  preProvisionAt: string | null;
  /** Waiting events this one would cancel. */
  cancels: string[];
  account: AccountChange;
  attributes: { before: Record<string, string>; after: Record<string, string> };
  matchedRuleIds: string[];
  rolesToAdd: BirthrightHolding[];
  rolesToRemoveNow: BirthrightHolding[];
  rolesToRemoveAfterGrace: (BirthrightHolding & { dueAt: string })[];
  /** Removals waiting out a grace period that this event cancels (the role is birthright again). */
  removalsCancelled: BirthrightHolding[];
  grantsToEnd: GrantRef[];
  /** Non-birthright entitlements a leaver ends (manual, template, grant). */
  entitlementsToEnd: EntitlementRef[];
  revokeSessions: boolean;
  deletion: { action: 'schedule'; dueAt: string; mode: 'delete' | 'anonymise' } | { action: 'cancel' } | null;
}

const later = (a: string, b: string) => (Date.parse(a) >= Date.parse(b) ? a : b);

export function previewEvent(input: PreviewInput): LifecyclePreview {
  const { event, policy, person } = input;
  const base: LifecyclePreview = {
    eventId: event.eventId,
    personId: event.personId,
    type: event.type,
    policyVersion: input.policyVersion,
    outcome: 'apply',
    reason: null,
    rejection: null,
    appliesAt: later(event.effectiveAt, input.now),
    preProvisionAt: null,
    cancels: [],
    account: 'none',
    attributes: { before: person?.attributes ?? {}, after: person?.attributes ?? {} },
    matchedRuleIds: [],
    rolesToAdd: [],
    rolesToRemoveNow: [],
    rolesToRemoveAfterGrace: [],
    removalsCancelled: [],
    grantsToEnd: [],
    entitlementsToEnd: [],
    revokeSessions: false,
    deletion: null,
  };
  const admission = admitEvent(
    { status: person?.status ?? 'pending', everJoined: person !== null, lastApplied: person?.lastApplied ?? null },
    person?.pendingEvents ?? [],
    event,
  );
  if (admission.kind === 'superseded') return { ...base, outcome: 'superseded', reason: admission.reason };
  if (admission.kind === 'reject') return { ...base, outcome: 'rejected', reason: admission.message, rejection: admission.rejection };
  base.cancels = admission.cancels;

  // The state the event meets: this preview assumes waiting events before it apply as planned
  // and only looks at the person as they are now.
  const status: PersonStatus = person?.status ?? 'pending';
  const current = person?.birthright ?? [];
  const pending = person?.pendingRemovals ?? [];
  const attributes = mergedAttributes(person?.attributes ?? {}, event);
  const target = evaluateBirthright(policy, attributes);
  const diff = diffHoldings(current, target.holdings);

  if (event.type === 'leaver') {
    const birthrightKeys = new Set(current.map(key));
    return {
      ...base,
      account: status === 'pending' ? 'none' : 'disable',
      rolesToRemoveNow: current,
      grantsToEnd: input.openGrants ?? [],
      entitlementsToEnd: (input.openEntitlements ?? []).filter(
        (e) => !(e.sourceType === 'birthright' && birthrightKeys.has(key({ role: e.role, ruleId: e.sourceId }))),
      ),
      revokeSessions: status !== 'pending',
      deletion: {
        action: 'schedule',
        dueAt: new Date(Date.parse(base.appliesAt) + policy.leaver.retentionDays * 86_400_000).toISOString(),
        mode: policy.leaver.afterRetention,
      },
    };
  }

  const common = { ...base, attributes: { before: person?.attributes ?? {}, after: attributes }, matchedRuleIds: target.ruleIds };
  if (event.type === 'joiner') {
    const early = preProvisionAt(event, policy);
    const preProvisions = early !== null && Date.parse(event.effectiveAt) > Date.parse(input.now) && status === 'pending';
    const account: AccountChange =
      status === 'pending' ? (preProvisions ? 'create_disabled' : 'create') : status === 'pre_provisioned' ? 'enable' : 're_enable';
    return {
      ...common,
      preProvisionAt: preProvisions ? later(early, input.now) : null,
      account,
      rolesToAdd: diff.added,
      rolesToRemoveNow: diff.removed,
      removalsCancelled: pending
        .filter((p) => target.holdings.some((h) => sameHolding(h, p)))
        .map(({ role, ruleId }) => ({ role, ruleId })),
      deletion: person?.deletion ? { action: 'cancel' } : null,
    };
  }

  // Mover: new roles at once; old ones after the grace period, unless already waiting.
  const graceMs = policy.moverGraceMinutes * 60_000;
  const dueAt = new Date(Date.parse(base.appliesAt) + graceMs).toISOString();
  const alreadyWaiting = (h: BirthrightHolding) => pending.some((p) => sameHolding(p, h));
  const newlyRemoved = diff.removed.filter((h) => !alreadyWaiting(h));
  const oldEligible = new Set(person?.eligibleGrantRoles ?? []);
  const newEligible = new Set(target.eligibleGrantRoles);
  return {
    ...common,
    rolesToAdd: diff.added,
    rolesToRemoveNow: graceMs === 0 ? newlyRemoved : [],
    rolesToRemoveAfterGrace: graceMs === 0 ? [] : newlyRemoved.map((h) => ({ ...h, dueAt })),
    removalsCancelled: pending.filter((p) => target.holdings.some((h) => sameHolding(h, p))).map(({ role, ruleId }) => ({ role, ruleId })),
    grantsToEnd: policy.endGrantsNotEligible
      ? (input.openGrants ?? []).filter((g) => oldEligible.has(g.role) && !newEligible.has(g.role))
      : [],
  };
}
