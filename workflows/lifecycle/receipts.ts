import { REMEMBERED_RECEIPTS, type HrEvent, type HrEventReceipt } from '../../core/lifecycle/contract.js';
import type { Admission } from '../../core/lifecycle/rules.js';

/**
 * The answer to an HR event submission and the memory of recent answers, so a re-sent event id
 * gets its first receipt again. Pure: no workflow API, tested on its own.
 */

/** A submission that was not refused: accepted into the queue, or superseded (recorded, changes nothing). */
export type Decided = Exclude<Admission, { kind: 'reject' }>;

export function receiptFor(personId: string, event: HrEvent, decided: Decided, receivedAt: string): HrEventReceipt {
  return {
    eventId: event.eventId,
    personId,
    type: event.type,
    effectiveAt: event.effectiveAt,
    disposition: decided.kind === 'accept' ? 'accepted' : 'superseded',
    cancelled: decided.kind === 'accept' ? decided.cancels : [],
    receivedAt,
    duplicate: false,
  };
}

/** The hr_events register rows a submission writes: its own, and one per waiting event it cancelled. */
export function registerRows(event: HrEvent, decided: Decided, receipt: HrEventReceipt) {
  return [
    {
      eventId: event.eventId,
      status: decided.kind === 'accept' ? ('accepted' as const) : ('superseded' as const),
      reason: decided.kind === 'superseded' ? decided.reason : null,
      receipt,
    },
    ...receipt.cancelled.map((id) => ({
      eventId: id,
      status: 'cancelled' as const,
      reason: `cancelled by ${event.type} ${event.eventId}`,
    })),
  ];
}

/** The audit action and payload of a submission. */
export function submissionRecord(event: HrEvent, decided: Decided) {
  return {
    action: decided.kind === 'accept' ? 'person.hr_event_accepted' : 'person.hr_event_superseded',
    payload: {
      hrEvent: { eventId: event.eventId, type: event.type, effectiveAt: event.effectiveAt, attributes: event.attributes ?? null },
      cancelled: decided.kind === 'accept' ? decided.cancels : [],
      ...(decided.kind === 'superseded' ? { reason: decided.reason } : {}),
    },
  };
}

/**
 * The most recent receipts by event id, oldest first, at most `bound` of them: the oldest is
 * forgotten first. Carried across continue-as-new in the same order.
 */
export class RecentReceipts {
  readonly #byEventId: Map<string, HrEventReceipt>;
  readonly #bound: number;

  constructor(carried: readonly HrEventReceipt[] = [], bound = REMEMBERED_RECEIPTS) {
    this.#byEventId = new Map(carried.map((r) => [r.eventId, r]));
    this.#bound = bound;
  }

  has(eventId: string): boolean {
    return this.#byEventId.has(eventId);
  }

  get(eventId: string): HrEventReceipt | undefined {
    return this.#byEventId.get(eventId);
  }

  /** The first receipt again, marked as a duplicate; undefined for an event id not remembered. */
  again(eventId: string): HrEventReceipt | undefined {
    const first = this.#byEventId.get(eventId);
    return first ? { ...first, duplicate: true } : undefined;
  }

  remember(receipt: HrEventReceipt): void {
    this.#byEventId.set(receipt.eventId, receipt);
    while (this.#byEventId.size > this.#bound) this.#byEventId.delete(this.#byEventId.keys().next().value!);
  }

  /** What the next run starts from, oldest first. */
  carry(): HrEventReceipt[] {
    return [...this.#byEventId.values()];
  }
}
