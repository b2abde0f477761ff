import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createScimDirectory, type ScimDirectory } from '../../connectors/directory/scim.js';
import { DirectoryRejectedError, DirectoryUnavailableError } from '../../core/directory/connector.js';
import { SCIM_TENURE_GROUP, ScimTargetSettings, type ScimTargetSettingsInput } from '../../core/directory/targets.js';
import { startScimServer, type ScimServer } from '../support/directory-targets.js';

/**
 * What only SCIM has: discovery refusing a service Tenure cannot use, paging, and the mapping of
 * HTTP answers a real server rarely gives on demand (429, 503, 400). The behaviours every target
 * shares are in connector-contract.test.ts.
 */
let server: ScimServer;
const tenant = 'scim-tenant';
const fresh = (prefix: string) => `${prefix}-${randomBytes(5).toString('hex')}`;

function connector(overrides: Partial<ScimTargetSettingsInput> = {}, fetchImpl?: typeof fetch, on = server): ScimDirectory {
  return createScimDirectory(ScimTargetSettings.parse(on.settings(overrides)), { bearerToken: on.bearerToken }, { fetch: fetchImpl });
}

interface Interference {
  /** How many matching requests get the injected answer; 0 only records. */
  times?: number;
  when?: (url: string, method: string) => boolean;
  headers?: Record<string, string>;
}

/** fetch that answers the next `times` requests matching `when` with `status`, and records every request. */
function interfering(status: number, { times = 1, when = () => true, headers = {} }: Interference = {}) {
  const seen: { method: string; url: string }[] = [];
  let left = times;
  const wrapped: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : input.toString();
    const method = init?.method ?? 'GET';
    seen.push({ method, url });
    if (left > 0 && when(url, method)) {
      left -= 1;
      const body = { schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: String(status), detail: 'injected' };
      return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/scim+json', ...headers } });
    }
    return fetch(input, init);
  };
  return { fetch: wrapped, seen };
}

beforeAll(async () => {
  server = await startScimServer();
});
afterAll(async () => {
  await server?.stop();
});

describe('SCIM connector', () => {
  it('discovery reads what the service supports', async () => {
    expect(await connector().discover(tenant)).toEqual({ patch: true, filter: true, maxResults: 1000, groupExtension: false });
  });

  it('a service that does not support PATCH is refused by name on first use, and nothing is written', async () => {
    const noPatch = await startScimServer({
      serviceProviderConfig: {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
        patch: { supported: false },
        bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
        filter: { supported: true, maxResults: 100 },
        changePassword: { supported: false },
        sort: { supported: false },
        etag: { supported: false },
      },
    });
    try {
      const directory = connector({}, undefined, noPatch);
      const error = await directory
        .upsertUser(tenant, { id: 'ana', username: 'ana', displayName: 'Ana' })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DirectoryRejectedError);
      expect(error).toMatchObject({ reason: 'scim:unsupported-service', retryable: false });
      expect((error as Error).message).toContain('PATCH');
      const raw = await fetch(`${noPatch.baseUrl}/Users`, { headers: { authorization: `Bearer ${noPatch.bearerToken}` } });
      expect(((await raw.json()) as { totalResults: number }).totalResults).toBe(0);
    } finally {
      await noPatch.stop();
    }
  });

  it('groupExtension on a service whose Group lacks the Tenure extension is refused, naming the extension', async () => {
    const error = await connector({ groupExtension: true })
      .upsertRole(tenant, { name: fresh('Admins'), privileged: true })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DirectoryRejectedError);
    expect((error as Error).message).toContain(SCIM_TENURE_GROUP);
  });

  it('lists are read page by page: every member and every role comes back with a page size of 2', async () => {
    const counting = interfering(500, { times: 0 });
    const directory = connector({ pageSize: 2 }, counting.fetch);
    const roles = [fresh('R'), fresh('R'), fresh('R')];
    for (const role of roles) await directory.upsertRole(tenant, { name: role });
    const users: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = fresh('u');
      await directory.upsertUser(tenant, { id, username: `${id}.login`, displayName: id });
      await directory.assignRole(tenant, id, roles[0]!);
      users.push(id);
    }
    for (const role of roles) await directory.assignRole(tenant, users[0]!, role);

    counting.seen.length = 0;
    expect(await directory.listMembers(tenant, roles[0]!)).toEqual([...users].sort());
    expect(await directory.listRoles(tenant, users[0]!)).toEqual([...roles].sort());
    const laterPages = counting.seen.filter((request) => new URL(request.url).searchParams.get('startIndex') !== '1');
    expect(laterPages.length).toBeGreaterThanOrEqual(3);
  });

  it.each([
    [429, { 'retry-after': '7' }, '(retry after 7)'],
    [503, {}, '503'],
  ] as const)('an HTTP %s is transient: the call fails as retryable and the next one succeeds', async (status, headers, said) => {
    const directory = connector();
    const id = fresh('u');
    await directory.upsertUser(tenant, { id, username: `${id}.login`, displayName: id });
    const busy = interfering(status, { headers, when: (url) => url.includes('/Users?') });
    const flaky = connector({}, busy.fetch);
    const error = await flaky.getUser(tenant, id).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DirectoryUnavailableError);
    expect((error as Error).message).toContain(said);
    expect(await flaky.getUser(tenant, id)).toMatchObject({ id });
  });

  it('an HTTP 400 is permanent, with the status and the service’s scimType as the reason', async () => {
    const directory = connector({}, interfering(400, { when: (_url, method) => method === 'PATCH' }).fetch);
    const id = fresh('u');
    const role = fresh('R');
    await directory.upsertUser(tenant, { id, username: `${id}.login`, displayName: id });
    await directory.upsertRole(tenant, { name: role });
    const error = await directory.assignRole(tenant, id, role).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DirectoryRejectedError);
    expect(error).toMatchObject({ reason: 'http:400', retryable: false });
    expect((error as Error).message).toContain(`assign role ${role} to ${id}`);
  });

  it('a user deleted through the connector leaves no member id behind in its groups', async () => {
    const directory = connector();
    const [id, stays] = [fresh('u'), fresh('u')];
    const role = fresh('R');
    await directory.upsertRole(tenant, { name: role });
    for (const user of [id, stays]) {
      await directory.upsertUser(tenant, { id: user, username: `${user}.login`, displayName: user });
      await directory.assignRole(tenant, user, role);
    }
    await directory.setUserStatus(tenant, id, 'deleted');
    const groups = await fetch(`${server.baseUrl}/Groups?${new URLSearchParams({ filter: `displayName eq "${role}"` }).toString()}`, {
      headers: { authorization: `Bearer ${server.bearerToken}` },
    });
    const [group] = ((await groups.json()) as { Resources: { members?: unknown[] }[] }).Resources;
    expect(group?.members).toHaveLength(1);
    expect(await directory.listMembers(tenant, role)).toEqual([stays]);
  });
});
