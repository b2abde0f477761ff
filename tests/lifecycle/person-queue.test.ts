import { describe, expect, it } from 'vitest';
import { admission, dequeue, enqueue, inputProblem, pendingEvents, type Queued } from '../../workflows/lifecycle/queue.js';
import { person, queued, submitted } from './person-fixtures.js';

const ids = (queue: readonly Queued[]) => queue.map((q) => q.submitted.event.eventId);

const joiner = (eventId: string, effectiveAt: string) =>
  queued({ eventId, type: 'joiner', effectiveAt, profile: { username: 'p', displayName: 'P' } });
const mover = (eventId: string, effectiveAt: string) =>
  queued({ eventId, type: 'mover', effectiveAt, attributes: { department: 'Sales' } });
const leaver = (eventId: string, effectiveAt: string) => queued({ eventId, type: 'leaver', effectiveAt });

describe('person queue: placing an accepted event', () => {
  const active = { view: person(), everJoined: true, applying: undefined };

  it('puts a later event after the waiting ones and an earlier one before them', () => {
    let queue = [mover('m1', '2030-03-01T00:00:00Z')];
    for (const item of [mover('m2', '2030-04-01T00:00:00Z'), mover('m0', '2030-02-01T00:00:00Z')]) {
      const decided = admission({ ...active, queue }, item.submitted);
      expect(decided.kind).toBe('accept');
      if (decided.kind === 'accept') queue = enqueue(queue, item, decided);
    }
    expect(ids(queue)).toEqual(['m0', 'm1', 'm2']);
  });

  it('orders an event with the same effective time as a waiting one after it (ties go by arrival)', () => {
    const queue = [mover('m1', '2030-03-01T00:00:00Z'), mover('m2', '2030-04-01T00:00:00Z')];
    const same = mover('m1-again', '2030-03-01T00:00:00Z');
    const decided = admission({ ...active, queue }, same.submitted);
    expect(decided).toEqual({ kind: 'accept', cancels: [], position: 1 });
    if (decided.kind === 'accept') expect(ids(enqueue(queue, same, decided))).toEqual(['m1', 'm1-again', 'm2']);
  });

  it('drops the waiting events a leaver cancels and places the leaver among those left', () => {
    const queue = [mover('m1', '2030-03-01T00:00:00Z'), mover('m2', '2030-05-01T00:00:00Z')];
    const item = leaver('l1', '2030-04-01T00:00:00Z');
    const decided = admission({ ...active, queue }, item.submitted);
    expect(decided).toEqual({ kind: 'accept', cancels: ['m2'], position: 1 });
    if (decided.kind === 'accept') expect(ids(enqueue(queue, item, decided))).toEqual(['m1', 'l1']);
  });

  it('lets a corrected joiner replace the waiting one, even when it starts earlier', () => {
    const queue = [joiner('j1', '2030-03-01T00:00:00Z')];
    const item = joiner('j2', '2030-02-01T00:00:00Z');
    const decided = admission(
      { view: person({ status: 'pending', lastApplied: null }), everJoined: true, queue, applying: undefined },
      item.submitted,
    );
    expect(decided).toEqual({ kind: 'accept', cancels: ['j1'], position: 0 });
    if (decided.kind === 'accept') expect(ids(enqueue(queue, item, decided))).toEqual(['j2']);
  });

  it('never cancels the event being applied: it counts as applied, so a leaver for a joiner in progress queues behind it', () => {
    const applying = joiner('j1', '2030-03-01T00:00:00Z');
    const item = leaver('l1', '2030-03-01T00:00:00Z');
    const decided = admission(
      { view: person({ status: 'pending', lastApplied: null }), everJoined: true, queue: [], applying },
      item.submitted,
    );
    expect(decided).toEqual({ kind: 'accept', cancels: [], position: 0 });
  });

  it('supersedes an event dated before the one being applied', () => {
    const applying = mover('m1', '2030-03-01T00:00:00Z');
    const decided = admission({ ...active, queue: [], applying }, mover('m0', '2030-02-01T00:00:00Z').submitted);
    expect(decided.kind).toBe('superseded');
  });

  it('leaves the queue as it was when an event is taken out to be applied elsewhere', () => {
    const [a, b, c] = [mover('a', '2030-02-01T00:00:00Z'), mover('b', '2030-03-01T00:00:00Z'), mover('c', '2030-04-01T00:00:00Z')];
    const queue = [a, b, c];
    expect(ids(dequeue(queue, a))).toEqual(['b', 'c']);
    expect(ids(dequeue(queue, b))).toEqual(['a', 'c']);
    expect(ids(queue)).toEqual(['a', 'b', 'c']);
  });

  it('shows the queue in the view with each event phase', () => {
    const queue = [joiner('j1', '2030-03-01T00:00:00Z'), { ...leaver('l1', '2030-04-01T00:00:00Z'), phase: 'pre_provisioned' as const }];
    expect(pendingEvents(queue)).toEqual([
      { eventId: 'j1', type: 'joiner', effectiveAt: '2030-03-01T00:00:00Z', phase: 'waiting' },
      { eventId: 'l1', type: 'leaver', effectiveAt: '2030-04-01T00:00:00Z', phase: 'pre_provisioned' },
    ]);
  });
});

describe('person queue: malformed input', () => {
  const noProfile = person({ profile: null });

  it('refuses an event for another person', () => {
    expect(
      inputProblem(submitted({ eventId: 'e', type: 'mover', effectiveAt: '2030-01-01T00:00:00Z', personId: 'q' }), 'p', noProfile),
    ).toMatch(/for person p, not q/);
  });

  it('refuses an unknown event type and an effective time that is not a time', () => {
    const bogus = submitted({ eventId: 'e', type: 'transfer' as never, effectiveAt: '2030-01-01T00:00:00Z' });
    expect(inputProblem(bogus, 'p', noProfile)).toMatch(/Unknown HR event type transfer/);
    expect(inputProblem(submitted({ eventId: 'e', type: 'mover', effectiveAt: 'soon' }), 'p', noProfile)).toBe(
      'effectiveAt is not a time.',
    );
  });

  it('needs a profile for a joiner unless the person already has one (a rehire)', () => {
    const bare = submitted({ eventId: 'e', type: 'joiner', effectiveAt: '2030-01-01T00:00:00Z' });
    expect(inputProblem(bare, 'p', noProfile)).toMatch(/needs a profile/);
    expect(inputProblem(bare, 'p', person())).toBeNull();
  });
});
