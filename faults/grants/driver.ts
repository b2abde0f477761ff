import { setTimeout as delay } from 'node:timers/promises';
import type { GrantView } from '../../core/grants/contract.js';
import { AppError } from '../../core/errors.js';
import type { RequestGrantBody } from '../../core/grants/schemas.js';
import type { Principal } from '../../core/tenancy/authz.js';
import { authorizeDecision, decide, getGrant, requestGrant, type Decision, type GrantDeps } from '../../usecases/grants.js';
import { retryThroughOutages } from '../support/inject.js';
import { random } from '../support/run.js';
import { APPROVED_ROLE, type Tracked } from './plan.js';
import type { GrantsFaultsSeed } from './seed.js';

/**
 * Drives planned grants through the use cases the API calls, as a user would: request, then
 * approve, deny, cancel or revoke early as planned, retrying through outages until `stop()`.
 */
export function grantDriver(deps: GrantDeps, seed: GrantsFaultsSeed, driveStart: number, stop: () => boolean) {
  let retries = 0;
  const retrying = <T>(fn: () => Promise<T>) =>
    retryThroughOutages(fn, {
      // A 4xx is the system's answer and is returned as is.
      isAnswer: (error) => error instanceof AppError && error.status < 500,
      stop,
      onRetry: () => retries++,
    });
  const sleepUntil = async (at: number) => {
    while (Date.now() < at && !stop()) await delay(Math.min(500, at - Date.now()));
  };

  /**
   * A decision as the API route makes it: authorised first, with that authority passed to the
   * audit event. Returns when the system took it: the start of the attempt it accepted (an
   * attempt that failed, Temporal or PostgreSQL down, was not taken), or of the first attempt when
   * a retry was answered 409 (an earlier attempt went through, its answer lost; which one is
   * unknown, so the earliest counts).
   */
  async function sendDecision(t: Tracked, view: GrantView, decision: Decision, actor: Principal): Promise<number> {
    const attempts: number[] = [];
    try {
      const bindings = authorizeDecision(actor, t.tenantId, decision, view, seed.policies[t.plan.tenant]!.grants);
      const authority = {
        roles: [...new Set(bindings.map((b) => b.role))].sort(),
        bindingIds: bindings.map((b) => b.id).sort(),
        requestId: `faults-${t.plan.index}-${decision}`,
      };
      await retrying(async () => {
        attempts.push(Date.now());
        // As the route does: the grant as it stands now (its status decides whether a revoke closes access first).
        const current = await getGrant(deps.pool, t.tenantId, view.grantId);
        return decide(deps, t.tenantId, current, decision, { actorId: actor.actorId, comment: `fault run ${decision}`, authority });
      });
      return attempts.at(-1)!;
    } catch (error) {
      // A 409 after a retry usually means an earlier attempt went through (the update was
      // applied, its answer lost); anything else is worth seeing.
      if (!(error instanceof AppError && error.status === 409)) t.driverError = `${decision}: ${(error as Error).message}`;
      return attempts[0] ?? Date.now();
    }
  }

  async function drive(t: Tracked) {
    const p = t.plan;
    await sleepUntil(driveStart + p.launchAtMs);
    if (stop()) return;
    const now = Date.now();
    const startAt = now + p.startDelaySec * 1000;
    const body: RequestGrantBody = {
      subjectId: p.subjectId,
      role: p.role,
      ...(p.startDelaySec ? { startAt: new Date(startAt).toISOString() } : {}),
      endAt: new Date(startAt + p.durationSec * 1000).toISOString(),
      justification: 'fault-injection run',
      ticket: `FLT-${p.index}`,
    };
    let view: GrantView;
    try {
      ({ view } = await retrying(() =>
        requestGrant(deps, seed.operator, t.tenantId, seed.policies[p.tenant]!, body, {
          idempotencyKey: p.idempotencyKey,
          requestId: `faults-${p.index}`,
        }),
      ));
    } catch (error) {
      t.driverError = `request: ${(error as Error).message}`;
      return;
    }
    t.grantId = view.grantId;
    const approver = seed.approvers[p.tenant]!;
    if (p.role === APPROVED_ROLE) {
      await delay(random(300, 1500));
      if (p.ending === 'deny' || p.ending === 'cancel') {
        await sendDecision(t, view, p.ending === 'deny' ? 'deny' : 'revoke', p.ending === 'deny' ? approver : seed.operator);
        return;
      }
      await sendDecision(t, view, 'approve', approver);
    } else if (p.ending === 'cancel') {
      await sleepUntil(now + (p.startDelaySec * 1000) / 2);
      await sendDecision(t, view, 'revoke', seed.operator);
      return;
    }
    if (p.ending === 'revoke') {
      await sleepUntil(startAt + p.revokeFraction * p.durationSec * 1000);
      t.revokeSentAt = await sendDecision(t, view, 'revoke', seed.operator);
    }
  }

  return {
    drive,
    get retries() {
      return retries;
    },
  };
}
