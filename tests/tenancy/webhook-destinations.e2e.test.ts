import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../activities/index.js';
import type { HostResolver, WebhookTransport } from '../../activities/tenancy/webhook-http.js';
import { deliverTenantWebhook } from '../../activities/tenancy/webhooks.js';
import { createApp } from '../../api/app.js';
import { startServer, type RunningServer } from '../../api/server.js';
import { systemContext } from '../../core/audit/context.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { putPolicy } from '../../usecases/tenancy/policies.js';
import { apiClient } from '../support/http.js';
import { apiDepsOf, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, type TestTenancy } from '../support/tenancy.js';

/** Webhooks cannot be aimed at the worker's own neighbourhood unless the deployment allows it. */
let stack: TestStack;
let id: TestTenancy;
let receiver: Server;
let port: number;
let strictApi: RunningServer;
const hits: string[] = [];

// The stack allows private networks (its receivers run on 127.0.0.1); this API runs with the default: off.
const strict = apiClient(() => strictApi.url);
const resolveToLoopback: HostResolver = async (hostname) =>
  hostname === 'hooks.example.test' ? [{ address: '127.0.0.1', family: 4 }] : Promise.reject(new Error(`ENOTFOUND ${hostname}`));

beforeAll(async () => {
  receiver = createServer((req, res) => {
    hits.push(req.url ?? '');
    req.resume();
    if (req.url === '/redirect') return res.writeHead(302, { location: `http://127.0.0.1:${port}/hook` }).end();
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as AddressInfo).port;
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  const app = createApp(apiDepsOf(stack));
  strictApi = await startServer(app, '127.0.0.1', 0);
});
afterAll(async () => {
  await strictApi?.stop();
  await stack?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

/** Points tenant A's webhook at `url` directly (in-process setup, no approval round). */
async function aimWebhook(url: string): Promise<void> {
  const current = await stack.db.pool.query<{ v: number }>('SELECT max(version)::int AS v FROM tenant_policies WHERE tenant_id = $1', [
    id.tenantA,
  ]);
  await putPolicy(
    stack,
    systemContext('test setup'),
    id.tenantA,
    current.rows[0]!.v,
    TenantPolicyDocument.parse({ notificationWebhookUrl: url }),
  );
}

async function deliver(transport: WebhookTransport) {
  const eventId = randomUUID();
  const outcome = await deliverTenantWebhook(
    { pool: stack.pool, clock: systemClock, transport },
    { tenantId: id.tenantA, eventId, action: 'test.ping', subject: {} },
  ).then(
    (value) => ({ ok: true as const, value }),
    (error: Error & { type?: string }) => ({ ok: false as const, error }),
  );
  const { rows } = await stack.db.pool.query<{ status: string; attempts: number; last_error: string | null }>(
    'SELECT status, attempts, last_error FROM webhook_deliveries WHERE tenant_id = $1 AND event_id = $2',
    [id.tenantA, eventId],
  );
  return { outcome, row: rows[0] };
}

describe('webhook destinations', () => {
  it.each([
    ['http://127.0.0.1:5432/'],
    ['http://[::1]:7233/'],
    ['http://localhost:8080/hook'],
    ['http://169.254.169.254/latest/meta-data/'],
    ['http://[::ffff:10.0.0.1]/'],
  ])('refuses %s at policy write with 400 naming the field', async (url) => {
    const current = await strict(id.tokens.mspAdmin, 'GET', `/v1/tenants/${id.tenantB}/policy`);
    const put = await strict(id.tokens.mspAdmin, 'PUT', `/v1/tenants/${id.tenantB}/policy`, {
      expectedVersion: current.body.version,
      document: { ...current.body.document, notificationWebhookUrl: url },
    });
    expect(put.status).toBe(400);
    expect(put.body.error.issues).toEqual([
      { path: 'body.document.notificationWebhookUrl', message: expect.stringMatching(/may not point at/) },
    ]);
    const created = await strict(id.tokens.mspAdmin, 'POST', '/v1/tenants', {
      slug: `hook-${randomUUID().slice(0, 8)}`,
      name: 'Hook',
      policy: { notificationWebhookUrl: url },
    });
    expect(created.status).toBe(400);
    expect(created.body.error.issues.map((i: { path: string }) => i.path)).toEqual(['body.policy.notificationWebhookUrl']);
  });

  it('accepts a private URL at write when the deployment allows private networks', async () => {
    const current = await strict(id.tokens.mspAdmin, 'GET', `/v1/tenants/${id.tenantB}/policy`);
    const put = await apiClient(() => stack.baseUrl)(id.tokens.mspAdmin, 'PUT', `/v1/tenants/${id.tenantB}/policy`, {
      expectedVersion: current.body.version,
      document: { ...current.body.document, notificationWebhookUrl: `http://127.0.0.1:${port}/hook` },
    });
    expect([201, 202]).toContain(put.status);
  });

  it('refuses a host name that resolves to loopback at delivery: a failed delivery, never sent', async () => {
    await aimWebhook(`http://hooks.example.test:${port}/hook`);
    const before = hits.length;
    const { outcome, row } = await deliver({ allowPrivateNetworks: false, resolve: resolveToLoopback });
    expect(outcome.ok).toBe(false);
    expect(outcome.ok || outcome.error.type).toBe('WebhookDeliveryFailed');
    expect(row).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: expect.stringMatching(/not sent.*loopback address \(127\.0\.0\.1\)/),
    });
    expect(hits.length).toBe(before);

    // Allowed, the same name reaches the receiver through the address it was resolved to (pinned: no DNS knows it).
    const allowed = await deliver({ allowPrivateNetworks: true, resolve: resolveToLoopback });
    expect(allowed.outcome).toEqual({ ok: true, value: { delivered: true } });
    expect(allowed.row).toMatchObject({ status: 'delivered', attempts: 1, last_error: null });
    expect(hits.slice(before)).toEqual(['/hook']);
  });

  it('follows no redirect: a 3xx is a failed delivery and the redirect target is never called', async () => {
    await aimWebhook(`http://127.0.0.1:${port}/redirect`);
    const before = hits.length;
    const { outcome, row } = await deliver({ allowPrivateNetworks: true, resolve: resolveToLoopback });
    expect(outcome.ok || outcome.error.type).toBe('WebhookDeliveryFailed');
    expect(row).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: expect.stringMatching(/answered 302; redirects are not followed/),
    });
    expect(hits.slice(before)).toEqual(['/redirect']);
  });
});
