import { setTimeout as delay } from 'node:timers/promises';
import { AppError } from '../../core/errors.js';
import { decidePolicyChange, type PolicyChangeDecisionKind } from '../../usecases/tenancy/policy-changes.js';
import { changePolicy, getPolicy } from '../../usecases/tenancy/policies.js';
import type { PolicyChangeDeps } from '../../usecases/tenancy/policy-changes.js';
import type { TenancyDeps } from '../../usecases/tenancy/views.js';
import { baseCapMinutes, policyDocument, ROLE, type PolicySetup, type PolicyTenant } from '../../bench/policy/setup.js';
import { retryThroughOutages } from '../support/inject.js';
import { random } from '../support/run.js';

/** How a planned change ends: approved to quorum, approved after a direct write moved the policy on, denied, withdrawn. */
export type Ending = 'approve' | 'conflict' | 'deny' | 'withdraw';

export interface TrackedChange {
  index: number;
  tenant: PolicyTenant;
  ending: Ending;
  changeId?: string;
  /** Approvals the driver got an answer for (a 409 after a retry counts: an earlier attempt went through). */
  approvalsAnswered: number;
  driverError?: string;
}

/** Ending of change i: mostly approvals, a tenth each conflicting, denied and withdrawn. */
export const endingOf = (i: number): Ending => (['conflict', 'deny', 'withdraw'] as const)[i % 10] ?? 'approve';

/**
 * Drives each tenant's changes one after another through the use cases the API calls: propose a
 * loosening against the current version, then approve (both approvers at once for quorum 2),
 * deny or withdraw; a `conflict` change sees a direct tightening write land before its approval.
 * Retries through outages until `stop()`.
 */
export function policyDriver(deps: TenancyDeps & PolicyChangeDeps, setup: PolicySetup, stop: () => boolean) {
  let retries = 0;
  /** Versions the driver wrote directly (tightening), `tenant/version`. */
  const directWrites = new Set<string>();
  const retrying = <T>(fn: () => Promise<T>) =>
    retryThroughOutages(fn, { isAnswer: (error) => error instanceof AppError && error.status < 500, stop, onRetry: () => retries++ });

  async function decide(c: TrackedChange, kind: PolicyChangeDecisionKind, actorId: string): Promise<void> {
    try {
      await retrying(() =>
        decidePolicyChange(deps, c.tenant.tenantId, c.changeId!, kind, {
          actorId,
          comment: `fault run ${kind}`,
          authority: { roles: [kind === 'withdraw' ? 'operator' : 'tenant_approver'], requestId: `faults-policy-${c.index}-${kind}` },
        }),
      );
      if (kind === 'approve') c.approvalsAnswered++;
    } catch (error) {
      if (error instanceof AppError && error.status === 409) {
        if (kind === 'approve') c.approvalsAnswered++;
        return;
      }
      c.driverError = `${kind}: ${(error as Error).message}`;
    }
  }

  async function drive(c: TrackedChange) {
    const { tenantId, quorum, approverIds } = c.tenant;
    try {
      // Based on the current version, read as a user would before proposing.
      const current = await retrying(() => getPolicy(deps.pool, tenantId));
      const s = { version: current.version, cap: current.document.grants.roles[ROLE]?.maxDurationMinutes ?? baseCapMinutes };
      const cap = s.cap + 1;
      const outcome = await retrying(() =>
        changePolicy(deps, setup.proposer, tenantId, s.version, policyDocument(cap, quorum), `faults-policy-${c.index}`),
      );
      if (!('pending' in outcome)) throw new Error('a loosening change was applied without approval');
      c.changeId = outcome.pending.changeId;
      if (c.ending === 'conflict') {
        // A tightening written directly while the change waits: approving it must conflict, not apply blind.
        const tighter = await retrying(() => changePolicy(deps, setup.proposer, tenantId, s.version, policyDocument(s.cap - 1, quorum)));
        if (!('applied' in tighter)) throw new Error('a tightening change was not applied at once');
        directWrites.add(`${tenantId}/${tighter.applied.version}`);
      }
    } catch (error) {
      c.driverError = `propose: ${(error as Error).message}`;
      return;
    }
    await delay(random(50, 400));
    if (c.ending === 'deny') return void (await decide(c, 'deny', approverIds[0]));
    if (c.ending === 'withdraw') return void (await decide(c, 'withdraw', setup.proposer.actor.id));
    await Promise.all(approverIds.slice(0, quorum).map((id) => decide(c, 'approve', id)));
  }

  return {
    drive,
    directWrites,
    get retries() {
      return retries;
    },
  };
}
