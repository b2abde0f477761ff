import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { PERMANENT_DATA_ERROR } from '../../core/errors.js';
import {
  approveGrantUpdate,
  denyGrantUpdate,
  extendGrantUpdate,
  grantQuery,
  GrantRejection,
  relinquishGrantUpdate,
  REVOCATION_ALERT_THRESHOLD,
  revokeGrantUpdate,
  type GrantView,
} from '../../core/grants/contract.js';
import { rejectionType, until } from '../support/workflow-harness.js';
import { eventually } from '../support/stack.js';
import {
  actions,
  approve,
  callsAfter,
  count,
  grantInput,
  grantWorkflowEnvironments,
  harness,
  pause,
  reach,
  recorded,
} from '../support/grant-workflow.js';

/**
 * Workflow tier: the real grant workflow with activities replaced by recorders
 * (tests/support/grant-workflow.ts). A revocation that keeps failing for days has a file of its
 * own, grant-revocation.workflow.test.ts, so the run can start that long case at once beside this one.
 */
const envs = grantWorkflowEnvironments();
const { run } = envs;

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
    // Twelve seconds from the request: the approval, the activation and the four Updates below must
    // land before the grant ends, also on a busy machine (an approval alone took 5 s in CI).
    const input = grantInput({ durationSeconds: 12 }, { approvalsRequired: 1, maxTotalSeconds: 19 });
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
        expect(Date.parse(extended.endAt) - Date.parse(extended.startAt)).toBe(14000);
        const view = (await handle.result()) as GrantView;
        expect(view).toMatchObject({ status: 'ended', endReason: 'expired' });
        expect(Date.parse(view.endedAt!)).toBeGreaterThanOrEqual(Date.parse(extended.endAt));
      },
      envs.realTime,
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
      envs.realTime,
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
      await envs.env.sleep(120_000);
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

/** The activities a grant's run scheduled, by type, from its history. */
async function activitiesScheduled(handle: WorkflowHandle): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const e of (await handle.fetchHistory()).events ?? []) {
    const type = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (type) counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}

describe('grant workflow with fewer activities', () => {
  it('an expiry is recorded, removed, read back and recorded ended in one activity, after one activation check', async () => {
    const h = harness();
    const { view, scheduled } = await run(h, grantInput({ durationSeconds: 60 }, { approvalsRequired: 1 }), async (handle) => {
      await reach(handle, 'pending_approval');
      await approve(handle, 'approver-1');
      const ended = (await handle.result()) as GrantView;
      return { view: ended, scheduled: await activitiesScheduled(handle) };
    });
    expect(view).toMatchObject({ status: 'ended', endReason: 'expired', version: 6 });
    expect(view.revocationVerifiedAt).toBe(view.endedAt);
    expect(h.directory.size).toBe(0);
    // Seven activities where the steps one by one took ten: both activation checks in one, and the
    // expiry's two records and its removal in one.
    expect(scheduled).toEqual({ recordGrantEvent: 4, checkGrantActivation: 1, grantAccess: 1, endGrantAccess: 1 });
    expect(callsAfter(h, 'grantAccess')).toEqual([
      'record:grant.activated',
      'endGrantAccess',
      'record:grant.expiring',
      'endAccess',
      'record:grant.expired',
    ]);
    // Every event once, numbered in order, the end on record as the workflow returns it.
    expect(h.events.map((e) => [e.action, e.view.version])).toEqual([
      ['grant.requested', 1],
      ['grant.approval_recorded', 2],
      ['grant.approved', 3],
      ['grant.activated', 4],
      ['grant.expiring', 5],
      ['grant.expired', 6],
    ]);
    const expired = recorded(h, 'grant.expired');
    expect(expired.view).toMatchObject({ status: 'ended', endedAt: view.endedAt, revocationVerifiedAt: view.endedAt });
    expect(expired.payload).toMatchObject({ verified: true, stillHeldBy: [] });
    expect(recorded(h, 'grant.expiring').view.status).toBe('revoking');
  });

  it('an expiry whose one activity fails: each event still once and in order, the failure the first round of the retries', async () => {
    const h = harness();
    h.removeFailures = REVOCATION_ALERT_THRESHOLD;
    const view = await run(
      h,
      grantInput({ durationSeconds: 60 }, { approvalsRequired: 0 }),
      async (handle) => (await handle.result()) as GrantView,
    );
    expect(view).toMatchObject({ status: 'ended', endReason: 'expired', revocationVerifiedAt: view.endedAt });
    expect(h.directory.size).toBe(0);
    expect(actions(h)).toEqual([
      'grant.requested',
      'grant.approved',
      'grant.activated',
      'grant.expiring',
      'grant.revocation_alert',
      'grant.expired',
    ]);
    expect(recorded(h, 'grant.revocation_alert').payload).toMatchObject({ step: 'remove', attempts: REVOCATION_ALERT_THRESHOLD });
    expect(h.events.map((e) => e.view.version)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('an end recorded by an expiry that then lost every answer is found: recorded once, and no alert raised', async () => {
    const h = harness();
    h.expiryAnswersLost = REVOCATION_ALERT_THRESHOLD;
    const view = await run(
      h,
      grantInput({ durationSeconds: 60 }, { approvalsRequired: 0 }),
      async (handle) => (await handle.result()) as GrantView,
    );
    expect(h.directory.size).toBe(0);
    expect(h.calls.filter((c) => c === 'endGrantAccess')).toHaveLength(REVOCATION_ALERT_THRESHOLD);
    // The end is recorded once, under the id it had in the activity. The workflow asks for it and
    // finds it, so no revocation round runs and no alert says the access might remain.
    expect(h.calls).toContain('grantEventRecorded');
    // endAccess runs only inside each endGrantAccess attempt: no round of its own.
    expect(h.calls.filter((c) => c === 'endAccess')).toHaveLength(REVOCATION_ALERT_THRESHOLD);
    expect(actions(h)).toEqual(['grant.requested', 'grant.approved', 'grant.activated', 'grant.expiring', 'grant.expired']);
    const expired = recorded(h, 'grant.expired');
    expect(view).toMatchObject({
      status: 'ended',
      endReason: 'expired',
      endedAt: expired.view.endedAt,
      revocationVerifiedAt: expired.view.endedAt,
      version: expired.view.version,
    });
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
      envs.realTime,
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
      envs.realTime,
    );
  });

  it('an extension approved as the grant expires: the approval is recorded once, the grant expires unextended', async () => {
    const h = harness();
    // The approval's recording outlasts the grant's last seconds (fifteen from the request: the
    // approval, the activation and the extension's request must land before the grant ends, also
    // on a busy machine, where an approval alone took 5 s in CI).
    h.delays['grant.extension_approval_recorded'] = 16000;
    await run(
      h,
      grantInput({ durationSeconds: 15 }, { approvalsRequired: 1, maxTotalSeconds: 600 }),
      async (handle) => {
        await activeWithExtension(handle);
        const approval = approve(handle, 'approver-2');
        const view = (await handle.result()) as GrantView;
        await approval;
        expect(view).toMatchObject({ status: 'ended', endReason: 'expired', pendingExtension: null });
        expect(Date.parse(view.endAt) - Date.parse(view.startAt)).toBe(15000);
      },
      envs.realTime,
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
      envs.realTime,
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
      envs.realTime,
    );
    expect(count(h, 'grant.extended')).toBe(1);
  });

  it('an extension’s approval counts only from the tenant’s own approvers: one in anyone else’s name is refused, nothing moves', async () => {
    const h = harness();
    h.lapsed.add('msp-admin'); // not one of the tenant's approvers (what checkGrantApprovers answers)
    await run(
      h,
      grantInput({ durationSeconds: 600 }, { approvalsRequired: 1 }),
      async (handle) => {
        await activeWithExtension(handle, 'colleague');
        const before = (await handle.query(grantQuery)).endAt;
        expect(await rejectionType(approve(handle, 'msp-admin'))).toBe(GrantRejection.NotTenantApprover);
        expect(await handle.query(grantQuery)).toMatchObject({ endAt: before, pendingExtension: { approvals: [] } });
        expect((await approve(handle, 'approver-2')).pendingExtension).toBeNull();
        await handle.executeUpdate(revokeGrantUpdate, { args: [{ actorId: 'approver-1' }] });
        await handle.result();
      },
      envs.realTime,
    );
    expect(h.events.filter((e) => e.action === 'grant.extension_approval_recorded').map((e) => e.actor)).toEqual(['approver-2']);
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
      envs.realTime,
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

describe('grant workflow when the database refuses its data for good', () => {
  it('a revoke whose comment cannot be stored: the failure is recorded, the access removed and verified, the grant ends failed', async () => {
    const h = harness();
    const view = await run(
      h,
      grantInput({}, { approvalsRequired: 0 }),
      async (handle) => {
        await reach(handle, 'active');
        const accepted = await handle.executeUpdate(revokeGrantUpdate, { args: [{ actorId: 'approver-1', comment: 'bad\u0000byte' }] });
        expect(['revoking', 'ended']).toContain(accepted.status);
        return (await handle.result()) as GrantView;
      },
      envs.realTime,
    );
    expect(view).toMatchObject({ status: 'ended', endReason: 'failed', revocationVerifiedAt: expect.any(String) });
    expect(h.directory.size).toBe(0);
    expect(actions(h)).toEqual(['grant.requested', 'grant.approved', 'grant.activated', 'grant.failing', 'grant.failed']);
    expect(recorded(h, 'grant.failing').payload.failure).toEqual({
      step: 'grant.revoking',
      type: PERMANENT_DATA_ERROR,
      message: expect.stringContaining('0x00'),
    });
    expect(recorded(h, 'grant.failed').payload).toMatchObject({ verified: true, failure: { step: 'grant.revoking' } });
  });

  it('a justification that cannot be stored: nothing is given, one scrubbed grant.failed says why, the workflow completes', async () => {
    const h = harness();
    const view = await run(h, grantInput({ justification: 'incident\u0000 42' }, { approvalsRequired: 0 }), async (handle) => {
      return (await handle.result()) as GrantView;
    });
    expect(view).toMatchObject({ status: 'ended', endReason: 'failed', activatedAt: null, justification: 'incident\uFFFD 42' });
    expect(actions(h)).toEqual(['grant.failed']);
    expect(recorded(h, 'grant.failed')).toMatchObject({
      payload: { failure: { step: 'grant.requested', type: PERMANENT_DATA_ERROR } },
      view: { status: 'ended', justification: 'incident\uFFFD 42' },
    });
    expect(h.calls).not.toContain('grantAccess');
  });

  it('an approval whose comment cannot be stored: the approver is refused, the grant fails before it activates', async () => {
    const h = harness();
    const view = await run(h, grantInput({}, { approvalsRequired: 1 }), async (handle) => {
      expect(
        await rejectionType(handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: 'approver-1', comment: 'ok\uD800' }] })),
      ).toBe(PERMANENT_DATA_ERROR);
      return (await handle.result()) as GrantView;
    });
    expect(view).toMatchObject({ status: 'ended', endReason: 'failed', activatedAt: null, approvals: [{ comment: 'ok\uFFFD' }] });
    expect(actions(h)).toEqual(['grant.requested', 'grant.failed']);
    expect(recorded(h, 'grant.failed').payload.failure).toMatchObject({ step: 'grant.approval_recorded' });
    expect(h.calls).not.toContain('grantAccess');
    expect(h.directory.size).toBe(0);
  });
});

describe('grant workflow when the target refuses the activation', () => {
  it('a role missing from the directory: the grant ends failed with the reason on record, and a later revoke finds it closed', async () => {
    const h = harness();
    h.rejectActivation = true;
    await run(h, grantInput({}, { approvalsRequired: 0 }), async (handle) => {
      const view = (await handle.result()) as GrantView;
      expect(view).toMatchObject({ status: 'ended', endReason: 'failed', activatedAt: null });
      await expect(handle.executeUpdate(revokeGrantUpdate, { args: [{ actorId: 'approver-1' }] })).rejects.toBeInstanceOf(
        WorkflowNotFoundError,
      );
    });
    expect(actions(h)).toEqual(['grant.requested', 'grant.approved', 'grant.activation_failed']);
    expect(recorded(h, 'grant.activation_failed')).toMatchObject({
      payload: { reason: 'directory role GlobalAdmin not found' },
      view: { status: 'ended', endReason: 'failed' },
    });
    expect(h.directory.size).toBe(0);
  });
});

describe('grant workflow activation dated and refused by the target', () => {
  it('the activation is dated by when the target took the access, not by when the workflow went on', async () => {
    const h = harness();
    await run(h, grantInput({}, { approvalsRequired: 0 }), async (handle) => {
      const active = await until(handle, grantQuery, (v) => v.status === 'active');
      expect(active.activatedAt).toBe(h.assignedAt);
    });
    expect(recorded(h, 'grant.activated').view.activatedAt).toBe(h.assignedAt);
  });

  it('an activation refused because a revoke had already closed the access: cancelled, once, nothing held', async () => {
    const h = harness();
    h.delays.grantAccess = 1500;
    h.rejectActivation = true;
    await run(
      h,
      grantInput({}, { approvalsRequired: 0 }),
      async (handle) => {
        await until(handle, grantQuery, (v) => v.status === 'scheduled');
        await pause(300);
        // The revoke reaches the workflow while the activation it refused is still under way.
        await handle.executeUpdate(revokeGrantUpdate, { args: [{ actorId: 'approver-1', comment: 'mistake' }] });
        const view = (await handle.result()) as GrantView;
        expect(view).toMatchObject({ status: 'cancelled', activatedAt: null });
      },
      envs.realTime,
    );
    expect(h.directory.size).toBe(0);
    expect(actions(h)).toEqual(['grant.requested', 'grant.approved', 'grant.cancelled']);
    expect(recorded(h, 'grant.cancelled')).toMatchObject({ actor: 'approver-1', payload: { comment: 'mistake' } });
  });
});

describe('grant workflow ending early', () => {
  it.each([
    ['revoked', revokeGrantUpdate, 'approver-1', 'grant.revoking'],
    ['relinquished', relinquishGrantUpdate, 'requester', 'grant.relinquishing'],
  ] as const)(
    '%s: the access is removed at the target before anything about the end is recorded',
    async (reason, update, actorId, starting) => {
      const h = harness();
      await run(
        h,
        grantInput({}, { approvalsRequired: 0 }),
        async (handle) => {
          await reach(handle, 'active');
          await handle.executeUpdate(update, { args: [{ actorId }] });
          expect(await handle.result()).toMatchObject({ status: 'ended', endReason: reason });
        },
        envs.realTime,
      );
      expect(callsAfter(h, 'record:grant.activated')).toEqual(['endAccess', `record:${starting}`, `record:grant.${reason}`]);
      expect(h.directory.size).toBe(0);
    },
  );
});

describe('grant workflow extensions racing its own writes', () => {
  it('an extension whose target write is under way when a revoke comes: it settles first, nothing extends after the removal', async () => {
    const h = harness();
    // The extension's write is slow and fails once, so without settling, its retry would land after the removal.
    h.delays.extendAccess = 800;
    h.extendFailures = 1;
    await run(
      h,
      grantInput({ durationSeconds: 600 }, { approvalsRequired: 0, extensionRequiresApproval: false }),
      async (handle) => {
        await reach(handle, 'active');
        const extension = Promise.allSettled([
          handle.executeUpdate(extendGrantUpdate, { args: [{ actorId: 'requester', additionalSeconds: 60 }] }),
        ]);
        await eventually(
          async () => h.calls,
          (calls) => calls.includes('extendAccess'),
        );
        await handle.executeUpdate(revokeGrantUpdate, { args: [{ actorId: 'approver-1' }] });
        expect(await handle.result()).toMatchObject({ status: 'ended', endReason: 'revoked' });
        // The extension was decided and is on record; only its write at the target gave way.
        expect((await extension)[0].status).toBe('fulfilled');
      },
      envs.realTime,
    );
    const after = callsAfter(h, 'record:grant.activated');
    const removal = after.indexOf('endAccess');
    expect(removal).toBeGreaterThan(after.indexOf('extendAccess'));
    expect(after.slice(removal).filter((c) => c.startsWith('extend'))).toEqual([]);
    expect(count(h, 'grant.extended')).toBe(1);
    expect(h.directory.size).toBe(0);
  });

  it('an extension approved while the access is being given: the target holds the extended end before the grant is active', async () => {
    const h = harness();
    h.delays.grantAccess = 1500;
    await run(
      h,
      grantInput({ durationSeconds: 600 }, { approvalsRequired: 0, extensionRequiresApproval: false }),
      async (handle) => {
        await eventually(
          async () => h.calls,
          (calls) => calls.includes('grantAccess'),
        );
        const extended = await handle.executeUpdate(extendGrantUpdate, { args: [{ actorId: 'requester', additionalSeconds: 120 }] });
        expect(extended.status).toBe('scheduled');
        const active = await reach(handle, 'active');
        expect(active.endAt).toBe(extended.endAt);
        expect(h.ends.get('u-1:GlobalAdmin')).toBe(active.endAt);
        await handle.executeUpdate(revokeGrantUpdate, { args: [{ actorId: 'approver-1' }] });
        await handle.result();
      },
      envs.realTime,
    );
    expect(h.directory.size).toBe(0);
  });
});
