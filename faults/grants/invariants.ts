import { quantile } from '../../bench/stats.js';
import type { LateWindow } from '../support/history.js';
import type { Progress } from '../support/run.js';
import type { Timeline } from '../support/timeline.js';
import { ACTION_RANK, expectedActions, RECORDED_OUTSIDE_WORKFLOW } from './expected-trail.js';
import type { ObservedGrant, Observations } from './observations.js';

/**
 * The invariants of the grants fault run, each a counter computed from the observations alone;
 * 0 is what the design promises unless said otherwise. Shared analyses are computed once per
 * observation set.
 */

/** Access may outlast its deadline by this much (the revocation's own round trip) before it counts. */
export const EXPIRY_GRACE_MS = 5_000;
export const FINAL_STATUSES = ['ended', 'denied', 'approval_timed_out', 'cancelled'];

function once<T>(analyse: (obs: Observations) => T): (obs: Observations) => T {
  const cache = new WeakMap<Observations, T>();
  return (obs) => {
    if (!cache.has(obs)) cache.set(obs, analyse(obs));
    return cache.get(obs)!;
  };
}

/** When the grant's access had to be gone: its end, or the early revoke (sent or recorded) when sooner. */
function deadlineOf(g: ObservedGrant): { deadline: number; revoked: boolean } {
  const revoking = g.events.find((e) => e.action === 'grant.revoking' || e.action === 'grant.relinquishing');
  const requestedEnd = g.revokeSentAt ?? revoking?.occurred_at.getTime() ?? Infinity;
  const end = g.end_at.getTime();
  return { deadline: Math.min(end, requestedEnd), revoked: requestedEnd < end };
}

// ------------------------------------------------------------------ no grant outlives its expiry

interface RevocationTiming {
  grant: ObservedGrant;
  deadline: number;
  /** Deadline → verified removal; or → the checks, while still open. */
  lag: number;
  /** The workflow confirmed the removal and the ledger entitlement is closed. */
  verified: boolean;
}

/** Reasons the ledger gives an entitlement whose activation was refused: it removed the role itself, under its lock. */
const REFUSED_ACTIVATION = ['window_passed', 'target_rejected', 'end_requested'];

/**
 * Every grant that gave access, or may have (its entitlement opened), with how long after its
 * deadline the removal was confirmed: by the workflow, or by the ledger step that refused a late
 * activation and took the role back in the same locked transaction.
 */
const revocationTimings = once((obs): RevocationTiming[] =>
  obs.grants
    .filter((g) => g.activated_at !== null || g.entitlement !== undefined)
    .map((grant) => {
      const { deadline } = deadlineOf(grant);
      const refused = grant.entitlement?.ended_at && REFUSED_ACTIVATION.includes(grant.entitlement.end_reason ?? '');
      const verifiedAt = (grant.revocation_verified_at ?? (refused ? grant.entitlement!.ended_at : null))?.getTime();
      const open = grant.entitlement !== undefined && grant.entitlement.ended_at === null;
      const verified = verifiedAt !== undefined && !open;
      return { grant, deadline, verified, lag: verified ? Math.max(0, verifiedAt - deadline) : obs.checkedAt - deadline };
    }),
);

/** Grants still open, unconfirmed, more than the grace after their deadline when checked. */
export const stillOpenPastDeadline = (obs: Observations) =>
  revocationTimings(obs).filter((t) => !t.verified && t.lag > EXPIRY_GRACE_MS).length;

/** Grants confirmed removed (or still open) more than the grace after their deadline, as windows for diagnosis. */
export const lateRevocations = (obs: Observations): LateWindow[] =>
  revocationTimings(obs)
    .filter((t) => t.lag > EXPIRY_GRACE_MS)
    .map((t) => ({ workflowId: t.grant.view.workflowId, from: t.deadline, to: t.deadline + t.lag }));

/** Reported beside the invariant: the workflows' own confirmation lag. */
export const verifiedRevocationLate = (obs: Observations) => lateRevocations(obs).length;

/** Grants the workflow recorded as activated after their window had closed (the target must have refused). */
export const activatedAfterEnd = (obs: Observations) =>
  obs.grants.filter((g) => g.activated_at && g.activated_at.getTime() > g.end_at.getTime()).length;

/** Deadline → verified removal, ascending. */
export const expiryLags = once((obs) =>
  revocationTimings(obs)
    .filter((t) => t.verified)
    .map((t) => t.lag)
    .sort((a, b) => a - b),
);

/** Deadline → the ledger entitlement closed, ascending. */
export const removalLags = (obs: Observations) =>
  revocationTimings(obs)
    .filter((t) => t.verified && t.grant.entitlement?.ended_at)
    .map((t) => Math.max(0, t.grant.entitlement!.ended_at!.getTime() - t.deadline))
    .sort((a, b) => a - b);

export const expiryLagP50Ms = (obs: Observations) => quantile(expiryLags(obs), 0.5);
export const expiryLagP99Ms = (obs: Observations) => quantile(expiryLags(obs), 0.99);

/**
 * What the target actually gave: a sampled live membership must be explained by a grant of that
 * subject and role whose access had started and whose deadline (+ grace) had not passed. Else it
 * is blamed on the grant past its deadline that could still hold it (the target's end for it not
 * yet reached), the one that ended most recently; with none, it is unexplained.
 */
const sampledAccess = once((obs) => {
  const grantsOfTriple = new Map<string, { grantId: string; from: number; deadline: number; revoked: boolean; targetEnd: number }[]>();
  for (const g of obs.grants) {
    if (!g.entitlement) continue;
    const key = `${g.tenant_id}/${g.view.subjectId}/${g.view.role}`;
    grantsOfTriple.set(key, [
      ...(grantsOfTriple.get(key) ?? []),
      {
        grantId: g.grant_id,
        from: g.entitlement.granted_at.getTime(),
        ...deadlineOf(g),
        // Until when this grant could keep the membership live: the end the target was told, on a
        // target that ends memberships itself; on one that cannot (LDAP, SCIM), until removed.
        targetEnd: obs.targetEndsMemberships ? (g.entitlement.expires_at?.getTime() ?? Infinity) : Infinity,
      },
    ]);
  }
  const late = new Map<string, { lag: number; revoked: boolean }>();
  let unexplained = 0;
  for (const sample of obs.samples) {
    for (const m of sample.live) {
      const candidates = grantsOfTriple.get(`${m.tenant_id}/${m.user_id}/${m.role}`) ?? [];
      if (candidates.some((c) => c.from <= sample.at && sample.at <= c.deadline + EXPIRY_GRACE_MS)) continue;
      const blamed = candidates.filter((c) => c.deadline < sample.at && c.targetEnd > sample.at).sort((a, b) => b.deadline - a.deadline)[0];
      if (!blamed) {
        unexplained++;
        continue;
      }
      const lag = sample.at - blamed.deadline;
      if (lag > (late.get(blamed.grantId)?.lag ?? 0)) late.set(blamed.grantId, { lag, revoked: blamed.revoked });
    }
  }
  return { late, unexplained };
});

/** Grants whose access the target still gave more than the grace after their end (sampled). */
export const accessPastExpiry = (obs: Observations) => [...sampledAccess(obs).late.values()].filter((l) => !l.revoked).length;

/** Reported beside the invariant: early revokes whose access the target still gave more than the grace after the request. */
export const accessPastRevoke = (obs: Observations) => [...sampledAccess(obs).late.values()].filter((l) => l.revoked).length;

/** Sampled memberships no grant of the run explains. */
export const unexplainedAccessSamples = (obs: Observations) => sampledAccess(obs).unexplained;

export const maxAccessPastDeadlineMs = (obs: Observations) => {
  const lags = [...sampledAccess(obs).late.values()].map((l) => l.lag);
  return lags.length ? Math.max(...lags) : null;
};

/** Memberships left at the end that no open entitlement explains. */
export const orphanMemberships = (obs: Observations) => obs.orphans.length;

/** THE expiry invariant: access past expiry as the target gave it (sampled), plus access never removed at all. */
export const grantsActivePastExpiry = (obs: Observations) =>
  accessPastExpiry(obs) + stillOpenPastDeadline(obs) + orphanMemberships(obs) + unexplainedAccessSamples(obs);

// ------------------------------------------------------------------ no audit event lost or doubled

interface TrailFindings {
  missing: number;
  doubled: number;
  unexpected: number;
  outOfOrder: boolean;
  countMismatch: boolean;
  problems: string[];
}

/**
 * One grant's trail against what its final state implies: each transition exactly once, nothing
 * else, at most one alert per revocation step, lifecycle order, and as many events as the
 * workflow counted (`view.version`).
 */
const trailFindings = once((obs) =>
  obs.grants.map((g): TrailFindings & { grant: ObservedGrant } => {
    const view = g.view;
    const trail = g.events;
    const observed = new Map<string, number>();
    for (const e of trail) observed.set(e.action, (observed.get(e.action) ?? 0) + 1);
    const found: TrailFindings = { missing: 0, doubled: 0, unexpected: 0, outOfOrder: false, countMismatch: false, problems: [] };
    const expected = expectedActions(view, observed);
    for (const [action, [min, max]] of expected) {
      const n = observed.get(action) ?? 0;
      if (n < min) {
        found.missing += min - n;
        found.problems.push(`missing ${min - n}× ${action}`);
      }
      if (n > max) {
        found.doubled += n - max;
        found.problems.push(`${n}× ${action}`);
      }
    }
    for (const [action, n] of observed) {
      if (!expected.has(action)) {
        found.unexpected += n;
        found.problems.push(`unexpected ${action}`);
      }
    }
    // At most one alert per revocation step (remove, verify).
    const alertSteps = trail.filter((e) => e.action === 'grant.revocation_alert').map((e) => e.payload.step ?? '?');
    const repeatedAlerts = alertSteps.length - new Set(alertSteps).size;
    if (repeatedAlerts > 0) {
      found.doubled += repeatedAlerts;
      found.problems.push(`${repeatedAlerts} repeated revocation_alert`);
    }
    const workflowTrail = trail.filter((e) => !RECORDED_OUTSIDE_WORKFLOW.has(e.action));
    const ranks = workflowTrail.map((e) => ACTION_RANK[e.action] ?? -1);
    if (ranks.some((rank, i) => i > 0 && rank < ranks[i - 1]!)) {
      found.outOfOrder = true;
      found.problems.push('out of order');
    }
    // The workflow bumps `version` once per event it records: the counts must agree.
    if (workflowTrail.length !== view.version) {
      found.countMismatch = true;
      found.problems.push(`${workflowTrail.length} events for version ${view.version}`);
    }
    return { grant: g, ...found };
  }),
);

const sum = (obs: Observations, count: (f: TrailFindings) => number) => trailFindings(obs).reduce((total, f) => total + count(f), 0);

/** Transitions a grant's final state implies that its trail lacks. */
export const auditMissing = (obs: Observations) => sum(obs, (f) => f.missing);
/** Transitions recorded more often than once (alerts: more than once per step). */
export const auditDoubled = (obs: Observations) => sum(obs, (f) => f.doubled);
/** Events a grant's final state does not explain at all. */
export const auditUnexpected = (obs: Observations) => sum(obs, (f) => f.unexpected);
/**
 * Grants whose events go backwards in lifecycle order (ACTION_RANK). A workflow records its events
 * one after another, so only a workflow defect or an action missing from ACTION_RANK shows here.
 */
export const auditOutOfOrder = (obs: Observations) => sum(obs, (f) => (f.outOfOrder ? 1 : 0));
/** Grants whose trail length differs from the number of events their workflow recorded. */
export const auditCountMismatch = (obs: Observations) => sum(obs, (f) => (f.countMismatch ? 1 : 0));

// ------------------------------------------------------------------ every hash chain verifies

export const chainsFailingVerification = (obs: Observations) => obs.chains.filter((c) => !c.intact).length;
export const eventsVerified = (obs: Observations) => obs.chains.reduce((total, c) => total + c.checked, 0);

// ------------------------------------------------------------------ the run itself

/** The target took the access (the ledger did not refuse the activation): grants the access invariants are about. */
const gaveAccess = (g: ObservedGrant) =>
  g.activated_at !== null || (g.entitlement !== undefined && !REFUSED_ACTIVATION.includes(g.entitlement.end_reason ?? ''));

/** Grants whose access the target took: a run in which few did proves little about access past an end. */
export const accessGiven = (obs: Observations) => obs.grants.filter(gaveAccess).length;

/** Early revokes sent while the target held the grant's access: what `accessPastRevoke` is measured on. */
export const revokesOfGivenAccess = (obs: Observations) =>
  obs.grants.filter(
    (g) =>
      gaveAccess(g) &&
      g.revokeSentAt !== undefined &&
      g.revokeSentAt < g.end_at.getTime() &&
      g.entitlement !== undefined &&
      g.entitlement.granted_at.getTime() <= g.revokeSentAt,
  ).length;

/** `ended_<reason>`, with `ended_window_passed` for a grant whose window closed before it was activated. */
const outcomeOf = (g: ObservedGrant) =>
  g.view.status !== 'ended'
    ? g.view.status
    : g.view.endReason === 'expired' && g.view.activatedAt === null
      ? 'ended_window_passed'
      : `ended_${g.view.endReason}`;

/** Grants not in a final state: the run did not finish what it started. */
export const unfinished = (obs: Observations) => obs.grants.filter((g) => !FINAL_STATUSES.includes(g.view.status)).length;

export function outcomes(obs: Observations): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const g of obs.grants) counts[outcomeOf(g)] = (counts[outcomeOf(g)] ?? 0) + 1;
  return counts;
}

/** The evidence behind non-zero counters, on stderr: a few examples of each. */
export function explainFindings(obs: Observations, timeline: Timeline, progress: Progress): void {
  const examples = revocationTimings(obs)
    .filter((t) => t.lag > EXPIRY_GRACE_MS)
    .slice(0, 12)
    .map(({ grant: g, deadline, lag }) => {
      const verifiedAt = g.revocation_verified_at?.getTime();
      const trail = g.events
        .map((e) => `${e.action.replace('grant.', '')}@${((e.occurred_at.getTime() - deadline) / 1000).toFixed(1)}s`)
        .join(' ');
      return (
        `grant ${g.grant_id} ${g.status} lag ${lag} ms (deadline = ${verifiedAt === undefined ? 'unverified' : 'verified'}, ` +
        `${g.revokeSentAt && g.revokeSentAt < g.end_at.getTime() ? 'early revoke sent' : 'end_at'}); events rel. to deadline: ${trail}; ` +
        `faults: ${timeline.around(deadline, deadline + lag).join(' ') || 'none'}`
      );
    });
  if (examples.length) progress(`grants verified revoked late or still open (first ${examples.length}):\n  ${examples.join('\n  ')}`);
  const { late, unexplained } = sampledAccess(obs);
  if (late.size) {
    progress(
      `access the target still gave past the deadline + grace: ${[...late]
        .slice(0, 12)
        .map(([id, l]) => `${id} ${l.revoked ? 'revoke' : 'expiry'} +${l.lag} ms`)
        .join(', ')}`,
    );
  }
  if (unexplained) progress(`${unexplained} sampled memberships no grant of the run explains`);
  const lateActivations = obs.grants.filter((g) => g.activated_at && g.activated_at.getTime() > g.end_at.getTime()).slice(0, 12);
  if (lateActivations.length) {
    // The ledger opens the entitlement, then assigns only while the window is open: an entitlement
    // still open at the end (or closed by the workflow's removal) means the target took it in time.
    progress(
      `grants recorded as activated after their end (first ${lateActivations.length}):\n  ${lateActivations
        .map(
          (g) =>
            `${g.grant_id}: end ${g.end_at.toISOString()}, recorded active ${g.activated_at!.toISOString()}, entitlement opened ` +
            `${g.entitlement?.granted_at.toISOString() ?? '-'} ended ${g.entitlement?.ended_at?.toISOString() ?? '-'} (${g.entitlement?.end_reason ?? 'open'})`,
        )
        .join('\n  ')}`,
    );
  }
  if (obs.orphans.length)
    progress(`memberships no open entitlement explains: ${obs.orphans.map((o) => `${o.user_id}/${o.role}`).join(', ')}`);
  const auditExamples = trailFindings(obs)
    .filter((f) => f.problems.length)
    .slice(0, 12)
    .map(
      (f) =>
        `grant ${f.grant.grant_id} ${outcomeOf(f.grant)}: ${f.problems.join(', ')} [${f.grant.events.map((e) => e.action.replace('grant.', '')).join(' ')}]`,
    );
  if (auditExamples.length) progress(`audit trail problems (first ${auditExamples.length}):\n  ${auditExamples.join('\n  ')}`);
  for (const c of obs.chains.filter((c) => !c.intact)) progress(`chain ${c.chain} does not verify: ${c.reason} at seq ${c.firstBadSeq}`);
}
