import type { TypedSearchAttributes } from '@temporalio/common';
import type { ActorType, Authority } from '../audit/chain.js';
import type { DirectoryRole } from '../directory/connector.js';
import type { PartialDirectorySecuritySettings } from '../directory/settings.js';
import { tenantSearchAttributes } from '../temporal.js';
import type { TenantPolicyDocument } from '../tenancy/schemas.js';

/**
 * Org cloning for onboarding: a new tenant with the source's directory roles, security settings,
 * policy and template pin, and none of its people or secrets (users, memberships, grants,
 * entitlements, role bindings, tokens, webhook secrets, its target's secret reference). One
 * workflow per source tenant and client-supplied idempotency key, `clone/<sourceId>/<key>`, on the
 * templates queue; the `tenant_clones` row keyed the same way answers a retry with the same tenant.
 */
export const TENANT_CLONE_WORKFLOW_TYPE = 'tenantCloneWorkflow';

/** The key is the API's `Idempotency-Key` (api/headers.ts: letters, digits and `._:-`, at most 200). */
export function tenantCloneWorkflowId(sourceTenantId: string, idempotencyKey: string): string {
  return `clone/${sourceTenantId}/${idempotencyKey}`;
}

/** Filed under the new tenant, so the Temporal UI shows the clone with the tenant it made. */
export function tenantCloneSearchAttributes(newTenantId: string): TypedSearchAttributes {
  return tenantSearchAttributes(newTenantId);
}

export const CLONE_STATUSES = ['running', 'completed', 'failed'] as const;
export type CloneStatus = (typeof CLONE_STATUSES)[number];

export interface TenantCloneInput {
  cloneId: string;
  sourceTenantId: string;
  /** Made when the request was first stored: every retry creates this same tenant. */
  newTenantId: string;
  slug: string;
  name: string;
  tags: string[];
  requester: { id: string; type: ActorType };
  authority: Authority;
}

/** ApplicationFailure types of the clone's activities (non-retryable). */
export const CLONE_CONFLICT = 'TenantCloneConflict'; // a slug or name taken since the request: 409 naming the field
export const CLONE_REFUSED = 'TenantCloneRefused'; // the source cannot be cloned (gone)

/** Why a clone failed, as its row and the API say it. */
export interface CloneFailure {
  code: 'slug_taken' | 'name_taken' | 'source_unreadable' | 'directory_unwritable' | 'refused';
  /** The request field at fault, e.g. `body.slug`. */
  field: string | null;
  message: string;
}

/** What was read from the source once, and what the clone is made from (stored with the clone's row). */
export interface CloneSourceState {
  target: string;
  /** Null: the source's target cannot list its roles (`roleLookup`), so none were copied. */
  roles: DirectoryRole[] | null;
  /** The settings the source's target holds (a setting it lacks is left out). */
  settings: PartialDirectorySecuritySettings;
  policyVersion: number;
  /** The source's policy, without what belongs to the source alone (see clonePolicy). */
  policy: TenantPolicyDocument;
  pin: { templateId: string; version: number; parameters: Record<string, string> } | null;
  /** What was left out and why, e.g. `pin: version 3 is deprecated`. */
  notes: string[];
}

export interface CloneCopied {
  roles: number;
  privilegedRoles: number;
  settings: string[];
  policyVersion: number;
  /** The pin copied; `appliedVersion` is set once reading the clone back shows that version exactly. */
  pin: { templateId: string; version: number; appliedVersion: number | null } | null;
}

/** What the workflow answers and the clone's row keeps. */
export interface TenantCloneResult {
  cloneId: string;
  sourceTenantId: string;
  tenantId: string;
  status: Exclude<CloneStatus, 'running'>;
  copied: CloneCopied | null;
  notes: string[];
  failure: CloneFailure | null;
}

/** Never copied, whatever the source holds: listed in the evidence so the omission is explicit. */
export const NOT_CLONED = [
  'directory users and memberships',
  'grants and entitlements',
  'role bindings and API tokens',
  'webhook secret',
  'people (joiner/mover/leaver)',
  'reviews, remote actions and audit events',
  'directory target and its secret reference (the clone starts on the built-in directory)',
  'notification webhook URL and contact email',
] as const;

/**
 * The source's policy for the new tenant: everything but what points at the source itself. Its
 * target (and the secret reference with it) would hand the new tenant the source's accounts; its
 * webhook and contact are the source's people and systems. The clone starts on the built-in
 * directory, like every new tenant; another target is a policy change its own approvers decide.
 */
export function clonePolicy(source: TenantPolicyDocument): TenantPolicyDocument {
  return { ...source, directory: { type: 'builtin' }, notificationWebhookUrl: null, contactEmail: null };
}
