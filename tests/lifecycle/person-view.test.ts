import { describe, expect, it } from 'vitest';
import type { PendingRemoval } from '../../core/lifecycle/contract.js';
import { LifecyclePolicy } from '../../core/lifecycle/policy.js';
import {
  afterErasure,
  afterGraceRemoval,
  afterJoining,
  afterLeaving,
  graceRemovalAuthority,
  holdingsSnapshot,
  newPersonView,
  planMove,
  planProvision,
} from '../../workflows/lifecycle/view.js';
import { at, person, policy, submitted } from './person-fixtures.js';

const NOW = at('2030-06-01T00:00:00.000Z');
const HOUR = 3_600_000;
const toSales = submitted({ eventId: 'm1', type: 'mover', effectiveAt: '2030-06-01T00:00:00.000Z', attributes: { department: 'Sales' } });
const removal = (role: string, ruleId: string, dueAt: string, hrEventId = 'm0'): PendingRemoval => ({
  role,
  ruleId,
  dueAt,
  hrEventId,
  policyVersion: 1,
});

describe('person view: a new lifecycle', () => {
  it('starts pending, with nothing held and nothing applied', () => {
    const view = newPersonView('t', 'p', 'person/t/p');
    expect(view).toMatchObject({ workflowId: 'person/t/p', status: 'pending', birthright: [], lastApplied: null, version: 0 });
    expect(holdingsSnapshot(view)).toEqual({ status: 'pending', birthright: [], pendingRemovals: [] });
  });
});

describe('person view: joiner', () => {
  it('gives the birthright of the joiner attributes alone and keeps the profile when none is sent', () => {
    const rehire = submitted({
      eventId: 'j2',
      type: 'joiner',
      effectiveAt: '2030-06-01T00:00:00.000Z',
      attributes: { department: 'Sales' },
    });
    const plan = planProvision(person({ attributes: { department: 'Engineering' } }), rehire);
    expect(plan.attributes).toEqual({ department: 'Sales' });
    expect(plan.profile).toEqual({ username: 'p', displayName: 'P', email: null });
    expect(plan.diff.added).toEqual([{ role: 'CRM', ruleId: 'sales' }]);
    expect(plan.diff.removed).toEqual([{ role: 'Developers', ruleId: 'eng' }]);
    expect(plan.after).toMatchObject({
      birthright: [
        { role: 'Staff', ruleId: 'staff' },
        { role: 'CRM', ruleId: 'sales' },
      ],
      pendingRemovals: [],
      eligibleGrantRoles: [],
      policyVersion: 1,
    });
  });

  it('takes a sent profile, with a missing email recorded as null', () => {
    const joiner = submitted({
      eventId: 'j1',
      type: 'joiner',
      effectiveAt: '2030-06-01T00:00:00Z',
      profile: { username: 'ada', displayName: 'Ada' },
    });
    expect(planProvision(newPersonView('t', 'p', 'w'), joiner).profile).toEqual({ username: 'ada', displayName: 'Ada', email: null });
  });

  it('dates the start at the effective time, or now for an event dated in the past', () => {
    const future = submitted({ eventId: 'j1', type: 'joiner', effectiveAt: '2030-07-01T00:00:00.000Z' });
    expect(afterJoining(future, NOW)).toEqual({ status: 'active', joinedAt: '2030-07-01T00:00:00.000Z', leftAt: null });
    const past = submitted({ eventId: 'j1', type: 'joiner', effectiveAt: '2030-01-01T00:00:00.000Z' });
    expect(afterJoining(past, NOW).joinedAt).toBe('2030-06-01T00:00:00.000Z');
  });
});

describe('person view: mover', () => {
  it('adds the new roles at once and schedules the old ones for the end of the grace period', () => {
    const move = planMove(person(), toSales, NOW);
    expect(move.diff.added).toEqual([{ role: 'CRM', ruleId: 'sales' }]);
    expect(move.withGrace).toBe(true);
    expect(move.removedNow).toEqual([]);
    expect(move.pendingRemovals).toEqual([
      { role: 'Developers', ruleId: 'eng', dueAt: new Date(NOW + HOUR).toISOString(), hrEventId: 'm1', policyVersion: 1 },
    ]);
    // Roles in grace stay in the birthright until they are removed.
    expect(move.after.birthright).toEqual([
      { role: 'Staff', ruleId: 'staff' },
      { role: 'CRM', ruleId: 'sales' },
      { role: 'Developers', ruleId: 'eng' },
    ]);
    expect(move.lostGrantRoles).toEqual(['GlobalAdmin']);
  });

  it('counts the grace period from the effective time when the move is dated in the future', () => {
    const later = { ...toSales, event: { ...toSales.event, effectiveAt: '2030-06-02T00:00:00.000Z' } };
    expect(planMove(person(), later, NOW).pendingRemovals[0]!.dueAt).toBe('2030-06-02T01:00:00.000Z');
  });

  it('ends the old roles at once when the policy has no grace period', () => {
    const noGrace = { ...toSales, policy: LifecyclePolicy.parse({ ...policy, moverGraceMinutes: 0 }) };
    const move = planMove(person(), noGrace, NOW);
    expect(move.withGrace).toBe(false);
    expect(move.removedNow).toEqual([{ role: 'Developers', ruleId: 'eng' }]);
    expect(move.pendingRemovals).toEqual([]);
    expect(move.after.birthright).toEqual([
      { role: 'Staff', ruleId: 'staff' },
      { role: 'CRM', ruleId: 'sales' },
    ]);
  });

  it('cancels a waiting removal of a role the new position gives again (a move-back)', () => {
    const inSales = person({
      attributes: { department: 'Sales' },
      birthright: [
        { role: 'Staff', ruleId: 'staff' },
        { role: 'CRM', ruleId: 'sales' },
        { role: 'Developers', ruleId: 'eng' },
      ],
      pendingRemovals: [removal('Developers', 'eng', '2030-06-01T00:30:00.000Z')],
      eligibleGrantRoles: [],
    });
    const back = submitted({
      eventId: 'm2',
      type: 'mover',
      effectiveAt: '2030-06-01T00:00:00.000Z',
      attributes: { department: 'Engineering' },
    });
    const move = planMove(inSales, back, NOW);
    expect(move.removalsCancelled).toEqual([inSales.pendingRemovals[0]]);
    expect(move.stillPending).toEqual([]);
    expect(move.diff.added).toEqual([]);
    expect(move.pendingRemovals).toEqual([removal('CRM', 'sales', new Date(NOW + HOUR).toISOString(), 'm2')]);
  });

  it('keeps the earlier due time of a role already waiting for removal', () => {
    const waiting = removal('Developers', 'eng', '2030-06-01T00:10:00.000Z');
    const move = planMove(person({ pendingRemovals: [waiting] }), toSales, NOW);
    expect(move.stillPending).toEqual([waiting]);
    expect(move.pendingRemovals).toEqual([waiting]);
  });

  it('keeps the profile unless the mover sends one', () => {
    expect(planMove(person(), toSales, NOW).profile).toEqual({ username: 'p', displayName: 'P', email: null });
    const renamed = { ...toSales, event: { ...toSales.event, profile: { username: 'p', displayName: 'Pat', email: 'p@x' } } };
    expect(planMove(person(), renamed, NOW).profile).toEqual({ username: 'p', displayName: 'Pat', email: 'p@x' });
  });
});

describe('person view: grace removals', () => {
  it('drops the removed holdings from both the waiting removals and the birthright, and nothing else', () => {
    const due = removal('Developers', 'eng', '2030-06-01T01:00:00.000Z', 'm1');
    const later = removal('VPN', 'eng', '2030-06-02T01:00:00.000Z', 'm1');
    const view = person({
      birthright: [
        { role: 'Staff', ruleId: 'staff' },
        { role: 'Developers', ruleId: 'eng' },
        { role: 'VPN', ruleId: 'eng' },
      ],
      pendingRemovals: [due, later],
    });
    expect(afterGraceRemoval(view, [due])).toEqual({
      pendingRemovals: [later],
      birthright: [
        { role: 'Staff', ruleId: 'staff' },
        { role: 'VPN', ruleId: 'eng' },
      ],
    });
  });

  it('names one mover event as a string and several as a list, with their distinct rules', () => {
    expect(graceRemovalAuthority([removal('A', 'eng', 't', 'm1'), removal('B', 'eng', 't', 'm1')])).toEqual({
      hrEventId: 'm1',
      policyVersion: 1,
      ruleIds: ['eng'],
    });
    expect(graceRemovalAuthority([removal('A', 'eng', 't', 'm1'), removal('B', 'sales', 't', 'm2')])).toEqual({
      hrEventId: ['m1', 'm2'],
      policyVersion: 1,
      ruleIds: ['eng', 'sales'],
    });
  });
});

describe('person view: leaver and erasure', () => {
  it('clears every holding and schedules deletion a retention period after the effective date, not after now', () => {
    const leaver = submitted({ eventId: 'l1', type: 'leaver', effectiveAt: '2030-05-01T00:00:00.000Z' }, { policyVersion: 4 });
    expect(afterLeaving(leaver, NOW)).toEqual({
      status: 'left',
      leftAt: '2030-06-01T00:00:00.000Z',
      birthright: [],
      pendingRemovals: [],
      matchedRuleIds: [],
      eligibleGrantRoles: [],
      policyVersion: 4,
      deletion: { dueAt: '2030-05-31T00:00:00.000Z', mode: 'delete', hrEventId: 'l1' },
    });
  });

  it('deletes or anonymises, clearing the personal data either way', () => {
    expect(afterErasure('delete')).toEqual({ deletion: null, status: 'deleted', profile: null, attributes: {} });
    expect(afterErasure('anonymise')).toMatchObject({ status: 'anonymised', profile: null, attributes: {} });
  });
});
