import type { ReviewDecision } from './contract.js';
import type { CampaignDefinitionDocument, ReviewerSource } from './schemas.js';

/**
 * Review decisions as pure functions: what an item is recommended, what a stage's decisions
 * add up to, who reviews, and what the close does with non-responses under the guardrails.
 * Activities apply what these decide; unit tests pin them down.
 */

export interface ItemFacts {
  subjectStatus: string;
  lastActivityAt: string | null;
  sources: { type: string; id: string }[];
  /** Set for a service account: it signs in by no session, so its owner stands in for activity. */
  serviceAccount?: { owner: string | null };
}

const DAY_MS = 86_400_000;

/** The recommendation and its reason, the first of these that applies. */
export function recommend(facts: ItemFacts, now: number, inactivityDays: number): { recommendation: ReviewDecision; reason: string } {
  if (facts.subjectStatus !== 'active') return { recommendation: 'revoke', reason: `the account is ${facts.subjectStatus} → revoke` };
  const birthright = facts.sources.filter((s) => s.type === 'birthright').map((s) => s.id);
  if (birthright.length > 0) return { recommendation: 'keep', reason: `birthright rule ${birthright.join(', ')} still gives it → keep` };
  if (facts.serviceAccount) {
    if (!facts.serviceAccount.owner) return { recommendation: 'revoke', reason: 'a service account nobody owns → revoke' };
    if (facts.sources.length === 0)
      return { recommendation: 'revoke', reason: 'nothing Tenure recorded explains it (assigned outside Tenure) → revoke' };
    return { recommendation: 'keep', reason: `a service account owned by ${facts.serviceAccount.owner} → keep` };
  }
  const last = facts.lastActivityAt ? Date.parse(facts.lastActivityAt) : undefined;
  if (last === undefined || now - last > inactivityDays * DAY_MS)
    return { recommendation: 'revoke', reason: `no sign-in in ${inactivityDays} days → revoke` };
  if (facts.sources.length === 0)
    return { recommendation: 'revoke', reason: 'nothing Tenure recorded explains it (assigned outside Tenure) → revoke' };
  return { recommendation: 'keep', reason: `signed in within ${inactivityDays} days → keep` };
}

export type Strategy = CampaignDefinitionDocument['stages'][number]['strategy'];

/**
 * What a stage's decisions add up to, or null when they decide nothing (a non-response).
 * `decisions` are the reviewers' current ones, first decided first.
 */
export function stageOutcome(
  strategy: Strategy,
  reviewers: readonly string[],
  decisions: readonly { reviewer_id: string; decision: ReviewDecision }[],
): ReviewDecision | null {
  if (decisions.length === 0) return null;
  switch (strategy) {
    case 'first_decision':
      return decisions[0]!.decision;
    case 'any_deny':
      return decisions.some((d) => d.decision === 'revoke') ? 'revoke' : 'keep';
    case 'all_must_accept': {
      if (decisions.some((d) => d.decision === 'revoke')) return 'revoke';
      const kept = new Set(decisions.map((d) => d.reviewer_id));
      return reviewers.every((r) => kept.has(r)) ? 'keep' : null;
    }
  }
}

export interface Candidate {
  id: string;
  email: string | null;
}

/**
 * The item's reviewers: the first source in the chain that gives at least one. Never the
 * subject themself (matched by email). Empty when no source gives anyone.
 */
export function reviewersFor(
  chain: readonly ReviewerSource[],
  subject: { email: string | null; attributes: Record<string, unknown> },
  candidates: { tenant_reviewer: readonly Candidate[]; tenant_approver: readonly Candidate[] },
  managerAttribute: string,
): { reviewerIds: string[]; via: ReviewerSource | null } {
  const notSelf = (c: Candidate) => !(subject.email && c.email && c.email.toLowerCase() === subject.email.toLowerCase());
  for (const source of chain) {
    let found: Candidate[];
    if (source === 'manager') {
      const manager = subject.attributes[managerAttribute];
      const all = [...candidates.tenant_reviewer, ...candidates.tenant_approver];
      found =
        typeof manager === 'string' && manager !== ''
          ? all.filter((c) => c.id === manager || (c.email !== null && c.email.toLowerCase() === manager.toLowerCase())).slice(0, 1)
          : [];
    } else found = [...candidates[source]];
    const ids = [...new Set(found.filter(notSelf).map((c) => c.id))];
    if (ids.length > 0) return { reviewerIds: ids, via: source };
  }
  return { reviewerIds: [], via: null };
}

export interface CloseItem {
  id: string;
  subjectId: string;
  role: string;
  privileged: boolean;
  subjectStatus: string;
  breakGlass: boolean;
  recommendation: ReviewDecision;
  /** The stage's outcome from decisions, or null for a non-response. */
  decided: ReviewDecision | null;
}

export interface CloseOutcome {
  id: string;
  outcome: 'keep' | 'revoke' | 'held';
  by: 'decision' | 'non_response';
  reason: string;
  /** The guardrail that held it, if one did. */
  guardrail: 'last_privileged_holder' | 'break_glass' | 'auto_revocation_cap' | null;
}

/**
 * The last stage's close: decisions stand, non-responses follow the policy, then the guardrails.
 * Automatic revocations of break-glass accounts are held, and those past the cap (count and share
 * of the review's items) are held. No revocation, decided or automatic, removes the last active
 * holder of a privileged role: `activeHolders` counts them per role on the target now.
 */
export function settleClose(
  items: readonly CloseItem[],
  policy: Pick<CampaignDefinitionDocument, 'nonResponse' | 'guardrails'>,
  itemCount: number,
  activeHolders: ReadonlyMap<string, ReadonlySet<string>>,
): CloseOutcome[] {
  const cap = Math.min(policy.guardrails.maxAutoRevocations, Math.floor((policy.guardrails.maxAutoRevocationPercent / 100) * itemCount));
  const breakGlass = new Set(policy.guardrails.breakGlassAccounts);
  let automatic = 0;
  const remaining = new Map([...activeHolders].map(([role, holders]) => [role, new Set(holders)]));
  const out: CloseOutcome[] = [];
  // Decided revocations first: they claim the role's holders before automatic ones do.
  const ordered = [...items].sort((a, b) => Number(a.decided === null) - Number(b.decided === null));
  for (const item of ordered) {
    if (item.decided !== null) {
      out.push(
        guardLastHolder(item, { id: item.id, outcome: item.decided, by: 'decision', reason: `decided ${item.decided}`, guardrail: null }),
      );
      continue;
    }
    const wanted = policy.nonResponse === 'recommendation' ? item.recommendation : policy.nonResponse;
    const reason = `no decision; the non-response policy (${policy.nonResponse}) says ${wanted}`;
    if (wanted === 'keep') {
      out.push({ id: item.id, outcome: 'keep', by: 'non_response', reason, guardrail: null });
      continue;
    }
    if (item.breakGlass || breakGlass.has(item.subjectId)) {
      out.push({
        id: item.id,
        outcome: 'held',
        by: 'non_response',
        reason: `${reason}; held: a break-glass account is never revoked automatically`,
        guardrail: 'break_glass',
      });
      continue;
    }
    const guarded = guardLastHolder(item, { id: item.id, outcome: 'revoke', by: 'non_response', reason, guardrail: null });
    if (guarded.outcome === 'revoke') {
      if (automatic >= cap) {
        remaining.get(item.role)?.add(item.subjectId); // not removed after all
        out.push({
          id: item.id,
          outcome: 'held',
          by: 'non_response',
          reason: `${reason}; held: over the cap of ${cap} automatic revocations for this tenant`,
          guardrail: 'auto_revocation_cap',
        });
        continue;
      }
      automatic++;
    }
    out.push(guarded);
  }
  return out;

  function guardLastHolder(item: CloseItem, outcome: CloseOutcome): CloseOutcome {
    if (outcome.outcome !== 'revoke' || !item.privileged) return outcome;
    const holders = remaining.get(item.role);
    if (!holders?.has(item.subjectId)) return outcome; // not an active holder: removing it strands nobody
    if (holders.size <= 1)
      return {
        ...outcome,
        outcome: 'held',
        reason: `${outcome.reason}; held: ${item.subjectId} is the last active holder of the privileged role ${item.role}`,
        guardrail: 'last_privileged_holder',
      };
    holders.delete(item.subjectId);
    return outcome;
  }
}

/**
 * The definition's flow settings, with their defaults: a run started before these settings
 * existed carries a definition without them (and must replay as it ran).
 */
export function flowOf(definition: CampaignDefinitionDocument): {
  remindersBefore: number[];
  escalation: CampaignDefinitionDocument['escalation'];
  reiteration: CampaignDefinitionDocument['reiteration'];
  remediation: CampaignDefinitionDocument['remediation'];
} {
  const d = definition as Partial<CampaignDefinitionDocument>;
  return {
    remindersBefore: [...(d.reminders?.beforeDeadlineMinutes ?? [])].sort((a, b) => b - a),
    escalation: d.escalation ?? null,
    reiteration: d.reiteration ?? null,
    remediation: d.remediation ?? 'at_close',
  };
}

/**
 * The reminder offset (minutes before the deadline) due next and when, among those not yet sent;
 * undefined when none is left. An offset whose time had passed when the stage opened is never
 * sent (`openedAt`): a stage shorter than the offset has no such reminder.
 */
export function nextReminder(
  offsets: readonly number[],
  sent: readonly number[],
  closesAt: number,
  openedAt: number,
): { offset: number; at: number } | undefined {
  return offsets
    .filter((o) => !sent.includes(o) && closesAt - o * 60_000 > openedAt)
    .map((offset) => ({ offset, at: closesAt - offset * 60_000 }))
    .sort((a, b) => a.at - b.at)[0];
}
