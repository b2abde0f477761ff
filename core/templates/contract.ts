import type { TypedSearchAttributes } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ActorType, Authority } from '../audit/chain.js';
import { tenantSearchAttributes } from '../temporal.js';
import type { PolicyChangeEffect, PolicyDiffItem } from '../tenancy/contract.js';
import type { DirectorySecuritySettings } from '../directory/settings.js';
import type { GrantPolicy } from '../grants/policy.js';
import type { LifecyclePolicy } from '../lifecycle/policy.js';

/**
 * Templates: versioned baselines of a tenant's directory (roles, security settings) and of
 * Tenure's own policy sections (grants, lifecycle), owned by the MSP. A version is a controlled
 * artefact: `draft` (its authors edit it) → `proposed` (waits for a template owner or MSP admin
 * who did not write it) → `approved` (immutable; tenants may be pinned to it) → `deprecated` (no new
 * pins). Rollouts (`rollout/<id>`) will apply approved versions tenant by tenant.
 */
export const TEMPLATE_VERSION_STATUSES = ['draft', 'proposed', 'approved', 'deprecated'] as const;
export type TemplateVersionStatus = (typeof TEMPLATE_VERSION_STATUSES)[number];

/** The templates domain's own queue (rollouts, drift checks). */
export const TEMPLATES_TASK_QUEUE = 'templates';

export function rolloutWorkflowId(rolloutId: string): string {
  return `rollout/${rolloutId}`;
}

// ---------------------------------------------------------------- applying a version to one tenant

/**
 * One tenant's part of a rollout, `rollout/<rolloutId>/<tenantId>`: plan → the tenant's approval
 * gate when the plan loosens control (or the tenant decides every change) → snapshot → apply
 * through the connector → read back and verify → pin. The rollout workflow (waves, halt,
 * rollback) will start these as children; today the API starts one per tenant.
 */
export const TEMPLATE_APPLY_WORKFLOW_TYPE = 'templateApplyWorkflow';

export function templateApplyWorkflowId(rolloutId: string, tenantId: string): string {
  return `${rolloutWorkflowId(rolloutId)}/${tenantId}`;
}

/** One tenant's rollback of its apply in a rollout (core/templates/rollback.ts). */
export function templateRollbackWorkflowId(rolloutId: string, tenantId: string): string {
  return `${templateApplyWorkflowId(rolloutId, tenantId)}/rollback`;
}

/** A whole rollout's rollback: every tenant of it that has a snapshot. */
export function rolloutRollbackWorkflowId(rolloutId: string): string {
  return `${rolloutWorkflowId(rolloutId)}/rollback`;
}

export function templateApplySearchAttributes(tenantId: string): TypedSearchAttributes {
  return tenantSearchAttributes(tenantId);
}

/**
 * `awaiting_approval`: the gate; `applied`: applied, read back and pinned. `skipped`: the gate
 * timed out (nothing changed); `denied`: an approver said no (nothing changed); `failed`: a step
 * failed (the snapshot holds the state before it).
 */
export const APPLY_STATUSES = ['planning', 'awaiting_approval', 'applying', 'applied', 'skipped', 'denied', 'failed'] as const;
export type ApplyStatus = (typeof APPLY_STATUSES)[number];

export interface TemplateApplyInput {
  rolloutId: string;
  tenantId: string;
  templateId: string;
  version: number;
  parameters: Record<string, string>;
  requester: { id: string; type: ActorType };
  /** What allowed the start (role bindings, request id). */
  authority: Authority;
  /** How long the tenant's approvers have to decide, when the plan needs them. */
  approvalTimeoutSeconds: number;
}

export interface ApplyApproval {
  approverId: string;
  approvalId: string;
  at: string;
  comment: string | null;
}

export interface TemplateApplyView {
  rolloutId: string;
  tenantId: string;
  workflowId: string;
  templateId: string;
  version: number;
  status: ApplyStatus;
  requesterId: string;
  /** What the plan found when the run started (the plan itself is stored with the read model). */
  summary: TemplatePlan['summary'] | null;
  needsApproval: boolean | null;
  /** The tenant's quorum (its policy's `governance.policyChangeApprovals`) when the gate applies. */
  approvalsRequired: number;
  approvals: ApplyApproval[];
  approvalExpiresAt: string | null;
  decidedBy: string | null;
  snapshotId: string | null;
  /** What the apply changed, and what the target could not hold (listed, never skipped). */
  applied: { roles: number; settings: number; policyVersion: number | null; unsupported: string[] } | null;
  /** The step that failed and why, or why it was skipped. */
  outcome: string | null;
  startedAt: string;
  appliedAt: string | null;
  verifiedAt: string | null;
  /** Increases with every change; the read model keeps only the newest. */
  revision: number;
}

/** An apply before its first step: the workflow's first state, and the read model's until the workflow writes. */
export function initialApplyView(input: TemplateApplyInput, workflowId: string, startedAt: string): TemplateApplyView {
  return {
    rolloutId: input.rolloutId,
    tenantId: input.tenantId,
    workflowId,
    templateId: input.templateId,
    version: input.version,
    status: 'planning',
    requesterId: input.requester.id,
    summary: null,
    needsApproval: null,
    approvalsRequired: 0,
    approvals: [],
    approvalExpiresAt: null,
    decidedBy: null,
    snapshotId: null,
    applied: null,
    outcome: null,
    startedAt,
    appliedAt: null,
    verifiedAt: null,
    revision: 0,
  };
}

export interface ApplyDecision {
  actorId: string;
  comment?: string | null;
  authority?: Authority;
}

export const approveApplyUpdate = defineUpdate<TemplateApplyView, [ApplyDecision]>('approve');
export const denyApplyUpdate = defineUpdate<TemplateApplyView, [ApplyDecision]>('deny');
export const applyQuery = defineQuery<TemplateApplyView>('templateApply');

/** ApplicationFailure types: update validators' refusals and activities' permanent failures. */
export const ApplyRejection = {
  NotApplicable: 'TemplateApplyNotApplicable', // 409: no gate open (not waiting, or decided)
  SelfApproval: 'TemplateApplySelfApproval', // 403: who started it cannot approve it
  DuplicateApprover: 'TemplateApplyDuplicateApprover', // 409
  InvalidInput: 'TemplateApplyInvalidInput', // 400
  NotTenantApprover: 'TemplateApplyNotTenantApprover', // 403: decisions only from the tenant's own approvers
  Unavailable: 'TemplateApplyUnavailable', // 503: whether the actor is an approver could not be checked
} as const;
/** The tenant, template or plan no longer allows the apply (e.g. the plan now loosens without approval): never retried. */
export const APPLY_REFUSED = 'TemplateApplyRefused';
/** Reading back does not show the version applied yet: retried a few times, then the apply fails. */
export const APPLY_NOT_VERIFIED = 'TemplateApplyNotVerified';

/** Values every template may use in its text besides its own parameters: `{{tenant.name}}`, `{{tenant.slug}}`. */
export const BUILTIN_PARAMETERS = ['tenant.name', 'tenant.slug'] as const;

/** A role the template keeps in each tenant's directory. */
export interface TemplateRole {
  name: string;
  description: string;
  privileged: boolean;
}

export interface TemplateParameter {
  description: string;
  /** Used when the assignment gives no value; null: every assignment must give one. */
  default: string | null;
}

/** What a template version holds; parsed by TemplateDocument (schemas.ts). */
export interface TemplateDocumentShape {
  parameters: Record<string, TemplateParameter>;
  directory: { roles: TemplateRole[]; settings: Partial<DirectorySecuritySettings> };
  /** Sections of the tenant's policy the template sets as a whole; an absent one is left to the tenant. */
  policy: { grants?: GrantPolicy; lifecycle?: LifecyclePolicy };
}

export interface TemplateView {
  id: string;
  name: string;
  description: string;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  /** The newest version of any status. */
  latestVersion: number;
  /** The newest approved (not deprecated) version, if any. */
  latestApprovedVersion: number | null;
}

export interface TemplateVersionView {
  templateId: string;
  version: number;
  status: TemplateVersionStatus;
  document: TemplateDocumentShape;
  /** Who wrote or proposed it: none of them may approve it. */
  authors: string[];
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  proposedAt: string | null;
  proposedBy: string | null;
  approvedAt: string | null;
  approvedBy: string | null;
  deprecatedAt: string | null;
  deprecatedBy: string | null;
  /** The last decision's comment (a rejection's reason, an approval's note). */
  comment: string | null;
}

/** One changed path between two versions, classified like a tenant policy change. */
export type TemplateDiffItem = PolicyDiffItem;

export interface TemplateDiff {
  templateId: string;
  from: number;
  to: number;
  items: TemplateDiffItem[];
  /** Some item loosens control: tenants whose plans show it will need their approvers. */
  loosens: boolean;
}

export interface TemplateAssignmentView {
  tenantId: string;
  templateId: string;
  templateName: string;
  /** The exact version the tenant is pinned to. */
  version: number;
  /** The tenant's values for the template's parameters, as given at assignment. */
  parameters: Record<string, string>;
  assignedAt: string;
  assignedBy: string;
  /** The version last applied to the tenant and verified; null until a rollout applies one. */
  appliedVersion: number | null;
  appliedAt: string | null;
}

export const PLAN_AREAS = ['directory.roles', 'directory.settings', 'policy'] as const;
export type PlanArea = (typeof PLAN_AREAS)[number];
export const PLAN_OPERATIONS = ['create', 'change', 'remove'] as const;
export type PlanOperation = (typeof PLAN_OPERATIONS)[number];

/** One change a version would make in a tenant. */
export interface TemplatePlanItem {
  area: PlanArea;
  /** JSON path, e.g. `directory.roles.GlobalAdmin.privileged`, `policy.grants.roles.GlobalAdmin.maxDurationMinutes`. */
  path: string;
  operation: PlanOperation;
  before?: unknown;
  after?: unknown;
  effect: PolicyChangeEffect;
  reason: string;
  /** The change involves a privileged role (its definition, who may be granted it, who gets it). */
  privileged: boolean;
  /** The target lacks what this change needs (`<capability>: not supported by target`); an apply cannot make it. */
  unsupported: string | null;
}

/** What applying `version` to the tenant would change now; computing it changes nothing. */
export interface TemplatePlan {
  tenantId: string;
  templateId: string;
  version: number;
  /** The parameter values the plan was rendered with (the assignment's, the request's, then defaults). */
  parameters: Record<string, string>;
  /** The tenant's policy version the plan compares against. */
  policyVersion: number;
  /** The connector kind of the tenant's directory. */
  target: string;
  items: TemplatePlanItem[];
  summary: { changes: number; loosens: number; privileged: number; unsupported: number };
  /** Some change loosens control, or the tenant's approvers decide every change: an apply waits for them. */
  needsTenantApproval: boolean;
  computedAt: string;
}

/** Errors' codes the API answers with (409s) besides validation. */
export const TemplateRefusal = {
  /** The version is not in the status the step needs (e.g. approving a draft, editing an approved one). */
  WrongStatus: 'template_version_status',
  /** The approver wrote or proposed the version. */
  SelfApproval: 'template_self_approval',
  /** The tenant exists and the caller may read it, but it is pinned to no template. */
  NotPinned: 'template_not_pinned',
} as const;
