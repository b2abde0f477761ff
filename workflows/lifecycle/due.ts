import type { PendingRemoval, PersonView } from '../../core/lifecycle/contract.js';
import { preProvisionAt } from '../../core/lifecycle/rules.js';
import type { Queued } from './queue.js';

/** A step the lifecycle takes by itself once its time has come (ms since the epoch). */
export type DueStep =
  /** Mover grace periods ending: every removal due by `at`, together. */
  | { kind: 'remove_after_grace'; at: number; removals: PendingRemoval[] }
  /** A future joiner's disabled account, `preProvisionDays` ahead of its start. */
  | { kind: 'pre_provision'; at: number; item: Queued }
  /** The head of the queue at its effective time. */
  | { kind: 'apply'; at: number; item: Queued }
  /** Deletion or anonymisation after the retention period. */
  | { kind: 'erase'; at: number };

/**
 * The earliest step due, or undefined when nothing waits. On equal times grace removals go
 * first (they finish a move already applied), then the waiting event, then deletion (so a
 * rehire dated at the deletion time cancels it).
 */
export function nextDue(
  view: Pick<PersonView, 'status' | 'pendingRemovals' | 'deletion'>,
  queue: readonly Queued[],
  now: number,
): DueStep | undefined {
  // In tie-break order: the first of the earliest wins.
  const candidates: DueStep[] = [];
  if (view.pendingRemovals.length > 0) {
    const at = Math.min(...view.pendingRemovals.map((p) => Date.parse(p.dueAt)));
    candidates.push({ kind: 'remove_after_grace', at, removals: view.pendingRemovals.filter((p) => Date.parse(p.dueAt) <= at) });
  }
  const head = queue[0];
  if (head) {
    const { event, policy } = head.submitted;
    const early = preProvisionAt(event, policy);
    const effective = Date.parse(event.effectiveAt);
    if (early && head.phase === 'waiting' && view.status === 'pending' && now < effective) {
      candidates.push({ kind: 'pre_provision', at: Date.parse(early), item: head });
    } else {
      candidates.push({ kind: 'apply', at: effective, item: head });
    }
  }
  if (view.deletion) candidates.push({ kind: 'erase', at: Date.parse(view.deletion.dueAt) });
  return candidates.reduce<DueStep | undefined>((earliest, c) => (earliest === undefined || c.at < earliest.at ? c : earliest), undefined);
}
