import type { PendingHrEvent, PersonCarry, PersonView, SubmittedHrEvent } from '../../core/lifecycle/contract.js';
import { admitEvent, type Admission, type QueuedRef } from '../../core/lifecycle/rules.js';

/**
 * The person's waiting HR events, kept in apply order (effective time, ties by arrival). Pure
 * functions over plain data: the workflow holds the queue and decides when to call them, so
 * they can be tested without a worker and never touch the workflow API.
 */

/** A waiting HR event with the policy snapshot it was submitted under. */
export interface Queued {
  submitted: SubmittedHrEvent;
  /** Arrival number, counted across runs. */
  arrival: number;
  phase: 'waiting' | 'pre_provisioned';
}

/** The carry as this workflow writes it: its queue holds `Queued` items. */
export interface Carried extends PersonCarry {
  queue: Queued[];
}

export type Accepted = Extract<Admission, { kind: 'accept' }>;

export const queuedRef = ({ submitted: { event } }: Queued): QueuedRef => ({
  eventId: event.eventId,
  type: event.type,
  effectiveAt: event.effectiveAt,
});

/** The queue as the person view shows it. */
export const pendingEvents = (queue: readonly Queued[]): PendingHrEvent[] => queue.map((q) => ({ ...queuedRef(q), phase: q.phase }));

/** Malformed input (400), checked before any ordering; null when the event is well formed. */
export function inputProblem(s: SubmittedHrEvent, personId: string, view: Pick<PersonView, 'profile'>): string | null {
  const { event } = s;
  if (event.personId !== personId) return `This lifecycle is for person ${personId}, not ${event.personId}.`;
  if (!['joiner', 'mover', 'leaver'].includes(event.type)) return `Unknown HR event type ${String(event.type)}.`;
  if (Number.isNaN(Date.parse(event.effectiveAt))) return 'effectiveAt is not a time.';
  if (event.type === 'joiner' && !event.profile && !view.profile) return 'A joiner needs a profile (username, displayName).';
  return null;
}

export interface AdmissionState {
  view: Pick<PersonView, 'status' | 'lastApplied'>;
  everJoined: boolean;
  queue: readonly Queued[];
  /** The event being applied (out of the queue, not yet applied): new arrivals are ordered after it. */
  applying: Queued | undefined;
}

/** What happens to a submitted event given the lifecycle as it stands (see `admitEvent`). */
export function admission({ view, everJoined, queue, applying }: AdmissionState, s: SubmittedHrEvent): Admission {
  return admitEvent(
    { status: view.status, everJoined, lastApplied: view.lastApplied },
    queue.map(queuedRef),
    s.event,
    applying ? queuedRef(applying) : undefined,
  );
}

/** The queue after an accepted event: the events it cancels leave, and it goes where admission placed it. */
export function enqueue(queue: readonly Queued[], item: Queued, { cancels, position }: Pick<Accepted, 'cancels' | 'position'>): Queued[] {
  const remaining = queue.filter((q) => !cancels.includes(q.submitted.event.eventId));
  return [...remaining.slice(0, position), item, ...remaining.slice(position)];
}

/** The queue without an item taken out to be applied. */
export const dequeue = (queue: readonly Queued[], item: Queued): Queued[] => queue.filter((q) => q !== item);
