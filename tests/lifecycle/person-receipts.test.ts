import { describe, expect, it } from 'vitest';
import type { HrEvent, HrEventReceipt } from '../../core/lifecycle/contract.js';
import { REMEMBERED_RECEIPTS } from '../../core/lifecycle/contract.js';
import { receiptFor, RecentReceipts, registerRows, submissionRecord } from '../../workflows/lifecycle/receipts.js';

const RECEIVED = '2030-01-01T00:00:00.000Z';
const leaver: HrEvent = { eventId: 'l1', personId: 'p', type: 'leaver', effectiveAt: '2030-02-01T00:00:00Z' };
const mover: HrEvent = {
  eventId: 'm0',
  personId: 'p',
  type: 'mover',
  effectiveAt: '2029-01-01T00:00:00Z',
  attributes: { department: 'Sales' },
};
const accepted = { kind: 'accept' as const, cancels: ['j2', 'm5'], position: 0 };
const superseded = { kind: 'superseded' as const, reason: 'effective 2029-01-01T00:00:00Z, before the last applied event' };

const receipt = (eventId: string): HrEventReceipt =>
  receiptFor('p', { ...leaver, eventId }, { kind: 'accept', cancels: [], position: 0 }, RECEIVED);
const ids = (memory: RecentReceipts) => memory.carry().map((r) => r.eventId);

describe('person receipts: the answer to a submission', () => {
  it('accepts with the waiting events it cancelled, and writes a register row for each of them', () => {
    const r = receiptFor('p', leaver, accepted, RECEIVED);
    expect(r).toEqual({
      eventId: 'l1',
      personId: 'p',
      type: 'leaver',
      effectiveAt: '2030-02-01T00:00:00Z',
      disposition: 'accepted',
      cancelled: ['j2', 'm5'],
      receivedAt: RECEIVED,
      duplicate: false,
    });
    expect(registerRows(leaver, accepted, r)).toEqual([
      { eventId: 'l1', status: 'accepted', reason: null, receipt: r },
      { eventId: 'j2', status: 'cancelled', reason: 'cancelled by leaver l1' },
      { eventId: 'm5', status: 'cancelled', reason: 'cancelled by leaver l1' },
    ]);
    expect(submissionRecord(leaver, accepted)).toEqual({
      action: 'person.hr_event_accepted',
      payload: {
        hrEvent: { eventId: 'l1', type: 'leaver', effectiveAt: '2030-02-01T00:00:00Z', attributes: null },
        cancelled: ['j2', 'm5'],
      },
    });
  });

  it('supersedes an old event with its reason, cancelling nothing', () => {
    const r = receiptFor('p', mover, superseded, RECEIVED);
    expect(r).toMatchObject({ disposition: 'superseded', cancelled: [] });
    expect(registerRows(mover, superseded, r)).toEqual([{ eventId: 'm0', status: 'superseded', reason: superseded.reason, receipt: r }]);
    expect(submissionRecord(mover, superseded)).toEqual({
      action: 'person.hr_event_superseded',
      payload: {
        hrEvent: { eventId: 'm0', type: 'mover', effectiveAt: '2029-01-01T00:00:00Z', attributes: { department: 'Sales' } },
        cancelled: [],
        reason: superseded.reason,
      },
    });
  });
});

describe('person receipts: memory of recent event ids', () => {
  it('answers a re-sent event id with the first receipt marked as a duplicate, leaving the remembered one as it was', () => {
    const memory = new RecentReceipts();
    const first = receipt('e1');
    memory.remember(first);
    expect(memory.again('e1')).toEqual({ ...first, duplicate: true });
    expect(memory.get('e1')).toEqual(first);
    expect(memory.get('e1')!.duplicate).toBe(false);
  });

  it('knows nothing of an event id it never saw', () => {
    const memory = new RecentReceipts();
    expect(memory.has('e1')).toBe(false);
    expect(memory.get('e1')).toBeUndefined();
    expect(memory.again('e1')).toBeUndefined();
  });

  it('forgets the oldest receipt once the bound is passed, and only that one', () => {
    const memory = new RecentReceipts([], 3);
    for (const id of ['e1', 'e2', 'e3']) memory.remember(receipt(id));
    expect(ids(memory)).toEqual(['e1', 'e2', 'e3']);
    memory.remember(receipt('e4'));
    expect(ids(memory)).toEqual(['e2', 'e3', 'e4']);
    expect(memory.has('e1')).toBe(false);
    expect(memory.again('e1')).toBeUndefined();
    expect(memory.has('e2')).toBe(true);
  });

  it('remembers a thousand event ids by default', () => {
    const memory = new RecentReceipts();
    for (let i = 0; i <= REMEMBERED_RECEIPTS; i++) memory.remember(receipt(`e${i}`));
    expect(REMEMBERED_RECEIPTS).toBe(1000);
    expect(memory.carry()).toHaveLength(REMEMBERED_RECEIPTS);
    expect(memory.has('e0')).toBe(false);
    expect(memory.has(`e${REMEMBERED_RECEIPTS}`)).toBe(true);
  });

  it('carries its receipts to the next run oldest first, where duplicates are still answered and the oldest still goes first', () => {
    const run1 = new RecentReceipts([], 3);
    for (const id of ['e1', 'e2', 'e3']) run1.remember(receipt(id));
    const carried = JSON.parse(JSON.stringify(run1.carry())) as HrEventReceipt[];
    const run2 = new RecentReceipts(carried, 3);
    expect(run2.again('e2')).toEqual({ ...receipt('e2'), duplicate: true });
    run2.remember(receipt('e4'));
    expect(ids(run2)).toEqual(['e2', 'e3', 'e4']);
  });
});
