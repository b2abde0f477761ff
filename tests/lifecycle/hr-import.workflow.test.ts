import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  HR_IMPORT_NOT_FOUND,
  HR_IMPORT_WORKFLOW_TYPE,
  hrImportWorkflowId,
  type HrImportInput,
  type HrImportView,
} from '../../core/lifecycle/contract.js';
import type { hrImportWorkflow } from '../../workflows/lifecycle/import.js';
import { createWorkflowWorker, recordHistory, startTimeSkippingEnvironment } from '../support/workflow-harness.js';

/**
 * Workflow tier: the real import workflow with its three activities replaced by an in-memory
 * job, on the time-skipping server so activity retries pass at once. Rows live in the fake, as
 * they live in PostgreSQL for real; the workflow only ever sees counts.
 */
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await startTimeSkippingEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

interface Job {
  total: number;
  pending: number;
  /** Audit actions recorded, in order, with the event id each was written under. */
  events: { action: string; eventId: string }[];
  /** Batch attempts, in order: the batch size asked for and whether it failed. */
  batches: { size: number; failed: boolean }[];
  /** Batch attempts still to fail before one works (a dependency down). */
  outage: number;
  /** The import's rows were taken back: every step fails for good. */
  missing?: boolean;
}

const view = (input: { tenantId: string; importId: string }, job: Job): HrImportView => ({
  importId: input.importId,
  tenantId: input.tenantId,
  workflowId: hrImportWorkflowId(input.tenantId, input.importId),
  status: job.pending === 0 ? 'completed' : 'running',
  format: 'csv',
  policyVersion: 1,
  submittedBy: 'hr-feed',
  total: job.total,
  done: job.total - job.pending,
  failed: 0,
  counts: { pending: job.pending, accepted: job.total - job.pending, superseded: 0, duplicate: 0, invalid: 0, rejected: 0 },
  createdAt: new Date(0).toISOString(),
  startedAt: null,
  completedAt: null,
});

function fakeActivities(job: Job) {
  const notStored = () => {
    if (job.missing) throw ApplicationFailure.create({ type: HR_IMPORT_NOT_FOUND, message: 'not stored', nonRetryable: true });
  };
  return {
    recordHrImportStarted: async (i) => {
      notStored();
      // A retry under the same event id writes nothing new, as the audit chain does.
      if (!job.events.some((e) => e.eventId === i.eventId)) job.events.push({ action: 'hr_import.started', eventId: i.eventId });
    },
    processHrImportBatch: async (i) => {
      notStored();
      if (job.outage > 0) {
        job.outage--;
        job.batches.push({ size: i.batchSize, failed: true });
        throw new Error('database unavailable (test outage)');
      }
      const processed = Math.min(i.batchSize, job.pending);
      job.pending -= processed;
      job.batches.push({ size: i.batchSize, failed: false });
      return { processed, remaining: job.pending };
    },
    completeHrImport: async (i) => {
      notStored();
      if (!job.events.some((e) => e.eventId === i.eventId)) job.events.push({ action: 'hr_import.completed', eventId: i.eventId });
      return view(i, job);
    },
  } satisfies Partial<Activities>;
}

async function runImport(job: Job, knobs: Omit<HrImportInput, 'tenantId' | 'importId'>) {
  const { worker, taskQueue } = await createWorkflowWorker(env, 'hr-import', fakeActivities(job));
  const input: HrImportInput = { tenantId: randomUUID(), importId: randomUUID(), ...knobs };
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof hrImportWorkflow>(HR_IMPORT_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: hrImportWorkflowId(input.tenantId, input.importId),
      args: [input],
    });
    const outcome = await handle.result().then(
      (result) => ({ result, error: undefined }),
      (error: unknown) => ({ result: undefined, error }),
    );
    await recordHistory('hr-import', handle, { waitForClose: true });
    return { ...outcome, handle };
  });
}

const newJob = (total: number, outage = 0): Job => ({ total, pending: total, events: [], batches: [], outage });

describe('hrImportWorkflow', () => {
  it('submits the rows in batches until none is pending, recording the start and the completion once each', async () => {
    const job = newJob(250);
    const { result, error } = await runImport(job, { batchSize: 100 });
    expect(error).toBeUndefined();
    expect(result).toMatchObject({ status: 'completed', total: 250, done: 250 });
    expect(job.batches).toEqual([
      { size: 100, failed: false },
      { size: 100, failed: false },
      { size: 100, failed: false },
    ]);
    expect(job.events.map((e) => e.action)).toEqual(['hr_import.started', 'hr_import.completed']);
  });

  it('continues as new after the configured number of batches, carrying on without recording the start again', async () => {
    const job = newJob(50);
    const { result, handle } = await runImport(job, { batchSize: 10, batchesPerRun: 2 });
    expect(result).toMatchObject({ status: 'completed', done: 50 });
    expect(job.batches.filter((b) => !b.failed)).toHaveLength(5);
    expect(job.events.map((e) => e.action)).toEqual(['hr_import.started', 'hr_import.completed']);
    // Five batches at two per run: the first run handed over after its second batch.
    const first = await env.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).fetchHistory();
    const last = first.events?.at(-1);
    expect(last?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    expect(first.events?.filter((e) => e.activityTaskScheduledEventAttributes).length).toBe(3); // start + two batches
  });

  it('retries a batch that failed for a reason a retry may cure, and completes with every row', async () => {
    const job = newJob(30, 2);
    const { result } = await runImport(job, { batchSize: 100 });
    expect(result).toMatchObject({ status: 'completed', done: 30 });
    expect(job.batches).toEqual([
      { size: 100, failed: true },
      { size: 100, failed: true },
      { size: 100, failed: false },
    ]);
  });

  it('fails at once, without retrying, when its import is not stored', async () => {
    const job = { ...newJob(10), missing: true };
    const { error } = await runImport(job, {});
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const cause = (error as WorkflowFailedError).cause as { cause?: { type?: string } };
    expect(cause.cause?.type).toBe(HR_IMPORT_NOT_FOUND);
    expect(job.events).toEqual([]);
    expect(job.batches).toEqual([]);
  });
});
