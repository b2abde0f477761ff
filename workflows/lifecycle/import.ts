import { continueAsNew, proxyActivities, uuid4 } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import {
  DEFAULT_IMPORT_BATCH_SIZE,
  DEFAULT_IMPORT_BATCHES_PER_RUN,
  HR_IMPORT_NOT_FOUND,
  LIFECYCLE_MISCONFIGURED,
  type HrImportInput,
  type HrImportView,
} from '../../core/lifecycle/contract.js';

const retry = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '1 minute',
  nonRetryableErrorTypes: [HR_IMPORT_NOT_FOUND, LIFECYCLE_MISCONFIGURED],
};
const { recordHrImportStarted, completeHrImport } = proxyActivities<Activities>({ startToCloseTimeout: '30 seconds', retry });
// A batch heartbeats while it runs, so a worker that dies is noticed in seconds, not at the
// batch's own timeout; its retry starts at the first row still pending.
const { processHrImportBatch } = proxyActivities<Activities>({ startToCloseTimeout: '15 minutes', heartbeatTimeout: '30 seconds', retry });

/**
 * One bulk HR event import (`import/<tenant>/<importId>`): its rows are already stored; the
 * workflow submits them in batches until none is pending, then completes the job. The history
 * holds ids and counts only (about six events per batch) and continues as new every
 * `batchesPerRun` batches, whatever the import's size. Start and completion are audited once,
 * each under an event id made here.
 */
export async function hrImportWorkflow(input: HrImportInput): Promise<HrImportView> {
  const { tenantId, importId } = input;
  if (!input.startRecorded) await recordHrImportStarted({ tenantId, importId, eventId: uuid4() });
  const batchesPerRun = input.batchesPerRun ?? DEFAULT_IMPORT_BATCHES_PER_RUN;
  for (let batch = 0; ; batch++) {
    if (batch >= batchesPerRun) await continueAsNew<typeof hrImportWorkflow>({ ...input, startRecorded: true });
    const { remaining } = await processHrImportBatch({
      tenantId,
      importId,
      batchSize: input.batchSize ?? DEFAULT_IMPORT_BATCH_SIZE,
      ...(input.concurrency ? { concurrency: input.concurrency } : {}),
    });
    if (remaining === 0) break;
  }
  return completeHrImport({ tenantId, importId, eventId: uuid4() });
}
