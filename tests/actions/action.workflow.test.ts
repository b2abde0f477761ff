import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  ACTION_NOT_CONFIRMED,
  ACTION_WORKFLOW_TYPE,
  actionQuery,
  ActionRejection,
  actionWorkflowId,
  approveActionUpdate,
  cancelActionUpdate,
  denyActionUpdate,
  type ActionInput,
} from '../../core/actions/contract.js';
import { DIRECTORY_TARGET_REJECTED, type DirectoryAccountState } from '../../core/directory/connector.js';
import type { actionWorkflow } from '../../workflows/actions/workflow.js';
import { createWorkflowWorker, recordHistory, rejectionType, startTimeSkippingEnvironment, until } from '../support/workflow-harness.js';

/**
 * Workflow tier: the real remote-action workflow with activities replaced by recorders, on the
 * time-skipping server (the approval timeout is hours long).
 */
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await startTimeSkippingEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

const LOCKED: DirectoryAccountState = { status: 'active', locked: true, mfaFactors: 1, passwordResetRequired: false, liveSessions: 2 };
const UNLOCKED: DirectoryAccountState = { ...LOCKED, locked: false };

interface Harness {
  events: { action: string; actor: string; status: string; authority: Record<string, unknown>; payload: Record<string, unknown> }[];
  /** Every call of a step activity, by name. */
  calls: string[];
  /** What the execute step throws, if anything. */
  executeFails?: () => Error;
  /** Holds the execute step until it settles. */
  executeGate?: Promise<void>;
  /** What reading back shows. */
  after: DirectoryAccountState;
  /** Approvers unbound or disabled since they approved. */
  lapsed: Set<string>;
  /** The approver ids each re-count was asked about. */
  recounts: string[][];
}

const harness = (overrides: Partial<Harness> = {}): Harness => ({
  events: [],
  calls: [],
  after: UNLOCKED,
  lapsed: new Set(),
  recounts: [],
  ...overrides,
});

function fakeActivities(h: Harness) {
  return {
    recordActionEvent: async (i) => {
      h.events.push({ action: i.action, actor: i.actor.id, status: i.view.status, authority: i.authority, payload: i.payload });
      return { seq: h.events.length };
    },
    checkActionApprovers: async (i) => {
      h.recounts.push(i.approverIds);
      return { counting: i.approverIds.filter((id) => !h.lapsed.has(id)) };
    },
    prepareAction: async () => {
      h.calls.push('prepare');
      return { before: LOCKED, target: 'fake' };
    },
    executeAction: async () => {
      h.calls.push('execute');
      await h.executeGate;
      if (h.executeFails) throw h.executeFails();
      return { outcome: 'lockout lifted' };
    },
    verifyAction: async (i) => {
      h.calls.push('verify');
      if (h.after.locked !== false)
        throw ApplicationFailure.create({ type: ACTION_NOT_CONFIRMED, message: `the fake directory does not show ${i.action} done` });
      return { after: h.after };
    },
  } satisfies Partial<Activities>;
}

function actionInput(overrides: Partial<ActionInput> = {}, approvalsRequired = 1): ActionInput {
  return {
    actionId: randomUUID(),
    tenantId: randomUUID(),
    action: 'unlock',
    subjectId: 'ana',
    requesterId: 'operator',
    authority: { roles: ['operator'] },
    justification: 'locked out before the quarter close',
    ticket: 'INC-7',
    policy: { policyVersion: 3, approvalsRequired, approvalTimeoutSeconds: 4 * 3600 },
    ...overrides,
  };
}

async function run<T>(h: Harness, input: ActionInput, body: (handle: WorkflowHandle<typeof actionWorkflow>) => Promise<T>) {
  const { worker, taskQueue } = await createWorkflowWorker(env, 'action', fakeActivities(h));
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof actionWorkflow>(ACTION_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: actionWorkflowId(input.tenantId, input.actionId),
      args: [input],
    });
    const outcome = await body(handle);
    await recordHistory('action', handle, { waitForClose: true });
    return outcome;
  });
}

const decide = (handle: WorkflowHandle, update: typeof approveActionUpdate, actorId: string) =>
  handle.executeUpdate(update, { args: [{ actorId, authority: { roles: ['tenant_approver'] } }] });
const requested = (handle: WorkflowHandle) => until(handle, actionQuery, (view) => view.version >= 1);

describe('remote action workflow', () => {
  it('runs at once when the policy needs no approval: executed, then confirmed by reading back, each step audited once', async () => {
    const h = harness();
    const result = await run(h, actionInput({}, 0), (handle) => handle.result());
    expect(result).toMatchObject({
      status: 'completed',
      approvalExpiresAt: null,
      before: LOCKED,
      after: UNLOCKED,
      outcome: 'lockout lifted',
      executedAt: expect.any(String),
      verifiedAt: expect.any(String),
    });
    expect(h.calls).toEqual(['prepare', 'execute', 'verify']);
    expect(h.events.map((e) => [e.action, e.actor, e.status])).toEqual([
      ['action.requested', 'operator', 'pending_approval'],
      ['action.approved', 'system', 'executing'],
      ['action.executed', 'system', 'executing'],
      ['action.completed', 'system', 'completed'],
    ]);
    expect(h.events[0]!.authority).toMatchObject({ roles: ['operator'], policyVersion: 3, ticket: 'INC-7', actionId: result.actionId });
    expect(h.events[1]!.authority).toMatchObject({ autoApproved: true });
    expect(h.events[2]!.payload).toMatchObject({ target: 'fake', before: LOCKED, outcome: 'lockout lifted' });
    expect(h.events[3]!.payload).toMatchObject({ verified: true, after: UNLOCKED });
  });

  it('needs a quorum of distinct approvers, never the requester, and then executes on their authority; no decision applies after', async () => {
    let open!: () => void;
    const h = harness({ executeGate: new Promise<void>((resolve) => (open = resolve)) });
    const result = await run(h, actionInput({}, 2), async (handle) => {
      expect(await rejectionType(decide(handle, approveActionUpdate, 'operator'))).toBe(ActionRejection.SelfApproval);
      expect(await rejectionType(decide(handle, denyActionUpdate, 'operator'))).toBe(ActionRejection.SelfApproval);
      expect(await decide(handle, approveActionUpdate, 'approver-1')).toMatchObject({ status: 'pending_approval' });
      expect(await rejectionType(decide(handle, approveActionUpdate, 'approver-1'))).toBe(ActionRejection.DuplicateApprover);
      expect(h.calls).toEqual([]);
      expect(await decide(handle, approveActionUpdate, 'approver-2')).toMatchObject({ status: 'executing' });
      await until(handle, actionQuery, () => h.calls.includes('execute'));
      for (const update of [approveActionUpdate, denyActionUpdate, cancelActionUpdate])
        expect(await rejectionType(decide(handle, update, 'approver-3'))).toBe(ActionRejection.NotApplicable);
      open();
      return handle.result();
    });
    expect(result.status).toBe('completed');
    expect(result.approvals.map((a) => a.approverId)).toEqual(['approver-1', 'approver-2']);
    const approvalIds = result.approvals.map((a) => a.approvalId);
    expect(h.events.map((e) => e.action)).toEqual([
      'action.requested',
      'action.approval_recorded',
      'action.approval_recorded',
      'action.approved',
      'action.executed',
      'action.completed',
    ]);
    for (const step of h.events.slice(3)) expect(step.authority).toMatchObject({ approvalIds });
    expect(h.recounts).toEqual([['approver-1', 'approver-2']]);
  });

  it('is refused, with its reason recorded, when an approver is no longer one as it is about to run: nothing is executed', async () => {
    const h = harness();
    const result = await run(h, actionInput({}, 2), async (handle) => {
      await decide(handle, approveActionUpdate, 'approver-1');
      // Unbound after approving, before the quorum is complete.
      h.lapsed.add('approver-1');
      expect(await decide(handle, approveActionUpdate, 'approver-2')).toMatchObject({ status: 'refused' });
      return handle.result();
    });
    expect(result).toMatchObject({ status: 'refused', executedAt: null, before: null });
    expect(result.outcome).toMatch(/^Only 1 of the 2 approval\(s\) still count: approver-1 no longer is an active approver/);
    expect(h.recounts).toEqual([['approver-1', 'approver-2']]);
    expect(h.calls).toEqual([]);
    expect(h.events.map((e) => [e.action, e.actor, e.status])).toEqual([
      ['action.requested', 'operator', 'pending_approval'],
      ['action.approval_recorded', 'approver-1', 'pending_approval'],
      ['action.approval_recorded', 'approver-2', 'pending_approval'],
      ['action.refused', 'system', 'refused'],
    ]);
    const refused = h.events[3]!;
    expect(refused.payload).toMatchObject({ reason: result.outcome, lapsedApprovers: ['approver-1'], approvals: 2, required: 2 });
    expect(refused.authority).toMatchObject({ approvalIds: [result.approvals[1]!.approvalId] });
  });

  it('runs on the approvals that still count when they still make the quorum', async () => {
    const h = harness({ lapsed: new Set(['someone-else']) });
    const result = await run(h, actionInput({}, 1), async (handle) => {
      await decide(handle, approveActionUpdate, 'approver-1');
      return handle.result();
    });
    expect(result.status).toBe('completed');
    expect(h.calls).toEqual(['prepare', 'execute', 'verify']);
    expect(h.recounts).toEqual([['approver-1']]);
  });

  it('is denied by an approver: nothing is executed and no later decision applies', async () => {
    const h = harness();
    await run(h, actionInput(), async (handle) => {
      await requested(handle);
      const denied = await decide(handle, denyActionUpdate, 'approver-1');
      expect(denied).toMatchObject({ status: 'denied', decidedBy: 'approver-1' });
      expect(await handle.result()).toMatchObject({ status: 'denied', executedAt: null });
      await expect(decide(handle, approveActionUpdate, 'approver-2')).rejects.toBeInstanceOf(WorkflowNotFoundError);
    });
    expect(h.calls).toEqual([]);
    expect(h.events.map((e) => [e.action, e.actor])).toEqual([
      ['action.requested', 'operator'],
      ['action.denied', 'approver-1'],
    ]);
  });

  it('is cancelled while pending: nothing is executed and approving is refused', async () => {
    const h = harness();
    await run(h, actionInput(), async (handle) => {
      await requested(handle);
      expect(await decide(handle, cancelActionUpdate, 'operator')).toMatchObject({ status: 'cancelled', decidedBy: 'operator' });
      expect(await handle.result()).toMatchObject({ status: 'cancelled' });
      await expect(decide(handle, approveActionUpdate, 'approver-1')).rejects.toBeInstanceOf(WorkflowNotFoundError);
    });
    expect(h.calls).toEqual([]);
    expect(h.events.map((e) => e.action)).toEqual(['action.requested', 'action.cancelled']);
  });

  it('expires when the quorum is not reached in time, and nothing is executed', async () => {
    const h = harness();
    const result = await run(h, actionInput({}, 2), async (handle) => {
      await decide(handle, approveActionUpdate, 'approver-1');
      return handle.result();
    });
    expect(result.status).toBe('expired');
    expect(result.approvalExpiresAt).toBe(new Date(Date.parse(result.requestedAt) + 4 * 3600 * 1000).toISOString());
    expect(result.outcome).toContain('nothing was done');
    expect(h.calls).toEqual([]);
    expect(h.events.at(-1)).toMatchObject({ action: 'action.expired', actor: 'system', status: 'expired' });
  });

  it('fails at once when the target refuses for good, naming the stage and the reason', async () => {
    const h = harness({
      executeFails: () =>
        ApplicationFailure.create({ type: DIRECTORY_TARGET_REJECTED, message: 'directory user ana not found', nonRetryable: true }),
    });
    const result = await run(h, actionInput({}, 0), (handle) => handle.result());
    expect(result).toMatchObject({ status: 'failed', outcome: 'directory user ana not found', executedAt: null, before: LOCKED });
    expect(h.calls).toEqual(['prepare', 'execute']);
    expect(h.events.at(-1)).toMatchObject({ action: 'action.failed', status: 'failed', payload: { stage: 'execute' } });
  });

  it('fails when reading the target back never shows the action done', async () => {
    const h = harness({ after: LOCKED });
    const result = await run(h, actionInput({}, 0), (handle) => handle.result());
    expect(result.status).toBe('failed');
    expect(result.outcome).toContain('does not show unlock done');
    expect(h.calls.filter((c) => c === 'verify')).toHaveLength(5);
    expect(h.events.map((e) => e.action)).toEqual(['action.requested', 'action.approved', 'action.executed', 'action.failed']);
    expect(h.events.at(-1)).toMatchObject({ payload: { stage: 'verify' } });
  });
});
