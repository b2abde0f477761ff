import type { TypedSearchAttributes } from '@temporalio/common';
import { tenantSearchAttributes } from '../temporal.js';

/**
 * The expiry sweeper: for a tenant whose target cannot end a membership by itself (no
 * `membershipEnd` capability: LDAP, SCIM), a Temporal Schedule `sweep/<tenant>` starts
 * `sweepWorkflow` every DIRECTORY_SWEEP_INTERVAL_SECONDS. It removes from the tenant's managed
 * roles every membership no open entitlement explains, and every membership whose entitlements
 * are all past their end (a grant whose workflow could not remove it in time), verifies each
 * removal by reading the target back and records it as `access.swept`.
 */
export const SWEEP_WORKFLOW_TYPE = 'sweepWorkflow';

/** The directory domain's own queue: a sweep runs even while the grants queue has no worker. */
export const DIRECTORY_TASK_QUEUE = 'directory';

/** The schedule's id, one per tenant. */
export function sweepScheduleId(tenantId: string): string {
  return `sweep/${tenantId}`;
}

/** The id of the workflows the schedule starts (Temporal appends the scheduled time). */
export function sweepWorkflowId(tenantId: string): string {
  return `sweep/${tenantId}`;
}

export function sweepSearchAttributes(tenantId: string): TypedSearchAttributes {
  return tenantSearchAttributes(tenantId);
}

/** Where a sweep goes on from: memberships are visited by role, then subject, in code-unit order. */
export interface SweepCursor {
  role: string;
  subjectId: string;
}

export interface SweepInput {
  tenantId: string;
  /** Set by continue-as-new: the last membership the previous run visited. */
  after?: SweepCursor | null;
  /** Counts carried over by continue-as-new. */
  carried?: SweepCounts;
  /** Continue-as-new after visiting this many memberships (SWEEP_REMOVALS_PER_RUN); tests use small values. */
  removalsPerRun?: number;
}

export interface SweepCounts {
  /** Memberships removed and verified gone. */
  removed: number;
  /** Memberships the target refused to remove (recorded as `access.sweep_failed`). */
  failed: number;
}

/** Why a membership is swept. */
export type SweepReason =
  /** No open entitlement explains it (given outside Tenure, or left over). */
  | 'unexplained'
  /** Its open entitlements have all passed their end: the workflow that removes it is late. */
  | 'past_end';

export interface SweepCandidate extends SweepCursor {
  reason: SweepReason;
  /** The open entitlements past their end, as `<sourceType>:<sourceId>` with that end. */
  pastEnd: { source: string; expiresAt: string }[];
}

export interface SweepResult extends SweepCounts {
  tenantId: string;
  /** Null when the sweep ran; otherwise why nothing was swept (the target ends memberships itself). */
  skipped: string | null;
}

/** Who sweeps, for the audit trail. */
export const SWEEPER_ACTOR = { id: 'sweeper', type: 'system' as const };

/** Candidates planned per activity call, and removals per run before continue-as-new. */
export const SWEEP_PAGE = 100;
export const SWEEP_REMOVALS_PER_RUN = 1000;
