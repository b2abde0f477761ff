import { z } from 'zod';
import { DateTime, Email, nonBlank } from '../text.js';
import { ROLES, TENANT_DECISION_ROLE_NAMES } from './authz.js';
import { ActionPolicy } from '../actions/policy.js';
import { GrantPolicy, patternIssues } from '../grants/policy.js';
import { LifecyclePolicy } from '../lifecycle/policy.js';
import { BUILTIN_TARGET, DirectoryTarget } from '../directory/targets.js';
import {
  DEFAULT_POLICY_CHANGE_APPROVALS,
  DEFAULT_POLICY_CHANGE_TIMEOUT_DAYS,
  POLICY_CHANGE_EFFECTS,
  POLICY_CHANGE_STATUSES,
} from './contract.js';

export const Slug = z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'lower-case letters, digits and dashes, 2-63 characters');
export const Uuid = z.uuid();

/** Policy versions are PostgreSQL `integer`s; a larger number is no version (400, not a failed query). */
export const INT4_MAX = 2_147_483_647;

/** IANA zones this runtime knows, and UTC. */
const TIME_ZONES = [...new Set([...Intl.supportedValuesOf('timeZone'), 'UTC'])];

/**
 * Who decides changes to the tenant's own policy: a change that loosens control (see
 * policy-diff.ts) waits for this many of the tenant's approvers, for at most this many days.
 */
export const PolicyGovernance = z
  .strictObject({
    /** Distinct tenant approvers a loosening change needs; never 0, or the MSP could loosen alone. */
    policyChangeApprovals: z.number().int().min(1).max(10).default(DEFAULT_POLICY_CHANGE_APPROVALS),
    /** A pending change times out (and changes nothing) after this many days. */
    policyChangeTimeoutDays: z.number().int().min(1).max(90).default(DEFAULT_POLICY_CHANGE_TIMEOUT_DAYS),
    /** The tenant's approvers decide every change, tightening ones included. */
    approveEveryChange: z.boolean().default(false),
  })
  .meta({ id: 'PolicyGovernance' });
export type PolicyGovernance = z.infer<typeof PolicyGovernance>;

/**
 * A tenant's settings and policies. Each change is a new version with who made it; later
 * capabilities (grants, lifecycle, reviews) add their own sections here.
 */
export const TenantPolicyDocument = z
  .strictObject({
    timezone: z
      .string()
      .refine((tz) => TIME_ZONES.includes(tz), 'unknown IANA time zone')
      .meta({ enum: TIME_ZONES })
      .default('UTC'),
    contactEmail: Email.nullable().default(null),
    notificationWebhookUrl: z
      .url({ protocol: /^https?$/ })
      .nullable()
      .default(null),
    grants: GrantPolicy.default(GrantPolicy.parse({})),
    lifecycle: LifecyclePolicy.default(LifecyclePolicy.parse({})),
    actions: ActionPolicy.default(ActionPolicy.parse({})),
    // Versions stored before governance existed have no such section: parsing gives the defaults.
    governance: PolicyGovernance.default(PolicyGovernance.parse({})),
    /** The tenant's target system; versions stored before it existed are on the built-in directory. */
    directory: DirectoryTarget.default(BUILTIN_TARGET),
  })
  .meta({ id: 'TenantPolicyDocument' });
export type TenantPolicyDocument = z.infer<typeof TenantPolicyDocument>;

/** Ticket patterns of the document RE2 cannot run, by field path; `at` is the document's own path. */
export function ticketPatternIssues(document: TenantPolicyDocument, at: string): { path: string; message: string }[] {
  return [
    ...patternIssues(document.grants.ticketPattern, `${at}.grants.ticketPattern`),
    ...patternIssues(document.actions.ticketPattern, `${at}.actions.ticketPattern`),
  ];
}

/**
 * A new tenant's first policy. It starts on the built-in directory: another target is a loosening
 * policy change, which the tenant's own approvers decide once it has them.
 */
export const NewTenantPolicyDocument = TenantPolicyDocument.extend({
  directory: z
    .strictObject({ type: z.literal('builtin') })
    .default({ type: 'builtin' })
    .describe('A new tenant starts on the built-in directory; another target is a policy change its approvers decide.'),
}).meta({ id: 'NewTenantPolicyDocument' });

/** A tag the MSP groups tenants by (e.g. `region:eu`, `tier-gold`); campaigns scope by tag. */
export const TenantTag = z.string().regex(/^[a-z0-9][a-z0-9._:-]{0,62}$/, 'lower-case letters, digits, . _ : -');
export const TenantTags = z
  .array(TenantTag)
  .max(20)
  .meta({ uniqueItems: true })
  .refine((list) => new Set(list).size === list.length, 'each tag at most once');

export const CreateTenantRequest = z
  .strictObject({
    slug: Slug,
    name: nonBlank(200),
    tags: TenantTags.optional(),
    policy: NewTenantPolicyDocument.optional(),
  })
  .meta({ id: 'CreateTenantRequest' });

/** A new name, a new set of tags, or both. */
export const UpdateTenantRequest = z
  .strictObject({ name: nonBlank(200).optional(), tags: TenantTags.optional() })
  .refine((body) => body.name !== undefined || body.tags !== undefined, { message: 'give name, tags or both', path: ['name'] })
  .meta({ id: 'UpdateTenantRequest', minProperties: 1 });

export const TenantView = z
  .object({
    id: Uuid,
    slug: z.string(),
    name: z.string(),
    status: z.enum(['active', 'suspended']),
    tags: z.array(z.string()),
    policyVersion: z.number().int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Tenant' });
export type TenantView = z.infer<typeof TenantView>;

export const PutPolicyRequest = z
  .strictObject({
    /** The version this change is based on; a concurrent change makes it 409. */
    expectedVersion: z.number().int().min(1).max(INT4_MAX),
    document: TenantPolicyDocument,
  })
  .meta({ id: 'PutPolicyRequest' });

export const PolicyView = z
  .object({
    tenantId: Uuid,
    version: z.number().int(),
    document: TenantPolicyDocument,
    createdAt: z.string(),
    /** Who wrote it; for a version an approved change wrote, its proposer. */
    createdBy: z.string(),
    /** The approved policy change that wrote it, and the tenant approvers who approved; null for a direct write. */
    changeId: Uuid.nullable(),
    approvedBy: z.array(z.string()).nullable(),
  })
  .meta({ id: 'TenantPolicy' });
export type PolicyView = z.infer<typeof PolicyView>;

export const ActorKind = z.enum(['msp_staff', 'tenant_staff', 'service_account']);

export const CreateActorRequest = z
  .strictObject({
    kind: ActorKind,
    displayName: nonBlank(200),
    email: Email.optional(),
    homeTenantId: Uuid.optional(),
    oidcSubject: z.string().min(1).max(255).optional(),
  })
  .superRefine((value, ctx) => {
    if ((value.kind === 'tenant_staff') !== (value.homeTenantId !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['homeTenantId'], message: 'required for tenant_staff, and only for tenant_staff' });
    }
  })
  // What the refinement enforces, stated in the document.
  .meta({
    id: 'CreateActorRequest',
    oneOf: [
      { properties: { kind: { const: 'tenant_staff' } }, required: ['homeTenantId'] },
      { properties: { kind: { enum: ['msp_staff', 'service_account'] } }, not: { required: ['homeTenantId'] } },
    ],
  });

export const ActorView = z
  .object({
    id: Uuid,
    kind: ActorKind,
    displayName: z.string(),
    email: z.string().nullable(),
    homeTenantId: Uuid.nullable(),
    oidcSubject: z.string().nullable(),
    status: z.enum(['active', 'disabled']),
    createdAt: z.string(),
  })
  .meta({ id: 'Actor' });
export type ActorView = z.infer<typeof ActorView>;

export const RoleSchema = z.enum(ROLES);

/**
 * A tenant's approvers and reviewers decide for that tenant only, so those roles name their
 * tenant; the other roles may be bound MSP-wide (tenantId null). Said in the schema, so a
 * decision role without a tenant is a 400 at `body.tenantId` like any other invalid field.
 */
export const CreateBindingRequest = z
  .discriminatedUnion('role', [
    z
      .strictObject({ actorId: Uuid, role: z.enum(TENANT_DECISION_ROLE_NAMES), tenantId: Uuid })
      .meta({ id: 'CreateTenantDecisionBindingRequest', description: 'A tenant decision role: always in one tenant.' }),
    z
      .strictObject({
        actorId: Uuid,
        role: RoleSchema.exclude(TENANT_DECISION_ROLE_NAMES),
        tenantId: Uuid.nullable(),
      })
      .meta({ id: 'CreateScopedBindingRequest', description: 'tenantId null binds the role MSP-wide.' }),
  ])
  .meta({
    id: 'CreateRoleBindingRequest',
    description: 'tenant_approver and tenant_reviewer need a tenantId; other roles may have null (MSP-wide).',
  });

export const BindingView = z
  .object({ id: Uuid, actorId: Uuid, role: RoleSchema, tenantId: Uuid.nullable(), createdAt: z.string(), createdBy: z.string() })
  .meta({ id: 'RoleBinding' });
export type BindingView = z.infer<typeof BindingView>;

export const CreateTokenRequest = z
  .strictObject({
    actorId: Uuid,
    name: nonBlank(100),
    expiresAt: DateTime.optional(),
  })
  .meta({ id: 'CreateApiTokenRequest' });

export const TokenView = z
  .object({
    id: Uuid,
    actorId: Uuid,
    name: z.string(),
    prefix: z.string(),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
    lastUsedAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .meta({ id: 'ApiToken' });
export type TokenView = z.infer<typeof TokenView>;

export const CreatedTokenView = TokenView.extend({
  token: z.string().describe('The secret. Shown once; only its hash is stored.'),
}).meta({ id: 'CreatedApiToken' });

// ------------------------------------------------------------ policy changes (see contract.ts)
const PolicyDiffItemSchema = z
  .object({
    path: z.string(),
    before: z.unknown().optional(),
    after: z.unknown().optional(),
    effect: z.enum(POLICY_CHANGE_EFFECTS),
    reason: z.string(),
  })
  .meta({ id: 'PolicyDiffItem' });

export const PolicyChangeViewSchema = z
  .object({
    changeId: Uuid,
    tenantId: Uuid,
    workflowId: z.string(),
    status: z.enum(POLICY_CHANGE_STATUSES),
    proposerId: z.string(),
    baseVersion: z.number().int(),
    appliedVersion: z.number().int().nullable(),
    diff: z.array(PolicyDiffItemSchema),
    approvalsRequired: z.number().int(),
    approvals: z.array(z.object({ approverId: z.string(), approvalId: z.string(), at: z.string(), comment: z.string().nullable() })),
    deniedBy: z.string().nullable(),
    withdrawnBy: z.string().nullable(),
    comment: z.string().nullable(),
    reason: z.string().nullable(),
    proposedAt: z.string(),
    expiresAt: z.string(),
    decidedAt: z.string().nullable(),
    version: z.number().int(),
  })
  .meta({ id: 'PolicyChange' });

export const PolicyChangeListQuery = z.strictObject({ status: z.enum(POLICY_CHANGE_STATUSES).optional() });

export const PolicyChangeDecisionBody = z
  .strictObject({ comment: z.string().trim().max(2000).optional() })
  .meta({ id: 'PolicyChangeDecision' });

/** The current version with the changes that wait for the tenant's approvers beside it. */
export const PolicyWithPendingView = PolicyView.extend({ pendingChanges: z.array(PolicyChangeViewSchema) }).meta({
  id: 'TenantPolicyWithPending',
});
