import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import {
  DIAGNOSTICS_TASK_QUEUE,
  PING_WORKFLOW_TYPE,
  pingSearchAttributes,
  pingStateQuery,
  pingWorkflowId,
  type PingInput,
} from '../core/diagnostics/contract.js';
import type { PingView } from '../core/diagnostics/schemas.js';
import { notFound } from '../core/errors.js';
import type { pingWorkflow } from '../workflows/diagnostics/workflow.js';

export interface DiagnosticsDeps {
  temporal: Client;
}

export async function startPing(deps: DiagnosticsDeps, request: { message: string; delaySeconds: number }): Promise<PingView> {
  const input: PingInput = { pingId: randomUUID(), ...request };
  const workflowId = pingWorkflowId(input.pingId);
  await deps.temporal.workflow.start<typeof pingWorkflow>(PING_WORKFLOW_TYPE, {
    taskQueue: DIAGNOSTICS_TASK_QUEUE,
    workflowId,
    args: [input],
    typedSearchAttributes: pingSearchAttributes(),
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
