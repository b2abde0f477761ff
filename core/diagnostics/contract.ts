import { defineQuery } from '@temporalio/workflow';

/**
 * Diagnostics: a trivial workflow that proves the whole path works —
 * API → Temporal → worker → activity → PostgreSQL — and a long timer for the time-skipping harness.
 */
export const PING_WORKFLOW_TYPE = 'pingWorkflow';

export function pingWorkflowId(pingId: string): string {
  return `ping/${pingId}`;
}

export interface PingInput {
  pingId: string;
  message: string;
  /** Durable timer before recording the ping, in seconds (0 for none). */
  delaySeconds: number;
}

export interface PingResult {
  pingId: string;
  message: string;
  recordedAt: string;
}

export type PingStatus = 'waiting' | 'recording' | 'done';

export interface PingState {
  status: PingStatus;
  message: string;
  recordedAt: string | null;
}

export const pingStateQuery = defineQuery<PingState>('pingState');
