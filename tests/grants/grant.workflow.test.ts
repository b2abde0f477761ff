import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { grantWorkflow } from '../../workflows/grants/workflow.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  approveGrantUpdate,
  denyGrantUpdate,
  extendGrantUpdate,
  GRANT_WORKFLOW_TYPE,
  grantQuery,
  grantWorkflowId,
  GrantRejection,
  revokeGrantUpdate,
  type GrantInput,
  type GrantView,
} from '../../core/grants/contract.js';
import {
  connectToDevServer,
  createWorkflowWorker,
  recordHistory,
  rejectionType,
  startTimeSkippingEnvironment,
  until,
} from '../support/workflow-harness.js';

/**
 * Workflow tier: the real grant workflow with activities replaced by recorders. Long timers run
 * on the time-skipping server; cases that interact with an active grant run on the dev server
 * in real time (the skipping clock would race them to expiry).
 */
let env: TestWorkflowEnvironment;
let realTime: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await startTimeSkippingEnvironment();
  realTime = await connectToDevServer();
});
afterAll(async () => {
  await env?.teardown();
  await realTime?.teardown();
});

interface Harness {
  events: { action: string; actor: string; status: string }[];
  directory: Set<string>;
  removeFailures: number;
  eligible: boolean;
  /** Extension requesters who may no longer request the role. */
  ineligible: Set<string>;
  /** Approvers disabled or unbound since they approved. */
  lapsed: Set<string>;
  /** Milliseconds an activity (or an event's recording, by action) takes, to hold a race open. */
  delays: Record<string, number>;
}

const pause = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

function fakeActivities(h: Harness) {
  const held = (i: { subjectId: string; role: string }) => h.directory.has(`${i.subjectId}:${i.role}`);
  return {
    recordGrantEvent: async (i) => {
      await pause(h.delays[i.action]);
      h.events.push({ action: i.action, actor: i.actor.id, status: i.view.status });
      return { seq: h.events.length, notify: false };
    },
    checkGrantEligibility: async (i) => {
      await pause(h.delays.checkGrantEligibility);
      return h.eligible && !h.ineligible.has(i.requesterId)
        ? { eligible: true, reason: null }
        : { eligible: false, reason: 'left the company' };
    },
    checkGrantApprovers: async (i) => ({ counting: i.approverIds.filter((id) => !h.lapsed.has(id)) }),
    grantAccess: async (i) => {
      await pause(h.delays.grantAccess);
      h.directory.add(`${i.subjectId}:${i.role}`);
      return { entitlementId: 'e1', assigned: true, alreadyEnded: false };
    },
    endAccess: async (i) => {
      if (h.removeFailures > 0) {
        h.removeFailures--;
        throw new Error('directory unavailable');
      }
      h.directory.delete(`${i.subjectId}:${i.role}`);
      return {
        closed: true,
        removedFromTarget: true,
        remainingOpen: 0,
        verification: { gone: !held(i), presentOnTarget: held(i), heldBy: [] },
      };
    },
    extendAccess: async () => ({ extended: true }),
    verifyAccessGone: async (i) => ({ gone: !held(i), presentOnTarget: held(i), heldBy: [] }),
    notifyGrant: async () => ({ delivered: false, reason: 'no webhook in this test' }),
  } satisfies Partial<Activities>;
}

function grantInput(overrides: Partial<GrantInput> = {}, policy: Partial<GrantInput['policy']> = {}): GrantInput {
  return {
    grantId: randomUUID(),
    tenantId: randomUUID(),
    subjectId: 'u-1',
    role: 'GlobalAdmin',
    requesterId: 'requester',
    justification: 'incident 42',
    ticket: 'INC-42',
    startAt: new Date(Date.now()).toISOString(),
    durationSeconds: 8 * 3600,
    requestId: null,
    policy: {
      policyVersion: 1,
      privileged: true,
      approvalsRequired: 2,
      approvalTimeoutSeconds: 3600,
      maxDurationSeconds: 8 * 3600,
      extensionRequiresApproval: true,
      maxTotalSeconds: 12 * 3600,
      ...policy,
    },
    ...overrides,
  };
}

async function run<T>(
  h: Harness,
  input: GrantInput,
  body: (handle: WorkflowHandle) => Promise<T>,
  on: TestWorkflowEnvironment = env,
): Promise<T> {
  // The skipping server's clock runs ahead of ours after earlier tests; start windows on its time.
  const drift = (await on.currentTimeMs()) - Date.now();
  input = { ...input, startAt: new Date(Date.parse(input.startAt) + drift).toISOString() };
  const { worker, taskQueue } = await createWorkflowWorker(on, 'grant', fakeActivities(h));
  return worker.runUntil(async () => {
    const handle = await on.client.workflow.start<typeof grantWorkflow>(GRANT_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: grantWorkflowId(input.tenantId, input.grantId),
      args: [input],
    });
    const outcome = await body(handle);
    await recordHistory('grant', handle, { waitForClose: true });
    // However decisions interleave, no workflow task ever fails (a failed task is replayed forever).
    await handle.result().catch(() => undefined);
    expect(await workflowTaskFailures(handle)).toBe(0);
    return outcome;
  });
}

/** Waits for the grant to reach `status`. */
const reach = (handle: WorkflowHandle, status: GrantView['status']) => until(handle, grantQuery, (view) => view.status === status);

const harness = (): Harness => ({
  events: [],
  directory: new Set(),
  removeFailures: 0,
  eligible: true,
  ineligible: new Set(),
  lapsed: new Set(),
  delays: {},
});

async function workflowTaskFailures(handle: WorkflowHandle): Promise<number> {
  const { events } = await handle.fetchHistory();
  return (events ?? []).filter((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED).length;
}

const count = (h: Harness, action: string) => h.events.filter((e) => e.action === action).length;
const approve = (handle: WorkflowHandle, actorId: string) => handle.executeUpdate(approveGrantUpdate, { args: [{ actorId }] });
describe('grant workflow', () => {
  it('needs a quorum of distinct approvers, never the requester, then activates and expires after 8 hours with verified revocation', async () => {
    const h = harness();
    const input = grantInput();
    const view = await run(h, input, async (handle) => {
      expect(await rejectionType(handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: 'requester' }] }))).toBe(
        GrantRejection.SelfApproval,
      );
      await handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: 'approver-1' }] });
      expect(await rejectionType(handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: 'approver-1' }] }))).toBe(
        GrantRejection.DuplicateApprover,
      );
      expect((await handle.query(grantQuery)).status).toBe('pending_approval');
      await handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: 'approver-2' }] });
      return (await handle.result()) as GrantView;
    });
    expect(view).toMatchObject({
      status: 'ended',
      endReason: 'expired',
      approvals: [{ approverId: 'approver-1' }, { approverId: 'approver-2' }],
    });
    expect(view.revocationVerifiedAt).not.toBeNull();
    expect(h.directory.size).toBe(0);
    expect(h.events.map((e) => e.action)).toEqual([
      'grant.requested',
      'grant.approval_recorded',
      'grant.approval_recorded',
      'grant.approved',
      'grant.activated',
      'grant.expiring',
      'grant.expired',
    ]);
  });

  it('times out when the quorum is not reached in time, and never grants access', async () => {
    const h = harness();
    const view = await run(h, grantInput(), async (handle) => {
      await handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: 'approver-1' }] });
      return (await handle.result()) as GrantView;
    });
    expect(view.status).toBe('approval_timed_out');
    expect(h.events.at(-1)!.action).toBe('grant.approval_timed_out');
    expect(h.directory.size).toBe(0);
  });

  it('is denied by an approver, after which no decision applies', async () => {
    const h = harness();
    await run(h, grantInput(), async (handle) => {
      await handle.executeUpdate(denyGrantUpdate, { args: [{ actorId: 'approver-1', comment: 'no ticket' }] });
      expect((await handle.result()) as GrantView).toMatchObject({ status: 'denied', deniedBy: 'approver-1' });
      // The denial ended the lifecycle: the workflow is closed and takes no further decision
      // (the API answers 409 for it).
      await expect(handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: 'approver-2' }] })).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
    });
    expect(h.directory.size).toBe(0);
  });

  it('extends with re-approval up to the cap, moving the expiry', async () => {
    const h = harness();
    const input = grantInput({ durationSeconds: 3 }, { approvalsRequired: 1, maxTotalSeconds: 10 });
    await run(
      h,
      input,
      async (handle) => {
        await handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: 'approver-1' }] });
        await reach(handle, 'active');
        expect(
          await rejectionType(handle.executeUpdate(extendGrantUpdate, { args: [{ actorId: 'requester', additionalSeconds: 60 }] })),
        ).toBe(GrantRejection.ExtensionOverCap);
        const pending = await handle.executeUpdate(extendGrantUpdate, {
          args: [{ actorId: 'requester', additionalSeconds: 2, justification: 'still fixing' }],
        });
        expect(pending.pendingExtension).toMatchObject({ additionalSeconds: 2 });
        expect(await rejectionType(handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: 'requester' }] }))).toBe(
          GrantRejection.SelfApproval,
        );
        const extended = await handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: 'approver-1' }] });
        expect(Date.parse(extended.endAt) - Date.parse(extended.startAt)).toBe(5000);
        const view = (await handle.result()) as GrantView;
        expect(view).toMatchObject({ status: 'ended', endReason: 'expired' });
        expect(Date.parse(view.endedAt!)).toBeGreaterThanOrEqual(Date.parse(extended.endAt));
      },
      realTime,
    );
    expect(h.events.map((e) => e.action)).toContain('grant.extended');
  });

  it('is revoked early: the update returns at once and the role is removed and verified gone', async () => {
    const h = harness();
    await run(
      h,
      grantInput({}, { approvalsRequired: 0 }),
      async (handle) => {
        await reach(handle, 'active');
        const accepted = await handle.executeUpdate(revokeGrantUpdate, { args: [{ actorId: 'approver-1', comment: 'incident closed' }] });
        expect(['revoking', 'ended']).toContain(accepted.status);
        expect((await handle.result()) as GrantView).toMatchObject({ status: 'ended', endReason: 'revoked' });
      },
      realTime,
    );
    expect(h.directory.size).toBe(0);
    expect(h.events.map((e) => e.action)).toEqual([
      'grant.requested',
      'grant.approved',
      'grant.activated',
      'grant.revoking',
      'grant.revoked',
    ]);
  });

  it('keeps retrying a revocation the target refuses, raises one alert, and completes when it recovers', async () => {
    const h = harness();
    h.removeFailures = 12;
    const view = await run(
      h,
      grantInput({ durationSeconds: 600 }, { approvalsRequired: 0 }),
      async (handle) => (await handle.result()) as GrantView,
    );
    expect(view).toMatchObject({ status: 'ended', endReason: 'expired' });
    expect(h.removeFailures).toBe(0);
    expect(h.directory.size).toBe(0);
    expect(h.events.filter((e) => e.action === 'grant.revocation_alert')).toHaveLength(1);
  });

  it('never grants access when approval comes after the window has closed', async () => {
    const h = harness();
    const view = await run(h, grantInput({ durationSeconds: 60 }, { approvalsRequired: 1 }), async (handle) => {
      await env.sleep(120_000);
      await handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: 'approver-1' }] });
      return (await handle.result()) as GrantView;
    });
    expect(view).toMatchObject({ status: 'ended', endReason: 'expired', activatedAt: null });
    expect(h.directory.size).toBe(0);
    expect(h.events.map((e) => e.action)).toEqual(['grant.requested', 'grant.approval_recorded', 'grant.approved', 'grant.window_passed']);
  });

  it('refuses activation when eligibility is gone by the scheduled start', async () => {
    const h = harness();
    h.eligible = false;
    const input = grantInput({ startAt: new Date(Date.now() + 3 * 86_400_000).toISOString() }, { approvalsRequired: 0 });
    const view = await run(h, input, async (handle) => (await handle.result()) as GrantView);
    expect(view).toMatchObject({ status: 'ended', endReason: 'ineligible' });
    expect(h.directory.size).toBe(0);
    expect(h.events.at(-1)!.action).toBe('grant.activation_refused');
  });
});

/**
 * Decisions sent at the same moment, with the activity that records the first one held open so
 * the second arrives while it is in flight. Each pair ends consistent, each decision recorded once.
 */
describe('grant workflow under concurrent decisions', () => {
  /** An active grant (one approval) with an extension asked for by `by`, waiting for approval. */
  async function activeWithExtension(handle: WorkflowHandle, by = 'requester') {
    await approve(handle, 'approver-1');
    await reach(handle, 'active');
    await handle.executeUpdate(extendGrantUpdate, { args: [{ actorId: by, additionalSeconds: 60 }] });
  }

  it('two approvers approving the same extension at once: both recorded, extended once', async () => {
    const h = harness();
    h.delays['grant.extension_approval_recorded'] = 300;
    const input = grantInput({ durationSeconds: 600 }, { approvalsRequired: 1 });
    await run(
      h,
      input,
      async (handle) => {
        await activeWithExtension(handle);
        const before = (await handle.query(grantQuery)).endAt;
        const results = await Promise.all([approve(handle, 'approver-1'), approve(handle, 'approver-2')]);
        expect(results).toHaveLength(2);
        const view = await until(handle, grantQuery, (v) => count(h, 'grant.extended') === 1 && v.pendingExtension === null);
        expect(Date.parse(view.endAt) - Date.parse(before)).toBe(60_000);
        await handle.executeUpdate(revokeGrantUpdate, { args: [{ actorId: 'approver-1' }] });
        expect(await handle.result()).toMatchObject({ status: 'ended', endReason: 'revoked' });
      },
      realTime,
    );
    expect(count(h, 'grant.extension_approval_recorded')).toBe(2);
    expect(count(h, 'grant.extended')).toBe(1);
    expect(h.directory.size).toBe(0);
  });

  it('approve and deny of one extension together: one decision stands, each recorded once', async () => {
    const h = harness();
    h.delays['grant.extension_approval_recorded'] = 300;
    await run(
      h,
      grantInput({ durationSeconds: 600 }, { approvalsRequired: 1 }),
      async (handle) => {
        await activeWithExtension(handle);
        const before = (await handle.query(grantQuery)).endAt;
        const [approved, denied] = await Promise.allSettled([
          approve(handle, 'approver-1'),
          handle.executeUpdate(denyGrantUpdate, { args: [{ actorId: 'approver-2', comment: 'enough' }] }),
        ]);
        // Usually the denial lands while the approval is being recorded; if the approval was
        // applied first, the denial finds nothing left to deny. Either way one decision stands.
        expect([approved.status, denied.status]).toContain('fulfilled');
        const view = await until(
          handle,
          grantQuery,
          (v) => v.pendingExtension === null && count(h, 'grant.extension_denied') + count(h, 'grant.extended') === 1,
        );
        expect(count(h, 'grant.extension_approval_recorded')).toBe(approved.status === 'fulfilled' ? 1 : 0);
        expect(count(h, 'grant.extension_denied')).toBe(denied.status === 'fulfilled' ? 1 : 0);
        expect(count(h, 'grant.extended')).toBe(denied.status === 'fulfilled' ? 0 : 1);
        expect(Date.parse(view.endAt) - Date.parse(before)).toBe(denied.status === 'fulfilled' ? 0 : 60_000);
        await handle.executeUpdate(revokeGrantUpdate, { args: [{ actorId: 'approver-1' }] });
        expect(await handle.result()).toMatchObject({ status: 'ended', endReason: 'revoked', endAt: view.endAt });
      },
      realTime,
    );
  });

  it('an extension approved as the grant expires: the approval is recorded once, the grant expires unextended', async () => {
    const h = harness();
    // The approval's recording outlasts the grant's last seconds.
    h.delays['grant.extension_approval_recorded'] = 4000;
    await run(
      h,
      grantInput({ durationSeconds: 3 }, { approvalsRequired: 1, maxTotalSeconds: 600 }),
      async (handle) => {
        await activeWithExtension(handle);
        const approval = approve(handle, 'approver-2');
        const view = (await handle.result()) as GrantView;
        await approval;
        expect(view).toMatchObject({ status: 'ended', endReason: 'expired', pendingExtension: null });
        expect(Date.parse(view.endAt) - Date.parse(view.startAt)).toBe(3000);
      },
      realTime,
    );
    expect(count(h, 'grant.extension_approval_recorded')).toBe(1);
    expect(count(h, 'grant.extended')).toBe(0);
    expect(h.directory.size).toBe(0);
  });

  it.each(['checkGrantEligibility', 'grantAccess'])('a revoke while activation runs (%s): never left with access', async (step) => {
    const h = harness();
    h.delays[step] = 1500;
    await run(
      h,
      grantInput({}, { approvalsRequired: 0 }),
      async (handle) => {
        await until(handle, grantQuery, (v) => v.status === 'scheduled');
        await pause(300);
        const accepted = await handle.executeUpdate(revokeGrantUpdate, { args: [{ actorId: 'approver-1', comment: 'mistake' }] });
        expect(['cancelled', 'revoking', 'ended']).toContain(accepted.status);
        const view = (await handle.result()) as GrantView;
        if (step === 'checkGrantEligibility') expect(view).toMatchObject({ status: 'cancelled', activatedAt: null });
        else expect(view).toMatchObject({ status: 'ended', endReason: 'revoked' });
      },
      realTime,
    );
    expect(h.directory.size).toBe(0);
    expect(count(h, 'grant.cancelled') + count(h, 'grant.revoking')).toBe(1);
  });

  it('the original requester cannot approve or deny an extension someone else asked for', async () => {
    const h = harness();
    await run(
      h,
      grantInput({ durationSeconds: 600 }, { approvalsRequired: 1 }),
      async (handle) => {
        await activeWithExtension(handle, 'colleague');
        expect(await rejectionType(approve(handle, 'requester'))).toBe(GrantRejection.SelfApproval);
        expect(await rejectionType(handle.executeUpdate(denyGrantUpdate, { args: [{ actorId: 'requester' }] }))).toBe(
          GrantRejection.SelfApproval,
        );
        expect(await rejectionType(approve(handle, 'colleague'))).toBe(GrantRejection.SelfApproval);
        expect((await approve(handle, 'approver-2')).pendingExtension).toBeNull();
        await handle.executeUpdate(revokeGrantUpdate, { args: [{ actorId: 'approver-1' }] });
        await handle.result();
      },
      realTime,
    );
    expect(count(h, 'grant.extended')).toBe(1);
  });

  it('an extension re-checks that its requester may still request the role', async () => {
    const h = harness();
    h.ineligible.add('colleague');
    await run(
      h,
      grantInput({ durationSeconds: 600 }, { approvalsRequired: 1 }),
      async (handle) => {
        await approve(handle, 'approver-1');
        await reach(handle, 'active');
        expect(
          await rejectionType(handle.executeUpdate(extendGrantUpdate, { args: [{ actorId: 'colleague', additionalSeconds: 60 }] })),
        ).toBe(GrantRejection.NotApplicable);
        expect((await handle.query(grantQuery)).pendingExtension).toBeNull();
        // The requester still may: the check is about who asks.
        const pending = await handle.executeUpdate(extendGrantUpdate, { args: [{ actorId: 'requester', additionalSeconds: 60 }] });
        expect(pending.pendingExtension).toMatchObject({ requestedBy: 'requester' });
        await handle.executeUpdate(revokeGrantUpdate, { args: [{ actorId: 'approver-1' }] });
        await handle.result();
      },
      realTime,
    );
    expect(count(h, 'grant.extension_requested')).toBe(1);
  });

  it('approvals from approvers disabled or unbound before activation no longer count: below quorum, it never activates', async () => {
    const h = harness();
    h.lapsed.add('approver-2');
    const view = await run(h, grantInput(), async (handle) => {
      await approve(handle, 'approver-1');
      await approve(handle, 'approver-2');
      return (await handle.result()) as GrantView;
    });
    expect(view).toMatchObject({ status: 'ended', endReason: 'ineligible', activatedAt: null });
    expect(h.directory.size).toBe(0);
    expect(h.events.map((e) => e.action)).toEqual([
      'grant.requested',
      'grant.approval_recorded',
      'grant.approval_recorded',
      'grant.approved',
      'grant.activation_refused',
    ]);
  });

  it('an approval that lapsed does not matter while the quorum still holds without it', async () => {
    const h = harness();
    h.lapsed.add('approver-2');
    await run(h, grantInput({ durationSeconds: 600 }, { approvalsRequired: 1 }), async (handle) => {
      // The second may come after the quorum was met (nothing left to approve) or count too.
      await Promise.allSettled([approve(handle, 'approver-1'), approve(handle, 'approver-2')]);
      expect(await handle.result()).toMatchObject({ status: 'ended', endReason: 'expired' });
    });
    expect(count(h, 'grant.activated')).toBe(1);
  });
});
