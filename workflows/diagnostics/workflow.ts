import { proxyActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import { pingStateQuery, type PingInput, type PingResult, type PingState } from '../../core/diagnostics/contract.js';

const { recordPing } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

export async function pingWorkflow(input: PingInput): Promise<PingResult> {
  const state: PingState = {
    status: input.delaySeconds > 0 ? 'waiting' : 'recording',
    message: input.message,
    recordedAt: null,
  };
  setHandler(pingStateQuery, () => state);

  if (input.delaySeconds > 0) {
    await sleep(input.delaySeconds * 1000);
    state.status = 'recording';
  }
  const { workflowId, runId } = workflowInfo();
  const { recordedAt } = await recordPing({ pingId: input.pingId, message: input.message, workflowId, runId });
  state.recordedAt = recordedAt;
  state.status = 'done';
  return { pingId: input.pingId, message: input.message, recordedAt };
}
