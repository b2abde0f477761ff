import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createApp, type ApiDeps } from '../../api/app.js';
import { oidcFromConfig } from '../../api/auth.js';
import { startServer, type RunningServer } from '../../api/server.js';
import { loadConfig, type Config } from '../../core/config.js';
import { runCli, runCliOk } from '../support/cli.js';
import { apiClient, type Json } from '../support/http.js';
import { apiDepsOf, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, type TestTenancy } from '../support/tenancy.js';

let stack: TestStack;
let id: TestTenancy;

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
});
afterAll(async () => {
  await stack?.stop();
});

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const call = apiClient(() => stack.baseUrl);

/** Audit events per chain, read as the owner (outside RLS). */
async function auditCounts(): Promise<Record<string, number>> {
  const { rows } = await stack.db.pool.query<{ tenant_id: string; n: number }>(
    'SELECT tenant_id, count(*)::int AS n FROM audit_events GROUP BY tenant_id',
  );
  return Object.fromEntries(rows.map((r) => [r.tenant_id, r.n]));
}
async function lastEvent(chain: string): Promise<Json> {
  const { rows } = await stack.db.pool.query('SELECT * FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1', [chain]);
  return rows[0] as Json;
}
const paths = (body: Json) => (body.error.issues as { path: string }[]).map((i) => i.path).sort();

describe('tenants', () => {
  it('an MSP admin creates a tenant: 201 with Location, policy version 1, audited on the MSP and the tenant chain', async () => {
    const before = await auditCounts();
    const created = await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug: 'northwind', name: 'Northwind Traders' });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/v1/tenants/${created.body.id}`);
    expect(created.body).toMatchObject({ slug: 'northwind', status: 'active', policyVersion: 1 });

    const after = await auditCounts();
    expect(after.msp).toBe((before.msp ?? 0) + 1);
    expect(after[created.body.id as string]).toBe(1);
    const event = await lastEvent('msp');
    expect(event).toMatchObject({
      action: 'tenant.created',
      actor_id: id.actors.mspAdmin!.id,
      actor_type: 'user',
      target_id: created.body.id,
    });
    expect(event.authority).toMatchObject({ roles: ['msp_admin'], bindingIds: [expect.any(String)], requestId: expect.any(String) });
  });

  it('refuses a duplicate slug with 409 and changes nothing', async () => {
    const before = await auditCounts();
    const duplicate = await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug: 'northwind', name: 'Again' });
    expect(duplicate.status).toBe(409);
    expect(await auditCounts()).toEqual(before);
  });

  it('refuses unknown fields, wrong types and a bad slug with 400 naming each field, and changes nothing', async () => {
    const before = await auditCounts();
    const bad = await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug: 'Not A Slug', name: 42, colour: 'red' });
    expect(bad.status).toBe(400);
    expect(paths(bad.body)).toEqual(['body.colour', 'body.name', 'body.slug']);
    expect((await call(id.tokens.mspAdmin, 'GET', '/v1/tenants/not-a-uuid')).status).toBe(400);
    expect((await call(id.tokens.mspAdmin, 'GET', '/v1/tenants?colour=red')).status).toBe(400);
    expect(await auditCounts()).toEqual(before);
  });

  it('lists only the tenants a tenant-bound caller is bound to', async () => {
    const all = await call(id.tokens.mspAdmin, 'GET', '/v1/tenants');
    expect((all.body.tenants as Json[]).map((t) => t.id)).toEqual(expect.arrayContaining([id.tenantA, id.tenantB]));
    const mine = await call(id.tokens.approverA, 'GET', '/v1/tenants');
    expect((mine.body.tenants as Json[]).map((t) => t.id)).toEqual([id.tenantA]);
  });

  it('renames with before/after in the audit trail, and suspension cuts off the tenant’s own people until resumed', async () => {
    const renamed = await call(id.tokens.mspAdmin, 'PATCH', `/v1/tenants/${id.tenantA}`, { name: 'Tenant A renamed' });
    expect(renamed.status).toBe(200);
    expect((await lastEvent(id.tenantA)).payload).toMatchObject({
      before: { name: expect.any(String) },
      after: { name: 'Tenant A renamed' },
    });

    expect((await call(id.tokens.mspAdmin, 'POST', `/v1/tenants/${id.tenantA}/suspend`)).body.status).toBe('suspended');
    expect((await call(id.tokens.approverA, 'GET', `/v1/tenants/${id.tenantA}`)).status).toBe(404);
    expect((await call(id.tokens.mspAdmin, 'POST', `/v1/tenants/${id.tenantA}/resume`)).body.status).toBe('active');
    expect((await call(id.tokens.approverA, 'GET', `/v1/tenants/${id.tenantA}`)).status).toBe(200);
    expect((await lastEvent('msp')).action).toBe('tenant.resumed');
  });
});

describe('tenant policy versions', () => {
  it('a change is a new version recorded with who made it; a stale expectedVersion is 409', async () => {
    const current = await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantB}/policy`);
    expect(current.body).toMatchObject({ version: 1, document: { timezone: 'UTC' } });

    const next = await call(id.tokens.operator, 'PUT', `/v1/tenants/${id.tenantB}/policy`, {
      expectedVersion: 1,
      // The time zone only presents times: a change that loosens nothing applies at once.
      document: { timezone: 'Europe/Amsterdam' },
    });
    expect(next.status).toBe(201);
    expect(next.body).toMatchObject({
      version: 2,
      createdBy: id.actors.operator!.id,
      document: { timezone: 'Europe/Amsterdam', notificationWebhookUrl: null },
    });
    const event = await lastEvent(id.tenantB);
    expect(event).toMatchObject({ action: 'tenant_policy.updated', actor_id: id.actors.operator!.id });
    expect(event.payload).toMatchObject({ before: { version: 1 }, after: { version: 2 } });

    const stale = await call(id.tokens.operator, 'PUT', `/v1/tenants/${id.tenantB}/policy`, { expectedVersion: 1, document: {} });
    expect(stale.status).toBe(409);
    const versions = await call(id.tokens.approverB, 'GET', `/v1/tenants/${id.tenantB}/policy/versions`);
    expect((versions.body.versions as Json[]).map((v) => v.version)).toEqual([2, 1]);
    expect((await call(id.tokens.approverB, 'GET', `/v1/tenants/${id.tenantB}/policy/versions/1`)).body.document.timezone).toBe('UTC');
  });

  it('rejects an unknown time zone or setting with field paths', async () => {
    const bad = await call(id.tokens.operator, 'PUT', `/v1/tenants/${id.tenantB}/policy`, {
      expectedVersion: 2,
      document: { timezone: 'Mars/Olympus', shoeSize: 9 },
    });
    expect(bad.status).toBe(400);
    expect(paths(bad.body)).toEqual(['body.document.shoeSize', 'body.document.timezone']);
  });
});

describe('actors, role bindings and API tokens', () => {
  it('creates an actor, binds a role, issues a token shown once, and the token works until revoked', async () => {
    const actor = await call(id.tokens.mspAdmin, 'POST', '/v1/actors', { kind: 'service_account', displayName: 'ticketing bridge' });
    expect(actor.status).toBe(201);
    const binding = await call(id.tokens.mspAdmin, 'POST', '/v1/role-bindings', {
      actorId: actor.body.id,
      role: 'auditor',
      tenantId: id.tenantA,
    });
    expect(binding.status).toBe(201);
    expect(
      (await call(id.tokens.mspAdmin, 'POST', '/v1/role-bindings', { actorId: actor.body.id, role: 'auditor', tenantId: id.tenantA }))
        .status,
    ).toBe(409);

    const token = await call(id.tokens.mspAdmin, 'POST', '/v1/tokens', {
      actorId: actor.body.id,
      name: 'bridge',
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    });
    expect(token.status).toBe(201);
    expect(token.body.token).toMatch(/^tnr_[A-Za-z0-9_-]{40,}$/);
    const listed = await call(id.tokens.mspAdmin, 'GET', `/v1/tokens?actorId=${actor.body.id as string}`);
    expect(listed.body.tokens).toHaveLength(1);
    expect(JSON.stringify(listed.body)).not.toContain(token.body.token);
    const stored = await stack.db.pool.query('SELECT token_hash FROM api_tokens WHERE id = $1', [token.body.id]);
    expect((stored.rows[0].token_hash as Buffer).toString('utf8')).not.toContain(token.body.token);

    const me = await call(token.body.token as string, 'GET', '/v1/me');
    expect(me.body).toMatchObject({ actorId: actor.body.id, via: 'api_token', bindings: [{ role: 'auditor', tenantId: id.tenantA }] });
    expect((await call(id.tokens.mspAdmin, 'DELETE', `/v1/tokens/${token.body.id as string}`)).body.revokedAt).toEqual(expect.any(String));
    expect((await call(token.body.token as string, 'GET', '/v1/me')).status).toBe(401);
    expect((await lastEvent('msp')).action).toBe('api_token.revoked');

    expect((await call(id.tokens.mspAdmin, 'DELETE', `/v1/role-bindings/${binding.body.id as string}`)).status).toBe(204);
    expect((await call(id.tokens.mspAdmin, 'DELETE', `/v1/role-bindings/${binding.body.id as string}`)).status).toBe(404);
    expect((await lastEvent(id.tenantA)).action).toBe('role_binding.deleted');
  });

  it('refuses inconsistent actors and bindings with 400 naming the field', async () => {
    const noHome = await call(id.tokens.mspAdmin, 'POST', '/v1/actors', { kind: 'tenant_staff', displayName: 'x' });
    expect(paths(noHome.body)).toEqual(['body.homeTenantId']);
    const crossTenant = await call(id.tokens.mspAdmin, 'POST', '/v1/role-bindings', {
      actorId: id.actors.approverA!.id,
      role: 'tenant_approver',
      tenantId: id.tenantB,
    });
    expect(crossTenant.status).toBe(400);
    expect(paths(crossTenant.body)).toEqual(['body.tenantId']);
    const unknownActor = await call(id.tokens.mspAdmin, 'POST', '/v1/role-bindings', {
      actorId: '00000000-0000-4000-8000-000000000000',
      role: 'auditor',
      tenantId: null,
    });
    expect(paths(unknownActor.body)).toEqual(['body.actorId']);
    const badRole = await call(id.tokens.mspAdmin, 'POST', '/v1/role-bindings', {
      actorId: id.actors.operator!.id,
      role: 'god',
      tenantId: null,
    });
    expect(paths(badRole.body)).toEqual(['body.role']);
    const pastExpiry = await call(id.tokens.mspAdmin, 'POST', '/v1/tokens', {
      actorId: id.actors.operator!.id,
      name: 'old',
      expiresAt: '2001-01-01T00:00:00Z',
    });
    expect(paths(pastExpiry.body)).toEqual(['body.expiresAt']);
  });

  it('a disabled actor’s tokens stop working', async () => {
    const actor = await call(id.tokens.mspAdmin, 'POST', '/v1/actors', { kind: 'msp_staff', displayName: 'leaving soon' });
    const token = await call(id.tokens.mspAdmin, 'POST', '/v1/tokens', { actorId: actor.body.id, name: 't' });
    expect((await call(token.body.token as string, 'GET', '/v1/me')).status).toBe(200);
    await call(id.tokens.mspAdmin, 'POST', `/v1/actors/${actor.body.id as string}/disable`);
    expect((await call(token.body.token as string, 'GET', '/v1/me')).status).toBe(401);
  });
});

describe('the tenure CLI against the API', () => {
  const as = (token: string) => ({ TENURE_URL: stack.baseUrl, TENURE_TOKEN: token });

  it('lists tenants and adds a binding as the operator at the terminal', async () => {
    const { stdout } = await runCliOk(['tenant', 'list', '--json'], as(id.tokens.mspAdmin!));
    expect((JSON.parse(stdout) as { tenants: Json[] }).tenants.map((t) => t.id)).toEqual(expect.arrayContaining([id.tenantA, id.tenantB]));
    const added = await runCliOk(
      ['binding', 'add', '--json', '--actor', id.actors.operator!.id, '--role', 'template_owner'],
      as(id.tokens.mspAdmin!),
    );
    expect(JSON.parse(added.stdout)).toMatchObject({ role: 'template_owner', tenantId: null });
  });

  it('exits 2 (usage) and prints the field paths when the API refuses the input', async () => {
    const failure = await runCli(['binding', 'add', '--actor', id.actors.operator!.id, '--role', 'god'], as(id.tokens.mspAdmin!));
    expect(failure).toMatchObject({ code: 2, stderr: expect.stringContaining('body.role') });
  });
});

describe('OIDC bearer tokens', () => {
  let jwks: Server;
  let api: RunningServer;
  let sign: (
    claims: Json,
    options?: {
      key?: PrivateKey | Uint8Array;
      alg?: string;
      kid?: string;
      typ?: string;
      issuer?: string;
      audience?: string;
      expiresIn?: number;
    },
  ) => Promise<string>;
  let signWithOtherKey: (claims: Json) => Promise<string>;
  const issuer = 'https://idp.example.test/';
  const audience = 'tenure-api';
  const hmacSecret = new Uint8Array(32).fill(7);
  let config: Config;
  let appDeps: ApiDeps;

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const other = await generateKeyPair('RS256');
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    sign = (claims, options = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT(claims)
        .setProtectedHeader({ alg: options.alg ?? 'RS256', kid: options.kid ?? 'k1', ...(options.typ ? { typ: options.typ } : {}) })
        .setIssuer(options.issuer ?? issuer)
        .setAudience(options.audience ?? audience)
        .setIssuedAt(now - 60)
        .setExpirationTime(now + (options.expiresIn ?? 300))
        .sign(options.key ?? privateKey);
    };
    signWithOtherKey = (claims) => sign(claims, { key: other.privateKey });
    config = loadConfig({
      OIDC_ISSUER: issuer,
      OIDC_AUDIENCE: audience,
      OIDC_CLIENT_IDS: 'tenure-cli',
      OIDC_JWKS_URL: jwksUrl,
      AUTH_CLOCK_SKEW_SECONDS: '30',
    });
    appDeps = apiDepsOf(stack, { config });
    const app = createApp({ ...appDeps, oidc: oidcFromConfig(config) });
    api = await startServer(app, '127.0.0.1', 0);
    await call(id.tokens.mspAdmin, 'POST', '/v1/actors', { kind: 'msp_staff', displayName: 'Olivia OIDC', oidcSubject: 'olivia@idp' }).then(
      async (actor) => call(id.tokens.mspAdmin, 'POST', '/v1/role-bindings', { actorId: actor.body.id, role: 'auditor', tenantId: null }),
    );
  });
  afterAll(async () => {
    await api?.stop();
    await new Promise((resolve) => jwks?.close(resolve));
  });
  const me = async (token: string) => (await fetch(`${api.url}/v1/me`, { headers: { authorization: `Bearer ${token}` } })).status;

  it('accepts a token signed by the issuer’s key for a known subject, mapped to its actor', async () => {
    const response = await fetch(`${api.url}/v1/me`, { headers: { authorization: `Bearer ${await sign({ sub: 'olivia@idp' })}` } });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      displayName: 'Olivia OIDC',
      via: 'oidc',
      bindings: [{ role: 'auditor', tenantId: null }],
    });
  });

  it('tolerates expiry within the configured clock skew, not beyond it', async () => {
    expect(await me(await sign({ sub: 'olivia@idp' }, { expiresIn: -10 }))).toBe(200);
    expect(await me(await sign({ sub: 'olivia@idp' }, { expiresIn: -120 }))).toBe(401);
  });

  it.each([
    ['another issuer', { issuer: 'https://evil.example/' }],
    ['another audience', { audience: 'someone-else' }],
  ])('refuses a token from %s with 401', async (_label, options) => {
    expect(await me(await sign({ sub: 'olivia@idp' }, options))).toBe(401);
  });

  it('refuses an HS256 token even from a key source that would verify it (asymmetric algorithms only)', async () => {
    const settings = oidcFromConfig(config)!;
    // A key source confused into handing out a shared secret (e.g. the public key's bytes as an HMAC key).
    const confused = createApp({
      ...appDeps,
      oidc: { ...settings, jwks: async (header, token) => (header.alg === 'HS256' ? hmacSecret : settings.jwks(header, token)) },
    });
    const server = await startServer(confused, '127.0.0.1', 0);
    onTestFinished(() => server.stop());
    const hs256 = await sign({ sub: 'olivia@idp' }, { alg: 'HS256', key: hmacSecret });
    expect((await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${hs256}` } })).status).toBe(401);
    expect(await me(hs256)).toBe(401);
  });

  it('accepts typ JWT and at+jwt, refuses any other typ', async () => {
    expect(await me(await sign({ sub: 'olivia@idp' }, { typ: 'JWT' }))).toBe(200);
    expect(await me(await sign({ sub: 'olivia@idp' }, { typ: 'at+jwt' }))).toBe(200);
    expect(await me(await sign({ sub: 'olivia@idp' }, { typ: 'id+jwt' }))).toBe(401);
    expect(await me(await sign({ sub: 'olivia@idp' }, { typ: 'logout+jwt' }))).toBe(401);
  });

  it('checks azp when present: the audience or a configured client id, nothing else', async () => {
    expect(await me(await sign({ sub: 'olivia@idp', azp: audience }))).toBe(200);
    expect(await me(await sign({ sub: 'olivia@idp', azp: 'tenure-cli' }))).toBe(200);
    expect(await me(await sign({ sub: 'olivia@idp', azp: 'some-other-app' }))).toBe(401);
  });

  it('refuses a token signed by another key, and one for an unknown subject', async () => {
    expect(await me(await signWithOtherKey({ sub: 'olivia@idp' }))).toBe(401);
    expect(await me(await sign({ sub: 'mallory@idp' }))).toBe(401);
  });
});

describe('policy versions written before a setting existed', () => {
  it('read with that setting’s default, as the policy in force has it', async () => {
    const created = await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug: `old-${Date.now()}`, name: 'Old policy tenant' });
    const tenantId = created.body.id as string;
    // Version 1 as an older release stored it: no governance section.
    await stack.db.pool.query(`UPDATE tenant_policies SET document = document - 'governance' WHERE tenant_id = $1 AND version = 1`, [
      tenantId,
    ]);
    const policy = await call(id.tokens.mspAdmin, 'GET', `/v1/tenants/${tenantId}/policy`);
    expect(policy.status).toBe(200);
    expect(policy.body.document.governance).toEqual({ policyChangeApprovals: 1, policyChangeTimeoutDays: 7, approveEveryChange: false });
  });
});
