import { ApplicationFailure, type ActivityOptions } from '@temporalio/workflow';

/**
 * Options for the activity `confirmDecider` asks: a person's decision waits on it, so it is bounded
 * (about ten seconds), after which the decision is refused as unavailable, nothing taken, rather
 * than hold the Update while PostgreSQL is down.
 */
export const DECIDER_CHECK_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '5 seconds',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '4 seconds', maximumAttempts: 5 },
};

/** The failure types a workflow refuses an unconfirmed decision with, and what its decisions are about. */
export interface DeciderRefusals {
  notApprover: string;
  unavailable: string;
  /** E.g. "its policy changes": who decides is "the tenant's own approvers". */
  decides: string;
}

const refuse = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });

/**
 * Whether a decision's actor is one of the tenant's own approvers now (`ask`: a bounded activity
 * reading PostgreSQL), asked before the decision is taken, since an Update sent straight to
 * Temporal may name any actor; then `check` again, as the workflow may have moved on meanwhile.
 * Refused with nothing changed when the actor is not, or when it cannot be told (PostgreSQL
 * unreachable): `what` is what the decision would have done ("approved", "denied").
 */
export async function confirmDecider(
  ask: () => Promise<{ counts: boolean }>,
  refusals: DeciderRefusals,
  what: string,
  check: () => void,
): Promise<void> {
  let counts: boolean;
  try {
    ({ counts } = await ask());
  } catch {
    throw refuse(
      refusals.unavailable,
      `Whether you are one of the tenant’s approvers cannot be checked now; nothing was ${what}. Try again shortly.`,
    );
  }
  if (!counts) throw refuse(refusals.notApprover, `Only the tenant’s own approvers decide ${refusals.decides}; nothing was ${what}.`);
  check();
}
