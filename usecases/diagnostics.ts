import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { tenantSearchAttributes, MSP_TENANT } from '../core/temporal.js';
import { PING_WORKFLOW_TYPE, pingStateQuery, pingWorkflowId, type PingInput } from '../core/diagnostics/contract.js';
import type { PingView } from '../core/diagnostics/schemas.js';
import { notFound } from '../core/errors.js';

export interface DiagnosticsDeps {
  temporal: Client;
  taskQueue: string;
}

export async function startPing(deps: DiagnosticsDeps, request: { message: string; delaySeconds: number }): Promise<PingView> {
  const input: PingInput = { pingId: randomUUID(), ...request };
  const workflowId = pingWorkflowId(input.pingId);
  await deps.temporal.workflow.start(PING_WORKFLOW_TYPE, {
    taskQueue: deps.taskQueue,
    workflowId,
    args: [input],
    typedSearchAttributes: tenantSearchAttributes(MSP_TENANT),
  });
  return {
    pingId: input.pingId,
    workflowId,
    status: input.delaySeconds > 0 ? 'waiting' : 'recording',
    message: input.message,
    recordedAt: null,
  };
}

export async function getPing(deps: DiagnosticsDeps, pingId: string): Promise<PingView> {
  const workflowId = pingWorkflowId(pingId);
  const handle = deps.temporal.workflow.getHandle(workflowId);
  const description = await handle.describe().catch((error: unknown) => {
    if (error instanceof WorkflowNotFoundError) throw notFound('ping');
    throw error;
  });
  if (!['RUNNING', 'COMPLETED'].includes(description.status.name)) {
    return { pingId, workflowId, status: 'failed', message: '', recordedAt: null };
  }
  const state = await handle.query(pingStateQuery);
  return { pingId, workflowId, ...state };
}
