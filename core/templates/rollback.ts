import { defineQuery } from '@temporalio/workflow';
import type { ActorType, Authority } from '../audit/chain.js';

/**
 * Rolling back a template apply (issue #13, item 5). Per tenant,
 * `rollout/<rolloutId>/<tenantId>/rollback` restores the snapshot its apply took (roles, security
 * settings, policy), reads the tenant back to verify it equals the snapshot, and re-pins the
 * version applied before. A path the tenant changed itself after the apply is never overwritten:
 * it is listed as a conflict. The whole rollout's rollback, `rollout/<rolloutId>/rollback`, runs
 * one per tenant that has a snapshot, a bounded window at a time.
 */
export const TEMPLATE_ROLLBACK_WORKFLOW_TYPE = 'templateRollbackWorkflow';
export const ROLLOUT_ROLLBACK_WORKFLOW_TYPE = 'rolloutRollbackWorkflow';

/**
 * `restoring` → `verifying` → `rolled_back` (the tenant equals the snapshot), or
 * `rolled_back_with_conflicts` (it does, except the listed paths: those the tenant changed after
 * the apply, left as they are, and those the target cannot restore, `unsupported`), or `failed`
 * (at `restore` or `verify`; the outcome says).
 */
export const ROLLBACK_STATUSES = ['restoring', 'verifying', 'rolled_back', 'rolled_back_with_conflicts', 'failed'] as const;
export type RollbackStatus = (typeof ROLLBACK_STATUSES)[number];
export const ROLLBACK_DONE: readonly RollbackStatus[] = ['rolled_back', 'rolled_back_with_conflicts', 'failed'];

/** A path the rollback left alone because it no longer holds what the apply left there. */
export interface RollbackConflict {
  /** `directory.roles.<name>`, `directory.settings.<name>`, `policy` or `pin`. */
  path: string;
  /** What the snapshot holds (what a rollback would restore); null for "absent". */
  snapshot: unknown;
  /** What the apply left there. */
  applied: unknown;
  /** What the tenant holds now. */
  current: unknown;
  reason: string;
}

/** What restoring the snapshot did, path by path. */
export interface RollbackRestoreResult {
  /** Paths written back to the snapshot's value (a role deleted or restored, a setting, the policy). */
  restored: string[];
  /** Paths the apply touched that already hold the snapshot's value (never applied, or restored by an earlier attempt). */
  unchanged: string[];
  conflicts: RollbackConflict[];
  /** What the target cannot do here (`<path>: <capability>: not supported by target`), listed, never skipped silently. */
  unsupported: string[];
  /** The tenant policy version the rollback wrote, or null. */
  policyVersion: number | null;
}

export interface TemplateRollbackInput {
  rolloutId: string;
  tenantId: string;
  snapshotId: string;
  templateId: string;
  /** The version the apply applied (what is undone). */
  version: number;
  requester: { id: string; type: ActorType };
  authority: Authority;
  /** The whole rollout's rollback that started this one, if any. */
  parentWorkflowId: string | null;
  /**
   * A failed rollback requested again: the read model's revision it continues from, so its steps
   * replace the failed attempt's row (written only by a higher revision).
   */
  revisionFrom?: number;
}

/** A rollback before its first step: the workflow's first state, and the read model's until the workflow writes. */
export function initialRollbackView(input: TemplateRollbackInput, workflowId: string, startedAt: string): TemplateRollbackView {
  return {
    rolloutId: input.rolloutId,
    tenantId: input.tenantId,
    workflowId,
    snapshotId: input.snapshotId,
    templateId: input.templateId,
    version: input.version,
    status: 'restoring',
    requesterId: input.requester.id,
    parentWorkflowId: input.parentWorkflowId,
    restored: [],
    unchanged: [],
    conflicts: [],
    unsupported: [],
    policyVersion: null,
    pin: null,
    outcome: null,
    startedAt,
    restoredAt: null,
    verifiedAt: null,
    revision: input.revisionFrom ?? 0,
  };
}

/** Which apply, for which tenant: every rollback step reads the snapshot and the tenant afresh from it. */
export interface RollbackStepInput {
  rolloutId: string;
  tenantId: string;
  snapshotId: string;
  templateId: string;
  version: number;
}

export interface TemplateRollbackView {
  rolloutId: string;
  tenantId: string;
  workflowId: string;
  snapshotId: string;
  templateId: string;
  version: number;
  status: RollbackStatus;
  requesterId: string;
  parentWorkflowId: string | null;
  restored: string[];
  unchanged: string[];
  conflicts: RollbackConflict[];
  unsupported: string[];
  policyVersion: number | null;
  /** The applied version moved back: from the apply's to the one before (null: none was applied). */
  pin: { from: number | null; to: number | null } | null;
  outcome: string | null;
  startedAt: string;
  restoredAt: string | null;
  verifiedAt: string | null;
  revision: number;
}

export const templateRollbackQuery = defineQuery<TemplateRollbackView>('templateRollback');

/** Restoring or verifying cannot succeed as things are (no snapshot, the version gone): never retried. */
export const ROLLBACK_REFUSED = 'TemplateRollbackRefused';
/** Reading back does not show the snapshot yet: retried a few times, then the rollback fails at verify. */
export const ROLLBACK_NOT_VERIFIED = 'TemplateRollbackNotVerified';

// ---------------------------------------------------------------- the whole rollout

export interface RolloutRollbackCounts {
  /** Tenants of the rollout with a snapshot, when the rollback started. */
  total: number;
  started: number;
  rolledBack: number;
  withConflicts: number;
  failed: number;
  /** A rollback of the tenant was already requested on its own: answered by that one, not started again. */
  alreadyRequested: number;
}

export interface RolloutRollbackInput {
  rolloutId: string;
  requester: { id: string; type: ActorType };
  authority: Authority;
  /** Per-tenant rollbacks running at once. */
  window: number;
  /** Tenants read from the read model per page (and at most per run before continue-as-new). */
  pageSize: number;
  /** Carried across continue-as-new. */
  carried?: { after: string | null; counts: RolloutRollbackCounts; startedAt: string; revision: number };
}

export interface RolloutRollbackView {
  rolloutId: string;
  workflowId: string;
  status: 'running' | 'completed';
  requesterId: string;
  counts: RolloutRollbackCounts;
  /** Tenants whose rollback is under way now. */
  running: string[];
  startedAt: string;
  completedAt: string | null;
  revision: number;
}

export const rolloutRollbackQuery = defineQuery<RolloutRollbackView>('rolloutRollback');

/** A tenant of the rollout whose apply took a snapshot. */
export interface RollbackCandidate {
  tenantId: string;
  snapshotId: string;
  templateId: string;
  version: number;
}
