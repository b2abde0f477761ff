import { AndFilter, Attribute, Change, Client, EqualityFilter, OrFilter, ResultCodeError, type Entry, type Filter } from 'ldapts';
import {
  DirectoryConflictError,
  DirectoryError,
  DirectoryNotFoundError,
  DirectoryRejectedError,
  DirectoryUnavailableError,
  DirectoryUnsupportedError,
  type DirectoryAccountState,
  type DirectoryConnector,
  type DirectoryRole,
  type DirectoryRoleInput,
  type DirectoryUser,
  type DirectoryUserInput,
  type DirectoryUserStatus,
} from '../../core/directory/connector.js';
import { noSecuritySettings } from '../../core/directory/settings.js';
import type { LdapTargetSettings } from '../../core/directory/targets.js';

/** An LDAP directory holds a socket pool: close it when the connector is no longer used. */
export interface LdapDirectory extends DirectoryConnector {
  close(): Promise<void>;
}

/** ppolicy's value for "locked by an administrator until unlocked" (RFC draft behera, OpenLDAP slapo-ppolicy). */
export const PPOLICY_ADMIN_LOCK = '000001010000Z';

// LDAP result codes (RFC 4511 §4.1.9) the server uses for "not now": timeLimitExceeded,
// adminLimitExceeded, busy, unavailable, other (OpenLDAP's internal errors).
const TRANSIENT_RESULT_CODES = new Set([3, 11, 51, 52, 80]);
const NO_SUCH_OBJECT = 32;
const NO_SUCH_ATTRIBUTE = 16;
const TYPE_OR_VALUE_EXISTS = 20;
const OBJECT_CLASS_VIOLATION = 65;
const ALREADY_EXISTS = 68;
// What ldapts and Node say when the socket fails, closes or times out.
const CONNECTION_FAILURE = /Connection timeout|Operation timed out|Connection closed|Socket error|Socket connection not established/;
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/** RFC 4514 §2.4: escapes an attribute value for use in a DN ('=' too, which §2.4 allows and some parsers want). */
export function escapeDnValue(value: string): string {
  return value
    .replace(/[\\"+,;<>=]/g, (c) => `\\${c}`)
    .replace(/\0/g, '\\00')
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ');
}

function resultCode(error: unknown): number | undefined {
  return error instanceof ResultCodeError ? error.code : undefined;
}

function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return (typeof code === 'string' && CONNECTION_CODES.has(code)) || CONNECTION_FAILURE.test(error.message);
}

/** Generalized time (RFC 4517 §3.3.13) as written by directories, e.g. 20240102030405Z or 20240102030405.123Z. */
function fromGeneralizedTime(value: string | undefined): string {
  const match = value?.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:[.,](\d+))?Z$/);
  if (!match) return new Date(0).toISOString();
  const [, y, mo, d, h, mi, s, fraction] = match;
  return new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}.${(fraction ?? '0').padEnd(3, '0').slice(0, 3)}Z`).toISOString();
}

/** All values of an attribute of a search entry, whatever case the server spelled its name in. */
function values(entry: Entry, attribute: string): string[] {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  if (key === undefined) return [];
  const value = entry[key];
  if (value === undefined) return [];
  const list: (string | Buffer)[] = Array.isArray(value) ? value : [value];
  return list.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v));
}

const first = (entry: Entry, attribute: string): string | undefined => values(entry, attribute)[0];
const sameText = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
/** DNs as directories write them back: attribute names and values in any case, spaces around separators. */
const sameDn = (a: string, b: string) => {
  const normal = (dn: string) => dn.replace(/\s*([,=+])\s*/g, '$1').toLowerCase();
  return normal(a) === normal(b);
};

/**
 * The first RDN of a DN as the server wrote it back (RFC 4514): its attribute, its value with
 * escapes undone (`\,` or hex `\2C`, which servers use interchangeably), and the parent DN.
 * Undefined for a multi-valued RDN or a value Tenure never writes.
 */
function firstRdn(dn: string): { attribute: string; value: string; parent: string } | undefined {
  const eq = dn.indexOf('=');
  if (eq < 1) return undefined;
  const bytes: number[] = [];
  let i = eq + 1;
  for (; i < dn.length; i++) {
    const c = dn[i]!;
    if (c === ',') break;
    if (c === '+' || c === '"') return undefined;
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const hex = dn.slice(i + 1, i + 3);
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (i + 1 < dn.length) {
      bytes.push(...Buffer.from(dn[i + 1]!, 'utf8'));
      i += 1;
    }
  }
  return { attribute: dn.slice(0, eq).trim(), value: Buffer.from(bytes).toString('utf8'), parent: dn.slice(i + 1) };
}
const replace = (type: string, vals: string[]) => new Change({ operation: 'replace', modification: new Attribute({ type, values: vals }) });
const add = (type: string, vals: string[]) => new Change({ operation: 'add', modification: new Attribute({ type, values: vals }) });
const remove = (type: string, vals: string[]) => new Change({ operation: 'delete', modification: new Attribute({ type, values: vals }) });

/**
 * A tenant's LDAP directory (OpenLDAP or any LDAPv3 server): users are `inetOrgPerson` entries
 * under `usersDn` named by their Tenure id, roles are `groupOfNames` under `groupsDn` named by
 * `cn`, a membership is the user's DN in the group's `member`. Disabling uses the ppolicy lock or
 * a configured attribute; deleting removes the entry and its memberships.
 *
 * Unlock lifts a ppolicy lockout (a dated `pwdAccountLockedTime`) and a password reset sets
 * ppolicy's `pwdReset`. LDAP keeps no sign-in sessions or second factors and cannot end a
 * membership by itself, so those capabilities are declared missing. Ids, usernames and role names
 * compare case-insensitively, as LDAP matches them.
 */
export function createLdapDirectory(settings: LdapTargetSettings, secrets: { bindPassword: string }): LdapDirectory {
  const kind = 'ldap';
  const idle: Client[] = [];
  let closed = false;

  const userDn = (id: string) => `${settings.userIdAttribute}=${escapeDnValue(id)},${settings.usersDn}`;
  const groupDn = (name: string) => `cn=${escapeDnValue(name)},${settings.groupsDn}`;
  const equals = (attribute: string, value: string) => new EqualityFilter({ attribute, value });
  const isUser = equals('objectClass', 'inetOrgPerson');
  const isGroup = equals('objectClass', 'groupOfNames');

  const statusAttributes = settings.disable.mode === 'ppolicy' ? ['pwdAccountLockedTime'] : [settings.disable.attribute];
  const userAttributes = [
    settings.userIdAttribute,
    settings.usernameAttribute,
    'displayName',
    'cn',
    'sn', // written from displayName (profileAttributes): unread, every upsert would rewrite it
    'mail',
    ...Object.values(settings.attributeMap),
    ...statusAttributes,
    'createTimestamp',
    'modifyTimestamp',
  ];

  /** A bound connection, reused when one is idle. autoRebind: a transparent reconnect never runs unauthenticated. */
  async function acquire(): Promise<Client> {
    while (idle.length) {
      const client = idle.pop()!;
      if (client.isConnected && client.isBound) return client;
      await client.unbind().catch(() => undefined);
    }
    const client = new Client({ url: settings.url, timeout: settings.timeoutMs, connectTimeout: settings.timeoutMs, autoRebind: true });
    try {
      await client.bind(settings.bindDn, secrets.bindPassword);
    } catch (error) {
      await client.unbind().catch(() => undefined);
      throw error;
    }
    return client;
  }

  function release(client: Client, healthy: boolean): void {
    if (healthy && !closed && idle.length < settings.maxIdleConnections) idle.push(client);
    else void client.unbind().catch(() => undefined);
  }

  /** The error a caller can act on, naming the target and the operation; never the bind password. */
  function failure(error: unknown, tenantId: string, operation: string): unknown {
    if (error instanceof DirectoryError) return error;
    const where = `LDAP directory ${settings.url} (tenant ${tenantId}), ${operation}`;
    const code = resultCode(error);
    if (code !== undefined) {
      const what = `${(error as Error).name} (result code ${code})${(error as Error).message ? `: ${(error as Error).message}` : ''}`;
      if (TRANSIENT_RESULT_CODES.has(code)) return new DirectoryUnavailableError(`${where}: ${what}`, tenantId, { cause: error });
      return new DirectoryRejectedError(`${where} refused: ${what}`, tenantId, `ldap:${code}`, { cause: error });
    }
    if (isConnectionFailure(error)) {
      return new DirectoryUnavailableError(`${where}: unreachable: ${(error as Error).message}`, tenantId, { cause: error });
    }
    return error;
  }

  async function run<T>(tenantId: string, operation: string, fn: (client: Client) => Promise<T>): Promise<T> {
    if (closed) throw new Error('the LDAP directory connector is closed');
    let client: Client | undefined;
    try {
      client = await acquire();
      const result = await fn(client);
      release(client, true);
      return result;
    } catch (error) {
      if (client) release(client, !isConnectionFailure(error));
      throw failure(error, tenantId, operation);
    }
  }

  /** Entries matching `filter` at `base` (scope base), or none when the base does not exist. */
  async function readEntry(client: Client, dn: string, filter: Filter, attributes: string[]): Promise<Entry | undefined> {
    try {
      const { searchEntries } = await client.search(dn, { scope: 'base', filter, attributes });
      return searchEntries[0];
    } catch (error) {
      if (resultCode(error) === NO_SUCH_OBJECT) return undefined;
      throw error;
    }
  }

  const readUser = (client: Client, id: string) => readEntry(client, userDn(id), isUser, userAttributes);
  // ppolicy's operational attributes: asked for by name, as a search returns none by default.
  const accountAttributes = [...new Set([...statusAttributes, 'pwdAccountLockedTime', 'pwdReset'])];
  const readAccount = (client: Client, id: string) => readEntry(client, userDn(id), isUser, accountAttributes);

  /**
   * A lockout is a dated pwdAccountLockedTime (set by ppolicy after pwdMaxFailure failed binds);
   * in ppolicy mode the administrative lock is the disabled status, not a lockout. A lockout that
   * pwdLockoutDuration lets lapse still reads as locked until the next bind clears it.
   */
  const lockouts = (entry: Entry) =>
    values(entry, 'pwdAccountLockedTime').filter((v) => settings.disable.mode !== 'ppolicy' || v !== PPOLICY_ADMIN_LOCK);

  function statusOf(entry: Entry): DirectoryUserStatus {
    if (settings.disable.mode === 'ppolicy') {
      // A lockout after failed binds carries its own time and lifts by itself; only the administrative lock disables.
      return values(entry, 'pwdAccountLockedTime').includes(PPOLICY_ADMIN_LOCK) ? 'disabled' : 'active';
    }
    const { attribute, disabledValue } = settings.disable;
    return values(entry, attribute).some((v) => sameText(v, disabledValue)) ? 'disabled' : 'active';
  }

  function statusChange(status: 'active' | 'disabled'): Change {
    if (settings.disable.mode === 'ppolicy') return replace('pwdAccountLockedTime', status === 'disabled' ? [PPOLICY_ADMIN_LOCK] : []);
    const { attribute, disabledValue, enabledValue } = settings.disable;
    return replace(attribute, status === 'disabled' ? [disabledValue] : enabledValue === null ? [] : [enabledValue]);
  }

  function toUser(tenantId: string, id: string, entry: Entry): DirectoryUser {
    const attributes: Record<string, unknown> = {};
    for (const [name, attribute] of Object.entries(settings.attributeMap)) {
      const value = first(entry, attribute);
      if (value !== undefined) attributes[name] = value;
    }
    return {
      tenantId,
      id,
      username: first(entry, settings.usernameAttribute) ?? '',
      displayName: first(entry, 'displayName') ?? first(entry, 'cn') ?? '',
      email: first(entry, 'mail') ?? null,
      attributes,
      status: statusOf(entry),
      createdAt: fromGeneralizedTime(first(entry, 'createTimestamp')),
      updatedAt: fromGeneralizedTime(first(entry, 'modifyTimestamp')),
    };
  }

  /** The mapped LDAP attributes of `attributes`; one without a mapping is refused, never dropped. */
  function mappedAttributes(tenantId: string, attributes: Record<string, unknown>): Map<string, string> {
    const mapped = new Map<string, string>();
    for (const [name, value] of Object.entries(attributes)) {
      const attribute = settings.attributeMap[name];
      if (attribute === undefined) {
        throw new DirectoryRejectedError(
          `LDAP directory ${settings.url} (tenant ${tenantId}) has no attribute for user attribute "${name}"; map it in the target's attributeMap`,
          tenantId,
          'unmapped-attribute',
        );
      }
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        throw new DirectoryRejectedError(
          `LDAP directory ${settings.url} (tenant ${tenantId}) cannot store user attribute "${name}": only text, numbers and booleans fit an LDAP attribute`,
          tenantId,
          'attribute-type',
        );
      }
      if (String(value) !== '') mapped.set(attribute, String(value));
    }
    return mapped;
  }

  /**
   * cn (required) holds the display name unless it is the id or username attribute; sn (required)
   * the display name too, as Tenure has no surname of its own.
   */
  const cnIsFree = !sameText(settings.userIdAttribute, 'cn') && !sameText(settings.usernameAttribute, 'cn');
  function profileAttributes(user: DirectoryUserInput): Map<string, string> {
    return new Map([
      [settings.usernameAttribute, user.username],
      ...(cnIsFree ? [['cn', user.displayName] as [string, string]] : []),
      ['sn', user.displayName],
      ['displayName', user.displayName],
    ]);
  }

  async function assertUsernameFree(client: Client, tenantId: string, user: DirectoryUserInput): Promise<void> {
    const { searchEntries } = await client.search(settings.usersDn, {
      scope: 'one',
      filter: new AndFilter({ filters: [isUser, equals(settings.usernameAttribute, user.username)] }),
      attributes: [settings.userIdAttribute],
    });
    const other = searchEntries.find((entry) => !values(entry, settings.userIdAttribute).some((v) => sameText(v, user.id)));
    if (other) {
      throw new DirectoryConflictError(
        `username ${user.username} is held by another user in the LDAP directory of tenant ${tenantId} (${other.dn})`,
        tenantId,
      );
    }
  }

  async function createUser(client: Client, user: DirectoryUserInput, mapped: Map<string, string>): Promise<boolean> {
    const entry: Record<string, string[]> = { objectClass: ['inetOrgPerson'], [settings.userIdAttribute]: [user.id] };
    for (const [attribute, value] of [...profileAttributes(user), ...mapped]) entry[attribute] = [value];
    if (user.email) entry.mail = [user.email];
    const status = user.initialStatus ?? 'active';
    if (status === 'disabled') {
      const change = statusChange('disabled').modification;
      entry[change.type] = change.values as string[];
    } else if (settings.disable.mode === 'attribute' && settings.disable.enabledValue !== null) {
      entry[settings.disable.attribute] = [settings.disable.enabledValue];
    }
    try {
      await client.add(userDn(user.id), entry);
      return true;
    } catch (error) {
      if (resultCode(error) === ALREADY_EXISTS) return false; // created concurrently: update it instead
      throw error;
    }
  }

  async function updateUser(client: Client, existing: Entry, user: DirectoryUserInput, mapped: Map<string, string>): Promise<void> {
    const changes: Change[] = [];
    const differs = (attribute: string, wanted: string[]) => {
      const current = values(existing, attribute);
      return current.length !== wanted.length || current.some((v, i) => v !== wanted[i]);
    };
    for (const [attribute, value] of profileAttributes(user)) if (differs(attribute, [value])) changes.push(replace(attribute, [value]));
    if (user.email !== undefined) {
      const wanted = user.email ? [user.email] : [];
      if (differs('mail', wanted)) changes.push(replace('mail', wanted));
    }
    if (user.attributes !== undefined) {
      for (const attribute of new Set(Object.values(settings.attributeMap))) {
        const wanted = mapped.has(attribute) ? [mapped.get(attribute)!] : [];
        if (differs(attribute, wanted)) changes.push(replace(attribute, wanted));
      }
    }
    if (changes.length) await client.modify(existing.dn, changes);
  }

  /** Adds or removes one member; both are no-ops when already done, so a retry is harmless. */
  async function addMember(client: Client, group: string, member: string): Promise<void> {
    try {
      await client.modify(group, add('member', [member]));
    } catch (error) {
      if (resultCode(error) !== TYPE_OR_VALUE_EXISTS) throw error;
    }
  }

  async function removeMember(client: Client, group: string, member: string): Promise<void> {
    try {
      await client.modify(group, remove('member', [member]));
    } catch (error) {
      const code = resultCode(error);
      if (code === NO_SUCH_ATTRIBUTE || code === NO_SUCH_OBJECT) return;
      if (code !== OBJECT_CLASS_VIOLATION) throw error;
      // The last member of a groupOfNames: the placeholder takes its place in the same change.
      try {
        await client.modify(group, [add('member', [settings.emptyGroupMember]), remove('member', [member])]);
      } catch (retryError) {
        const retryCode = resultCode(retryError);
        if (retryCode !== NO_SUCH_ATTRIBUTE && retryCode !== NO_SUCH_OBJECT) throw retryError;
      }
    }
  }

  async function groupsOf(client: Client, id: string): Promise<Entry[]> {
    const { searchEntries } = await client.search(settings.groupsDn, {
      scope: 'one',
      filter: new AndFilter({ filters: [isGroup, equals('member', userDn(id))] }),
      attributes: ['cn'],
    });
    return searchEntries;
  }

  /** The Tenure id of a member DN: a user entry directly under usersDn, else undefined (a nested group, a dangling DN). */
  async function memberId(client: Client, dn: string): Promise<string | undefined> {
    if (sameDn(dn, settings.emptyGroupMember)) return undefined;
    let entry: Entry | undefined;
    try {
      entry = await readEntry(client, dn, isUser, [settings.userIdAttribute]);
    } catch (error) {
      // A member value outside this server's naming contexts, or not a DN it accepts.
      if (resultCode(error) !== undefined && !TRANSIENT_RESULT_CODES.has(resultCode(error)!)) return undefined;
      throw error;
    }
    if (!entry) return undefined;
    const rdn = firstRdn(entry.dn);
    if (!rdn || !sameText(rdn.attribute, settings.userIdAttribute) || !sameDn(rdn.parent, settings.usersDn)) return undefined;
    return values(entry, settings.userIdAttribute).find((id) => sameText(id, rdn.value));
  }

  const privilegedValue = (entry: Entry) =>
    values(entry, settings.privileged.attribute).some((v) => sameText(v, settings.privileged.value));

  // ppolicy could hold the password and lockout rules (pwdMinLength, pwdInHistory, pwdMaxAge,
  // pwdMaxFailure, pwdLockoutDuration) in the tenant's default policy entry; not written yet, so
  // declared missing, and LDAP has no MFA or session rules of its own.
  const capabilities = {
    sessions: false,
    membershipEnd: false,
    roleLookup: true,
    roleDelete: false,
    unlock: true,
    mfaReset: false,
    passwordReset: true,
    mfaPolicy: false,
    passwordPolicy: false,
    lockoutPolicy: false,
    sessionPolicy: false,
  };

  return {
    kind,
    capabilities,

    upsertUser(tenantId: string, user: DirectoryUserInput): Promise<DirectoryUser> {
      return run(tenantId, `upsert user ${user.id}`, async (client) => {
        const mapped = mappedAttributes(tenantId, user.attributes ?? {});
        await assertUsernameFree(client, tenantId, user);
        let existing = await readUser(client, user.id);
        if (!existing) {
          if (user.initialStatus === 'deleted') {
            throw new DirectoryRejectedError(
              `LDAP directory of tenant ${tenantId} removes deleted users, so it cannot create user ${user.id} as deleted`,
              tenantId,
              'create-deleted',
            );
          }
          if (!(await createUser(client, user, mapped))) existing = await readUser(client, user.id);
        }
        if (existing) await updateUser(client, existing, user, mapped);
        const stored = await readUser(client, user.id);
        if (!stored) throw new DirectoryNotFoundError('user', user.id, tenantId); // deleted while we wrote it
        return toUser(tenantId, user.id, stored);
      });
    },

    getUser(tenantId: string, userId: string): Promise<DirectoryUser | undefined> {
      return run(tenantId, `read user ${userId}`, async (client) => {
        const entry = await readUser(client, userId);
        return entry ? toUser(tenantId, userId, entry) : undefined;
      });
    },

    setUserStatus(tenantId: string, userId: string, status: DirectoryUserStatus): Promise<void> {
      return run(tenantId, `set user ${userId} ${status}`, async (client) => {
        const entry = await readUser(client, userId);
        if (status === 'deleted') {
          if (!entry) return;
          // Memberships first: without the refint overlay a removed entry would stay in its groups.
          for (const group of await groupsOf(client, userId)) await removeMember(client, group.dn, userDn(userId));
          try {
            await client.del(entry.dn);
          } catch (error) {
            if (resultCode(error) !== NO_SUCH_OBJECT) throw error;
          }
          return;
        }
        if (!entry) throw new DirectoryNotFoundError('user', userId, tenantId);
        if (statusOf(entry) !== status) await client.modify(entry.dn, statusChange(status));
      });
    },

    upsertRole(tenantId: string, role: DirectoryRoleInput): Promise<void> {
      return run(tenantId, `upsert role ${role.name}`, async (client) => {
        const dn = groupDn(role.name);
        const attributes = ['cn', 'description', settings.privileged.attribute];
        let existing = await readEntry(client, dn, isGroup, attributes);
        if (!existing) {
          const entry: Record<string, string[]> = { objectClass: ['groupOfNames'], cn: [role.name], member: [settings.emptyGroupMember] };
          if (role.description) entry.description = [role.description];
          if (role.privileged) entry[settings.privileged.attribute] = [settings.privileged.value];
          try {
            await client.add(dn, entry);
            return;
          } catch (error) {
            if (resultCode(error) !== ALREADY_EXISTS) throw error;
            existing = await readEntry(client, dn, isGroup, attributes);
            if (!existing) throw error;
          }
        }
        const changes: Change[] = [];
        if (role.description !== undefined && (first(existing, 'description') ?? '') !== role.description) {
          changes.push(replace('description', role.description ? [role.description] : []));
        }
        if (role.privileged !== undefined && role.privileged !== privilegedValue(existing)) {
          // Only Tenure's value: the attribute may carry other values of the directory's own.
          changes.push((role.privileged ? add : remove)(settings.privileged.attribute, [settings.privileged.value]));
        }
        if (changes.length) await client.modify(existing.dn, changes);
      });
    },

    getRoles(tenantId: string, names: readonly string[]): Promise<DirectoryRole[]> {
      return run(tenantId, 'read roles', async (client) => {
        const found = new Map<string, DirectoryRole>();
        const wanted = [...new Set(names)];
        for (let i = 0; i < wanted.length; i += 50) {
          const chunk = wanted.slice(i, i + 50);
          const { searchEntries } = await client.search(settings.groupsDn, {
            scope: 'one',
            filter: new AndFilter({ filters: [isGroup, new OrFilter({ filters: chunk.map((name) => equals('cn', name)) })] }),
            attributes: ['cn', 'description', settings.privileged.attribute],
          });
          for (const entry of searchEntries) {
            for (const name of chunk) {
              const rdn = firstRdn(entry.dn);
              if (!rdn || !sameText(rdn.value, name) || !sameDn(rdn.parent, settings.groupsDn)) continue;
              found.set(name, { name, description: first(entry, 'description') ?? '', privileged: privilegedValue(entry) });
            }
          }
        }
        return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      });
    },

    listAllRoles(tenantId: string): Promise<DirectoryRole[]> {
      return run(tenantId, 'list roles', async (client) => {
        const { searchEntries } = await client.search(settings.groupsDn, {
          scope: 'one',
          filter: isGroup,
          attributes: ['cn', 'description', settings.privileged.attribute],
        });
        const roles = searchEntries.flatMap((entry) => {
          const name = first(entry, 'cn');
          return name === undefined ? [] : [{ name, description: first(entry, 'description') ?? '', privileged: privilegedValue(entry) }];
        });
        return roles.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      });
    },

    deleteRole(tenantId: string): Promise<void> {
      return Promise.reject(new DirectoryUnsupportedError('roleDelete', kind, tenantId));
    },

    lastSignIns(tenantId: string): Promise<Record<string, string | null>> {
      return Promise.reject(new DirectoryUnsupportedError('sessions', kind, tenantId));
    },

    getUsers(tenantId: string, userIds: readonly string[]): Promise<DirectoryUser[]> {
      return run(tenantId, 'read users', async (client) => {
        const users: DirectoryUser[] = [];
        for (const userId of new Set(userIds)) {
          const entry = await readUser(client, userId);
          if (entry) users.push(toUser(tenantId, userId, entry));
        }
        return users;
      });
    },

    assignRole(tenantId: string, userId: string, role: string): Promise<void> {
      // No membershipEnd: `until` is ignored, as the contract allows; Tenure removes the role at the end.
      return run(tenantId, `assign role ${role} to ${userId}`, async (client) => {
        if (!(await readEntry(client, userDn(userId), isUser, ['1.1']))) throw new DirectoryNotFoundError('user', userId, tenantId);
        try {
          await addMember(client, groupDn(role), userDn(userId));
        } catch (error) {
          if (resultCode(error) === NO_SUCH_OBJECT) throw new DirectoryNotFoundError('role', role, tenantId, { cause: error });
          throw error;
        }
      });
    },

    removeRole(tenantId: string, userId: string, role: string): Promise<void> {
      return run(tenantId, `remove role ${role} from ${userId}`, (client) => removeMember(client, groupDn(role), userDn(userId)));
    },

    hasRole(tenantId: string, userId: string, role: string): Promise<boolean> {
      return run(tenantId, `read role ${role} of ${userId}`, async (client) => {
        const entry = await readEntry(client, groupDn(role), new AndFilter({ filters: [isGroup, equals('member', userDn(userId))] }), [
          '1.1',
        ]);
        return entry !== undefined;
      });
    },

    listRoles(tenantId: string, userId: string): Promise<string[]> {
      return run(tenantId, `list roles of ${userId}`, async (client) => {
        const names = (await groupsOf(client, userId)).map((entry) => first(entry, 'cn')).filter((cn) => cn !== undefined);
        return [...new Set(names)].sort();
      });
    },

    listMembers(tenantId: string, role: string): Promise<string[]> {
      return run(tenantId, `list members of ${role}`, async (client) => {
        const group = await readEntry(client, groupDn(role), isGroup, ['member']);
        if (!group) return [];
        const members = values(group, 'member');
        const ids: string[] = [];
        for (let i = 0; i < members.length; i += 16) {
          const resolved = await Promise.all(members.slice(i, i + 16).map((dn) => memberId(client, dn)));
          ids.push(...resolved.filter((id) => id !== undefined));
        }
        return [...new Set(ids)].sort();
      });
    },

    revokeSessions(tenantId: string): Promise<number> {
      return Promise.reject(new DirectoryUnsupportedError('sessions', kind, tenantId));
    },

    getAccountState(tenantId: string, userId: string): Promise<DirectoryAccountState | undefined> {
      return run(tenantId, `read account of ${userId}`, async (client) => {
        const entry = await readAccount(client, userId);
        if (!entry) return undefined;
        return {
          status: statusOf(entry),
          locked: lockouts(entry).length > 0,
          mfaFactors: null,
          passwordResetRequired: values(entry, 'pwdReset').some((v) => sameText(v, 'TRUE')),
          liveSessions: null,
        };
      });
    },

    unlockUser(tenantId: string, userId: string): Promise<void> {
      return run(tenantId, `unlock user ${userId}`, async (client) => {
        const entry = await readAccount(client, userId);
        if (!entry) throw new DirectoryNotFoundError('user', userId, tenantId);
        const lockedAt = lockouts(entry);
        if (lockedAt.length === 0) return;
        // Only the lockout's own values; ppolicy clears pwdFailureTime with them, so the count starts afresh.
        try {
          await client.modify(entry.dn, remove('pwdAccountLockedTime', lockedAt));
        } catch (error) {
          if (resultCode(error) !== NO_SUCH_ATTRIBUTE) throw error; // lifted meanwhile (a bind, a retry)
        }
      });
    },

    resetMfa(tenantId: string): Promise<number> {
      return Promise.reject(new DirectoryUnsupportedError('mfaReset', kind, tenantId));
    },

    requirePasswordReset(tenantId: string, userId: string): Promise<void> {
      return run(tenantId, `require a password reset of ${userId}`, async (client) => {
        const entry = await readAccount(client, userId);
        if (!entry) throw new DirectoryNotFoundError('user', userId, tenantId);
        // ppolicy: with pwdMustChange in the user's policy, a bind then allows only the password change.
        if (!values(entry, 'pwdReset').some((v) => sameText(v, 'TRUE'))) await client.modify(entry.dn, replace('pwdReset', ['TRUE']));
      });
    },

    ...noSecuritySettings({ kind, capabilities }),

    async close(): Promise<void> {
      closed = true;
      await Promise.all(idle.splice(0).map((client) => client.unbind().catch(() => undefined)));
    },
  };
}
