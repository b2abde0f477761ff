/** Roles an actor can hold, each bound MSP-wide (tenantId null) or to one tenant. */
export const ROLES = [
  'msp_admin',
  'operator',
  'tenant_approver',
  'tenant_reviewer',
  'template_owner',
  'auditor',
  'hr_integration',
] as const;
export type Role = (typeof ROLES)[number];

/** Roles through which a tenant decides (approvals, reviews): held only by that tenant's own staff and service accounts. */
export const TENANT_DECISION_ROLE_NAMES = ['tenant_approver', 'tenant_reviewer'] as const satisfies readonly Role[];
export const TENANT_DECISION_ROLES: readonly Role[] = TENANT_DECISION_ROLE_NAMES;

export interface Binding {
  id: string;
  role: Role;
  tenantId: string | null;
}

export type ActorKind = 'msp_staff' | 'tenant_staff' | 'service_account';

export interface Principal {
  actorId: string;
  kind: ActorKind;
  displayName: string;
  bindings: Binding[];
  /** How the caller proved who they are. */
  via: 'api_token' | 'oidc';
  tokenId?: string;
}

/** Which roles allow what. Deny by default: an action not listed here is allowed to nobody. */
export const PERMISSIONS = {
  'tenant.create': ['msp_admin'],
  'tenant.update': ['msp_admin'],
  'tenant.read': ['msp_admin', 'operator', 'tenant_approver', 'tenant_reviewer', 'template_owner', 'auditor', 'hr_integration'],
  'policy.read': ['msp_admin', 'operator', 'tenant_approver', 'tenant_reviewer', 'template_owner', 'auditor'],
  /** Changes that only tighten apply at once; the others wait for `policy.decide`. */
  'policy.write': ['msp_admin', 'operator'],
  /** Approve or deny a pending policy change: the tenant's own approvers only (never MSP staff). */
  'policy.decide': ['tenant_approver'],
  'actor.read': ['msp_admin', 'operator', 'auditor'],
  'actor.manage': ['msp_admin'],
  'binding.manage': ['msp_admin'],
  'token.manage': ['msp_admin'],
  'audit.read': ['msp_admin', 'auditor'],
  'grant.read': ['msp_admin', 'operator', 'tenant_approver', 'tenant_reviewer', 'auditor'],
  /** Read remote actions (unlock, MFA reset, …); requesting and deciding follow the tenant's action policy. */
  'action.read': ['msp_admin', 'operator', 'tenant_approver', 'tenant_reviewer', 'auditor'],
  'diagnostics.run': ['msp_admin', 'operator'],
  /** Decode (and encode) Temporal payloads through the codec endpoint: the MSP staff who operate Temporal. */
  'temporal.codec': ['msp_admin', 'operator'],
  /** Check a tenant's target directory (connectivity and capabilities); changes nothing. */
  'directory.test': ['msp_admin', 'operator'],
  /** Submit, preview and import HR events. */
  'person.event': ['msp_admin', 'operator', 'hr_integration'],
  'person.read': ['msp_admin', 'operator', 'hr_integration', 'tenant_reviewer', 'auditor'],
  /** Write campaign definitions, start runs, move a review's deadline: MSP staff run campaigns. */
  'campaign.manage': ['msp_admin', 'operator'],
  'campaign.read': ['msp_admin', 'operator', 'auditor'],
  /** A tenant's reviews and items: its reviewers and approvers, and MSP staff who watch progress. */
  'review.read': ['msp_admin', 'operator', 'tenant_reviewer', 'tenant_approver', 'auditor'],
  /** Decide review items: the tenant's own reviewers and approvers only (never MSP staff). */
  'review.decide': ['tenant_reviewer', 'tenant_approver'],
  /** A review's report (evidence): auditors, the tenant's approvers, MSP staff. */
  'review.report': ['msp_admin', 'operator', 'auditor', 'tenant_approver'],
  /** Read templates, their versions and diffs (MSP-wide). */
  'template.read': ['msp_admin', 'operator', 'template_owner', 'auditor'],
  /** Create templates, write and propose draft versions: template owners author. */
  'template.write': ['template_owner'],
  /** Approve, reject or deprecate a version: another template owner or an MSP admin (never one of its authors). */
  'template.approve': ['template_owner', 'msp_admin'],
  /** Pin a tenant to a template version: the MSP staff who operate the tenant. */
  'template.assign': ['msp_admin', 'operator'],
  /** A tenant's pin and a dry-run's plan (changes nothing); the tenant's approvers see what would change. */
  'template.plan': ['msp_admin', 'operator', 'template_owner', 'auditor', 'tenant_approver'],
  /** The standing-privilege report: auditors and MSP staff (bound in a tenant: that tenant's only). */
  'privilege.report': ['msp_admin', 'operator', 'auditor'],
  /** The MSP overview: counts across every tenant, for the MSP staff who operate them. */
  'overview.read': ['msp_admin', 'operator'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

/**
 * The bindings that allow `permission` — in `tenantId` when given (an MSP-wide binding counts
 * everywhere), or MSP-wide when null. Empty means denied.
 */
export function allowingBindings(principal: Principal, permission: Permission, tenantId: string | null): Binding[] {
  const roles: readonly Role[] = PERMISSIONS[permission];
  return principal.bindings.filter(
    (b) => roles.includes(b.role) && (b.tenantId === null || (tenantId !== null && b.tenantId === tenantId)),
  );
}

/** The caller's bindings, in `tenantId` or MSP-wide, whose role is among `roles` (e.g. a policy's requestableBy). */
export function bindingsWithRoles(principal: Principal, tenantId: string, roles: readonly Role[]): Binding[] {
  return principal.bindings.filter((b) => roles.includes(b.role) && (b.tenantId === null || b.tenantId === tenantId));
}

/**
 * The caller's tenant_approver bindings in `tenantId` itself: through these the client tenant
 * decides on requests. MSP staff never count, even through a binding made before that rule existed.
 */
export function tenantApproverBindings(principal: Principal, tenantId: string): Binding[] {
  if (principal.kind === 'msp_staff') return [];
  return principal.bindings.filter((b) => b.role === 'tenant_approver' && b.tenantId === tenantId);
}

/** Whether the caller has any standing in a tenant at all; if not, its objects are "not found". */
export function canSeeTenant(principal: Principal, tenantId: string): boolean {
  return principal.bindings.some((b) => b.tenantId === null || b.tenantId === tenantId);
}

/** Tenants the caller is bound to, or 'all' for anyone with an MSP-wide binding. */
export function visibleTenants(principal: Principal): 'all' | string[] {
  if (principal.bindings.some((b) => b.tenantId === null)) return 'all';
  return [...new Set(principal.bindings.map((b) => b.tenantId!))];
}
