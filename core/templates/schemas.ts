import { z } from 'zod';
import { DIRECTORY_SETTING_NAMES, PartialDirectorySecuritySettings } from '../directory/settings.js';
import { GrantPolicy } from '../grants/policy.js';
import { LifecyclePolicy } from '../lifecycle/policy.js';
import { POLICY_CHANGE_EFFECTS } from '../tenancy/contract.js';
import { INT4_MAX, Slug, Uuid } from '../tenancy/schemas.js';
import { nonBlank } from '../text.js';
import { APPLY_STATUSES, BUILTIN_PARAMETERS, PLAN_AREAS, PLAN_OPERATIONS, TEMPLATE_VERSION_STATUSES } from './contract.js';
import { DRIFT_MODES, POLICY_DRIFT_MODES } from './drift.js';

const PARAMETER_NAME = /^[a-z][A-Za-z0-9_]{0,62}$/;
const ROLE_NAME = /^[A-Za-z0-9._-]{1,100}$/;
/** `{{name}}` in any text of the document; `{{tenant.name}}` and `{{tenant.slug}}` are always there. */
export const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.]+)\s*\}\}/g;

const ParameterValue = z.string().max(1000);

export const TemplateParameter = z.strictObject({
  description: nonBlank(500),
  default: ParameterValue.nullable().default(null),
});

export const TemplateRole = z.strictObject({
  name: z.string().regex(ROLE_NAME, 'letters, digits, . _ -'),
  description: z.string().max(1000).default(''),
  privileged: z.boolean().default(false),
});

/** Every text value of `v` with its JSON path. */
export function textsOf(v: unknown, path: (string | number)[] = []): { path: (string | number)[]; text: string }[] {
  if (typeof v === 'string') return [{ path, text: v }];
  if (Array.isArray(v)) return v.flatMap((x, i) => textsOf(x, [...path, i]));
  if (typeof v === 'object' && v !== null) return Object.entries(v).flatMap(([k, x]) => textsOf(x, [...path, k]));
  return [];
}

export const DriftMode = z.enum(DRIFT_MODES);

/** How drift checks treat each difference from the applied version (see core/templates/drift.ts); `report` when left out. */
export const TemplateDriftSettings = z
  .strictObject({
    default: DriftMode.default('report'),
    /** Per directory security setting. */
    settings: z.strictObject(Object.fromEntries(DIRECTORY_SETTING_NAMES.map((name) => [name, DriftMode.optional()]))).optional(),
    /** Directory roles the template keeps. */
    roles: DriftMode.optional(),
    /** Policy sections: changed only through Tenure's own policy changes, which the tenant decides; never remediated. */
    policy: z.enum(POLICY_DRIFT_MODES).optional(),
  })
  .meta({ id: 'TemplateDriftSettings' });

export const TemplateDocument = z
  .strictObject({
    /** Values each tenant's assignment gives; used in the document's text as `{{name}}`. */
    parameters: z
      .record(z.string().regex(PARAMETER_NAME, 'a lower-case letter, then letters, digits or _'), TemplateParameter)
      .meta({ propertyNames: { pattern: PARAMETER_NAME.source } })
      .default({}),
    directory: z
      .strictObject({
        /** Roles the template keeps in each tenant's directory (created or updated, never deleted). */
        roles: z.array(TemplateRole).max(500).default([]),
        /** The security settings the template sets; one it leaves out is the tenant's own. */
        settings: PartialDirectorySecuritySettings.default({}),
      })
      .default({ roles: [], settings: {} }),
    /** Sections of the tenant's policy the template sets as a whole; one it leaves out is the tenant's own. */
    policy: z.strictObject({ grants: GrantPolicy.optional(), lifecycle: LifecyclePolicy.optional() }).default({}),
    /** What drift checks do with a difference from the version applied; absent: `report` everywhere. */
    drift: TemplateDriftSettings.optional(),
  })
  .superRefine((doc, ctx) => {
    const seen = new Set<string>();
    doc.directory.roles.forEach((role, i) => {
      if (seen.has(role.name)) ctx.addIssue({ code: 'custom', path: ['directory', 'roles', i, 'name'], message: 'a role is listed twice' });
      seen.add(role.name);
    });
    const known = new Set<string>([...BUILTIN_PARAMETERS, ...Object.keys(doc.parameters)]);
    for (const { path, text } of textsOf({ directory: doc.directory, policy: doc.policy })) {
      for (const [, name] of text.matchAll(PLACEHOLDER)) {
        if (!known.has(name!)) ctx.addIssue({ code: 'custom', path, message: `{{${name}}} is not a declared parameter` });
      }
    }
  })
  .meta({ id: 'TemplateDocument' });
export type TemplateDocument = z.infer<typeof TemplateDocument>;

export const TemplateVersionNumber = z.coerce.number().int().min(1).max(INT4_MAX);

export const CreateTemplateRequest = z
  .strictObject({ name: Slug, description: z.string().trim().max(2000).default(''), document: TemplateDocument })
  .meta({ id: 'CreateTemplateRequest' });

export const NewTemplateVersionRequest = z.strictObject({ document: TemplateDocument }).meta({ id: 'NewTemplateVersionRequest' });

export const UpdateDraftRequest = z
  .strictObject({
    /** The `updatedAt` the edit is based on; another edit in between makes it 409. */
    expectedUpdatedAt: z.string().max(64),
    document: TemplateDocument,
  })
  .meta({ id: 'UpdateTemplateDraftRequest' });

export const TemplateDecisionBody = z.strictObject({ comment: z.string().trim().max(2000).optional() }).meta({ id: 'TemplateDecision' });

export const TemplateView = z
  .object({
    id: Uuid,
    name: z.string(),
    description: z.string(),
    createdAt: z.string(),
    createdBy: z.string(),
    updatedAt: z.string(),
    latestVersion: z.number().int(),
    latestApprovedVersion: z.number().int().nullable(),
  })
  .meta({ id: 'Template' });

export const TemplateVersionView = z
  .object({
    templateId: Uuid,
    version: z.number().int(),
    status: z.enum(TEMPLATE_VERSION_STATUSES),
    document: TemplateDocument,
    authors: z.array(z.string()),
    createdAt: z.string(),
    createdBy: z.string(),
    updatedAt: z.string(),
    proposedAt: z.string().nullable(),
    proposedBy: z.string().nullable(),
    approvedAt: z.string().nullable(),
    approvedBy: z.string().nullable(),
    deprecatedAt: z.string().nullable(),
    deprecatedBy: z.string().nullable(),
    comment: z.string().nullable(),
  })
  .meta({ id: 'TemplateVersion' });

const DiffItem = z.object({
  path: z.string(),
  before: z.unknown().optional(),
  after: z.unknown().optional(),
  effect: z.enum(POLICY_CHANGE_EFFECTS),
  reason: z.string(),
});

export const TemplateDiffView = z
  .object({ templateId: Uuid, from: z.number().int(), to: z.number().int(), items: z.array(DiffItem), loosens: z.boolean() })
  .meta({ id: 'TemplateDiff' });

export const TemplateDiffQuery = z.strictObject({ from: TemplateVersionNumber, to: TemplateVersionNumber });

const ParameterValues = z
  .record(z.string().regex(PARAMETER_NAME, 'a lower-case letter, then letters, digits or _'), ParameterValue)
  .meta({ propertyNames: { pattern: PARAMETER_NAME.source } });

export const AssignTemplateRequest = z
  .strictObject({ templateId: Uuid, version: z.number().int().min(1).max(INT4_MAX), parameters: ParameterValues.default({}) })
  .meta({ id: 'AssignTemplateRequest' });

export const TemplateAssignmentView = z
  .object({
    tenantId: Uuid,
    templateId: Uuid,
    templateName: z.string(),
    version: z.number().int(),
    parameters: z.record(z.string(), z.string()),
    assignedAt: z.string(),
    assignedBy: z.string(),
    appliedVersion: z.number().int().nullable(),
    appliedAt: z.string().nullable(),
  })
  .meta({ id: 'TemplateAssignment' });

export const DryRunRequest = z
  .strictObject({
    templateId: Uuid.optional().describe('Defaults to the template the tenant is assigned.'),
    version: z.number().int().min(1).max(INT4_MAX).optional().describe('Defaults to the version the tenant is pinned to.'),
    parameters: ParameterValues.optional().describe('Override the assignment’s values (or the defaults) for this plan.'),
  })
  .meta({ id: 'TemplateDryRunRequest' });

export const TemplatePlanView = z
  .object({
    tenantId: Uuid,
    templateId: Uuid,
    version: z.number().int(),
    parameters: z.record(z.string(), z.string()),
    policyVersion: z.number().int(),
    target: z.string(),
    items: z.array(
      DiffItem.extend({
        area: z.enum(PLAN_AREAS),
        operation: z.enum(PLAN_OPERATIONS),
        privileged: z.boolean(),
        unsupported: z.string().nullable(),
      }),
    ),
    summary: z.object({
      changes: z.number().int(),
      loosens: z.number().int(),
      privileged: z.number().int(),
      unsupported: z.number().int(),
    }),
    needsTenantApproval: z.boolean(),
    computedAt: z.string(),
  })
  .meta({ id: 'TemplatePlan' });

/** A stored document read through today's schema (defaults of later settings filled in). */
export function storedTemplateDocument(stored: unknown): TemplateDocument {
  const parsed = TemplateDocument.safeParse(stored);
  return parsed.success ? parsed.data : (stored as TemplateDocument);
}

export const StartApplyRequest = z
  .strictObject({
    approvalTimeoutMinutes: z
      .number()
      .int()
      .min(1)
      .max(60 * 24 * 90)
      .optional()
      .describe('How long the tenant’s approvers have when the plan needs them; the tenant’s own policy-change timeout when absent.'),
  })
  .meta({ id: 'StartTemplateApplyRequest' });

export const ApplyStartedView = z.object({ rolloutId: Uuid, tenantId: Uuid, workflowId: z.string() }).meta({ id: 'TemplateApplyStarted' });

export const TemplateApplyView = z
  .object({
    rolloutId: Uuid,
    tenantId: Uuid,
    workflowId: z.string(),
    templateId: Uuid,
    version: z.number().int(),
    status: z.enum(APPLY_STATUSES),
    requesterId: z.string(),
    summary: TemplatePlanView.shape.summary.nullable(),
    needsApproval: z.boolean().nullable(),
    approvalsRequired: z.number().int(),
    approvals: z.array(z.object({ approverId: z.string(), approvalId: z.string(), at: z.string(), comment: z.string().nullable() })),
    approvalExpiresAt: z.string().nullable(),
    decidedBy: z.string().nullable(),
    snapshotId: z.string().nullable(),
    applied: z
      .object({
        roles: z.number().int(),
        settings: z.number().int(),
        policyVersion: z.number().int().nullable(),
        unsupported: z.array(z.string()),
      })
      .nullable(),
    outcome: z.string().nullable(),
    startedAt: z.string(),
    appliedAt: z.string().nullable(),
    verifiedAt: z.string().nullable(),
    revision: z.number().int(),
  })
  .meta({ id: 'TemplateApply' });

export const TemplateApplyWithPlanView = TemplateApplyView.extend({ plan: TemplatePlanView.nullable() }).meta({
  id: 'TemplateApplyWithPlan',
});
