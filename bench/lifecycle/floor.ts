import { WithStartWorkflowOperation, WorkflowIdConflictPolicy } from '@temporalio/client';
import type { Activities } from '../../activities/index.js';
import type { PersonAccess } from '../../activities/lifecycle/activities.js';
import {
  PERSON_WORKFLOW_TYPE,
  personWorkflowId,
  submitHrEventUpdate,
  type PersonWorkflowInput,
  type SubmittedHrEvent,
} from '../../core/lifecycle/contract.js';
import type { personWorkflow } from '../../workflows/lifecycle/workflow.js';
import { tenantSearchAttributes } from '../../core/temporal.js';
import { loadLifecyclePolicy } from '../../usecases/lifecycle.js';
import { abortable, runConcurrently, withTimeout } from '../support.js';
import type { RunningWorker } from '../workers.js';
import { ascending, byTenant, PHASE_TIMEOUT_MS, type LifecycleBench, type PhaseResult } from './context.js';
import { hrEvent, LIFECYCLE, type Person } from './people.js';

type PersonActivities = Pick<
  Activities,
  | 'recordPersonEvent'
  | 'provisionPersonAccount'
  | 'setPersonAccountStatus'
  | 'revokePersonSessions'
  | 'endPersonSessions'
  | 'listPersonAccess'
  | 'endPersonGrants'
  | 'awaitGrantsEnded'
  | 'removeUnmanagedRoles'
  | 'endPersonAccess'
  | 'verifyPersonAccessGone'
  | 'erasePerson'
  | 'grantAccess'
  | 'endAccess'
>;

/**
 * personWorkflow's activities with no side effects, answering in the shapes it expects. Granted
 * roles are kept in memory so a leaver lists (and ends) as many entitlements as on the real side;
 * `onStep` sees each recorded step (the floor's only way to know when a person is done).
 */
export function noopPersonActivities(onStep: (tenantId: string, personId: string, action: string) => void): PersonActivities {
  const held = new Map<string, Map<string, PersonAccess['entitlements'][number]>>();
  const key = (tenantId: string, personId: string) => `${tenantId}/${personId}`;
  const entitlementKey = (e: { role: string; sourceType: string; sourceId: string }) => `${e.sourceType}:${e.sourceId}:${e.role}`;
  return {
    recordPersonEvent: async (input) => {
      onStep(input.view.tenantId, input.view.personId, input.action);
      return { seq: 0 };
    },
    provisionPersonAccount: async () => ({ created: true }),
    setPersonAccountStatus: async () => ({ changed: true }),
    revokePersonSessions: async () => 0,
    endPersonSessions: async () => ({ supported: true as const, revoked: 0 }),
    listPersonAccess: async ({ tenantId, personId }) => {
      const entitlements = [...(held.get(key(tenantId, personId))?.values() ?? [])];
      return { entitlements, grants: [], directoryRoles: [...new Set(entitlements.map((e) => e.role))] };
    },
    endPersonGrants: async ({ grantIds }) => ({ requested: grantIds, alreadyEnding: [] }),
    awaitGrantsEnded: async ({ grantIds }) => ({ ended: grantIds }),
    removeUnmanagedRoles: async () => ({ removed: [] }),
    endPersonAccess: async ({ tenantId, personId, entitlements }) => {
      const mine = held.get(key(tenantId, personId));
      for (const e of entitlements) mine?.delete(entitlementKey(e));
      return { closed: entitlements.length, unmanagedRolesRemoved: [], verified: true };
    },
    verifyPersonAccessGone: async () => ({ verified: true as const }),
    erasePerson: async () => ({ existed: true }),
    grantAccess: async (input) => {
      const mine = held.get(key(input.tenantId, input.subjectId)) ?? new Map<string, PersonAccess['entitlements'][number]>();
      mine.set(entitlementKey(input), { role: input.role, sourceType: input.sourceType, sourceId: input.sourceId, privileged: false });
      held.set(key(input.tenantId, input.subjectId), mine);
      return { entitlementId: 'floor', assigned: true, alreadyEnded: false };
    },
    endAccess: async (input) => {
      held.get(key(input.tenantId, input.subjectId))?.delete(entitlementKey(input));
      return { closed: true, removedFromTarget: true, remainingOpen: 0, verification: { gone: true, presentOnTarget: false, heldBy: [] } };
    },
  };
}

/** A step the floor's person workflow recorded, and when (epoch ms, as the worker saw it). */
export interface FloorStep {
  tenantId: string;
  personId: string;
  action: string;
  at: number;
}

/**
 * The floor: starts its worker (no-op activities) through `startWorker`, and gives its phases:
 * what the import sends each person's workflow, sent as sendToWorkflow does, with the same
 * concurrency per tenant; a person is done when its workflow records the step.
 */
export async function floorSide(
  bench: LifecycleBench,
  taskQueue: string,
  startWorker: (onStep: (step: FloorStep) => void) => Promise<RunningWorker>,
) {
  const { client, abort } = bench;
  const done = new Map<string, number>();
  const submittedAt = new Map<string, number>();
  let waiter: { action: string; total: number; resolve: () => void } | undefined;
  let reached = 0;
  const worker = await startWorker(({ tenantId, personId, action, at }) => {
    if (action !== 'person.joined' && action !== 'person.left') return;
    done.set(`${action} ${tenantId}/${personId}`, at);
    if (waiter && action === waiter.action && ++reached >= waiter.total) waiter.resolve();
  });

  async function floorPhase(type: 'joiner' | 'leaver', list: Person[]): Promise<PhaseResult> {
    const action = type === 'joiner' ? 'person.joined' : 'person.left';
    reached = 0;
    const finished = new Promise<void>((resolve) => (waiter = { action, total: list.length, resolve }));
    const effectiveAt = new Date().toISOString();
    const policyVersion = (await loadLifecyclePolicy(bench.apiPool, bench.tenantIds[0]!)).version;
    const cpu = bench.meter();
    const start = Date.now();
    const submitting = client.withAbortSignal(abort.signal, () =>
      Promise.all(
        byTenant(bench, list).map((mine, t) =>
          runConcurrently(mine.length, bench.perTenantConcurrency, abort.signal, async (i) => {
            const p = mine[i]!;
            const tenant = bench.tenants[t]!;
            const submitted: SubmittedHrEvent = {
              event: hrEvent('floor', type, p, effectiveAt),
              policyVersion,
              policy: LIFECYCLE,
              actor: tenant.ctx.actor,
              authority: tenant.ctx.authority,
            };
            const workflowId = personWorkflowId(tenant.tenantId, p.personId);
            submittedAt.set(`${action} ${tenant.tenantId}/${p.personId}`, Date.now());
            if (type === 'leaver') {
              await client.workflow.getHandle(workflowId).executeUpdate(submitHrEventUpdate, { args: [submitted] });
              return;
            }
            const input: PersonWorkflowInput = { tenantId: tenant.tenantId, personId: p.personId };
            const startOperation = new WithStartWorkflowOperation<typeof personWorkflow>(PERSON_WORKFLOW_TYPE, {
              taskQueue,
              workflowId,
              workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
              args: [input],
              typedSearchAttributes: tenantSearchAttributes(tenant.tenantId),
            });
            await client.workflow.executeUpdateWithStart(submitHrEventUpdate, {
              args: [submitted],
              startWorkflowOperation: startOperation,
            });
            bench.started.push(workflowId);
          }),
        ),
      ),
    );
    const workerStopped = worker.running.then(() => Promise.reject(new Error('the floor worker stopped')));
    // An Update waits for a worker to take it: bounded, so a run that cannot go on ends.
    await abortable(withTimeout(Promise.race([submitting.then(() => finished), workerStopped]), PHASE_TIMEOUT_MS), abort.signal);
    const spent = cpu();
    const keys = list.map((p) => `${action} ${bench.tenantIds[p.tenant]}/${p.personId}`);
    const lastAt = Math.max(...keys.map((k) => done.get(k)!));
    return { seconds: (lastAt - start) / 1000, latenciesMs: ascending(keys.map((k) => done.get(k)! - submittedAt.get(k)!)), cpu: spent };
  }

  return { worker, floorPhase };
}
