import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../api/app.js';
import { createPrincipalSource, type PrincipalSource } from '../../api/principals.js';
import { startServer, type RunningServer } from '../../api/server.js';
import { createPool, type Pool } from '../../db/pool.js';
import { apiClient, bodyOf } from '../support/http.js';
import { apiDepsOf, eventually, startTestStack, testLogger, type TestStack } from '../support/stack.js';
import { seedTenancy, tenantStaff, type TestTenancy } from '../support/tenancy.js';

/**
 * Two API instances on one database, each with a principal cache of its own, a pool of its own
 * and its own invalidation listener, as two API processes have. The cache time is far longer than
 * the polling bound: a change made through one API can reach the other only through the
 * notification on commit, never by the entry running out.
 */
const CACHE_SECONDS = 60;
const PROMPTLY_MS = 15_000;

interface Api {
  url: string;
  principals: PrincipalSource;
  server: RunningServer;
  pool: Pool;
}

async function startApi(stack: TestStack, cacheSeconds = CACHE_SECONDS): Promise<Api> {
  const pool = createPool({ connectionString: stack.db.appUrl, max: 4 });
  const principals = createPrincipalSource({ pool, logger: testLogger, cacheSeconds, useFlushSeconds: 60 });
  await principals.start();
  const server = await startServer(createApp(apiDepsOf(stack, { pool, principals })), '127.0.0.1', 0);
  return { url: server.url, principals, server, pool };
}

async function stopApi(api: Api): Promise<void> {
  await api.server.stop();
  await api.principals.stop();
  await api.pool.end();
}

describe('principal cache across API processes', () => {
  let stack: TestStack;
  let t: TestTenancy;
  let one: Api;
  let other: Api;
  const viaOne = apiClient(() => one.url);
  const viaOther = apiClient(() => other.url);

  beforeAll(async () => {
    stack = await startTestStack();
    t = await seedTenancy(stack.pool);
    one = await startApi(stack);
    other = await startApi(stack);
  });
  afterAll(async () => {
    for (const api of [one, other]) if (api) await stopApi(api);
    await stack?.stop();
  });

  /** A tenant-A auditor whose token the other API has authenticated and cached. */
  async function cachedOnTheOther(name: string) {
    const staff = await tenantStaff(viaOne, t.tokens.mspAdmin!, t.tenantA, name, ['auditor']);
    const before = other.principals.stats().hits;
    bodyOf(await viaOther(staff.token, 'GET', `/v1/tenants/${t.tenantA}`));
    bodyOf(await viaOther(staff.token, 'GET', `/v1/tenants/${t.tenantA}`));
    // The second call was answered from the cache: what follows tests invalidation, not a lookup per request.
    expect(other.principals.stats().hits).toBeGreaterThan(before);
    return staff;
  }

  it('refuses a token revoked through another API process promptly, long before the cache time runs out', async () => {
    expect(other.principals.stats().listening).toBe(true);
    const staff = await cachedOnTheOther('Revoked soon');
    const tokens = bodyOf(await viaOne(t.tokens.mspAdmin, 'GET', `/v1/tokens?actorId=${staff.actorId}`)).tokens as { id: string }[];
    bodyOf(await viaOne(t.tokens.mspAdmin, 'DELETE', `/v1/tokens/${tokens[0]!.id}`));
    const refused = await eventually(
      () => viaOther(staff.token, 'GET', `/v1/tenants/${t.tenantA}`),
      (r) => r.status !== 200,
      PROMPTLY_MS,
    );
    expect(refused.status).toBe(401);
  });

  it('refuses an actor disabled through another API process promptly', async () => {
    const staff = await cachedOnTheOther('Disabled soon');
    bodyOf(await viaOne(t.tokens.mspAdmin, 'POST', `/v1/actors/${staff.actorId}/disable`, {}));
    const refused = await eventually(
      () => viaOther(staff.token, 'GET', `/v1/tenants/${t.tenantA}`),
      (r) => r.status !== 200,
      PROMPTLY_MS,
    );
    expect(refused.status).toBe(401);
  });

  it('hides the tenant (404) from an actor whose binding another API process removed', async () => {
    const staff = await cachedOnTheOther('Unbound soon');
    const bindings = bodyOf(await viaOne(t.tokens.mspAdmin, 'GET', `/v1/role-bindings?actorId=${staff.actorId}`)).bindings as {
      id: string;
    }[];
    expect(bindings).toHaveLength(1);
    expect((await viaOne(t.tokens.mspAdmin, 'DELETE', `/v1/role-bindings/${bindings[0]!.id}`)).status).toBe(204);
    const hidden = await eventually(
      () => viaOther(staff.token, 'GET', `/v1/tenants/${t.tenantA}`),
      (r) => r.status !== 200,
      PROMPTLY_MS,
    );
    expect(hidden.status).toBe(404);
    // Still authenticated: only the binding went.
    expect((await viaOther(staff.token, 'GET', '/v1/me')).status).toBe(200);
  });

  it('still refuses a tenant it cannot see (404) when the principal comes from the cache', async () => {
    const staff = await cachedOnTheOther('Tenant A only');
    expect((await viaOther(staff.token, 'GET', `/v1/tenants/${t.tenantB}`)).status).toBe(404);
    expect((await viaOther(staff.token, 'GET', `/v1/tenants/${t.tenantB}/grants`)).status).toBe(404);
  });

  it('writes when a token was last used in a batch, at the latest when the API stops', async () => {
    const api = await startApi(stack);
    const staff = await tenantStaff(viaOne, t.tokens.mspAdmin!, t.tenantA, 'Used once', ['auditor']);
    const lastUsed = async () =>
      (bodyOf(await viaOne(t.tokens.mspAdmin, 'GET', `/v1/tokens?actorId=${staff.actorId}`)).tokens as { lastUsedAt: string | null }[])[0]!
        .lastUsedAt;
    bodyOf(await apiClient(() => api.url)(staff.token, 'GET', '/v1/me'));
    // Batched every 60 s: not written yet.
    expect(await lastUsed()).toBeNull();
    await stopApi(api);
    expect(await lastUsed()).not.toBeNull();
  });
});
