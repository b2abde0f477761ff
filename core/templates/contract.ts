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
} as const;
