import { randomUUID } from 'node:crypto';
import { WorkflowIdConflictPolicy, type Client } from '@temporalio/client';
import type { Activities } from '../../activities/index.js';
import { GRANT_WORKFLOW_TYPE, grantWorkflowId, type GrantInput } from '../../core/grants/contract.js';
import { tenantSearchAttributes } from '../../core/temporal.js';
import { policySnapshot } from '../../usecases/grants.js';
import type { grantWorkflow } from '../../workflows/grants/workflow.js';
import type { Requester } from './load.js';
import { ROLE, type GrantsBenchSetup } from './setup.js';

/** The grant activities with no side effects, answering in the shapes the workflow expects. */
export const noopGrantActivities = {
  recordGrantEvent: async () => ({ seq: 0, notify: false }),
  checkGrantEligibility: async () => ({ eligible: true, reason: null }),
  checkGrantApprovers: async (input: { approverIds: string[] }) => ({ counting: input.approverIds }),
  checkGrantActivation: async (input: { approverIds: string[] }) => ({ eligible: true, reason: null, counting: input.approverIds }),
  grantAccess: async () => ({ entitlementId: 'floor', assigned: true, alreadyEnded: false }),
  endAccess: async () => ({
    closed: true,
    removedFromTarget: true,
    remainingOpen: 0,
    verification: { gone: true, presentOnTarget: false, heldBy: [] },
  }),
  extendAccess: async () => ({ extended: true }),
  endGrantAccess: async () => ({
    removal: { closed: true, removedFromTarget: true, remainingOpen: 0, verification: { gone: true, presentOnTarget: false, heldBy: [] } },
    notify: false,
    endedAt: new Date().toISOString(),
  }),
  verifyAccessGone: async () => ({ gone: true, presentOnTarget: false, heldBy: [] }),
  notifyGrant: async () => ({ delivered: false, reason: 'floor' }),
} satisfies Pick<
  Activities,
  | 'recordGrantEvent'
  | 'checkGrantEligibility'
  | 'checkGrantApprovers'
  | 'checkGrantActivation'
  | 'endGrantAccess'
  | 'grantAccess'
  | 'extendAccess'
  | 'endAccess'
  | 'verifyAccessGone'
  | 'notifyGrant'
>;

/** The floor's requests: the input requestGrant builds, started the way it starts it, with no read-model row. */
export function floorRequester(client: Client, taskQueue: string, setup: GrantsBenchSetup): Requester {
  return async (i, window) => {
    const { tenantId, subjectId, policy } = setup.target(i);
    const rule = policy.grants.roles[ROLE]!;
    const input: GrantInput = {
      grantId: randomUUID(),
      tenantId,
      subjectId,
      role: ROLE,
      requesterId: setup.principal.actorId,
      justification: 'grants benchmark',
      ticket: null,
      startAt: new Date(window.startAt).toISOString(),
      durationSeconds: Math.round((window.endAt - window.startAt) / 1000),
      requestId: randomUUID(),
      policy: policySnapshot(policy, rule),
    };
    const workflowId = grantWorkflowId(tenantId, input.grantId);
    await client.workflow.start<typeof grantWorkflow>(GRANT_WORKFLOW_TYPE, {
      taskQueue,
      workflowId,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      args: [input],
      typedSearchAttributes: tenantSearchAttributes(tenantId),
    });
    return workflowId;
  };
}
