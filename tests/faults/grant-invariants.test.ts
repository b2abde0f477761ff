import { describe, expect, it } from 'vitest';
import type { GrantView } from '../../core/grants/contract.js';
import * as invariant from '../../faults/grants/invariants.js';
import type { EventRow, ObservedGrant, Observations } from '../../faults/grants/observations.js';

/** The fault run's counters computed from hand-made observations: each must fire on its defect and only then. */

const T0 = Date.parse('2026-01-01T10:00:00Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000);

function grant(
  id: string,
  trail: string[],
  view: Partial<GrantView>,
  extra: Partial<Omit<ObservedGrant, 'view' | 'events'>> = {},
): ObservedGrant {
  const events: EventRow[] = trail.map((action, i) => ({
    tenant_id: 't1',
    target_id: id,
    action: `grant.${action}`,
    seq: String(i + 1),
    occurred_at: at(i),
    payload: {},
  }));
  return {
    tenant_id: 't1',
    grant_id: id,
    status: view.status ?? 'ended',
    end_at: at(20),
    activated_at: null,
    revocation_verified_at: null,
    entitlement: undefined,
    revokeSentAt: undefined,
    ...extra,
    events,
    view: {
      grantId: id,
      tenantId: 't1',
      workflowId: `grant/t1/${id}`,
      subjectId: 'user01',
      role: 'HelpdeskAdmin',
      requesterId: 'operator',
      status: 'ended',
      endReason: 'expired',
      justification: null,
      ticket: null,
      policyVersion: 1,
      approvalsRequired: 0,
      approvals: [],
      deniedBy: null,
      startAt: at(0).toISOString(),
      endAt: at(20).toISOString(),
      activatedAt: null,
      endedAt: null,
      revocationVerifiedAt: null,
      pendingExtension: null,
      version: trail.length,
      ...view,
    },
  };
}

const observations = (grants: ObservedGrant[], samples: Observations['samples'] = [], targetEndsMemberships = true): Observations => ({
  checkedAt: T0 + 600_000,
  grants,
  orphans: [],
  samples,
  targetEndsMemberships,
  sweeps: {},
  chains: [],
});

describe('grants fault run: audit trail counters', () => {
  it('a grant whose window closed before activation (requested, approved, window_passed) is a complete trail in order', () => {
    const obs = observations([grant('g1', ['requested', 'approved', 'window_passed'], { status: 'ended', endReason: 'expired' })]);
    expect(invariant.auditOutOfOrder(obs)).toBe(0);
    expect(invariant.auditMissing(obs)).toBe(0);
    expect(invariant.auditUnexpected(obs)).toBe(0);
    expect(invariant.auditCountMismatch(obs)).toBe(0);
  });

  it('an activation the target refused after the approval (requested, approved, activation_failed) is a complete trail', () => {
    const obs = observations([grant('g1', ['requested', 'approved', 'activation_failed'], { status: 'ended', endReason: 'failed' })]);
    expect(invariant.auditUnexpected(obs)).toBe(0);
    expect(invariant.auditMissing(obs)).toBe(0);
    expect(invariant.auditOutOfOrder(obs)).toBe(0);
    const withoutApproval = observations([grant('g2', ['requested', 'activation_failed'], { status: 'ended', endReason: 'failed' })]);
    expect(invariant.auditMissing(withoutApproval)).toBe(1);
  });

  it('the API’s grant.access_closed before the workflow took the revoke up: complete, in order, outside the workflow’s count', () => {
    const trail = ['requested', 'approved', 'access_closed', 'activated', 'revoking', 'revoked'];
    const obs = observations([
      grant('g1', trail, { status: 'ended', endReason: 'revoked', activatedAt: at(2).toISOString(), version: trail.length - 1 }),
    ]);
    expect(invariant.auditOutOfOrder(obs)).toBe(0);
    expect(invariant.auditMissing(obs)).toBe(0);
    expect(invariant.auditUnexpected(obs)).toBe(0);
    expect(invariant.auditCountMismatch(obs)).toBe(0);
    const twice = observations([
      grant('g2', [...trail.slice(0, 3), 'access_closed', ...trail.slice(3)], {
        status: 'ended',
        endReason: 'revoked',
        activatedAt: at(2).toISOString(),
        version: trail.length - 1,
      }),
    ]);
    expect(invariant.auditDoubled(twice)).toBe(1);
  });

  it('events recorded against lifecycle order are counted once per grant', () => {
    const activated = { status: 'ended' as const, endReason: 'expired' as const, activatedAt: at(2).toISOString() };
    const obs = observations([
      grant('in-order', ['requested', 'approved', 'activated', 'expiring', 'expired'], activated),
      grant('swapped', ['requested', 'activated', 'approved', 'expiring', 'expired'], activated),
    ]);
    expect(invariant.auditOutOfOrder(obs)).toBe(1);
    expect(invariant.auditMissing(obs)).toBe(0);
  });
});

describe('grants fault run: access counters', () => {
  const revoked = (id: string, revokeAt: number) =>
    grant(
      id,
      ['requested', 'approved', 'activated', 'revoking', 'revoked'],
      { status: 'ended', endReason: 'revoked', activatedAt: at(1).toISOString() },
      {
        activated_at: at(1),
        revocation_verified_at: at(revokeAt + 1),
        revokeSentAt: T0 + revokeAt * 1000,
        entitlement: { source_id: id, granted_at: at(1), ended_at: at(revokeAt + 1), end_reason: 'revoked', expires_at: at(20) },
      },
    );
  const live = (seconds: number) => ({ at: T0 + seconds * 1000, live: [{ tenant_id: 't1', user_id: 'user01', role: 'HelpdeskAdmin' }] });

  it('access the target still gives more than 5 s after the revoke was taken counts against the revoke, within 5 s it does not', () => {
    expect(invariant.accessPastRevoke(observations([revoked('g1', 5)], [live(4), live(9)]))).toBe(0);
    expect(invariant.accessPastRevoke(observations([revoked('g1', 5)], [live(4), live(11)]))).toBe(1);
    expect(invariant.accessPastExpiry(observations([revoked('g1', 5)], [live(11)]))).toBe(0);
  });

  it('on a target that cannot end a membership (LDAP), access sampled past the told end counts against the expiry, not as unexplained', () => {
    const expired = grant(
      'g1',
      ['requested', 'approved', 'activated', 'expiring', 'expired'],
      { activatedAt: at(1).toISOString() },
      {
        activated_at: at(1),
        revocation_verified_at: at(30),
        entitlement: { source_id: 'g1', granted_at: at(1), ended_at: at(30), end_reason: 'expired', expires_at: at(20) },
      },
    );
    const remote = observations([expired], [live(10), live(24), live(27)], false);
    expect(invariant.accessPastExpiry(remote)).toBe(1);
    expect(invariant.maxAccessPastDeadlineMs(remote)).toBe(7_000);
    expect(invariant.unexplainedAccessSamples(remote)).toBe(0);
    expect(invariant.accessPastExpiry(observations([expired], [live(10), live(24)], false))).toBe(0);
  });

  it('an activation the ledger refused after the window closed is not access left open; an entitlement nobody closed is', () => {
    const refused = grant(
      'refused',
      ['requested', 'approved', 'window_passed'],
      { status: 'ended', endReason: 'expired' },
      { entitlement: { source_id: 'refused', granted_at: at(19), ended_at: at(25), end_reason: 'window_passed', expires_at: at(20) } },
    );
    const leftOpen = grant(
      'left-open',
      ['requested', 'approved'],
      { status: 'scheduled', endReason: null },
      { entitlement: { source_id: 'left-open', granted_at: at(19), ended_at: null, end_reason: null, expires_at: at(20) } },
    );
    expect(invariant.stillOpenPastDeadline(observations([refused]))).toBe(0);
    expect(invariant.stillOpenPastDeadline(observations([refused, leftOpen]))).toBe(1);
  });

  it('coverage: only access the target took counts as given, and only revokes sent while it held it', () => {
    const entitlement = (grantedAt: number, endReason: string | null) => ({
      source_id: 'x',
      granted_at: at(grantedAt),
      ended_at: at(15),
      end_reason: endReason,
      expires_at: at(20),
    });
    const obs = observations([
      grant('given-revoked', ['requested'], {}, { activated_at: at(2), entitlement: entitlement(2, 'revoked'), revokeSentAt: T0 + 10_000 }),
      grant('revoked-before-given', ['requested'], {}, { entitlement: entitlement(12, 'end_requested'), revokeSentAt: T0 + 10_000 }),
      grant('refused', ['requested'], {}, { entitlement: entitlement(21, 'window_passed') }),
      grant('given-expired', ['requested'], {}, { activated_at: at(3), entitlement: entitlement(3, 'expired') }),
      grant('never-opened', ['requested'], {}),
    ]);
    expect(invariant.accessGiven(obs)).toBe(2);
    expect(invariant.revokesOfGivenAccess(obs)).toBe(1);
  });

  it('a grant recorded active after its end counts as activated after its end', () => {
    const late = grant(
      'late',
      ['requested', 'approved', 'activated', 'expiring', 'expired'],
      { activatedAt: at(21).toISOString() },
      { activated_at: at(21) },
    );
    const onTime = grant(
      'on-time',
      ['requested', 'approved', 'activated', 'expiring', 'expired'],
      { activatedAt: at(1).toISOString() },
      { activated_at: at(1) },
    );
    expect(invariant.activatedAfterEnd(observations([late, onTime]))).toBe(1);
  });
});
