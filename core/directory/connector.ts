import type { DirectoryTarget } from './targets.js';
import type { DirectorySecuritySettingsState, PartialDirectorySecuritySettings } from './settings.js';

/**
 * The target system Tenure changes: users, roles (or groups), memberships and sessions of one
 * tenant. Implementations: the built-in PostgreSQL directory (connectors/directory/postgres.ts),
 * LDAP (ldap.ts) and SCIM 2.0 (scim.ts); tests/directory/connector-contract.test.ts holds all
 * three to the same behaviours.
 *
 * Every call names its tenant. Implementations must be safe to call again with the same
 * arguments (activities are retried) and must report failures as the errors below, so callers
 * can tell "try again" from "this will never work".
 */
export interface DirectoryConnector {
  /** Short name for evidence and diagnostics, e.g. `postgres`, `ldap`. */
  readonly kind: string;
  /** What this target can do; a caller that needs a missing one says so instead of skipping it. */
  readonly capabilities: DirectoryCapabilities;

  /** Creates the user or updates its profile; leaves its status alone (see setUserStatus). */
  upsertUser(tenantId: string, user: DirectoryUserInput): Promise<DirectoryUser>;
  getUser(tenantId: string, userId: string): Promise<DirectoryUser | undefined>;
  /**
   * Disable, re-enable or delete; throws DirectoryNotFoundError for an unknown user. A target
   * either keeps a deleted account marked `deleted` (the built-in directory) or removes it with
   * its memberships (LDAP, SCIM): getUser then answers undefined, and deleting it again succeeds,
   * since such a target cannot tell a user it removed from one it never had.
   */
  setUserStatus(tenantId: string, userId: string, status: DirectoryUserStatus): Promise<void>;

  /** Creates the role or updates its description and privileged flag. */
  upsertRole(tenantId: string, role: DirectoryRoleInput): Promise<void>;
  /**
   * The roles among `names` that exist in the tenant's directory, sorted by name; names it does
   * not have are left out. Throws DirectoryUnsupportedError without the `roleLookup` capability.
   */
  getRoles(tenantId: string, names: readonly string[]): Promise<DirectoryRole[]>;
  /**
   * Every role the tenant's directory has, sorted by name: what a review of "all privileged
   * roles" starts from. Throws DirectoryUnsupportedError without the `roleLookup` capability.
   */
  listAllRoles(tenantId: string): Promise<DirectoryRole[]>;
  /**
   * Deletes a role nobody holds (a template rollback removing a role its apply created).
   * Idempotent: deleting an absent role succeeds. Throws DirectoryConflictError while the role has
   * members, DirectoryUnsupportedError without the `roleDelete` capability.
   */
  deleteRole(tenantId: string, name: string): Promise<void>;
  /**
   * Users among `userIds` with their last sign-in (start of their newest session, ISO time), or
   * null for a user who never signed in; users the target does not know are left out. Reviews
   * recommend from it. Throws DirectoryUnsupportedError without the `sessions` capability.
   */
  lastSignIns(tenantId: string, userIds: readonly string[]): Promise<Record<string, string | null>>;
  /** The users among `userIds` the target knows, in any order (a batch getUser). */
  getUsers(tenantId: string, userIds: readonly string[]): Promise<DirectoryUser[]>;

  /**
   * Idempotent: assigning an assigned role keeps the membership. Throws DirectoryNotFoundError
   * when the user (or a deleted one) or the role does not exist.
   *
   * `until` (ISO time) is when the membership stops counting by itself, the target's own
   * backstop for time-bound access; null or omitted means no end. Assigning again sets it anew
   * (an extension, or a longer-lived source joining). An `until` that has already passed (the
   * target's clock decides) gives no access: without a live membership the assignment is refused
   * with DirectoryConflictError, and a live one ends at once. A connector without the
   * `membershipEnd` capability ignores it: the caller removes the role at the end either way, and
   * the backstop is what that connector declares it lacks.
   */
  assignRole(tenantId: string, userId: string, role: string, until?: string | null): Promise<void>;
  /**
   * Idempotent: removing an absent role is a no-op, and so is removing from an unknown user
   * (nobody to hold the role), so a revocation never sticks on a user deleted in the meantime.
   */
  removeRole(tenantId: string, userId: string, role: string): Promise<void>;
  /**
   * Reads the target back: the truth for verification. False for an unknown user and for a
   * membership whose `until` has passed (it no longer gives access).
   */
  hasRole(tenantId: string, userId: string, role: string): Promise<boolean>;
  /** Roles the user holds now (memberships past their `until` excluded), sorted; empty for an unknown user. */
  listRoles(tenantId: string, userId: string): Promise<string[]>;
  /** Users holding the role now, sorted. */
  listMembers(tenantId: string, role: string): Promise<string[]>;

  /**
   * Ends every live session of the user; returns how many were ended (0 for an unknown user).
   * Throws DirectoryUnsupportedError without the `sessions` capability.
   */
  revokeSessions(tenantId: string, userId: string): Promise<number>;

  /**
   * What the remote actions change, read back: status, lockout, second factors, a pending
   * password reset and live sessions. A field is null exactly when the connector lacks the
   * capability that goes with it. Undefined for an unknown (or removed) user.
   */
  getAccountState(tenantId: string, userId: string): Promise<DirectoryAccountState | undefined>;
  /**
   * Lifts a lockout after failed sign-ins, so the user can sign in again; a disabled account stays
   * disabled (re-enabling is setUserStatus). Idempotent: unlocking an unlocked user succeeds.
   * Throws DirectoryNotFoundError for an unknown user, DirectoryUnsupportedError without `unlock`.
   */
  unlockUser(tenantId: string, userId: string): Promise<void>;
  /**
   * Removes every enrolled second factor, so the user enrols again at the next sign-in; returns
   * how many were removed (0 on a repeat). Throws DirectoryNotFoundError for an unknown user,
   * DirectoryUnsupportedError without `mfaReset`.
   */
  resetMfa(tenantId: string, userId: string): Promise<number>;
  /**
   * Makes the user choose a new password at the next sign-in. Idempotent. Throws
   * DirectoryNotFoundError for an unknown user, DirectoryUnsupportedError without `passwordReset`.
   */
  requirePasswordReset(tenantId: string, userId: string): Promise<void>;

  /**
   * The tenant's security settings (MFA, password, lockout, session; core/directory/settings.ts)
   * as the target holds them now: the truth a template apply verifies against. A setting is null
   * exactly when the connector lacks its capability (SETTING_CAPABILITY).
   */
  getSecuritySettings(tenantId: string): Promise<DirectorySecuritySettingsState>;
  /**
   * Sets the given settings and leaves the others alone; idempotent. Throws
   * DirectoryUnsupportedError, before changing anything, when any of them needs a capability the
   * connector lacks: a setting is never skipped silently.
   */
  applySecuritySettings(tenantId: string, settings: PartialDirectorySecuritySettings): Promise<void>;
}

/** A user's account as the remote actions see it; null: the target cannot tell (capability missing). */
export interface DirectoryAccountState {
  status: DirectoryUserStatus;
  /** Locked out after failed sign-ins (a disabled account is not "locked"); null without `unlock`. */
  locked: boolean | null;
  /** Enrolled second factors; null without `mfaReset`. */
  mfaFactors: number | null;
  /** Must choose a new password at the next sign-in; null without `passwordReset`. */
  passwordResetRequired: boolean | null;
  /** Live sign-in sessions; null without `sessions`. */
  liveSessions: number | null;
}

/**
 * What a target can do beyond users and memberships. LDAP has no sessions to end, a SCIM
 * service may not end a membership by itself: each connector says so here, and a method that
 * needs a missing capability throws DirectoryUnsupportedError rather than pretending.
 */
export interface DirectoryCapabilities {
  /** Keeps sign-in sessions and can end them (revokeSessions). */
  sessions: boolean;
  /** Ends a membership by itself at its `until` (assignRole), a backstop to Tenure's removal. */
  membershipEnd: boolean;
  /** Says which roles exist and which are privileged (getRoles). */
  roleLookup: boolean;
  /** Deletes a role nobody holds (deleteRole), e.g. when a template rollback removes a role its apply created. */
  roleDelete: boolean;
  /** Lifts a lockout after failed sign-ins and says whether one is in force (unlockUser). */
  unlock: boolean;
  /** Keeps second factors and can remove them (resetMfa). */
  mfaReset: boolean;
  /** Can make a user change the password at the next sign-in (requirePasswordReset). */
  passwordReset: boolean;
  /** Holds whether every user must use a second factor (security setting `mfaRequired`). */
  mfaPolicy: boolean;
  /** Holds the password rules: length, complexity, history, maximum age. */
  passwordPolicy: boolean;
  /** Holds the lockout rules: threshold and duration. */
  lockoutPolicy: boolean;
  /** Holds the session rules: lifetime and idle timeout. */
  sessionPolicy: boolean;
}

export type DirectoryCapability = keyof DirectoryCapabilities;

export type DirectoryUserStatus = 'active' | 'disabled' | 'deleted';

export interface DirectoryUserInput {
  id: string;
  username: string;
  displayName: string;
  email?: string | null;
  attributes?: Record<string, unknown>;
  /** Status of a user this call creates (default active), e.g. disabled until a start date; an existing user's is left alone. */
  initialStatus?: DirectoryUserStatus;
}

export interface DirectoryUser {
  tenantId: string;
  id: string;
  username: string;
  displayName: string;
  email: string | null;
  attributes: Record<string, unknown>;
  status: DirectoryUserStatus;
  createdAt: string;
  updatedAt: string;
}

export interface DirectoryRoleInput {
  name: string;
  description?: string;
  privileged?: boolean;
}

export interface DirectoryRole {
  name: string;
  description: string;
  privileged: boolean;
}

/** Why an access exists, as the entitlement ledger records it. */
export type EntitlementSourceType = 'grant' | 'birthright' | 'template' | 'manual';
export const ENTITLEMENT_SOURCE_TYPES: readonly EntitlementSourceType[] = ['grant', 'birthright', 'template', 'manual'];

/**
 * ApplicationFailure type the activities raise, non-retryable, when the target refuses for good
 * (no such user or role, a conflicting username). Workflows list it in nonRetryableErrorTypes.
 */
export const DIRECTORY_TARGET_REJECTED = 'DirectoryTargetRejected';

/** Base of every connector failure; `retryable` says whether trying again can help. */
export abstract class DirectoryError extends Error {
  abstract readonly retryable: boolean;
  constructor(
    message: string,
    readonly tenantId: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The target could not be reached or was busy (network, restart, overload): retry. */
export class DirectoryUnavailableError extends DirectoryError {
  readonly retryable = true;
  constructor(message: string, tenantId: string, options?: { cause?: unknown }) {
    super(message, tenantId, options);
    this.name = 'DirectoryUnavailableError';
  }
}

/** The user or role does not exist in the tenant's directory: retrying cannot help. */
export class DirectoryNotFoundError extends DirectoryError {
  readonly retryable = false;
  constructor(
    readonly kind: 'user' | 'role',
    readonly id: string,
    tenantId: string,
    options?: { cause?: unknown },
  ) {
    super(`directory ${kind} ${id} not found in tenant ${tenantId}`, tenantId, options);
    this.name = 'DirectoryNotFoundError';
  }
}

/** The change contradicts the target's state (e.g. a username held by another user): retrying cannot help. */
export class DirectoryConflictError extends DirectoryError {
  readonly retryable = false;
  constructor(message: string, tenantId: string, options?: { cause?: unknown }) {
    super(message, tenantId, options);
    this.name = 'DirectoryConflictError';
  }
}

/**
 * The target refused the request for good: wrong credentials, missing rights, a value or schema
 * it does not accept, a feature Tenure needs that it lacks. Retrying cannot help until someone
 * changes the target or its configuration. `reason` is the target's own code (an LDAP result
 * code, an HTTP status and SCIM type) for the operator.
 */
export class DirectoryRejectedError extends DirectoryError {
  readonly retryable = false;
  constructor(
    message: string,
    tenantId: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(message, tenantId, options);
    this.name = 'DirectoryRejectedError';
  }
}

/** The target cannot do what was asked (see DirectoryCapabilities): retrying cannot help. */
export class DirectoryUnsupportedError extends DirectoryError {
  readonly retryable = false;
  constructor(
    readonly capability: DirectoryCapability,
    readonly connector: string,
    tenantId: string,
  ) {
    super(`the ${connector} directory of tenant ${tenantId} lacks the ${capability} capability`, tenantId);
    this.name = 'DirectoryUnsupportedError';
  }
}

/** Throws DirectoryUnsupportedError unless the connector declares `capability`. */
export function requireCapability(directory: DirectoryConnector, capability: DirectoryCapability, tenantId: string): void {
  if (!directory.capabilities[capability]) throw new DirectoryUnsupportedError(capability, directory.kind, tenantId);
}

/**
 * How callers find a tenant's directory. Activities and use cases ask it on every call (never
 * keep a connector), so a tenant's change of target applies to the next call.
 * connectors/directory/registry.ts builds each tenant's connector from its policy.
 */
export interface DirectoryResolver {
  /** The connector for the tenant's current target. */
  directoryFor(tenantId: string): Promise<DirectoryConnector>;
  /** The last outcome of each tenant's connector, for the health metric; absent when not tracked. */
  health?(): DirectoryHealth[];
  /**
   * Builds a connector for a target that is not the tenant's yet (a proposed policy change), for
   * `use` only, and closes it after; absent when this resolver can build no other target.
   */
  withTarget?<T>(tenantId: string, target: DirectoryTarget, use: (directory: DirectoryConnector) => Promise<T>): Promise<T>;
}

/** The last call of one tenant's connector: whether the target answered. */
export interface DirectoryHealth {
  tenantId: string;
  /** The connector kind, e.g. `postgres`, `ldap`, `scim`. */
  target: string;
  /** False when the last call found the target unreachable (DirectoryUnavailableError) or its secret missing. */
  up: boolean;
  /** ISO time of that call. */
  at: string;
}

/** Every tenant on one connector: the built-in directory, or a fake in tests. */
export function singleDirectory(directory: DirectoryConnector): DirectoryResolver {
  return { directoryFor: () => Promise.resolve(directory) };
}

/** What a caller needs to reach directories: the built-in one and, when tenants may have others, the resolver. */
export interface DirectoryDeps {
  /** The built-in directory; every tenant uses it unless `directories` is given. */
  directory: DirectoryConnector;
  /** Finds each tenant's own target (connectors/directory/registry.ts). */
  directories?: DirectoryResolver;
}

export function resolverOf(deps: DirectoryDeps): DirectoryResolver {
  return deps.directories ?? singleDirectory(deps.directory);
}

/**
 * The words evidence uses for a capability the target lacks, so a step that could not run says
 * so instead of disappearing: e.g. `sessions: not supported by target`.
 */
export function notSupportedByTarget(capability: DirectoryCapability): string {
  return `${capability}: not supported by target`;
}

/** A step the target could not do, as audit events and views record it. */
export interface CapabilityGap {
  capability: DirectoryCapability;
  /** The connector kind. */
  target: string;
  /** `<capability>: not supported by target`. */
  note: string;
}

export function capabilityGap(directory: DirectoryConnector, capability: DirectoryCapability): CapabilityGap {
  return { capability, target: directory.kind, note: notSupportedByTarget(capability) };
}
