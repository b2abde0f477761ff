import type { WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { REVOCATION_ALERT_THRESHOLD, type GrantView } from '../../core/grants/contract.js';
import { actions, count, grantInput, grantWorkflowEnvironments, harness } from '../support/grant-workflow.js';

/**
 * Workflow tier: a grant whose revocation keeps failing, on the time-skipping server, up to ten
 * simulated days of it. A file of its own (harness in tests/support/grant-workflow.ts): it is the
 * longest case of the run, and a file is what the run schedules, so it starts at once beside the others.
 */
const envs = grantWorkflowEnvironments();
const { run } = envs;

describe('grant workflow revocation that keeps failing', () => {
  /** The history of every run of the workflow, first to current, following continue-as-new. */
  async function runHistories(handle: WorkflowHandleWithFirstExecutionRunId) {
    const runs: temporal.api.history.v1.IHistoryEvent[][] = [];
    let runId: string | null | undefined = handle.firstExecutionRunId;
    while (runId) {
      const { events } = await envs.env.client.workflow.getHandle(handle.workflowId, runId).fetchHistory();
      runs.push(events ?? []);
      runId = events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    }
    return runs;
  }

  it('across several alert periods: one alert per period, and done once the target recovers', async () => {
    const h = harness();
    // Five failed rounds of five attempts, 5 s longer apart each time; a 20 s alert period. The
    // rounds fail at about 3, 11, 24, 42 and 65 s into the revocation: alerts at the 1st, 3rd and 5th.
    h.removeFailures = 5 * REVOCATION_ALERT_THRESHOLD;
    const view = await run(
      h,
      grantInput({ durationSeconds: 60 }, { approvalsRequired: 0, revocationAlertPeriodSeconds: 20 }),
      async (handle) => {
        return (await handle.result()) as GrantView;
      },
    );
    expect(view).toMatchObject({ status: 'ended', endReason: 'expired' });
    expect(h.events.filter((e) => e.action === 'grant.revocation_alert').map((e) => e.payload.attempts)).toEqual([5, 15, 25]);
    expect(h.directory.size).toBe(0);
  });

  it('for 10 simulated days: one alert per configured period, every run under 10,000 events, never ending by itself; then done', async () => {
    const h = harness();
    h.removeFailures = Number.POSITIVE_INFINITY;
    const day = 86_400_000;
    const view = await run(
      h,
      grantInput({ durationSeconds: 60 }, { approvalsRequired: 0, revocationAlertPeriodSeconds: day / 1000 }),
      async (handle) => {
        // Expiry at 1 minute, the first alert a round later, then one a day: 11 by 10.5 days. The
        // clock advances a day at a time: one 10.5-day sleep did not return within 10 minutes here.
        for (let days = 0; days < 10; days++) await envs.env.sleep(day);
        await envs.env.sleep(60_000 + day / 2);
        expect(count(h, 'grant.revocation_alert')).toBe(11);
        const runs = await runHistories(handle);
        expect(runs.length).toBeGreaterThan(1);
        for (const events of runs) expect(events.length).toBeLessThan(10_000);
        expect((await handle.describe()).status.name).toBe('RUNNING');
        h.removeFailures = 0;
        return (await handle.result()) as GrantView;
      },
    );
    expect(view).toMatchObject({ status: 'ended', endReason: 'expired', revocationVerifiedAt: expect.any(String) });
    expect(count(h, 'grant.revocation_alert')).toBe(11);
    expect(actions(h).at(-1)).toBe('grant.expired');
    expect(h.directory.size).toBe(0);
  }, 600_000);
});
