import { Client, Connection } from '@temporalio/client';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../api/app.js';
import { startServer } from '../api/server.js';
import { createPool } from '../db/pool.js';
import { loadConfig } from '../core/config.js';
import { freePort } from '../runtime/ports.js';
import { clientConnectionOptions } from '../runtime/temporal.js';
import { seedTenancy, type TestTenancy } from './support/tenancy.js';
import { eventually, startTestStack, testDataConverter, testLogger, testPayloadCodec, type TestStack } from './support/stack.js';

let stack: TestStack;
let identity: TestTenancy;

beforeAll(async () => {
  stack = await startTestStack();
  identity = await seedTenancy(stack.pool);
});
afterAll(async () => {
  await stack?.stop();
});

const bearer = () => ({ authorization: `Bearer ${identity.tokens.operator}` });
const get = (path: string) => fetch(`${stack.baseUrl}${path}`, { headers: bearer() });
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${stack.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

async function pingCount(): Promise<number> {
  const { rows } = await stack.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM diagnostic_pings');
  return rows[0]!.n;
}

async function workflowCount(): Promise<number> {
  let n = 0;
  for await (const _ of stack.temporal.workflow.list({ query: stack.workflowQuery })) n++;
  return n;
}

describe('a diagnostics ping through the API', () => {
  it('runs a workflow on the worker that writes to PostgreSQL, and reads back as done', async () => {
    const created = await post('/v1/diagnostics/pings', { message: 'hello tenure' });
    expect(created.status).toBe(201);
    const body = (await created.json()) as { pingId: string; workflowId: string };
    expect(created.headers.get('location')).toBe(`/v1/diagnostics/pings/${body.pingId}`);
    expect(body.workflowId).toBe(`ping/${body.pingId}`);

    const view = await eventually(
      async () =>
        (await (await get(created.headers.get('location')!)).json()) as { status: string; recordedAt: string | null; message: string },
      (v) => v.status === 'done',
    );
    expect(view.message).toBe('hello tenure');

    const { rows } = await stack.db.pool.query('SELECT workflow_id, message, recorded_at FROM diagnostic_pings WHERE id = $1', [
      body.pingId,
    ]);
    expect(rows).toHaveLength(1);
    expect(rows[0].workflow_id).toBe(body.workflowId);
    expect((rows[0].recorded_at as Date).toISOString()).toBe(view.recordedAt);

    const description = await stack.temporal.workflow.getHandle(body.workflowId).describe();
    expect(description.typedSearchAttributes.get({ name: 'TenantId', type: 'KEYWORD' } as never)).toBe('msp');
  });

  it('rejects bad input with 400 naming every offending field, and starts nothing', async () => {
    const before = { pings: await pingCount(), workflows: await workflowCount() };
    const response = await post('/v1/diagnostics/pings', { message: '', delaySeconds: 'soon', extra: true });
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { code: string; issues: { path: string }[]; requestId: string } };
    expect(error.code).toBe('bad_request');
    expect(error.issues.map((i) => i.path).sort()).toEqual(['body.delaySeconds', 'body.extra', 'body.message']);
    expect(error.requestId).toBe(response.headers.get('x-request-id'));
    expect({ pings: await pingCount(), workflows: await workflowCount() }).toEqual(before);
  });

  it('answers malformed JSON, an oversized body and a missing body with 400', async () => {
    const malformed = await post('/v1/diagnostics/pings', '{"message":');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { issues: { path: string }[] } }).error.issues[0]!.path).toBe('(body)');

    const huge = await post('/v1/diagnostics/pings', { message: 'x'.repeat(200_000) });
    expect(huge.status).toBe(400);
    expect(((await huge.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');

    const empty = await fetch(`${stack.baseUrl}/v1/diagnostics/pings`, { method: 'POST', headers: bearer() });
    expect(empty.status).toBe(400);
  });

  it('refuses NUL and lone surrogates anywhere in the body with 400 naming the field, and starts nothing', async () => {
    const before = { pings: await pingCount(), workflows: await workflowCount() };
    const cases: [unknown, string][] = [
      [{ message: 'bad\u0000byte' }, 'body.message'],
      [{ message: 'half \ud83d' }, 'body.message'],
      [{ message: 'x', ['k\u0000']: 1 }, 'body.(key)'],
    ];
    for (const [body, path] of cases) {
      const response = await post('/v1/diagnostics/pings', body);
      expect(response.status).toBe(400);
      const { error } = (await response.json()) as { error: { issues: { path: string }[] } };
      expect(error.issues.map((i) => i.path)).toEqual([path]);
    }
    // A lone surrogate written as a JSON escape, as a hostile client would send it.
    const escaped = await post('/v1/diagnostics/pings', '{"message":"a\\udc00b"}');
    expect(escaped.status).toBe(400);
    expect(((await escaped.json()) as { error: { issues: { path: string }[] } }).error.issues[0]!.path).toBe('body.message');
    expect({ pings: await pingCount(), workflows: await workflowCount() }).toEqual(before);
  });

  it('answers a bad id with 400 and an unknown ping or route with 404, as JSON', async () => {
    expect((await get('/v1/diagnostics/pings/not-a-uuid')).status).toBe(400);
    const missing = await get('/v1/diagnostics/pings/00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found');
    const noRoute = await get('/v1/nothing-here');
    expect(noRoute.status).toBe(404);
    expect(noRoute.headers.get('content-type')).toMatch(/application\/json/);
  });

  it('keeps a caller-supplied request id and echoes it back', async () => {
    const response = await fetch(`${stack.baseUrl}/healthz`, { headers: { 'x-request-id': 'trace-abc.123' } });
    expect(response.headers.get('x-request-id')).toBe('trace-abc.123');
  });
});

describe('authentication of the diagnostics endpoints', () => {
  it('refuses a request without a token with 401 and a Bearer challenge, and starts nothing', async () => {
    const before = await workflowCount();
    const response = await fetch(`${stack.baseUrl}/v1/diagnostics/pings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"message":"x"}',
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await workflowCount()).toBe(before);
  });

  it('refuses a tenant approver with 403: running diagnostics is an MSP operator action', async () => {
    const response = await fetch(`${stack.baseUrl}/v1/diagnostics/pings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${identity.tokens.approverA}` },
      body: '{"message":"x"}',
    });
    expect(response.status).toBe(403);
  });
});

/** An API of its own on a free loopback port, on the stack's parts unless a test swaps one (a dead pool or Temporal, a logger it reads). */
async function apiWith(parts: Partial<Pick<Parameters<typeof createApp>[0], 'pool' | 'temporal' | 'logger'>>) {
  const app = createApp({
    config: { BODY_LIMIT: '100kb', IMPORT_BODY_LIMIT: '10mb' },
    pool: stack.pool,
    temporal: stack.temporal,
    payloadCodec: testPayloadCodec,
    directory: stack.directory,
    logger: testLogger,
    version: 'test',
    ...parts,
  });
  return startServer(app, '127.0.0.1', 0);
}

describe('operational endpoints', () => {
  it('reports liveness and readiness with PostgreSQL and Temporal reachable', async () => {
    expect(await (await fetch(`${stack.baseUrl}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${stack.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { postgres: { ok: true }, temporal: { ok: true } } });
  });

  it('answers 503 naming PostgreSQL, not why, when the database is unreachable, and logs the reason', async () => {
    const deadPool = createPool({ connectionString: `postgres://nobody@127.0.0.1:${await freePort()}/none`, max: 1 });
    const logged: string[] = [];
    const server = await apiWith({
      pool: deadPool,
      logger: pino({ level: 'warn' }, { write: (line: string) => void logged.push(line) }),
    });
    try {
      const response = await fetch(`${server.url}/readyz`);
      expect(response.status).toBe(503);
      const text = await response.text();
      // Up or down per dependency, nothing an unauthenticated caller could map the network with.
      expect(JSON.parse(text)).toEqual({ status: 'not_ready', checks: { postgres: { ok: false }, temporal: { ok: true } } });
      expect(text).not.toMatch(/ECONNREFUSED|connect|127\.0\.0\.1|\d{4,5}/);
      expect(logged.some((line) => line.includes('"dependency":"postgres"') && /ECONNREFUSED/.test(line))).toBe(true);
      // An authenticated call needs the database: the outage is ours, not the caller's, so 503.
      const call = await fetch(`${server.url}/v1/me`, {
        headers: { authorization: 'Bearer tnr_whateverwhateverwhateverwhateverwhatever' },
      });
      expect(call.status).toBe(503);
      expect(call.headers.get('retry-after')).toBe('5');
      expect(call.headers.get('www-authenticate')).toBeNull();
      expect(((await call.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    } finally {
      await server.stop();
      await deadPool.end();
    }
  });

  it('writes no query of a console address to the request log, whatever page a provider returns to', async () => {
    const logged: string[] = [];
    const server = await apiWith({ logger: pino({ level: 'info' }, { write: (line: string) => void logged.push(line) }) });
    try {
      for (const path of ['/console/oidc/callback', '/console/grants/abc', '/console']) {
        await (await fetch(`${server.url}${path}?code=SECRET-CODE&state=SECRET-STATE`)).arrayBuffer();
      }
      await (await fetch(`${server.url}/v1/me?probe=kept`)).arrayBuffer();
      expect(logged.filter((line) => line.includes('/console/grants/abc?[redacted]'))).toHaveLength(1);
      expect(logged.filter((line) => line.includes('SECRET'))).toEqual([]);
      // Other addresses keep their query: it is what an operator reads a request by.
      expect(logged.some((line) => line.includes('/v1/me?probe=kept'))).toBe(true);
    } finally {
      await server.stop();
    }
  });

  it('answers 503 with Retry-After when Temporal cannot be reached', async () => {
    // The connection options the API itself uses (its shorter retry budget included).
    const config = loadConfig({ API_TEMPORAL_MAX_ATTEMPTS: '3' });
    const connection = Connection.lazy(await clientConnectionOptions(config, `127.0.0.1:${await freePort()}`, { forRequests: true }));
    const deadTemporal = new Client({ connection, namespace: 'default', dataConverter: testDataConverter });
    const server = await apiWith({ temporal: deadTemporal });
    try {
      const response = await fetch(`${server.url}/v1/diagnostics/pings/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, {
        headers: bearer(),
      });
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('5');
      expect(((await response.json()) as { error: { code: string; message: string } }).error).toMatchObject({
        code: 'unavailable',
        message: expect.stringContaining('Temporal'),
      });
    } finally {
      await server.stop();
      await connection.close();
    }
  });

  it('serves an OpenAPI document generated from the schemas, and a readable reference at /docs', async () => {
    const doc = (await (await fetch(`${stack.baseUrl}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/diagnostics/pings', '/v1/diagnostics/pings/{pingId}', '/healthz', '/readyz']),
    );
    expect(doc.components.schemas).toHaveProperty('PingRequest');
    const docs = await fetch(`${stack.baseUrl}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger-ui');
  });

  it('exposes Prometheus HTTP metrics labelled by route', async () => {
    await fetch(`${stack.baseUrl}/healthz`);
    const text = await (await fetch(`${stack.baseUrl}/metrics`)).text();
    expect(text).toMatch(/tenure_http_request_duration_seconds_count\{method="GET",route="\/healthz",status_code="200"\} \d+/);
    expect(text).toContain('tenure_api_process_resident_memory_bytes');
  });
});
