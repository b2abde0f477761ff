import type { GrantView } from '../../core/grants/contract.js';

/** Lifecycle order of the grant audit actions; a grant's events must never go backwards in it. */
export const ACTION_RANK: Record<string, number> = {
  'grant.requested': 0,
  'grant.approval_recorded': 1,
  'grant.approved': 2,
  'grant.denied': 3,
  'grant.approval_timed_out': 3,
  'grant.cancelled': 3,
  'grant.activation_refused': 3,
  'grant.activation_failed': 3,
  'grant.activated': 3,
  'grant.window_passed': 3,
  'grant.expiring': 4,
  'grant.revoking': 4,
  'grant.relinquishing': 4,
  'grant.failing': 4,
  'grant.revocation_alert': 5,
  'grant.expired': 6,
  'grant.revoked': 6,
  'grant.relinquished': 6,
  'grant.failed': 6,
};
/**
 * Recorded by the API, not the grant's workflow: an early end closing the access before the
 * workflow takes the request up (usecases/grants.ts). Outside the workflow's count and order.
 */
export const RECORDED_OUTSIDE_WORKFLOW: ReadonlySet<string> = new Set(['grant.access_closed']);

const ENDING_ACTIONS = {
  expired: ['grant.expiring', 'grant.expired'],
  revoked: ['grant.revoking', 'grant.revoked'],
  relinquished: ['grant.relinquishing', 'grant.relinquished'],
  failed: ['grant.failing', 'grant.failed'],
} as const;

/**
 * The audit actions a grant in this (final) state must have, each as [min, max] occurrences.
 * Exactly once per transition; two states are ambiguous from the view alone and get a range:
 * a cancellation racing the last approval (approved 0 or 1), and revocation alerts (at most one
 * per revocation step, remove and verify).
 */
export function expectedActions(view: GrantView, observed: Map<string, number>): Map<string, [number, number]> {
  const expected = new Map<string, [number, number]>();
  const once = (action: string, n = 1) => expected.set(action, [n, n]);
  once('grant.requested');
  if (view.approvals.length > 0) once('grant.approval_recorded', view.approvals.length);
  const approved = () => once('grant.approved');
  const activeAndEnding = (reason: keyof typeof ENDING_ACTIONS | null) => {
    approved();
    once('grant.activated');
    const [starting, finished] = reason ? ENDING_ACTIONS[reason] : [undefined, undefined];
    if (starting) once(starting);
    else {
      // Still revoking: one of the three "ending" actions, whichever was recorded.
      const seen = Object.values(ENDING_ACTIONS)
        .map(([s]) => s)
        .filter((s) => observed.has(s));
      once(seen[0] ?? 'grant.expiring');
    }
    if (finished) once(finished);
    expected.set('grant.revocation_alert', [0, 2]);
  };
  // A revoke or relinquish sent while the grant was scheduled or active closes its access first:
  // once, whatever became of the grant after it (the workflow may have ended it meanwhile).
  if (view.status !== 'pending_approval' && view.status !== 'denied' && view.status !== 'approval_timed_out')
    expected.set('grant.access_closed', [0, 1]);
  switch (view.status) {
    case 'pending_approval':
      break;
    case 'denied':
      once('grant.denied');
      break;
    case 'approval_timed_out':
      once('grant.approval_timed_out');
      break;
    case 'cancelled':
      if (view.approvalsRequired === 0) approved();
      else if (view.approvals.length >= view.approvalsRequired) expected.set('grant.approved', [0, 1]);
      once('grant.cancelled');
      break;
    case 'scheduled':
      approved();
      break;
    case 'active':
      approved();
      once('grant.activated');
      break;
    case 'revoking':
      activeAndEnding(null);
      break;
    case 'ended':
      if (view.endReason === 'ineligible') {
        approved();
        once('grant.activation_refused');
      } else if (view.endReason === 'failed' && view.activatedAt === null) {
        // The target refused the activation (which comes only after the approval), or the
        // database the grant's data before access was requested (before or after the approval).
        if (observed.has('grant.activation_failed')) {
          approved();
          once('grant.activation_failed');
        } else {
          expected.set('grant.approved', [0, 1]);
          once('grant.failed');
        }
      } else if (view.activatedAt === null) {
        // Approved (or started) only after its window had closed: never activated.
        approved();
        once('grant.window_passed');
      } else {
        activeAndEnding(view.endReason);
      }
      break;
  }
  return expected;
}
