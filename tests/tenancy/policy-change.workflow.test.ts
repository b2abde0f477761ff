import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  approvePolicyChangeUpdate,
  denyPolicyChangeUpdate,
  POLICY_CHANGE_WORKFLOW_TYPE,
  policyChangeQuery,
  PolicyChangeRejection,
  policyChangeWorkflowId,
  withdrawPolicyChangeUpdate,
  type PolicyChangeInput,
} from '../../core/tenancy/contract.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import type { policyChangeWorkflow } from '../../workflows/tenancy/workflow.js';
import { createWorkflowWorker, recordHistory, rejectionType, startTimeSkippingEnvironment, until } from '../support/workflow-harness.js';

/**
 * Workflow tier: the real policy-change workflow with activities replaced by recorders, on the
 * time-skipping server (the approval timeout is days long).
 */
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await startTimeSkippingEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

interface Harness {
  events: { action: string; actor: string; status: string; approvalIds: unknown }[];
  /** The tenant's current policy version, as the apply step finds it. */
  currentVersion: number;
  /** Versions written by the apply step. */
  writes: { version: number; approvers: string[] }[];
  webhook: boolean;
  notified: string[];
  /** Attempts of confirmPolicyDecider to fail (PostgreSQL unreachable). */
  confirmFailures: number;
}

const harness = (overrides: Partial<Harness> = {}): Harness => ({
  events: [],
  currentVersion: 3,
  writes: [],
  webhook: false,
  notified: [],
  confirmFailures: 0,
  ...overrides,
});

function fakeActivities(h: Harness) {
  return {
    // The tenant's approvers, as PostgreSQL would answer for them.
    confirmPolicyDecider: async ({ actorId }) => {
      if (h.confirmFailures > 0) {
        h.confirmFailures--;
        throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      }
      return { counts: actorId.startsWith('approver-') };
    },
    recordPolicyChangeEvent: async (i) => {
      h.events.push({ action: i.action, actor: i.actor.id, status: i.view.status, approvalIds: i.authority.approvalIds });
      return { seq: h.events.length, notify: h.webhook };
    },
    applyPolicyChange: async (i) => {
      const approvers = i.view.approvals.map((a) => a.approverId);
      if (h.currentVersion !== i.view.baseVersion) {
        const reason = `The policy moved from version ${i.view.baseVersion} to version ${h.currentVersion}`;
        h.events.push({
          action: 'policy_change.conflicted',
          actor: i.actor.id,
          status: 'conflicted',
          approvalIds: i.authority.approvalIds,
        });
        return { status: 'conflicted' as const, appliedVersion: null, reason, notify: h.webhook };
      }
      h.currentVersion++;
      h.writes.push({ version: h.currentVersion, approvers });
      h.events.push({ action: 'policy_change.applied', actor: i.actor.id, status: 'applied', approvalIds: i.authority.approvalIds });
      return { status: 'applied' as const, appliedVersion: h.currentVersion, reason: null, notify: h.webhook };
    },
    notifyPolicyChange: async (i) => {
      h.notified.push(i.action);
      return { delivered: true };
    },
  } satisfies Partial<Activities>;
}

function changeInput(overrides: Partial<PolicyChangeInput> = {}): PolicyChangeInput {
  return {
    changeId: randomUUID(),
    tenantId: randomUUID(),
    proposer: { id: 'operator', type: 'user' },
    authority: { roles: ['operator'] },
    baseVersion: 3,
    document: TenantPolicyDocument.parse({ grants: { roles: { GlobalAdmin: { maxDurationMinutes: 60, approvalsRequired: 0 } } } }),
    diff: [
      {
        path: 'grants.roles.GlobalAdmin.approvalsRequired',
        before: 2,
        after: 0,
        effect: 'loosens',
        reason: 'fewer approvals required',
      },
    ],
    approvalsRequired: 1,
    approvalTimeoutSeconds: 7 * 24 * 3600,
    comment: 'helpdesk needs it faster',
    requestId: null,
    ...overrides,
  };
}

async function run<T>(h: Harness, input: PolicyChangeInput, body: (handle: WorkflowHandle<typeof policyChangeWorkflow>) => Promise<T>) {
  const { worker, taskQueue } = await createWorkflowWorker(env, 'policy-change', fakeActivities(h));
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof policyChangeWorkflow>(POLICY_CHANGE_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: policyChangeWorkflowId(input.tenantId, input.changeId),
      args: [input],
    });
    const outcome = await body(handle);
    await recordHistory('policy-change', handle, { waitForClose: true });
    return outcome;
  });
}

const approve = (handle: WorkflowHandle, actorId: string) => handle.executeUpdate(approvePolicyChangeUpdate, { args: [{ actorId }] });
const proposed = (handle: WorkflowHandle) => until(handle, policyChangeQuery, (view) => view.version >= 1);

describe('policy change workflow', () => {
  it('applies with one approval: the update answers applied with the new version', async () => {
    const h = harness({ webhook: true });
    const result = await run(h, changeInput(), async (handle) => {
      const answered = await approve(handle, 'approver-1');
      expect(answered).toMatchObject({ status: 'applied', appliedVersion: 4 });
      return handle.result();
    });
    expect(result).toMatchObject({ status: 'applied', appliedVersion: 4, approvals: [{ approverId: 'approver-1' }] });
    expect(h.writes).toEqual([{ version: 4, approvers: ['approver-1'] }]);
    expect(h.events.map((e) => [e.action, e.actor])).toEqual([
      ['policy_change.proposed', 'operator'],
      ['policy_change.approval_recorded', 'approver-1'],
      ['policy_change.applied', 'system'],
    ]);
    expect(h.events.at(-1)!.approvalIds).toEqual([result.approvals[0]!.approvalId]);
    expect(h.notified).toEqual(['policy_change.proposed', 'policy_change.approval_recorded', 'policy_change.applied']);
  });

  it('applies once when two approvers of a quorum of two approve at the same time, recording both', async () => {
    const h = harness();
    const result = await run(h, changeInput({ approvalsRequired: 2 }), async (handle) => {
      await proposed(handle);
      const answers = await Promise.all([approve(handle, 'approver-1'), approve(handle, 'approver-2')]);
      expect(answers.map((a) => a.status)).toContain('applied');
      return handle.result();
    });
    expect(result.status).toBe('applied');
    expect(result.approvals.map((a) => a.approverId).sort()).toEqual(['approver-1', 'approver-2']);
    expect(h.writes).toEqual([{ version: 4, approvers: result.approvals.map((a) => a.approverId) }]);
    expect(h.events.filter((e) => e.action === 'policy_change.approval_recorded')).toHaveLength(2);
    expect(h.events.filter((e) => e.action === 'policy_change.applied')).toHaveLength(1);
    expect(h.notified).toEqual([]); // no webhook, no delivery
  });

  it('refuses the proposer approving their own change, and a second approval by the same approver', async () => {
    const h = harness();
    const result = await run(h, changeInput({ approvalsRequired: 2 }), async (handle) => {
      expect(await rejectionType(approve(handle, 'operator'))).toBe(PolicyChangeRejection.SelfApproval);
      expect(await approve(handle, 'approver-1')).toMatchObject({ status: 'pending', approvals: [{ approverId: 'approver-1' }] });
      expect(await rejectionType(approve(handle, 'approver-1'))).toBe(PolicyChangeRejection.DuplicateApprover);
      expect(await rejectionType(handle.executeUpdate(denyPolicyChangeUpdate, { args: [{ actorId: 'operator' }] }))).toBe(
        PolicyChangeRejection.SelfApproval,
      );
      expect((await handle.query(policyChangeQuery)).status).toBe('pending');
      return approve(handle, 'approver-2');
    });
    expect(result).toMatchObject({ status: 'applied', appliedVersion: 4 });
    expect(h.writes).toEqual([{ version: 4, approvers: ['approver-1', 'approver-2'] }]);
  });

  it('is denied by an approver: nothing is written and no decision applies after', async () => {
    const h = harness();
    await run(h, changeInput({ approvalsRequired: 2 }), async (handle) => {
      await approve(handle, 'approver-1');
      const denied = await handle.executeUpdate(denyPolicyChangeUpdate, {
        args: [{ actorId: 'approver-2', comment: 'not without a ticket' }],
      });
      expect(denied).toMatchObject({ status: 'denied', deniedBy: 'approver-2' });
      expect(await handle.result()).toMatchObject({ status: 'denied', appliedVersion: null });
      await expect(approve(handle, 'approver-3')).rejects.toBeInstanceOf(WorkflowNotFoundError);
    });
    expect(h.writes).toEqual([]);
    expect(h.events.at(-1)).toMatchObject({ action: 'policy_change.denied', actor: 'approver-2', status: 'denied' });
  });

  it('takes approvals and denials only from the tenant’s own approvers; one that cannot be checked is refused as unavailable', async () => {
    const h = harness({ confirmFailures: 5 });
    const result = await run(h, changeInput(), async (handle) => {
      await proposed(handle);
      // Text the trail cannot store is refused before the Update is taken (it would retry its record forever).
      expect(await rejectionType(approve(handle, 'approver-1\u0000'))).toBe(PolicyChangeRejection.InvalidInput);
      expect(await rejectionType(approve(handle, 'approver-1'))).toBe(PolicyChangeRejection.Unavailable);
      expect(await rejectionType(approve(handle, 'msp-admin'))).toBe(PolicyChangeRejection.NotTenantApprover);
      expect(await rejectionType(handle.executeUpdate(denyPolicyChangeUpdate, { args: [{ actorId: 'msp-admin' }] }))).toBe(
        PolicyChangeRejection.NotTenantApprover,
      );
      expect(await handle.query(policyChangeQuery)).toMatchObject({ status: 'pending', approvals: [] });
      return approve(handle, 'approver-1');
    });
    expect(result).toMatchObject({ status: 'applied', approvals: [{ approverId: 'approver-1' }] });
    expect(h.writes).toEqual([{ version: 4, approvers: ['approver-1'] }]);
    expect(h.events.map((e) => [e.action, e.actor])).toEqual([
      ['policy_change.proposed', 'operator'],
      ['policy_change.approval_recorded', 'approver-1'],
      ['policy_change.applied', 'system'],
    ]);
  });

  it('is withdrawn by the proposer: nothing is written and approving is refused', async () => {
    const h = harness();
    await run(h, changeInput(), async (handle) => {
      await proposed(handle);
      expect(await handle.executeUpdate(withdrawPolicyChangeUpdate, { args: [{ actorId: 'operator' }] })).toMatchObject({
        status: 'withdrawn',
        withdrawnBy: 'operator',
      });
      await expect(handle.result()).resolves.toMatchObject({ status: 'withdrawn' });
      await expect(approve(handle, 'approver-1')).rejects.toBeInstanceOf(WorkflowNotFoundError);
    });
    expect(h.writes).toEqual([]);
    expect(h.events.map((e) => e.action)).toEqual(['policy_change.proposed', 'policy_change.withdrawn']);
  });

  it('times out after seven days without a quorum and changes nothing', async () => {
    const h = harness();
    const result = await run(h, changeInput({ approvalsRequired: 2 }), async (handle) => {
      await approve(handle, 'approver-1');
      return handle.result();
    });
    expect(result.status).toBe('timed_out');
    expect(Date.parse(result.decidedAt!) - Date.parse(result.proposedAt)).toBeGreaterThanOrEqual(7 * 24 * 3600 * 1000);
    expect(result.expiresAt).toBe(new Date(Date.parse(result.proposedAt) + 7 * 24 * 3600 * 1000).toISOString());
    expect(h.writes).toEqual([]);
    expect(h.events.at(-1)).toMatchObject({ action: 'policy_change.timed_out', actor: 'system', status: 'timed_out' });
  });

  it('conflicts when the policy moved on from the base version: nothing is written', async () => {
    const h = harness({ currentVersion: 4 });
    const result = await run(h, changeInput(), async (handle) => {
      const answered = await approve(handle, 'approver-1');
      expect(answered.status).toBe('conflicted');
      return handle.result();
    });
    expect(result).toMatchObject({ status: 'conflicted', appliedVersion: null });
    expect(result.reason).toContain('version 3 to version 4');
    expect(h.writes).toEqual([]);
    expect(h.events.at(-1)!.action).toBe('policy_change.conflicted');
  });
});
