import { describe, expect, it } from 'vitest';
import type { PendingRemoval } from '../../core/lifecycle/contract.js';
import { nextDue } from '../../workflows/lifecycle/due.js';
import { at, person, queued } from './person-fixtures.js';

const removal = (role: string, dueAt: string): PendingRemoval => ({ role, ruleId: 'eng', dueAt, hrEventId: 'm1', policyVersion: 1 });
const deletion = (dueAt: string) => ({ dueAt, mode: 'delete' as const, hrEventId: 'l1' });
const joiner = (effectiveAt: string) =>
  queued({ eventId: 'j1', type: 'joiner', effectiveAt, profile: { username: 'p', displayName: 'P' } });
const NOW = at('2030-01-01T00:00:00Z');

describe('person schedule: the next step due', () => {
  it('has nothing due for a settled person with nothing waiting', () => {
    expect(nextDue(person(), [], NOW)).toBeUndefined();
  });

  it('applies the head of the queue at its effective time, whatever waits behind it', () => {
    const head = queued({ eventId: 'm1', type: 'mover', effectiveAt: '2030-02-01T00:00:00Z' });
    const later = queued({ eventId: 'l1', type: 'leaver', effectiveAt: '2030-01-15T00:00:00Z' });
    expect(nextDue(person(), [head, later], NOW)).toEqual({ kind: 'apply', at: at('2030-02-01T00:00:00Z'), item: head });
  });

  it('pre-provisions a future joiner preProvisionDays ahead of its start', () => {
    const item = joiner('2030-02-10T00:00:00Z');
    expect(nextDue(person({ status: 'pending' }), [item], NOW)).toEqual({ kind: 'pre_provision', at: at('2030-02-07T00:00:00Z'), item });
  });

  it('applies a joiner at its start once it is pre-provisioned, or when it is already due', () => {
    const pre = { ...joiner('2030-02-10T00:00:00Z'), phase: 'pre_provisioned' as const };
    expect(nextDue(person({ status: 'pre_provisioned' }), [pre], NOW)).toMatchObject({ kind: 'apply', at: at('2030-02-10T00:00:00Z') });
    const past = joiner('2029-12-01T00:00:00Z');
    expect(nextDue(person({ status: 'pending' }), [past], NOW)).toMatchObject({ kind: 'apply', at: at('2029-12-01T00:00:00Z') });
  });

  it('applies a rehire at its start without pre-provisioning (the person is not pending)', () => {
    const rehire = joiner('2030-02-10T00:00:00Z');
    expect(nextDue(person({ status: 'left' }), [rehire], NOW)).toMatchObject({ kind: 'apply', at: at('2030-02-10T00:00:00Z') });
  });

  it('removes together every grace removal due by the earliest due time, and no later one', () => {
    const early = removal('A', '2030-01-02T00:00:00Z');
    const sameTime = removal('B', '2030-01-02T00:00:00Z');
    const late = removal('C', '2030-01-03T00:00:00Z');
    expect(nextDue(person({ pendingRemovals: [late, early, sameTime] }), [], NOW)).toEqual({
      kind: 'remove_after_grace',
      at: at('2030-01-02T00:00:00Z'),
      removals: [early, sameTime],
    });
  });

  it('on equal times ends grace removals first, then applies the waiting event, then deletes', () => {
    const t = '2030-02-01T00:00:00Z';
    const rehire = joiner(t);
    const all = person({ status: 'left', pendingRemovals: [removal('A', t)], deletion: deletion(t) });
    expect(nextDue(all, [rehire], NOW)?.kind).toBe('remove_after_grace');
    expect(nextDue({ ...all, pendingRemovals: [] }, [rehire], NOW)?.kind).toBe('apply');
    expect(nextDue({ ...all, pendingRemovals: [] }, [], NOW)?.kind).toBe('erase');
  });

  it('picks the earliest step whatever its kind', () => {
    const view = person({
      status: 'left',
      pendingRemovals: [removal('A', '2030-03-01T00:00:00Z')],
      deletion: deletion('2030-01-20T00:00:00Z'),
    });
    expect(nextDue(view, [joiner('2030-02-01T00:00:00Z')], NOW)).toEqual({ kind: 'erase', at: at('2030-01-20T00:00:00Z') });
  });
});
