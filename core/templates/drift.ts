import type { TypedSearchAttributes } from '@temporalio/common';
import type { DirectorySettingName } from '../directory/settings.js';
import { MSP_TENANT, tenantSearchAttributes } from '../temporal.js';
import type { PolicyChangeEffect } from '../tenancy/contract.js';
import type { PlanArea, TemplatePlan } from './contract.js';

/**
 * Drift: each tenant's directory and policy compared with the exact version applied to it (its
 * pin's `appliedVersion`, rendered with the parameter values it was applied with), never with a
 * newer version or an assignment still waiting to be applied. A Temporal Schedule runs the scan;
 * an apply refreshes its tenant's drift at its pin step; `POST …/drift/check` checks one tenant.
 */

/** What a drift check does with a difference: record it, tell the tenant (its signed webhook), or put the accepted value back. */
export const DRIFT_MODES = ['report', 'alert', 'remediate'] as const;
export type DriftMode = (typeof DRIFT_MODES)[number];
/** Policy sections change only through Tenure's own audited policy changes (the tenant decides those): never remediated. */
export const POLICY_DRIFT_MODES = ['report', 'alert'] as const;

/** The `drift` section of a template document; absent means `report` everywhere. */
export interface TemplateDriftSettingsShape {
  default: DriftMode;
  settings?: Partial<Record<DirectorySettingName, DriftMode>>;
  roles?: DriftMode;
  policy?: (typeof POLICY_DRIFT_MODES)[number];
}

/**
 * The mode of one drift path by the applied version's `drift` section: a security setting by its
 * own entry, roles by `roles`, the policy by `policy`; otherwise `default` (for the policy, a
 * `remediate` default means `alert`).
 */
export function driftModeOf(drift: TemplateDriftSettingsShape | undefined, path: string): DriftMode {
  const fallback = drift?.default ?? 'report';
  if (path.startsWith('directory.settings.')) {
    const name = path.slice('directory.settings.'.length) as DirectorySettingName;
    return drift?.settings?.[name] ?? fallback;
  }
  if (path.startsWith('directory.roles.')) return drift?.roles ?? fallback;
  return drift?.policy ?? (fallback === 'remediate' ? 'alert' : fallback);
}

/** One difference a check finds: what the applied version says (`expected`) and what the tenant holds (`actual`). */
export interface FoundDrift {
  path: string;
  area: PlanArea;
  expected: unknown;
  actual: unknown;
  /** What putting the expected value back would do to the tenant's control (a tenant that tightened it itself: `loosens`). */
  restoring?: PolicyChangeEffect;
}

/**
 * The differences in a plan of the applied version against the tenant now: every change the
 * target can hold. One it cannot hold (`unsupported`) is no drift: an apply leaves it as it is.
 */
export function driftOfPlan(plan: Pick<TemplatePlan, 'items'>): FoundDrift[] {
  return plan.items
    .filter((item) => item.unsupported === null)
    .map((item) => ({
      path: item.path,
      area: item.area,
      expected: item.after ?? null,
      actual: item.before ?? null,
      restoring: item.effect,
    }));
}

// ---------------------------------------------------------------- exceptions

export const DRIFT_EXCEPTION_STATUSES = ['pending', 'active', 'expired'] as const;
export type DriftExceptionStatus = (typeof DRIFT_EXCEPTION_STATUSES)[number];
/** An exception lasts at most this long; the database holds the same bound. */
export const DRIFT_EXCEPTION_MAX_DAYS = 365;

/**
 * At read time: `expired` once its expiry passed or someone ended it (whether or not it was
 * approved), `active` when approved and still running, `pending` while it waits for the tenant.
 */
export function exceptionStatus(e: { approvedAt: Date | null; endedAt: Date | null; expiresAt: Date }, now: Date): DriftExceptionStatus {
  if (e.endedAt || e.expiresAt.getTime() <= now.getTime()) return 'expired';
  return e.approvedAt ? 'active' : 'pending';
}

export interface DriftExceptionView {
  id: string;
  tenantId: string;
  path: string;
  owner: string;
  justification: string;
  expiresAt: string;
  status: DriftExceptionStatus;
  createdAt: string;
  createdBy: string;
  approvedAt: string | null;
  approvedBy: string | null;
  endedAt: string | null;
  endedBy: string | null;
}

// ---------------------------------------------------------------- status

/** `open`: drift; `accepted`: drift an active exception covers; `resolved`: gone (cleared or remediated). */
export const DRIFT_ITEM_STATUSES = ['open', 'accepted', 'resolved'] as const;
export type DriftItemStatus = (typeof DRIFT_ITEM_STATUSES)[number];

export interface DriftItemView {
  id: string;
  path: string;
  area: PlanArea;
  expected: unknown;
  actual: unknown;
  mode: DriftMode;
  status: DriftItemStatus;
  templateId: string;
  version: number;
  firstSeenAt: string;
  lastSeenAt: string;
  resolvedAt: string | null;
  resolution: 'cleared' | 'remediated' | null;
  alertedAt: string | null;
  remediationError: string | null;
  /** The active exception that accepts it, when `accepted`. */
  exceptionId: string | null;
}

/**
 * `in_sync`: the last check found nothing; `drifted`: some item is open; `accepted`: every item is
 * covered by an active exception; `not_applied`: no version is applied, so there is nothing to
 * compare; `unchecked`: no check has run since the version was applied.
 */
export const TENANT_DRIFT_STATUSES = ['in_sync', 'drifted', 'accepted', 'not_applied', 'unchecked'] as const;
export type TenantDriftStatus = (typeof TENANT_DRIFT_STATUSES)[number];

export interface TenantDriftView {
  tenantId: string;
  status: TenantDriftStatus;
  templateId: string | null;
  /** The version compared against: the one applied to the tenant. */
  appliedVersion: number | null;
  checkedAt: string | null;
  /** Why the last check could not run (e.g. the target did not answer), when it could not. */
  checkError: string | null;
  /** Items still open or accepted, then those resolved most recently. */
  items: DriftItemView[];
  exceptions: DriftExceptionView[];
}

// ---------------------------------------------------------------- workflows and schedule

/** The scheduled scan over every tenant with an applied version. */
export const DRIFT_SCAN_WORKFLOW_TYPE = 'templateDriftScanWorkflow';
/** One tenant's check now (`POST …/drift/check`). */
export const DRIFT_CHECK_WORKFLOW_TYPE = 'templateDriftCheckWorkflow';

/** One Schedule per deployment: its id carries the task-queue prefix so deployments sharing a namespace keep their own. */
export function driftScheduleId(taskQueuePrefix: string): string {
  return `${taskQueuePrefix}template-drift`;
}

export function driftCheckWorkflowId(tenantId: string): string {
  return `template-drift/${tenantId}`;
}

export function driftScanSearchAttributes(): TypedSearchAttributes {
  return tenantSearchAttributes(MSP_TENANT);
}

export function driftCheckSearchAttributes(tenantId: string): TypedSearchAttributes {
  return tenantSearchAttributes(tenantId);
}

/** Drift check interval when TEMPLATE_DRIFT_INTERVAL_SECONDS is unset: hourly. */
export const DEFAULT_DRIFT_INTERVAL_SECONDS = 3600;
/** Tenants one activity checks (a few at a time inside it). */
export const DRIFT_BATCH = 25;
/** Batches in flight at once. */
export const DRIFT_WINDOW = 4;
/** Tenants per run before continue-as-new, so the history stays bounded whatever the number of tenants. */
export const DRIFT_TENANTS_PER_RUN = 1000;

export interface DriftCounts {
  checked: number;
  /** Tenants with an open item after their check. */
  drifted: number;
  /** Tenants whose check could not run (recorded with the tenant's drift state). */
  failed: number;
  skipped: number;
  detected: number;
  resolved: number;
  remediated: number;
  alerted: number;
}

export const NO_DRIFT_COUNTS: DriftCounts = {
  checked: 0,
  drifted: 0,
  failed: 0,
  skipped: 0,
  detected: 0,
  resolved: 0,
  remediated: 0,
  alerted: 0,
};

export interface DriftScanInput {
  /** The last tenant id a previous run reached (continue-as-new). */
  after?: string | null;
  carried?: DriftCounts;
  /** Overrides for tests. */
  tenantsPerRun?: number;
  batchSize?: number;
}

export type DriftScanResult = DriftCounts;

export interface DriftCheckInput {
  tenantId: string;
  /** Who asked (`POST …/drift/check`), for the events the check writes. */
  requestedBy: string;
}

/** One tenant's check. `skipped`: not active, no version applied, or an apply under way (its pin step checks). */
export interface TenantDriftCheckResult {
  tenantId: string;
  outcome: 'checked' | 'skipped' | 'failed';
  reason: string | null;
  open: number;
  detected: number;
  resolved: number;
  remediated: number;
  alerted: number;
}

/** Audit actions on the tenant's chain, one per transition. */
export const DriftAction = {
  Detected: 'template.drift.detected',
  Resolved: 'template.drift.resolved',
  Remediated: 'template.drift.remediated',
  RemediationFailed: 'template.drift.remediation_failed',
  Alerted: 'template.drift.alerted',
  ExceptionRequested: 'template.drift.exception_requested',
  ExceptionApproved: 'template.drift.exception_approved',
  ExceptionEnded: 'template.drift.exception_ended',
  ExceptionExpired: 'template.drift.exception_expired',
} as const;
