import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  APPLY_NOT_VERIFIED,
  applyQuery,
  ApplyRejection,
  approveApplyUpdate,
  denyApplyUpdate,
  TEMPLATE_APPLY_WORKFLOW_TYPE,
  templateApplyWorkflowId,
  type TemplateApplyInput,
} from '../../core/templates/contract.js';
import type { templateApplyWorkflow } from '../../workflows/templates/apply.js';
import { createWorkflowWorker, recordHistory, rejectionType, startTimeSkippingEnvironment, until } from '../support/workflow-harness.js';

/**
 * Workflow tier: one tenant's apply with its activities replaced by recorders, on the
 * time-skipping server (the tenant's approval gate lasts days).
 */
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await startTimeSkippingEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

const SUMMARY = { changes: 3, loosens: 1, privileged: 1, unsupported: 0 };
/** Who the fake tenant has bound as its approvers now (what confirmApplyDecider reads from PostgreSQL). */
const TENANT_APPROVERS = ['approver-a', 'approver-b'];

interface Harness {
  events: { action: string; actor: string; status: string; authority: Record<string, unknown>; payload: Record<string, unknown> }[];
  calls: string[];
  needsApproval: boolean;
  /** Reading back shows the version applied. */
  verified: boolean;
  approvedFlags: boolean[];
  /** Attempts of confirmApplyDecider to fail (PostgreSQL unreachable). */
  confirmFailures: number;
}

const harness = (overrides: Partial<Harness> = {}): Harness => ({
  events: [],
  calls: [],
  needsApproval: false,
  verified: true,
  approvedFlags: [],
  confirmFailures: 0,
  ...overrides,
});

function fakeActivities(h: Harness) {
  return {
    confirmApplyDecider: async ({ actorId }) => {
      if (h.confirmFailures > 0) {
        h.confirmFailures--;
        throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      }
      return { counts: TENANT_APPROVERS.includes(actorId) };
    },
    recordApplyEvent: async (i) => {
      h.events.push({ action: i.action, actor: i.actor.id, status: i.view.status, authority: i.authority, payload: i.payload });
      return { seq: h.events.length };
    },
    planApply: async () => {
      h.calls.push('plan');
      return { summary: SUMMARY, needsApproval: h.needsApproval, approvalsRequired: 1 };
    },
    snapshotTenant: async (i) => {
      h.calls.push('snapshot');
      return { snapshotId: i.snapshotId };
    },
    applyVersion: async (i) => {
      h.calls.push('apply');
      h.approvedFlags.push(i.approved);
      return { roles: 1, settings: 2, policyVersion: 4, unsupported: [] };
    },
    verifyApply: async () => {
      h.calls.push('verify');
      if (!h.verified) throw ApplicationFailure.create({ type: APPLY_NOT_VERIFIED, message: 'reading back still shows 1 difference(s)' });
      return { remaining: 0 };
    },
    pinApplied: async () => {
      h.calls.push('pin');
    },
  } satisfies Partial<Activities>;
}

function applyInput(overrides: Partial<TemplateApplyInput> = {}): TemplateApplyInput {
  return {
    rolloutId: randomUUID(),
    tenantId: randomUUID(),
    templateId: randomUUID(),
    version: 2,
    parameters: { helpdesk: 'Contoso IT' },
    requester: { id: 'operator', type: 'user' },
    authority: { roles: ['operator'] },
    approvalTimeoutSeconds: 7 * 86_400,
    ...overrides,
  };
}

async function run<T>(h: Harness, input: TemplateApplyInput, body: (handle: WorkflowHandle<typeof templateApplyWorkflow>) => Promise<T>) {
  const { worker, taskQueue } = await createWorkflowWorker(env, 'template-apply', fakeActivities(h));
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof templateApplyWorkflow>(TEMPLATE_APPLY_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: templateApplyWorkflowId(input.rolloutId, input.tenantId),
      args: [input],
    });
    const outcome = await body(handle);
    await recordHistory('template-apply', handle, { waitForClose: true });
    return outcome;
  });
}

const decide = (handle: WorkflowHandle, update: typeof approveApplyUpdate, actorId: string) =>
  handle.executeUpdate(update, { args: [{ actorId, authority: { roles: ['tenant_approver'] } }] });
const atGate = (handle: WorkflowHandle) => until(handle, applyQuery, (view) => view.status === 'awaiting_approval');

describe('template apply workflow', () => {
  it('a plan that keeps the tenant’s control applies at once: snapshot, apply, read back, pin, each step audited once', async () => {
    const h = harness();
    const result = await run(h, applyInput(), (handle) => handle.result());
    expect(result).toMatchObject({
      status: 'applied',
      needsApproval: false,
      summary: SUMMARY,
      snapshotId: expect.any(String),
      applied: { roles: 1, settings: 2, policyVersion: 4, unsupported: [] },
      appliedAt: expect.any(String),
      verifiedAt: expect.any(String),
    });
    expect(h.calls).toEqual(['plan', 'snapshot', 'apply', 'verify', 'pin']);
    expect(h.approvedFlags).toEqual([false]);
    expect(h.events.map((e) => [e.action, e.actor, e.status])).toEqual([
      ['template.apply.requested', 'operator', 'planning'],
      ['template.apply.planned', 'system', 'applying'],
      ['template.apply.applied', 'system', 'applying'],
      ['template.applied', 'system', 'applied'],
    ]);
    expect(h.events[0]!.authority).toMatchObject({ roles: ['operator'], rolloutId: result.rolloutId, templateVersion: 2 });
    expect(h.events[2]!.payload).toMatchObject({ snapshotId: result.snapshotId });
  });

  it('a plan that loosens control waits for the tenant: who started it cannot approve, a tenant approver can, and the apply runs on that approval', async () => {
    const h = harness({ needsApproval: true });
    const result = await run(h, applyInput(), async (handle) => {
      await atGate(handle);
      expect(h.calls).toEqual(['plan']);
      expect(await rejectionType(decide(handle, approveApplyUpdate, 'operator'))).toBe(ApplyRejection.SelfApproval);
      await decide(handle, approveApplyUpdate, 'approver-a');
      expect(await rejectionType(decide(handle, approveApplyUpdate, 'approver-b'))).toBe(ApplyRejection.NotApplicable);
      return handle.result();
    });
    expect(result).toMatchObject({ status: 'applied', approvalsRequired: 1, approvals: [{ approverId: 'approver-a' }] });
    expect(h.approvedFlags).toEqual([true]);
    expect(h.events.map((e) => e.action)).toEqual([
      'template.apply.requested',
      'template.apply.planned',
      'template.apply.approval_recorded',
      'template.apply.approved',
      'template.apply.applied',
      'template.applied',
    ]);
    expect(h.events[3]!.authority).toMatchObject({ approvalIds: [result.approvals[0]!.approvalId] });
  });

  it('a gate nobody decides in time skips the tenant: nothing is snapshotted or applied', async () => {
    const h = harness({ needsApproval: true });
    const result = await run(h, applyInput({ approvalTimeoutSeconds: 3600 }), (handle) => handle.result());
    expect(result).toMatchObject({ status: 'skipped', approvals: [], snapshotId: null, applied: null });
    expect(h.calls).toEqual(['plan']);
    expect(h.events.map((e) => e.action)).toEqual(['template.apply.requested', 'template.apply.planned', 'template.apply.skipped']);
  });

  it('a tenant approver’s denial ends it: nothing is snapshotted or applied', async () => {
    const h = harness({ needsApproval: true });
    const result = await run(h, applyInput(), async (handle) => {
      await atGate(handle);
      expect(await decide(handle, denyApplyUpdate, 'approver-a')).toMatchObject({ status: 'denied' });
      return handle.result();
    });
    expect(result).toMatchObject({ status: 'denied', decidedBy: 'approver-a', applied: null });
    expect(h.calls).toEqual(['plan']);
  });

  it('a denial counts only from the tenant’s own approvers: one in anyone else’s name or with unstorable text is refused and changes nothing', async () => {
    const h = harness({ needsApproval: true });
    const result = await run(h, applyInput(), async (handle) => {
      await atGate(handle);
      expect(await rejectionType(decide(handle, denyApplyUpdate, 'msp-admin'))).toBe(ApplyRejection.NotTenantApprover);
      expect(await rejectionType(decide(handle, denyApplyUpdate, 'approver-a\u0000'))).toBe(ApplyRejection.InvalidInput);
      expect((await handle.query(applyQuery)).status).toBe('awaiting_approval');
      expect(await decide(handle, denyApplyUpdate, 'approver-b')).toMatchObject({ status: 'denied', decidedBy: 'approver-b' });
      return handle.result();
    });
    expect(result).toMatchObject({ status: 'denied', decidedBy: 'approver-b', applied: null });
    expect(h.calls).toEqual(['plan']);
    expect(h.events.map((e) => [e.action, e.actor])).toEqual([
      ['template.apply.requested', 'operator'],
      ['template.apply.planned', 'system'],
      ['template.apply.denied', 'approver-b'],
    ]);
  });

  it('an approval counts only from the tenant’s own approvers; one that cannot be checked is refused as unavailable, nothing taken', async () => {
    const h = harness({ needsApproval: true, confirmFailures: 5 });
    const result = await run(h, applyInput(), async (handle) => {
      await atGate(handle);
      expect(await rejectionType(decide(handle, approveApplyUpdate, 'approver-a'))).toBe(ApplyRejection.Unavailable);
      expect(await rejectionType(decide(handle, approveApplyUpdate, 'msp-admin'))).toBe(ApplyRejection.NotTenantApprover);
      expect(await handle.query(applyQuery)).toMatchObject({ status: 'awaiting_approval', approvals: [] });
      await decide(handle, approveApplyUpdate, 'approver-a');
      return handle.result();
    });
    expect(result).toMatchObject({ status: 'applied', approvals: [{ approverId: 'approver-a' }] });
    expect(h.events.filter((e) => e.action === 'template.apply.approval_recorded').map((e) => e.actor)).toEqual(['approver-a']);
  });

  it('reading back that never shows the version fails the apply at verify, naming the snapshot to restore, and pins nothing', async () => {
    const h = harness({ verified: false });
    const result = await run(h, applyInput(), (handle) => handle.result());
    expect(result).toMatchObject({ status: 'failed', outcome: expect.stringMatching(/^verify: /), verifiedAt: null });
    expect(h.calls.filter((c) => c === 'verify')).toHaveLength(5);
    expect(h.calls).not.toContain('pin');
    expect(h.events.at(-1)).toMatchObject({ action: 'template.apply.failed', payload: { stage: 'verify', snapshotId: result.snapshotId } });
  });
});
