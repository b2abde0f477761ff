import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { apiClient } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, setPolicy, type TestTenancy } from '../support/tenancy.js';

/** Per-tenant webhooks: signed, delivered once per event, and never able to hold a grant up. */
let stack: TestStack;
let id: TestTenancy;
let receiver: Server;
let receiverUrl: string;
let failing = false;
const received: { headers: Record<string, string>; body: string }[] = [];

const call = apiClient(() => stack.baseUrl);

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (failing) return res.writeHead(503).end();
      received.push({ headers: req.headers as Record<string, string>, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  const directory = createPostgresDirectory(stack.pool);
  await directory.upsertRole(id.tenantA, { name: 'HelpdeskAdmin' });
  await directory.upsertUser(id.tenantA, { id: 'dana', username: 'dana', displayName: 'Dana' });
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
    expectedVersion: 1,
    document: {
      notificationWebhookUrl: receiverUrl,
      grants: { roles: { HelpdeskAdmin: { maxDurationMinutes: 30, approvalsRequired: 0 } }, justificationRequired: false },
    },
  });
  expect(approval?.body.status).toBe('applied');
});
afterAll(async () => {
  await stack?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe('grant notifications', () => {
  it('sends each grant event to the tenant webhook once, signed with the tenant secret', async () => {
    const { secret } = (await call(id.tokens.mspAdmin, 'GET', `/v1/tenants/${id.tenantA}/webhook-secret`)).body as { secret: string };
    const created = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantA}/grants`, {
      subjectId: 'dana',
      role: 'HelpdeskAdmin',
      endAt: new Date(Date.now() + 3000).toISOString(),
    });
    const grantId = created.body.grantId as string;
    await eventually(
      async () => received.filter((r) => JSON.parse(r.body).grant.grantId === grantId).map((r) => JSON.parse(r.body).type as string),
      (types) => types.includes('grant.expired'),
      30_000,
    );

    const mine = received.filter((r) => JSON.parse(r.body).grant.grantId === grantId);
    const types = mine.map((r) => JSON.parse(r.body).type as string);
    expect(types).toEqual(
      expect.arrayContaining([
        'grant.requested',
        'grant.approved',
        'grant.activated',
        'grant.expiring_soon',
        'grant.expiring',
        'grant.expired',
      ]),
    );
    expect(new Set(mine.map((r) => r.headers['x-tenure-event-id'])).size).toBe(mine.length); // once per event
    for (const { headers, body } of mine) {
      const expected = createHmac('sha256', secret).update(`${headers['x-tenure-timestamp']}.${body}`).digest('hex');
      expect(headers['x-tenure-signature']).toBe(`sha256=${expected}`);
    }
    const audited = await stack.db.pool.query(
      "SELECT count(*)::int AS n FROM audit_events WHERE action = 'tenant_webhook_secret.created' AND tenant_id = $1",
      [id.tenantA],
    );
    expect(audited.rows[0].n).toBe(1);
  });

  it('a webhook that keeps failing never blocks or fails the grant', async () => {
    failing = true;
    onTestFinished(() => {
      failing = false;
    });
    const created = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantA}/grants`, {
      subjectId: 'dana',
      role: 'HelpdeskAdmin',
      endAt: new Date(Date.now() + 2000).toISOString(),
    });
    const grantId = created.body.grantId as string;
    const ended = await eventually(
      async () => (await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}/grants/${grantId}`)).body,
      (g) => g.status === 'ended',
      30_000,
    );
    expect(ended).toMatchObject({ endReason: 'expired', revocationVerifiedAt: expect.any(String) });
    const deliveries = await stack.db.pool.query(
      "SELECT status, attempts, last_error FROM webhook_deliveries WHERE tenant_id = $1 AND status <> 'delivered'",
      [id.tenantA],
    );
    expect(deliveries.rows.length).toBeGreaterThan(0);
    expect(deliveries.rows[0].last_error).toMatch(/503/);
  });
});
