import { z } from 'zod';
import { AttributeName, attributeNames } from '../lifecycle/policy.js';

/**
 * Settings of the directories Tenure can change besides its built-in one. Secrets (the LDAP
 * bind password, the SCIM bearer token) are not settings: the caller resolves them from where
 * they are kept and hands them to the connector separately, so settings can be stored and shown.
 */

const LdapAttributeName = z.string().regex(/^[A-Za-z][A-Za-z0-9-]*$/, 'an LDAP attribute name, e.g. departmentNumber');
/** A DN as the directory's administrator writes it; the directory itself checks its syntax. */
const LdapDn = z.string().trim().min(3).max(1024).regex(/=/, 'a distinguished name, e.g. ou=people,dc=example,dc=com');

/**
 * How a disabled account shows in LDAP. `ppolicy`: the password-policy overlay's administrative
 * lock (`pwdAccountLockedTime: 000001010000Z`), which refuses every bind while the tenant's
 * policy has `pwdLockout: TRUE`; a temporary lockout after failed binds is not a disabled
 * account. `attribute`: an attribute of the directory's own convention holds `disabledValue`
 * (and `enabledValue`, or nothing, when enabled).
 */
export const LdapDisable = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('ppolicy') }),
  z.strictObject({
    mode: z.literal('attribute'),
    attribute: LdapAttributeName,
    disabledValue: z.string().min(1),
    enabledValue: z.string().min(1).nullable().default(null),
  }),
]);
export type LdapDisable = z.infer<typeof LdapDisable>;

/** Tenure's user attributes (HR attributes such as department) and the LDAP attribute holding each. */
export const DEFAULT_LDAP_ATTRIBUTE_MAP: Record<string, string> = {
  department: 'departmentNumber',
  title: 'title',
  location: 'l',
  employeeType: 'employeeType',
  employeeNumber: 'employeeNumber',
};

export const LdapTargetSettings = z
  .strictObject({
    /** `ldap://host:port` or `ldaps://host:port`. */
    url: z.string().regex(/^ldaps?:\/\/[^/?#\s]+\/?$/, 'ldap://host:port or ldaps://host:port'),
    /** The account Tenure binds as; it needs write access to usersDn and groupsDn. */
    bindDn: LdapDn,
    /** Users are `inetOrgPerson` entries directly under this DN, named by userIdAttribute. */
    usersDn: LdapDn,
    /** Roles are `groupOfNames` entries directly under this DN, named by `cn`. */
    groupsDn: LdapDn,
    /** Holds Tenure's user id and names the entry (its RDN), so it never changes. */
    userIdAttribute: LdapAttributeName.default('uid'),
    /** Holds the username (unique among users, checked by Tenure before each write). */
    usernameAttribute: LdapAttributeName.default('cn'),
    disable: LdapDisable.default({ mode: 'ppolicy' }),
    /** A role is privileged when its group carries this value in this attribute. */
    privileged: z
      .strictObject({ attribute: LdapAttributeName, value: z.string().min(1) })
      .default({ attribute: 'businessCategory', value: 'privileged' }),
    /** Tenure attribute name → LDAP attribute; an attribute missing here is refused, never dropped. */
    attributeMap: z.record(AttributeName, LdapAttributeName).meta(attributeNames).default(DEFAULT_LDAP_ATTRIBUTE_MAP),
    /**
     * `groupOfNames` needs at least one member: a group Tenure creates, or empties, holds this DN
     * (the convention Keycloak and others use), which is never reported as a member.
     */
    emptyGroupMember: LdapDn.default('cn=empty-membership-placeholder'),
    /** Per connection attempt and per operation. */
    timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    /** Bound connections kept open for reuse. */
    maxIdleConnections: z.number().int().min(0).max(64).default(4),
  })
  .superRefine((settings, ctx) => {
    const reserved = new Map<string, string>([
      [settings.userIdAttribute.toLowerCase(), 'userIdAttribute'],
      [settings.usernameAttribute.toLowerCase(), 'usernameAttribute'],
      ...['objectclass', 'cn', 'sn', 'displayname', 'mail', 'pwdaccountlockedtime', 'pwdreset'].map(
        (name) => [name, name] as [string, string],
      ),
    ]);
    if (settings.disable.mode === 'attribute') reserved.set(settings.disable.attribute.toLowerCase(), 'disable.attribute');
    if (settings.userIdAttribute.toLowerCase() === settings.usernameAttribute.toLowerCase()) {
      ctx.addIssue({ code: 'custom', path: ['usernameAttribute'], message: 'must differ from userIdAttribute' });
    }
    for (const [name, attribute] of Object.entries(settings.attributeMap)) {
      const holder = reserved.get(attribute.toLowerCase());
      if (holder) ctx.addIssue({ code: 'custom', path: ['attributeMap', name], message: `${attribute} is already used for ${holder}` });
    }
  });
export type LdapTargetSettings = z.infer<typeof LdapTargetSettings>;
export type LdapTargetSettingsInput = z.input<typeof LdapTargetSettings>;

export const SCIM_ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
/**
 * A Group schema extension that keeps a role's description and privileged flag, for SCIM
 * services that can be given it. Core SCIM groups have neither, so without it the SCIM target
 * lacks the roleLookup capability.
 */
export const SCIM_TENURE_GROUP = 'urn:tenure:params:scim:schemas:extension:tenure:2.0:Group';

/** Tenure attribute name → SCIM attribute path (a core attribute, or `<schema urn>:<attribute>`). */
export const DEFAULT_SCIM_ATTRIBUTE_MAP: Record<string, string> = {
  department: `${SCIM_ENTERPRISE_USER}:department`,
  title: 'title',
  employeeType: 'userType',
  employeeNumber: `${SCIM_ENTERPRISE_USER}:employeeNumber`,
  costCenter: `${SCIM_ENTERPRISE_USER}:costCenter`,
  organization: `${SCIM_ENTERPRISE_USER}:organization`,
  division: `${SCIM_ENTERPRISE_USER}:division`,
};

const ScimAttributePath = z
  .string()
  .regex(/^(?:urn:[A-Za-z0-9:._-]+:)?[A-Za-z][A-Za-z0-9_-]*$/, 'a SCIM attribute: title, or <schema urn>:<attribute>');

export const ScimTargetSettings = z
  .strictObject({
    /** The service's base URL, e.g. https://idp.example.com/scim/v2. */
    baseUrl: z.url({ protocol: /^https?$/ }),
    /** Store role description and privileged flag in SCIM_TENURE_GROUP (the service must list it for Group). */
    groupExtension: z.boolean().default(false),
    attributeMap: z.record(AttributeName, ScimAttributePath).meta(attributeNames).default(DEFAULT_SCIM_ATTRIBUTE_MAP),
    /** Resources per page of a list; the service's `filter.maxResults` lowers it. */
    pageSize: z.number().int().min(1).max(1000).default(100),
    /** Per HTTP request. */
    timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
  })
  .superRefine((settings, ctx) => {
    const reserved = new Set(['id', 'externalid', 'username', 'displayname', 'emails', 'active', 'groups', 'meta', 'schemas']);
    for (const [name, path] of Object.entries(settings.attributeMap)) {
      if (reserved.has(path.toLowerCase()))
        ctx.addIssue({ code: 'custom', path: ['attributeMap', name], message: `${path} is managed by Tenure` });
    }
  });
export type ScimTargetSettings = z.infer<typeof ScimTargetSettings>;
export type ScimTargetSettingsInput = z.input<typeof ScimTargetSettings>;

/**
 * Where a target's secret (the LDAP bind password, the SCIM bearer token) is kept: the name of an
 * environment variable of the API and worker processes, or a file under their secrets folder
 * (DIRECTORY_SECRETS_DIR). Only the reference is stored and shown; the value is read when a
 * connector is built and never leaves the process. Names must start with TENURE_SECRET_, so a
 * tenant's target can never be handed another setting of the process (DATABASE_URL, say).
 */
export const SECRET_ENV_PREFIX = 'TENURE_SECRET_';
export const DirectorySecretRef = z
  .union([
    z.strictObject({ env: z.string().regex(/^TENURE_SECRET_[A-Z0-9_]{1,100}$/, 'an environment variable named TENURE_SECRET_…') }),
    z.strictObject({
      file: z
        .string()
        .max(1024)
        .regex(/^(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$/, 'an absolute file path without . or .. segments'),
    }),
  ])
  .meta({ id: 'DirectorySecretRef' });
export type DirectorySecretRef = z.infer<typeof DirectorySecretRef>;

/** The kinds of target a tenant's directory can be. */
export const DIRECTORY_TARGET_TYPES = ['builtin', 'ldap', 'scim'] as const;
export type DirectoryTargetType = (typeof DIRECTORY_TARGET_TYPES)[number];

/**
 * The target system a tenant's accounts live in, part of the tenant's policy (its `directory`
 * section): Tenure's built-in directory, an LDAP directory or a SCIM 2.0 service, with settings
 * and a reference to the secret. Changing it is a loosening policy change the tenant approves.
 */
export const DirectoryTarget = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('builtin') }),
    z.strictObject({ type: z.literal('ldap'), settings: LdapTargetSettings, bindPassword: DirectorySecretRef }),
    z.strictObject({ type: z.literal('scim'), settings: ScimTargetSettings, bearerToken: DirectorySecretRef.nullable().default(null) }),
  ])
  .meta({ id: 'DirectoryTarget' });
export type DirectoryTarget = z.infer<typeof DirectoryTarget>;

export const BUILTIN_TARGET: DirectoryTarget = { type: 'builtin' };

/** Where the target is, for evidence, errors and the test endpoint; never a secret. */
export function targetLocation(target: DirectoryTarget): string | null {
  if (target.type === 'ldap') return target.settings.url;
  if (target.type === 'scim') return target.settings.baseUrl;
  return null;
}
