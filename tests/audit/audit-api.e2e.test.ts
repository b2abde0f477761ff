import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainVerifier, GENESIS_HASH, hashEvent, type AuditEvent, type AuditEventInput } from '../../core/audit/chain.js';
import { appendAuditEvent } from '../../db/audit.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { seedTenancy, type TestTenancy } from '../support/tenancy.js';
import { runCli } from '../support/cli.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let id: TestTenancy;
let dir: string;
/** The events this file appends to tenant A, beside those the tenancy seed wrote. */
const appended: AuditEventInput[] = [];
const BASE = Date.UTC(2024, 5, 1, 10, 0, 0);

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-audit-api-'));
  for (let i = 0; i < 25; i++) {
    const event: AuditEventInput = {
      tenantId: id.tenantA,
      eventId: randomUUID(),
      occurredAt: new Date(BASE + i * 60_000).toISOString(),
      actor: { id: i % 2 ? 'bob' : 'alice', type: 'user' },
      action: i % 2 ? 'grant.approved' : 'grant.requested',
      target: { type: 'grant', id: `g-${i % 5}` },
      authority: { ticket: `CHG-${i}` },
      workflowId: `grant/${id.tenantA}/g-${i % 5}`,
      runId: randomUUID(),
      payload: { i, note: 'quote " comma , newline \n done' },
    };
    await inScope(stack.pool, tenantScope(id.tenantA), (client) => appendAuditEvent(client, event));
    appended.push(event);
  }
});
afterAll(async () => {
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A seeded actor's token; a misspelt key must fail loudly, not send an unauthenticated request. */
function token(key: string): string {
  const value = id.tokens[key];
  if (!value) throw new Error(`no seeded token for ${key}`);
  return value;
}

const get = (urlPath: string, token?: string, init: RequestInit = {}) =>
  fetch(`${stack.baseUrl}${urlPath}`, { ...init, headers: token ? { authorization: `Bearer ${token}` } : {} });

interface Page {
  events: AuditEvent[];
  nextCursor: string | null;
}

async function listAll(chainId: string, bearer: string, query: Record<string, string>): Promise<{ events: AuditEvent[]; pages: number }> {
  const events: AuditEvent[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const params = new URLSearchParams({ ...query, ...(cursor ? { cursor } : {}) });
    const response = await get(`/v1/audit/${chainId}/events?${params.toString()}`, bearer);
    expect(response.status).toBe(200);
    const page = (await response.json()) as Page;
    events.push(...page.events);
    cursor = page.nextCursor;
    pages++;
  } while (cursor && pages < 100);
  return { events, pages };
}

async function issues(response: Response): Promise<string[]> {
  expect(response.status).toBe(400);
  const body = (await response.json()) as { error: { issues: { path: string }[] } };
  return body.error.issues.map((i) => i.path).sort();
}

/** RFC 4180 records: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',' || c === '\n') {
      record.push(field);
      field = '';
      if (c === '\n') {
        records.push(record);
        record = [];
      }
    } else field += c;
  }
  if (field || record.length) {
    record.push(field);
    records.push(record);
  }
  return records;
}

describe('listing a tenant chain', () => {
  it('pages through filtered events in seq order with an opaque cursor, ending with nextCursor null', async () => {
    const { events, pages } = await listAll(id.tenantA, token('auditorA'), { action: 'grant.requested', limit: '5' });
    const expected = appended.filter((e) => e.action === 'grant.requested').map((e) => e.eventId);
    expect(expected).toHaveLength(13);
    expect(pages).toBe(3);
    expect(events.map((e) => e.eventId)).toEqual(expected);
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(events[0]).toMatchObject({
      tenantId: id.tenantA,
      actor: { id: 'alice', type: 'user' },
      authority: { ticket: 'CHG-0' },
      payload: { i: 0 },
    });
  });

  it('returns nextCursor null on an exactly full last page', async () => {
    const first = (await (await get(`/v1/audit/${id.tenantA}/events?action=grant.approved&limit=12`, token('auditorA'))).json()) as Page;
    expect(first.events).toHaveLength(12);
    expect(first.nextCursor).toBeNull();
  });

  it('filters by actor, target, workflow and a time window together', async () => {
    const from = new Date(BASE + 5 * 60_000).toISOString();
    const to = new Date(BASE + 20 * 60_000).toISOString();
    const { events } = await listAll(id.tenantA, token('auditorA'), {
      actorId: 'bob',
      targetId: 'g-1',
      workflowId: `grant/${id.tenantA}/g-1`,
      from,
      to,
    });
    const expected = appended
      .filter((e) => e.actor.id === 'bob' && e.target?.id === 'g-1' && e.occurredAt >= from && e.occurredAt < to)
      .map((e) => e.eventId);
    expect(expected.length).toBeGreaterThan(0);
    expect(events.map((e) => e.eventId)).toEqual(expected);
  });

  it('shows the MSP chain to an MSP auditor and refuses it to a tenant auditor', async () => {
    const response = await get('/v1/audit/msp/events?action=tenant.created', token('mspAuditor'));
    expect(response.status).toBe(200);
    const page = (await response.json()) as Page;
    expect(page.events.map((e) => e.target?.id).sort()).toEqual(expect.arrayContaining([id.tenantA, id.tenantB].sort()));
    expect(page.events.every((e) => e.tenantId === 'msp')).toBe(true);
    expect((await get('/v1/audit/msp/events', token('auditorA'))).status).toBe(403);
  });
});

describe('exporting a chain', () => {
  it('streams NDJSON that verifies with ChainVerifier up to the head named in the headers', async () => {
    const response = await get(`/v1/audit/${id.tenantA}/export?format=ndjson`, token('auditorA'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const headSeq = Number(response.headers.get('x-audit-head-seq'));
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="audit-${id.tenantA}-${headSeq}.ndjson"`);
    const lines = (await response.text()).split('\n');
    expect(lines.pop()).toBe('');
    const verifier = new ChainVerifier();
    for (const line of lines) verifier.push(JSON.parse(line) as AuditEvent);
    const result = verifier.finish({ seq: headSeq, hash: response.headers.get('x-audit-head-hash')! });
    expect(result).toMatchObject({ intact: true, checked: headSeq });
    expect(headSeq).toBeGreaterThanOrEqual(25);
  });

  it('streams CSV with a header row and one row per event, nested objects as JSON', async () => {
    const response = await get(`/v1/audit/${id.tenantA}/export?format=csv&action=grant.approved`, token('mspAuditor'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(response.headers.get('content-disposition')).toMatch(/\.csv"$/);
    const [header, ...rows] = parseCsv(await response.text());
    expect(header).toEqual([
      'tenantId',
      'seq',
      'eventId',
      'occurredAt',
      'actor',
      'action',
      'target',
      'authority',
      'workflowId',
      'runId',
      'payload',
      'prevHash',
      'hash',
    ]);
    const expected = appended.filter((e) => e.action === 'grant.approved');
    expect(rows).toHaveLength(expected.length);
    const first = Object.fromEntries(header!.map((key, i) => [key, rows[0]![i]!]));
    expect(first.eventId).toBe(expected[0]!.eventId);
    expect(JSON.parse(first.actor!)).toEqual({ id: 'bob', type: 'user' });
    expect(JSON.parse(first.payload!)).toEqual({ i: 1, note: 'quote " comma , newline \n done' });
    // The columns carry everything hashed: the row rebuilds into an event with the same hash.
    const rebuilt = {
      ...first,
      seq: Number(first.seq),
      actor: JSON.parse(first.actor!),
      target: JSON.parse(first.target!),
      authority: JSON.parse(first.authority!),
      payload: JSON.parse(first.payload!),
    };
    expect(hashEvent(rebuilt as unknown as AuditEvent)).toBe(first.hash);
  });

  it('neutralises text cells a spreadsheet would run as a formula, reversibly, and NDJSON still verifies', async () => {
    const targetId = randomUUID();
    const cells = [
      ["=cmd|' /C calc'!A0", '+1+1', '@SUM(1,1)'],
      ['-2+3', '\t=1', '\r=1'],
      ["'=already quoted", 'plain', null],
    ] satisfies [string, string, string | null][];
    const hostile: AuditEventInput[] = cells.map(([action, workflowId, runId], i) => ({
      tenantId: id.tenantA,
      eventId: randomUUID(),
      occurredAt: new Date(BASE + (100 + i) * 60_000).toISOString(),
      actor: { id: '=evil', type: 'user' },
      action,
      target: { type: 'grant', id: targetId },
      authority: { ticket: '=HYPERLINK("http://x")' },
      workflowId,
      runId,
      payload: { note: "=cmd|' /C calc'!A0" },
    }));
    for (const event of hostile) await inScope(stack.pool, tenantScope(id.tenantA), (client) => appendAuditEvent(client, event));

    const response = await get(`/v1/audit/${id.tenantA}/export?format=csv&targetId=${targetId}`, token('auditorA'));
    expect(response.status).toBe(200);
    const [header, ...rows] = parseCsv(await response.text());
    expect(rows).toHaveLength(hostile.length);
    for (const row of rows) for (const cell of row) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
    const records = rows.map((row) => Object.fromEntries(header!.map((key, i) => [key, row[i]!])));
    expect(records.map((r) => [r.action, r.workflowId, r.runId])).toEqual([
      ["'=cmd|' /C calc'!A0", "'+1+1", "'@SUM(1,1)"],
      ["'-2+3", "'\t=1", "'\r=1"],
      ["''=already quoted", 'plain', ''],
    ]);
    // Nested objects are JSON, so they start with `{` and stay as they are.
    expect(JSON.parse(records[0]!.payload!)).toEqual({ note: "=cmd|' /C calc'!A0" });
    // Dropping one leading `'` gives back the hashed values.
    const unquote = (cell: string) => (cell.startsWith("'") ? cell.slice(1) : cell);
    for (const [i, record] of records.entries()) {
      const rebuilt = {
        ...Object.fromEntries(Object.entries(record).map(([key, cell]) => [key, unquote(cell)])),
        seq: Number(record.seq),
        runId: record.runId === '' ? null : unquote(record.runId!),
        actor: JSON.parse(record.actor!),
        target: JSON.parse(record.target!),
        authority: JSON.parse(record.authority!),
        payload: JSON.parse(record.payload!),
      };
      expect(rebuilt).toMatchObject({ action: hostile[i]!.action, workflowId: hostile[i]!.workflowId });
      expect(hashEvent(rebuilt as unknown as AuditEvent)).toBe(record.hash);
    }

    // The verifiable export is NDJSON, which carries the values as hashed: the chain still verifies.
    const ndjson = await get(`/v1/audit/${id.tenantA}/export?format=ndjson`, token('auditorA'));
    const verifier = new ChainVerifier();
    for (const line of (await ndjson.text()).trim().split('\n')) verifier.push(JSON.parse(line) as AuditEvent);
    const head = { seq: Number(ndjson.headers.get('x-audit-head-seq')), hash: ndjson.headers.get('x-audit-head-hash')! };
    expect(verifier.finish(head)).toMatchObject({ intact: true, checked: head.seq });
  });

  it('downloads with `tenure audit export` and verifies offline with the head it printed', async () => {
    const out = path.join(dir, 'a.ndjson');
    const exported = await runCli(['audit', 'export', '--chain', id.tenantA, '--format', 'ndjson', '--out', out], {
      TENURE_URL: stack.baseUrl,
      TENURE_TOKEN: token('auditorA'),
    });
    expect(exported).toMatchObject({ code: 0, stderr: '' });
    const [, seq, hash] = /chain head: seq (\d+), hash ([0-9a-f]{64})/.exec(exported.stdout)!;
    expect((await readFile(out, 'utf8')).trim().split('\n')).toHaveLength(Number(seq));
    const verified = await runCli(['audit', 'verify', '--file', out, '--head-seq', seq!, '--head-hash', hash!]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(`intact: ${seq} events checked`);

    const refused = await runCli(['audit', 'export', '--chain', id.tenantB, '--out', path.join(dir, 'b.ndjson')], {
      TENURE_URL: stack.baseUrl,
      TENURE_TOKEN: token('auditorA'),
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/HTTP 404/);
  });
});

describe('a long export', () => {
  // A chain long enough that the export cannot finish into socket buffers while we hold off reading.
  const tenantId = randomUUID();
  const sessions = () =>
    stack.db.pool.query<{ pid: number; state: string; query: string }>(
      "SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'",
    );
  const exportSession = async () => (await sessions()).rows.find((row) => /FROM audit_events/.test(row.query));
  const poolSettled = () => Promise.resolve(stack.pool.idleCount === stack.pool.totalCount && stack.pool.waitingCount === 0);

  /** Starts an export, reads its first chunk, and waits until backpressure holds it mid-way. */
  async function startHeldExport(signal?: AbortSignal) {
    const response = await get(`/v1/audit/${tenantId}/export`, token('mspAuditor'), signal ? { signal } : {});
    expect(response.status).toBe(200);
    expect(response.headers.get('x-audit-head-seq')).toBe('40000');
    const reader = response.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    await new Promise((r) => setTimeout(r, 500));
    const session = await exportSession();
    expect(session).toBeDefined();
    return { reader, session: session! };
  }

  beforeAll(async () => {
    await stack.db.pool.query("INSERT INTO tenants (id, slug, name, created_by) VALUES ($1, $2, 'Big tenant', 'test')", [
      tenantId,
      `big-${tenantId.slice(0, 8)}`,
    ]);
    await insertValidChain(tenantId, 40_000);
  });

  it('closes the database cursor and returns the connection when the client hangs up mid-export', async () => {
    const controller = new AbortController();
    try {
      await startHeldExport(controller.signal);
    } finally {
      controller.abort();
    }
    await eventually(sessions, (r) => r.rows.length === 0, 10_000);
    await eventually(poolSettled, Boolean, 10_000);
    expect((await get(`/v1/audit/${tenantId}/verify`, token('mspAuditor'))).status).toBe(200);
  });

  it('cuts the connection rather than ending cleanly when the database goes away mid-export', async () => {
    const { reader, session } = await startHeldExport();
    try {
      await stack.db.pool.query('SELECT pg_terminate_backend($1)', [session.pid]);
      const drain = async () => {
        for (;;) if ((await reader.read()).done) return 'ended cleanly';
      };
      const stuck = new Promise((resolve) => setTimeout(resolve, 15_000, 'still open after 15 s'));
      // A clean end would pass a truncated export off as complete; hanging would hold a connection.
      await expect(Promise.race([drain(), stuck])).rejects.toThrow(/terminated/);
    } finally {
      await reader.cancel().catch(() => undefined);
    }
    await eventually(poolSettled, Boolean, 10_000);
    const verify = await get(`/v1/audit/${tenantId}/verify`, token('mspAuditor'));
    expect(await verify.json()).toMatchObject({ intact: true, checked: 40_000, headSeq: 40_000 });
  });
});

describe('verifying a chain', () => {
  it('reports an intact chain up to its head', async () => {
    const response = await get(`/v1/audit/${id.tenantA}/verify`, token('auditorA'));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { intact: boolean; checked: number; headSeq: number };
    expect(body).toEqual({ intact: true, checked: body.headSeq, firstBadSeq: null, reason: null, headSeq: body.headSeq });
    expect(body.headSeq).toBeGreaterThanOrEqual(25);
    // Ids are matched as stored (lower case), whatever case the caller used.
    expect(await (await get(`/v1/audit/${id.tenantA.toUpperCase()}/verify`, token('auditorA'))).json()).toEqual(body);
    const msp = await get('/v1/audit/msp/verify', token('mspAdmin'));
    expect(await msp.json()).toMatchObject({ intact: true, firstBadSeq: null });
  });

  it('names the first altered event when someone with table-owner rights edited it behind the triggers', async () => {
    const { rows } = await stack.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_events WHERE tenant_id = $1', [
      id.tenantB,
    ]);
    expect(rows[0]!.n).toBeGreaterThanOrEqual(2);
    const client = await stack.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete');
      await client.query(`UPDATE audit_events SET payload = payload || '{"tampered": true}' WHERE tenant_id = $1 AND seq = 2`, [
        id.tenantB,
      ]);
      await client.query('ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const response = await get(`/v1/audit/${id.tenantB}/verify`, token('auditorB'));
    expect(await response.json()).toMatchObject({
      intact: false,
      checked: 1,
      firstBadSeq: 2,
      reason: 'hash does not match the event content',
    });
  });
});

describe('who may read a chain', () => {
  const paths = (chain: string) => [`/v1/audit/${chain}/events`, `/v1/audit/${chain}/export`, `/v1/audit/${chain}/verify`];

  it("answers 404 to a tenant A auditor asking for tenant B's chain, as for a chain that does not exist", async () => {
    for (const p of paths(id.tenantB)) {
      const response = await get(p, token('auditorA'));
      expect(response.status).toBe(404);
      expect(((await response.json()) as { error: { message: string } }).error.message).toBe('audit chain not found');
    }
    for (const p of paths(randomUUID())) expect((await get(p, token('mspAdmin'))).status).toBe(404);
  });

  it("answers 403 to tenant A's reviewer and approver on A's own chain", async () => {
    for (const p of paths(id.tenantA)) {
      expect((await get(p, token('reviewerA'))).status).toBe(403);
      expect((await get(p, token('approverA'))).status).toBe(403);
    }
  });

  it('answers 401 without a token, or with an expired or revoked one', async () => {
    for (const p of paths(id.tenantA)) {
      const response = await get(p);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect((await get(paths(id.tenantA)[0]!, token('expiredAdmin'))).status).toBe(401);
    expect((await get(paths(id.tenantA)[0]!, token('revokedAdmin'))).status).toBe(401);
  });
});

describe('bad requests', () => {
  const events = () => `/v1/audit/${id.tenantA}/events`;

  it('answers 400 at query.cursor for a cursor this API did not issue', async () => {
    for (const cursor of ['not-a-cursor!', Buffer.from('-1').toString('base64url'), Buffer.from('01').toString('base64url'), 'MTI=']) {
      expect(await issues(await get(`${events()}?cursor=${encodeURIComponent(cursor)}`, token('auditorA')))).toEqual(['query.cursor']);
    }
  });

  it('answers 400 naming each unknown or invalid query parameter', async () => {
    expect(await issues(await get(`${events()}?bogus=1&limit=0&from=yesterday`, token('auditorA')))).toEqual([
      'query.bogus',
      'query.from',
      'query.limit',
    ]);
    expect(await issues(await get(`${events()}?limit=1001`, token('auditorA')))).toEqual(['query.limit']);
    expect(await issues(await get(`${events()}?from=2024-06-02T00:00:00Z&to=2024-06-01T00:00:00Z`, token('auditorA')))).toEqual([
      'query.to',
    ]);
    expect(await issues(await get(`${events()}?action=a&action=b`, token('auditorA')))).toEqual(['query.action']);
    expect(await issues(await get(`/v1/audit/${id.tenantA}/export?format=xml&limit=5`, token('auditorA')))).toEqual([
      'query.format',
      'query.limit',
    ]);
  });

  it('answers 400 at params.chainId for a chain id that is neither a UUID nor msp', async () => {
    expect(await issues(await get('/v1/audit/tenant-a/events', token('mspAdmin')))).toEqual(['params.chainId']);
  });
});

describe('the OpenAPI document', () => {
  it('describes the three audit routes and the event schema', async () => {
    const doc = (await (await fetch(`${stack.baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
      components: { schemas: Record<string, unknown> };
    };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/audit/{chainId}/events', '/v1/audit/{chainId}/export', '/v1/audit/{chainId}/verify']),
    );
    expect(doc.components.schemas).toHaveProperty('AuditEvent');
    expect(doc.components.schemas).toHaveProperty('ChainVerification');
  });
});

/** Writes a valid chain straight into the table (as the owner): far faster than appending one by one. */
async function insertValidChain(tenantId: string, count: number): Promise<void> {
  let prevHash = GENESIS_HASH;
  const batch: AuditEvent[] = [];
  const flush = async () => {
    await stack.db.pool.query(
      `INSERT INTO audit_events (tenant_id, seq, event_id, occurred_at, actor_id, actor_type, action, target_type, target_id, authority, workflow_id, run_id, payload, prev_hash, hash)
       SELECT e->>'tenantId', (e->>'seq')::bigint, (e->>'eventId')::uuid, (e->>'occurredAt')::timestamptz, e->'actor'->>'id', e->'actor'->>'type', e->>'action',
              e->'target'->>'type', e->'target'->>'id', e->'authority', e->>'workflowId', e->>'runId', e->'payload', e->>'prevHash', e->>'hash'
         FROM jsonb_array_elements($1::jsonb) AS e`,
      [JSON.stringify(batch)],
    );
    batch.length = 0;
  };
  for (let seq = 1; seq <= count; seq++) {
    const body = {
      tenantId,
      seq,
      eventId: randomUUID(),
      occurredAt: new Date(BASE + seq).toISOString(),
      actor: { id: 'bulk', type: 'system' as const },
      action: 'bulk.loaded',
      target: null,
      authority: {},
      workflowId: null,
      runId: null,
      payload: { seq, filler: 'x'.repeat(400) },
      prevHash,
    };
    const event = { ...body, hash: hashEvent(body) };
    prevHash = event.hash;
    batch.push(event);
    if (batch.length === 2000) await flush();
  }
  if (batch.length) await flush();
  await stack.db.pool.query('INSERT INTO audit_chain_heads (tenant_id, seq, hash) VALUES ($1, $2, $3)', [tenantId, count, prevHash]);
}
