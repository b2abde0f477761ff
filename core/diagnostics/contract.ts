import type { TypedSearchAttributes } from '@temporalio/common';
import { defineQuery } from '@temporalio/workflow';
import { MSP_TENANT, tenantSearchAttributes } from '../temporal.js';

/**
 * Diagnostics: a trivial workflow that proves the whole path works —
 * API → Temporal → worker → activity → PostgreSQL — and a long timer for the time-skipping harness.
 */
export const PING_WORKFLOW_TYPE = 'pingWorkflow';

/** The diagnostics domain's own queue: a ping proves it is polled, and waits behind no real work. */
export const DIAGNOSTICS_TASK_QUEUE = 'diagnostics';

export function pingWorkflowId(pingId: string): string {
  return `ping/${pingId}`;
}

/** A ping belongs to the MSP, not to one client tenant. */
export function pingSearchAttributes(): TypedSearchAttributes {
  return tenantSearchAttributes(MSP_TENANT);
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

/** The one list of ping statuses: the type below and the API's zod enum are both built from it. */
export const PING_STATUSES = ['waiting', 'recording', 'done'] as const;
export type PingStatus = (typeof PING_STATUSES)[number];

export interface PingState {
  status: PingStatus;
  message: string;
  recordedAt: string | null;
}

export const pingStateQuery = defineQuery<PingState>('pingState');
