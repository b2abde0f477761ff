import { describe, expect, it } from 'vitest';
import { flowOf, nextReminder, reviewersFor, settleClose, stageOutcome, type CloseItem } from '../../core/campaigns/review.js';
import { CampaignDefinitionDocument } from '../../core/campaigns/schemas.js';

/** The pure rules behind reminders and the flow settings (core/campaigns/review.ts). */
const MIN = 60_000;

describe('nextReminder', () => {
  const opened = 0;
  const closes = 7 * 24 * 60 * MIN;

  it('picks the earliest offset not yet sent, as a time before the deadline', () => {
    expect(nextReminder([60, 2 * 24 * 60], [], closes, opened)).toEqual({ offset: 2 * 24 * 60, at: closes - 2 * 24 * 60 * MIN });
    expect(nextReminder([60, 2 * 24 * 60], [2 * 24 * 60], closes, opened)).toEqual({ offset: 60, at: closes - 60 * MIN });
    expect(nextReminder([60], [60], closes, opened)).toBeUndefined();
  });

  it('never sends an offset longer than the stage, and follows a moved deadline', () => {
    expect(nextReminder([10 * 24 * 60], [], closes, opened)).toBeUndefined();
    const later = closes + 5 * 24 * 60 * MIN;
    expect(nextReminder([10 * 24 * 60], [], later, opened)).toEqual({ offset: 10 * 24 * 60, at: later - 10 * 24 * 60 * MIN });
  });
});

describe('flowOf', () => {
  it('gives the defaults to a definition stored before the flow settings existed', () => {
    const old = { stages: [{ durationMinutes: 60, strategy: 'first_decision' }] } as unknown as CampaignDefinitionDocument;
    expect(flowOf(old)).toEqual({ remindersBefore: [], escalation: null, reiteration: null, remediation: 'at_close' });
  });

  it('orders reminder offsets from the earliest to the latest before the deadline', () => {
    const doc = CampaignDefinitionDocument.parse({
      stages: [{ durationMinutes: 60 }],
      reminders: { beforeDeadlineMinutes: [5, 30, 10] },
      remediation: 'on_decision',
    });
    expect(flowOf(doc)).toMatchObject({ remindersBefore: [30, 10, 5], remediation: 'on_decision' });
  });

  it('refuses an offset given twice and a reiteration of zero rounds, naming the field', () => {
    const bad = CampaignDefinitionDocument.safeParse({
      stages: [{ durationMinutes: 60 }],
      reminders: { beforeDeadlineMinutes: [5, 5] },
      reiteration: { times: 0, durationMinutes: 10 },
    });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['reiteration.times', 'reminders.beforeDeadlineMinutes']);
  });
});

describe('stageOutcome', () => {
  const d = (reviewer_id: string, decision: 'keep' | 'revoke') => ({ reviewer_id, decision });

  it('first decision wins: the earliest reviewer decides, whatever the others say', () => {
    expect(stageOutcome('first_decision', ['a', 'b'], [d('b', 'keep'), d('a', 'revoke')])).toBe('keep');
    expect(stageOutcome('first_decision', ['a', 'b'], [])).toBeNull();
  });

  it('all must accept: one revoke revokes, a keep stands only once every assigned reviewer kept', () => {
    expect(stageOutcome('all_must_accept', ['a', 'b'], [d('a', 'keep')])).toBeNull();
    expect(stageOutcome('all_must_accept', ['a', 'b'], [d('a', 'keep'), d('b', 'keep')])).toBe('keep');
    expect(stageOutcome('all_must_accept', ['a', 'b'], [d('a', 'keep'), d('b', 'revoke')])).toBe('revoke');
    expect(stageOutcome('all_must_accept', ['a', 'b'], [d('b', 'revoke')])).toBe('revoke');
  });

  it('any deny denies: a single revoke among keeps revokes', () => {
    expect(stageOutcome('any_deny', ['a', 'b', 'c'], [d('a', 'keep'), d('b', 'keep'), d('c', 'revoke')])).toBe('revoke');
    expect(stageOutcome('any_deny', ['a', 'b', 'c'], [d('a', 'keep')])).toBe('keep');
  });
});

describe('reviewersFor', () => {
  const candidates = {
    tenant_reviewer: [
      { id: 'r1', email: 'r1@t.example' },
      { id: 'r2', email: 'Sub@T.example' },
    ],
    tenant_approver: [{ id: 'ap', email: 'ap@t.example' }],
  };
  const subject = (attributes: Record<string, unknown>, email: string | null = 'sub@t.example') => ({ email, attributes });

  it('defaults to the tenant’s reviewers, never the subject themself (matched by email, any case)', () => {
    expect(reviewersFor(['tenant_reviewer'], subject({}), candidates, 'manager')).toEqual({ reviewerIds: ['r1'], via: 'tenant_reviewer' });
  });

  it('takes the manager the lifecycle attribute names (by id or email), from the tenant’s own staff only', () => {
    expect(reviewersFor(['manager'], subject({ boss: 'AP@t.example' }), candidates, 'boss')).toEqual({
      reviewerIds: ['ap'],
      via: 'manager',
    });
    expect(reviewersFor(['manager'], subject({ manager: 'r1' }), candidates, 'manager')).toEqual({ reviewerIds: ['r1'], via: 'manager' });
    // Someone who is not the tenant's staff with a decision role (an MSP engineer, say) is nobody here.
    expect(reviewersFor(['manager'], subject({ manager: 'msp-eng@msp.example' }), candidates, 'manager')).toEqual({
      reviewerIds: [],
      via: null,
    });
  });

  it('falls back along the chain within the tenant when a source gives nobody', () => {
    expect(reviewersFor(['manager', 'tenant_approver'], subject({}), candidates, 'manager')).toEqual({
      reviewerIds: ['ap'],
      via: 'tenant_approver',
    });
    const onlySubject = { tenant_reviewer: [{ id: 'r2', email: 'sub@t.example' }], tenant_approver: [{ id: 'ap', email: null }] };
    expect(reviewersFor(['tenant_reviewer', 'tenant_approver'], subject({}), onlySubject, 'manager')).toEqual({
      reviewerIds: ['ap'],
      via: 'tenant_approver',
    });
  });
});

describe('settleClose guardrails', () => {
  const item = (subjectId: string, extra: Partial<CloseItem> = {}): CloseItem => ({
    id: `i-${subjectId}`,
    subjectId,
    role: 'Admin',
    privileged: true,
    subjectStatus: 'active',
    breakGlass: false,
    recommendation: 'revoke',
    decided: null,
    ...extra,
  });
  const policy = (guardrails: Partial<{ breakGlassAccounts: string[]; maxAutoRevocations: number; maxAutoRevocationPercent: number }>) => ({
    nonResponse: 'revoke' as const,
    guardrails: { breakGlassAccounts: [], maxAutoRevocations: 100, maxAutoRevocationPercent: 100, ...guardrails },
  });
  const holders = (...ids: string[]) => new Map([['Admin', new Set(ids)]]);
  const by = (out: ReturnType<typeof settleClose>) => Object.fromEntries(out.map((o) => [o.id, o.guardrail ?? o.outcome]));

  it('never revokes a break-glass account the definition lists automatically, but a reviewer’s revoke of it stands', () => {
    const out = settleClose(
      [item('glass'), item('glass2', { decided: 'revoke' }), item('x')],
      policy({ breakGlassAccounts: ['glass', 'glass2'] }),
      3,
      holders('glass', 'glass2', 'x', 'y'),
    );
    expect(by(out)).toEqual({ 'i-glass': 'break_glass', 'i-glass2': 'revoke', 'i-x': 'revoke' });
  });

  it('caps automatic revocations at the smaller of the count and the share of the review’s items', () => {
    const items = ['a', 'b', 'c', 'd', 'e'].map((s) => item(s));
    const many = holders('a', 'b', 'c', 'd', 'e', 'keeper');
    const byShare = settleClose(items, policy({ maxAutoRevocations: 10, maxAutoRevocationPercent: 40 }), 5, many);
    expect(byShare.filter((o) => o.outcome === 'revoke')).toHaveLength(2);
    expect(byShare.filter((o) => o.guardrail === 'auto_revocation_cap')).toHaveLength(3);
    const byCount = settleClose(items, policy({ maxAutoRevocations: 1, maxAutoRevocationPercent: 100 }), 5, many);
    expect(byCount.filter((o) => o.outcome === 'revoke')).toHaveLength(1);
    // Decided revocations are the tenant's: the cap never holds them.
    const decided = settleClose(
      items.map((i) => ({ ...i, decided: 'revoke' as const })),
      policy({ maxAutoRevocations: 0, maxAutoRevocationPercent: 0 }),
      5,
      many,
    );
    expect(decided.every((o) => o.outcome === 'revoke')).toBe(true);
  });

  it('follows the recommendation for non-responses when the policy says so', () => {
    const out = settleClose(
      [item('a', { recommendation: 'keep' }), item('b', { recommendation: 'revoke' })],
      { ...policy({}), nonResponse: 'recommendation' },
      2,
      holders('a', 'b', 'c'),
    );
    expect(out.map((o) => [o.id, o.outcome, o.by])).toEqual([
      ['i-a', 'keep', 'non_response'],
      ['i-b', 'revoke', 'non_response'],
    ]);
  });

  it('holds the revocation that would remove the last active holder, decided or automatic', () => {
    const out = settleClose([item('a', { decided: 'revoke' }), item('b')], policy({}), 2, holders('a', 'b'));
    expect(by(out)).toEqual({ 'i-a': 'revoke', 'i-b': 'last_privileged_holder' });
  });
});
