import { executeChild, proxyActivities, uuid4, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import { campaignRunSearchAttributes, campaignRunWorkflowId, type CampaignRunProgress } from '../../core/campaigns/contract.js';
import { campaignRunWorkflow } from './run.js';

const { allocateScheduledCampaignRun } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * What a definition's Schedule starts each time: numbers a run (as the API does) and runs
 * `campaign/<definitionId>/<runNo>` as its child to the end, so the Schedule's overlap policy
 * (skip) skips a start while the previous run is still going.
 */
export async function scheduledCampaignRunWorkflow(input: { definitionId: string; scheduleId: string }): Promise<CampaignRunProgress> {
  const run = await allocateScheduledCampaignRun({ runId: uuid4(), definitionId: input.definitionId, scheduleId: input.scheduleId });
  return executeChild(campaignRunWorkflow, {
    workflowId: campaignRunWorkflowId(run.definitionId, run.runNo),
    args: [run],
    taskQueue: workflowInfo().taskQueue,
    typedSearchAttributes: campaignRunSearchAttributes(),
  });
}
