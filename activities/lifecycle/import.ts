import { ApplicationFailure, Context } from '@temporalio/activity';
import { AppError } from '../../core/errors.js';
import {
  DEFAULT_IMPORT_CONCURRENCY,
  HR_IMPORT_NOT_FOUND,
  IMPORT_ROW_MAX_ATTEMPTS,
  LIFECYCLE_MISCONFIGURED,
  type HrImportRowResult,
  type HrImportRowSubmitter,
  type HrImportView,
} from '../../core/lifecycle/contract.js';
import type { HrEventBody } from '../../core/lifecycle/schemas.js';
import {
  getHrImport,
  markHrImportCompleted,
  markHrImportRunning,
  pendingHrImportRows,
  recordHrImportRowResult,
  startHrImportRowAttempt,
  type HrImportRecord,
} from '../../db/hr-imports.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent } from '../audit/record.js';

export interface HrImportStepInput {
  tenantId: string;
  importId: string;
}

export interface HrImportAuditInput extends HrImportStepInput {
  /** Made by the workflow, so a retry writes the event once. */
  eventId: string;
}

export interface HrImportBatchInput extends HrImportStepInput {
  batchSize: number;
  concurrency?: number;
}

/** What a batch came to: the workflow carries only these numbers, never rows. */
export interface HrImportBatchResult {
  /** Rows this attempt gave a result. */
  processed: number;
  /** Rows still pending after it. */
  remaining: number;
}

/** How often a batch tells Temporal it is alive, well inside the workflow's heartbeat timeout. */
const HEARTBEAT_EVERY_MS = 5_000;

const target = (importId: string) => ({ type: 'hr_import', id: importId });
const summary = (job: HrImportView) => ({ format: job.format, total: job.total, done: job.done, failed: job.failed, counts: job.counts });

/**
 * Bulk import job steps. `submit` is the single-event use case (wired in by the worker), so an
 * imported row goes exactly the way `POST …/hr-events` goes: its event id registered once, the
 * person's workflow deduplicating it. Each row's result is written as soon as it is known, so a
 * retried batch starts at the first row still pending and never submits a finished row again.
 */
export function createHrImportActivities({ pool, clock, submit }: { pool: Pool; clock: Clock; submit?: HrImportRowSubmitter }) {
  const scoped = <T>(tenantId: string, fn: (client: PoolClient) => Promise<T>) => inScope(pool, tenantScope(tenantId), fn);

  async function loadJob(client: PoolClient, { tenantId, importId }: HrImportStepInput): Promise<HrImportRecord> {
    const job = await getHrImport(client, tenantId, importId);
    if (!job) {
      throw ApplicationFailure.create({ type: HR_IMPORT_NOT_FOUND, message: `import ${importId} is not stored`, nonRetryable: true });
    }
    return job;
  }

  /** Submits one row (unless an earlier attempt finished it) and writes its result; rethrows only what a retry may cure. */
  async function submitRow(job: HrImportRecord, submitter: HrImportRowSubmitter, row: { row: number; body: HrEventBody }) {
    const { tenantId, importId } = job;
    const attempts = await scoped(tenantId, (client) => startHrImportRowAttempt(client, tenantId, importId, row.row));
    if (attempts === undefined) return false;
    const base = { row: row.row, eventId: row.body.eventId, personId: row.body.personId, issues: [], error: null };
    let result: Parameters<typeof recordHrImportRowResult>[3];
    try {
      // Rows carry the import as authority beside the uploader's own, so each person's audit trail says where the event came from.
      const ctx = { actor: job.context.actor, authority: { ...job.context.authority, importId } };
      const receipt = await submitter(ctx, tenantId, job.policyVersion, row.body);
      result = receipt.duplicate
        ? { ...base, status: 'duplicate', disposition: receipt.disposition }
        : { ...base, status: receipt.disposition };
    } catch (error) {
      result = failedRow(base, error, attempts);
    }
    return scoped(tenantId, (client) => recordHrImportRowResult(client, tenantId, importId, result));
  }

  return {
    /** The workflow has started: the job is running, and its start is audited as the uploader's act. */
    async recordHrImportStarted(input: HrImportAuditInput): Promise<void> {
      await scoped(input.tenantId, async (client) => {
        const job = await loadJob(client, input);
        await markHrImportRunning(client, input.tenantId, input.importId);
        await appendWorkflowEvent(client, clock, input.tenantId, target(input.importId), {
          eventId: input.eventId,
          action: 'hr_import.started',
          actor: job.context.actor,
          authority: { ...job.context.authority, policyVersion: job.policyVersion, importId: input.importId },
          payload: summary(job),
        });
      });
    },

    /**
     * Submits the next `batchSize` pending rows, `concurrency` people at a time (one person's
     * rows in row order). A row the lifecycle refuses gets its result like any other; a failure
     * a retry may cure stops the batch after the rows in flight and fails the attempt, so
     * Temporal retries it from the first row still pending. On cancellation (worker shutdown)
     * it stops at once; rows in flight may still land, and their retry is answered from the
     * register, never applied twice.
     */
    async processHrImportBatch(input: HrImportBatchInput): Promise<HrImportBatchResult> {
      if (!submit) {
        throw ApplicationFailure.create({
          type: LIFECYCLE_MISCONFIGURED,
          message: 'no HR event submitter was given to the import activities',
          nonRetryable: true,
        });
      }
      const context = Context.current();
      const { job, rows } = await scoped(input.tenantId, async (client) => ({
        job: await loadJob(client, input),
        rows: await pendingHrImportRows(client, input.tenantId, input.importId, input.batchSize),
      }));
      const byPerson = new Map<string, { row: number; body: HrEventBody }[]>();
      for (const row of rows) byPerson.set(row.body.personId, [...(byPerson.get(row.body.personId) ?? []), row]);
      const queues = [...byPerson.values()];

      let processed = 0;
      let failure: { error: unknown } | undefined;
      const lanes = Array.from({ length: Math.min(input.concurrency ?? DEFAULT_IMPORT_CONCURRENCY, queues.length) }, async () => {
        for (let queue = queues.shift(); queue; queue = queues.shift()) {
          for (const row of queue) {
            if (failure || context.cancellationSignal.aborted) return;
            try {
              if (await submitRow(job, submit, row)) processed++;
            } catch (error) {
              failure ??= { error };
              return;
            }
            context.heartbeat();
          }
        }
      });
      const alive = setInterval(() => context.heartbeat(), HEARTBEAT_EVERY_MS);
      try {
        await Promise.race([Promise.all(lanes), context.cancelled]);
      } finally {
        clearInterval(alive);
      }
      if (failure) throw failure.error;

      const remaining = await scoped(input.tenantId, async (client) => (await loadJob(client, input)).counts.pending);
      return { processed, remaining };
    },

    /** Every row has its result: the job is completed, and its completion audited with the counts. */
    async completeHrImport(input: HrImportAuditInput): Promise<HrImportView> {
      return scoped(input.tenantId, async (client) => {
        await markHrImportCompleted(client, input.tenantId, input.importId);
        const { context, ...job } = await loadJob(client, input);
        await appendWorkflowEvent(client, clock, input.tenantId, target(input.importId), {
          eventId: input.eventId,
          action: 'hr_import.completed',
          actor: context.actor,
          authority: { ...context.authority, policyVersion: job.policyVersion, importId: input.importId },
          payload: summary(job),
        });
        return job;
      });
    },
  };
}

/**
 * A row whose submission threw: refused by the lifecycle (an AppError: invalid with its fields,
 * or rejected with the status the single-event endpoint answers), or, after its last attempt,
 * rejected as not submitted. Anything else is rethrown for the batch's retry.
 */
function failedRow(
  base: Omit<HrImportRowResult, 'status'>,
  error: unknown,
  attempts: number,
): HrImportRowResult & { status: 'invalid' | 'rejected' } {
  if (error instanceof AppError) {
    return error.issues.length
      ? { ...base, status: 'invalid', issues: error.issues }
      : { ...base, status: 'rejected', error: { status: error.status, code: error.code, message: error.message } };
  }
  if (attempts < IMPORT_ROW_MAX_ATTEMPTS) throw error;
  return {
    ...base,
    status: 'rejected',
    error: {
      status: 503,
      code: 'unavailable',
      message: `The row could not be submitted in ${attempts} attempts (a dependency did not answer: ${(error as Error).message}); send it again.`,
    },
  };
}
