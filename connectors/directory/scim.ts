import {
  DirectoryConflictError,
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
import { SCIM_TENURE_GROUP, type ScimTargetSettings } from '../../core/directory/targets.js';

const CORE_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const CORE_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const MEDIA_TYPE = 'application/scim+json';

/** What the service said about itself (RFC 7643 §5, §6), read once per connector. */
export interface ScimDiscovery {
  patch: boolean;
  filter: boolean;
  /** `filter.maxResults`, when the service states one. */
  maxResults: number | null;
  /** Whether the Group resource type lists SCIM_TENURE_GROUP (only asked when groupExtension is set). */
  groupExtension: boolean;
}

export interface ScimDirectory extends DirectoryConnector {
  /** Reads ServiceProviderConfig (and the Group resource type): what this connector relies on. */
  discover(tenantId: string): Promise<ScimDiscovery>;
}

interface ScimResource {
  id: string;
  externalId?: string;
  userName?: string;
  displayName?: string;
  active?: boolean;
  emails?: { value?: string; primary?: boolean }[];
  members?: { value?: string }[];
  meta?: { created?: string; lastModified?: string };
  [attribute: string]: unknown;
}

interface ListResponse {
  totalResults?: number;
  itemsPerPage?: number;
  startIndex?: number;
  Resources?: ScimResource[];
}

interface ScimErrorBody {
  detail?: string;
  scimType?: string;
}

type PatchOperation = { op: 'add' | 'replace' | 'remove'; path: string; value?: unknown };

interface HttpResult {
  status: number;
  body: unknown;
}

/** A filter's string literal: RFC 7644 §3.4.2.2 compares JSON values, so JSON's escaping is the filter's. */
const literal = (value: string) => JSON.stringify(value);
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A tenant's SCIM 2.0 service (RFC 7643/7644) over `fetch`. Tenure's user id is the SCIM user's
 * `externalId` (the service assigns its own `id`), a role is a Group found by `displayName`,
 * disabling sets `active: false`, memberships change by PATCH on the group's `members`, and
 * deleting removes the user from its groups and then DELETEs it.
 *
 * Lists are read page by page (`startIndex`/`count`). HTTP 429, 408 and 5xx, timeouts and network
 * failures are transient; any other 4xx is a permanent refusal, naming the service's scimType.
 * SCIM has no sessions, lockouts, second factors or password-reset flag, and no membership end. Role description and privileged flag need
 * the Tenure Group extension (`groupExtension`); without it the roleLookup capability is missing.
 */
export function createScimDirectory(
  settings: ScimTargetSettings,
  secrets: { bearerToken?: string | null },
  options: { fetch?: typeof fetch } = {},
): ScimDirectory {
  const kind = 'scim';
  const fetchImpl = options.fetch ?? fetch;
  const base = settings.baseUrl.replace(/\/+$/, '');
  // RFC 7643 has no lockout, second factors, password-reset flag or sessions: only `active`.
  const capabilities = {
    sessions: false,
    membershipEnd: false,
    roleLookup: settings.groupExtension,
    roleDelete: false,
    unlock: false,
    mfaReset: false,
    passwordReset: false,
    // RFC 7643's ServiceProviderConfig describes the service, but holds no MFA, password, lockout or session rules to set.
    mfaPolicy: false,
    passwordPolicy: false,
    lockoutPolicy: false,
    sessionPolicy: false,
  };
  let discovered: Promise<ScimDiscovery> | undefined;

  const where = (tenantId: string, operation: string) => `SCIM service ${base} (tenant ${tenantId}), ${operation}`;

  /** One request; transient failures and permanent refusals become DirectoryErrors, 404 and 409 are the caller's to read. */
  async function http(
    tenantId: string,
    operation: string,
    method: string,
    path: string,
    { query, body }: { query?: Record<string, string>; body?: unknown } = {},
  ): Promise<HttpResult> {
    const url = `${base}${path}${query ? `?${new URLSearchParams(query).toString()}` : ''}`;
    const headers: Record<string, string> = { accept: MEDIA_TYPE };
    if (body !== undefined) headers['content-type'] = MEDIA_TYPE;
    if (secrets.bearerToken) headers.authorization = `Bearer ${secrets.bearerToken}`;
    let response: Response;
    let text: string;
    try {
      response = await fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(settings.timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new DirectoryUnavailableError(`${where(tenantId, operation)}: unreachable (${method} ${path}): ${reason}`, tenantId, {
        cause: error,
      });
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch (error) {
      if (response.ok) {
        throw new DirectoryRejectedError(
          `${where(tenantId, operation)}: ${method} ${path} answered something other than JSON`,
          tenantId,
          'scim:not-json',
          {
            cause: error,
          },
        );
      }
    }
    if (response.ok || response.status === 404 || response.status === 409) return { status: response.status, body: parsed };
    const problem = (parsed ?? {}) as ScimErrorBody;
    const said = `${response.status}${problem.scimType ? ` ${problem.scimType}` : ''}${problem.detail ? `: ${problem.detail}` : ''}`;
    if (response.status === 429 || response.status === 408 || response.status >= 500) {
      const retryAfter = response.headers.get('retry-after');
      throw new DirectoryUnavailableError(
        `${where(tenantId, operation)}: ${method} ${path} answered ${said}${retryAfter ? ` (retry after ${retryAfter})` : ''}`,
        tenantId,
      );
    }
    throw new DirectoryRejectedError(
      `${where(tenantId, operation)} refused: ${method} ${path} answered ${said}`,
      tenantId,
      `http:${response.status}${problem.scimType ? `:${problem.scimType}` : ''}`,
    );
  }

  /** A 409 (a value another resource holds) as the contract's conflict. */
  function conflict(tenantId: string, operation: string, result: HttpResult): DirectoryConflictError {
    const detail = (result.body as ScimErrorBody | undefined)?.detail;
    return new DirectoryConflictError(`${where(tenantId, operation)}: ${detail ?? 'conflict'}`, tenantId);
  }

  async function discover(tenantId: string): Promise<ScimDiscovery> {
    const config = await http(tenantId, 'discovery', 'GET', '/ServiceProviderConfig');
    if (config.status !== 200) {
      throw new DirectoryRejectedError(
        `${where(tenantId, 'discovery')}: no ServiceProviderConfig (${config.status})`,
        tenantId,
        'scim:discovery',
      );
    }
    const body = config.body as { patch?: { supported?: boolean }; filter?: { supported?: boolean; maxResults?: number } };
    const found: ScimDiscovery = {
      patch: body.patch?.supported === true,
      filter: body.filter?.supported === true,
      maxResults: typeof body.filter?.maxResults === 'number' ? body.filter.maxResults : null,
      groupExtension: false,
    };
    if (settings.groupExtension) {
      const types = await http(tenantId, 'discovery', 'GET', '/ResourceTypes');
      const list = Array.isArray(types.body) ? (types.body as unknown[]) : ((types.body as ListResponse | undefined)?.Resources ?? []);
      const group = (list as { name?: string; endpoint?: string; schemaExtensions?: { schema?: string }[] }[]).find(
        (type) => type.name === 'Group' || type.endpoint === '/Groups',
      );
      found.groupExtension = (group?.schemaExtensions ?? []).some((extension) => extension.schema === SCIM_TENURE_GROUP);
    }
    return found;
  }

  /** Discovery once per connector (again after a failure); refuses a service that lacks what Tenure relies on. */
  async function ready(tenantId: string): Promise<ScimDiscovery> {
    discovered ??= discover(tenantId);
    let found: ScimDiscovery;
    try {
      found = await discovered;
    } catch (error) {
      discovered = undefined;
      throw error;
    }
    const missing = [
      ...(found.patch ? [] : ['PATCH (group memberships change by PATCH)']),
      ...(found.filter ? [] : ['filtering (users are found by externalId)']),
      ...(settings.groupExtension && !found.groupExtension ? [`the ${SCIM_TENURE_GROUP} extension on Group (groupExtension is set)`] : []),
    ];
    if (missing.length) {
      throw new DirectoryRejectedError(
        `${where(tenantId, 'discovery')}: the service does not support ${missing.join(', ')}`,
        tenantId,
        'scim:unsupported-service',
      );
    }
    return found;
  }

  /** Every resource a filtered list returns, page by page. */
  async function list(tenantId: string, operation: string, endpoint: string, query: Record<string, string>): Promise<ScimResource[]> {
    const found = await ready(tenantId);
    const count = Math.min(settings.pageSize, found.maxResults ?? settings.pageSize);
    const resources: ScimResource[] = [];
    for (let startIndex = 1; ;) {
      const result = await http(tenantId, operation, 'GET', endpoint, {
        query: { ...query, startIndex: String(startIndex), count: String(count) },
      });
      if (result.status !== 200)
        throw new DirectoryRejectedError(
          `${where(tenantId, operation)}: ${endpoint} answered ${result.status}`,
          tenantId,
          `http:${result.status}`,
        );
      const page = (result.body ?? {}) as ListResponse;
      const items = page.Resources ?? [];
      resources.push(...items);
      startIndex += items.length;
      if (items.length === 0 || startIndex > (page.totalResults ?? 0)) return resources;
    }
  }

  /** The user whose externalId is `userId`; the service may match case-insensitively, Tenure does not. */
  async function findUser(tenantId: string, userId: string, operation: string): Promise<ScimResource | undefined> {
    const matches = (await list(tenantId, operation, '/Users', { filter: `externalId eq ${literal(userId)}` })).filter(
      (user) => user.externalId === userId,
    );
    if (matches.length > 1) {
      throw new DirectoryConflictError(`${where(tenantId, operation)}: ${matches.length} users carry externalId ${userId}`, tenantId);
    }
    return matches[0];
  }

  async function findGroup(tenantId: string, role: string, operation: string): Promise<ScimResource | undefined> {
    const matches = (
      await list(tenantId, operation, '/Groups', { filter: `displayName eq ${literal(role)}`, excludedAttributes: 'members' })
    ).filter((group) => group.displayName === role);
    if (matches.length > 1) {
      throw new DirectoryConflictError(`${where(tenantId, operation)}: ${matches.length} groups are named ${role}`, tenantId);
    }
    return matches[0];
  }

  /** `title` or `urn:…:User:department`: where an attribute path points in a resource. */
  function locate(path: string): { schema: string | null; name: string } {
    const at = path.lastIndexOf(':');
    return at < 0 ? { schema: null, name: path } : { schema: path.slice(0, at), name: path.slice(at + 1) };
  }

  function read(resource: ScimResource, path: string): unknown {
    const { schema, name } = locate(path);
    const holder = schema === null ? resource : (resource[schema] as Record<string, unknown> | undefined);
    return holder?.[name];
  }

  function write(target: Record<string, unknown>, path: string, value: unknown): void {
    const { schema, name } = locate(path);
    if (schema === null) {
      target[name] = value;
    } else {
      const holder = target[schema];
      target[schema] = { ...(typeof holder === 'object' && holder !== null ? holder : {}), [name]: value };
    }
  }

  function primaryEmail(resource: ScimResource): string | null {
    const emails = resource.emails ?? [];
    return (emails.find((email) => email.primary) ?? emails[0])?.value ?? null;
  }

  function toUser(tenantId: string, resource: ScimResource): DirectoryUser {
    const attributes: Record<string, unknown> = {};
    for (const [name, path] of Object.entries(settings.attributeMap)) {
      const value = read(resource, path);
      if (value !== undefined && value !== null && value !== '') attributes[name] = value;
    }
    return {
      tenantId,
      id: resource.externalId ?? '',
      username: resource.userName ?? '',
      displayName: resource.displayName ?? resource.userName ?? '',
      email: primaryEmail(resource),
      attributes,
      status: resource.active === false ? 'disabled' : 'active',
      // A service without meta gives no times; the epoch says "unknown" without inventing one.
      createdAt: new Date(resource.meta?.created ?? 0).toISOString(),
      updatedAt: new Date(resource.meta?.lastModified ?? resource.meta?.created ?? 0).toISOString(),
    };
  }

  /** The mapped SCIM paths of `attributes`; one without a mapping is refused, never dropped. */
  function mappedAttributes(tenantId: string, attributes: Record<string, unknown>): Map<string, unknown> {
    const mapped = new Map<string, unknown>();
    for (const [name, value] of Object.entries(attributes)) {
      const path = settings.attributeMap[name];
      if (path === undefined) {
        throw new DirectoryRejectedError(
          `SCIM service ${base} (tenant ${tenantId}) has no attribute for user attribute "${name}"; map it in the target's attributeMap`,
          tenantId,
          'unmapped-attribute',
        );
      }
      if (value !== null && value !== '') mapped.set(path, value);
    }
    return mapped;
  }

  async function getResource(tenantId: string, operation: string, endpoint: string, id: string): Promise<ScimResource | undefined> {
    const result = await http(tenantId, operation, 'GET', `${endpoint}/${encodeURIComponent(id)}`);
    return result.status === 404 ? undefined : (result.body as ScimResource);
  }

  async function patch(
    tenantId: string,
    operation: string,
    endpoint: string,
    id: string,
    operations: PatchOperation[],
  ): Promise<HttpResult> {
    return http(tenantId, operation, 'PATCH', `${endpoint}/${encodeURIComponent(id)}`, {
      body: { schemas: [PATCH_OP], Operations: operations },
    });
  }

  async function createUser(tenantId: string, user: DirectoryUserInput, mapped: Map<string, unknown>, operation: string) {
    const resource: Record<string, unknown> = {
      externalId: user.id,
      userName: user.username,
      displayName: user.displayName,
      active: (user.initialStatus ?? 'active') === 'active',
    };
    if (user.email) resource.emails = [{ value: user.email, type: 'work', primary: true }];
    for (const [path, value] of mapped) write(resource, path, value);
    const extensions = Object.keys(resource).filter((key) => key.startsWith('urn:'));
    return http(tenantId, operation, 'POST', '/Users', { body: { schemas: [CORE_USER, ...extensions], ...resource } });
  }

  function userChanges(existing: ScimResource, user: DirectoryUserInput, mapped: Map<string, unknown>): PatchOperation[] {
    const operations: PatchOperation[] = [];
    if (existing.userName !== user.username) operations.push({ op: 'replace', path: 'userName', value: user.username });
    if (existing.displayName !== user.displayName) operations.push({ op: 'replace', path: 'displayName', value: user.displayName });
    if (user.email !== undefined && primaryEmail(existing) !== (user.email || null)) {
      operations.push(
        user.email
          ? { op: 'replace', path: 'emails', value: [{ value: user.email, type: 'work', primary: true }] }
          : { op: 'remove', path: 'emails' },
      );
    }
    if (user.attributes !== undefined) {
      for (const path of new Set(Object.values(settings.attributeMap))) {
        const current = read(existing, path);
        const wanted = mapped.get(path);
        if (wanted === undefined && current !== undefined && current !== null) operations.push({ op: 'remove', path });
        else if (wanted !== undefined && current !== wanted) operations.push({ op: 'replace', path, value: wanted });
      }
    }
    return operations;
  }

  async function removeMember(tenantId: string, operation: string, groupId: string, userScimId: string): Promise<void> {
    const result = await patch(tenantId, operation, '/Groups', groupId, [
      { op: 'remove', path: `members[value eq ${literal(userScimId)}]` },
    ]);
    if (result.status === 409) throw conflict(tenantId, operation, result);
    // A group gone meanwhile holds nobody. RFC 7644 lets a service answer 400 noTarget for an absent member: that is done too.
  }

  async function groupsOf(tenantId: string, operation: string, userScimId: string): Promise<ScimResource[]> {
    return list(tenantId, operation, '/Groups', { filter: `members.value eq ${literal(userScimId)}`, attributes: 'displayName' });
  }

  /** Rejects a role carrying a description or privileged flag this service cannot keep. */
  function assertRoleFits(tenantId: string, role: DirectoryRoleInput): void {
    if (!settings.groupExtension && (role.description || role.privileged))
      throw new DirectoryUnsupportedError('roleLookup', kind, tenantId);
  }

  function roleOf(group: ScimResource): DirectoryRole {
    const extension = (group[SCIM_TENURE_GROUP] ?? {}) as { description?: string; privileged?: boolean };
    return { name: group.displayName ?? '', description: extension.description ?? '', privileged: extension.privileged === true };
  }

  return {
    kind,
    capabilities,
    discover: (tenantId: string) => ready(tenantId),

    async upsertUser(tenantId: string, user: DirectoryUserInput): Promise<DirectoryUser> {
      const operation = `upsert user ${user.id}`;
      const mapped = mappedAttributes(tenantId, user.attributes ?? {});
      let existing = await findUser(tenantId, user.id, operation);
      if (!existing) {
        if (user.initialStatus === 'deleted') {
          throw new DirectoryRejectedError(
            `${where(tenantId, operation)}: the service removes deleted users, so it cannot create one as deleted`,
            tenantId,
            'create-deleted',
          );
        }
        const created = await createUser(tenantId, user, mapped, operation);
        if (created.status !== 409) return toUser(tenantId, created.body as ScimResource);
        // Created concurrently (a retry racing its first attempt), or the username is someone else's.
        existing = await findUser(tenantId, user.id, operation);
        if (!existing) throw conflict(tenantId, operation, created);
      }
      const operations = userChanges(existing, user, mapped);
      if (operations.length === 0) return toUser(tenantId, existing);
      const result = await patch(tenantId, operation, '/Users', existing.id, operations);
      if (result.status === 409) throw conflict(tenantId, operation, result);
      if (result.status === 404)
        throw new DirectoryUnavailableError(`${where(tenantId, operation)}: the user was removed while being updated`, tenantId);
      const updated =
        result.status === 200 && result.body
          ? (result.body as ScimResource)
          : await getResource(tenantId, operation, '/Users', existing.id);
      if (!updated)
        throw new DirectoryUnavailableError(`${where(tenantId, operation)}: the user was removed while being updated`, tenantId);
      return toUser(tenantId, updated);
    },

    async getUser(tenantId: string, userId: string): Promise<DirectoryUser | undefined> {
      const user = await findUser(tenantId, userId, `read user ${userId}`);
      return user ? toUser(tenantId, user) : undefined;
    },

    async setUserStatus(tenantId: string, userId: string, status: DirectoryUserStatus): Promise<void> {
      const operation = `set user ${userId} ${status}`;
      const user = await findUser(tenantId, userId, operation);
      if (status === 'deleted') {
        if (!user) return;
        // Memberships first: a service may keep a removed user's id in its groups.
        for (const group of await groupsOf(tenantId, operation, user.id)) await removeMember(tenantId, operation, group.id, user.id);
        await http(tenantId, operation, 'DELETE', `/Users/${encodeURIComponent(user.id)}`); // 404: already gone
        return;
      }
      if (!user) throw new DirectoryNotFoundError('user', userId, tenantId);
      if ((user.active !== false) === (status === 'active')) return;
      const result = await patch(tenantId, operation, '/Users', user.id, [{ op: 'replace', path: 'active', value: status === 'active' }]);
      if (result.status === 404) throw new DirectoryNotFoundError('user', userId, tenantId);
    },

    async upsertRole(tenantId: string, role: DirectoryRoleInput): Promise<void> {
      const operation = `upsert role ${role.name}`;
      assertRoleFits(tenantId, role);
      const existing = await findGroup(tenantId, role.name, operation);
      if (!existing) {
        const body: Record<string, unknown> = { schemas: [CORE_GROUP], displayName: role.name };
        if (settings.groupExtension) {
          body.schemas = [CORE_GROUP, SCIM_TENURE_GROUP];
          body[SCIM_TENURE_GROUP] = { description: role.description ?? '', privileged: role.privileged ?? false };
        }
        const created = await http(tenantId, operation, 'POST', '/Groups', { body });
        if (created.status === 409) throw conflict(tenantId, operation, created);
        return;
      }
      if (!settings.groupExtension) return;
      const current = roleOf(existing);
      const operations: PatchOperation[] = [];
      if (role.description !== undefined && role.description !== current.description) {
        operations.push({ op: 'replace', path: `${SCIM_TENURE_GROUP}:description`, value: role.description });
      }
      if (role.privileged !== undefined && role.privileged !== current.privileged) {
        operations.push({ op: 'replace', path: `${SCIM_TENURE_GROUP}:privileged`, value: role.privileged });
      }
      if (operations.length) await patch(tenantId, operation, '/Groups', existing.id, operations);
    },

    async getRoles(tenantId: string, names: readonly string[]): Promise<DirectoryRole[]> {
      if (!settings.groupExtension) throw new DirectoryUnsupportedError('roleLookup', kind, tenantId);
      const wanted = new Set(names);
      const found = new Map<string, DirectoryRole>();
      const all = [...wanted];
      for (let i = 0; i < all.length; i += 20) {
        const filter = all
          .slice(i, i + 20)
          .map((name) => `displayName eq ${literal(name)}`)
          .join(' or ');
        for (const group of await list(tenantId, 'read roles', '/Groups', { filter, excludedAttributes: 'members' })) {
          if (group.displayName !== undefined && wanted.has(group.displayName)) found.set(group.displayName, roleOf(group));
        }
      }
      return [...found.values()].sort((a, b) => byName(a.name, b.name));
    },

    deleteRole(tenantId: string): Promise<void> {
      return Promise.reject(new DirectoryUnsupportedError('roleDelete', kind, tenantId));
    },

    async listAllRoles(tenantId: string): Promise<DirectoryRole[]> {
      if (!settings.groupExtension) throw new DirectoryUnsupportedError('roleLookup', kind, tenantId);
      const groups = await list(tenantId, 'list roles', '/Groups', { excludedAttributes: 'members' });
      const roles = groups.filter((group) => group.displayName !== undefined).map(roleOf);
      return roles.sort((a, b) => byName(a.name, b.name));
    },

    lastSignIns(tenantId: string): Promise<Record<string, string | null>> {
      return Promise.reject(new DirectoryUnsupportedError('sessions', kind, tenantId));
    },

    async getUsers(tenantId: string, userIds: readonly string[]): Promise<DirectoryUser[]> {
      const users: DirectoryUser[] = [];
      for (const userId of new Set(userIds)) {
        const user = await findUser(tenantId, userId, 'read users');
        if (user) users.push(toUser(tenantId, user));
      }
      return users;
    },

    async assignRole(tenantId: string, userId: string, role: string): Promise<void> {
      // No membershipEnd: `until` is ignored, as the contract allows; Tenure removes the role at the end.
      const operation = `assign role ${role} to ${userId}`;
      const user = await findUser(tenantId, userId, operation);
      if (!user) throw new DirectoryNotFoundError('user', userId, tenantId);
      const group = await findGroup(tenantId, role, operation);
      if (!group) throw new DirectoryNotFoundError('role', role, tenantId);
      // RFC 7644 §3.5.2.1: adding a member already there changes nothing and succeeds.
      const result = await patch(tenantId, operation, '/Groups', group.id, [{ op: 'add', path: 'members', value: [{ value: user.id }] }]);
      if (result.status === 404) throw new DirectoryNotFoundError('role', role, tenantId);
      if (result.status === 409) throw conflict(tenantId, operation, result);
    },

    async removeRole(tenantId: string, userId: string, role: string): Promise<void> {
      const operation = `remove role ${role} from ${userId}`;
      const user = await findUser(tenantId, userId, operation);
      if (!user) return;
      const group = await findGroup(tenantId, role, operation);
      if (!group) return;
      try {
        await removeMember(tenantId, operation, group.id, user.id);
      } catch (error) {
        if (error instanceof DirectoryRejectedError && error.reason === 'http:400:noTarget') return;
        throw error;
      }
    },

    async hasRole(tenantId: string, userId: string, role: string): Promise<boolean> {
      const operation = `read role ${role} of ${userId}`;
      const user = await findUser(tenantId, userId, operation);
      if (!user) return false;
      const groups = await list(tenantId, operation, '/Groups', {
        filter: `displayName eq ${literal(role)} and members.value eq ${literal(user.id)}`,
        attributes: 'displayName',
      });
      return groups.some((group) => group.displayName === role);
    },

    async listRoles(tenantId: string, userId: string): Promise<string[]> {
      const operation = `list roles of ${userId}`;
      const user = await findUser(tenantId, userId, operation);
      if (!user) return [];
      const names = (await groupsOf(tenantId, operation, user.id)).map((group) => group.displayName).filter((name) => name !== undefined);
      return [...new Set(names)].sort(byName);
    },

    async listMembers(tenantId: string, role: string): Promise<string[]> {
      const operation = `list members of ${role}`;
      const group = await findGroup(tenantId, role, operation);
      if (!group) return [];
      const full = await getResource(tenantId, operation, '/Groups', group.id);
      const memberIds = [...new Set((full?.members ?? []).map((member) => member.value).filter((value) => value !== undefined))];
      const ids: string[] = [];
      // Members are SCIM ids; Tenure names users by externalId. A member that is no user (a nested group, a removed user) is left out.
      for (let i = 0; i < memberIds.length; i += 50) {
        const filter = memberIds
          .slice(i, i + 50)
          .map((id) => `id eq ${literal(id)}`)
          .join(' or ');
        for (const user of await list(tenantId, operation, '/Users', { filter, attributes: 'externalId' })) {
          if (user.externalId) ids.push(user.externalId);
        }
      }
      return [...new Set(ids)].sort(byName);
    },

    revokeSessions(tenantId: string): Promise<number> {
      return Promise.reject(new DirectoryUnsupportedError('sessions', kind, tenantId));
    },

    async getAccountState(tenantId: string, userId: string): Promise<DirectoryAccountState | undefined> {
      const user = await findUser(tenantId, userId, `read account of ${userId}`);
      if (!user) return undefined;
      return { status: toUser(tenantId, user).status, locked: null, mfaFactors: null, passwordResetRequired: null, liveSessions: null };
    },

    unlockUser(tenantId: string): Promise<void> {
      return Promise.reject(new DirectoryUnsupportedError('unlock', kind, tenantId));
    },

    resetMfa(tenantId: string): Promise<number> {
      return Promise.reject(new DirectoryUnsupportedError('mfaReset', kind, tenantId));
    },

    requirePasswordReset(tenantId: string): Promise<void> {
      return Promise.reject(new DirectoryUnsupportedError('passwordReset', kind, tenantId));
    },

    ...noSecuritySettings({ kind, capabilities }),
  };
}
