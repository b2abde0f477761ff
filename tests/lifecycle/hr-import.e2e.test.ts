import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { DEFAULT_IMPORT_MAX_ROWS, HR_IMPORT_WORKFLOW_TYPE } from '../../core/lifecycle/contract.js';
import { runCli, runCliInTerminal } from '../support/cli.js';
import { apiClient, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, setPolicy, type TestTenancy } from '../support/tenancy.js';

/**
 * Bulk HR event imports as durable jobs, through HTTP on the real stack: rows stored before the
 * 202, submitted in batches by the import workflow, progress and per-row results read back, a
 * worker stopped mid-job and replaced, the row cap, rows the database cannot store, and the CLI.
 */
let stack: TestStack;
let id: TestTenancy;

/**
 * Person ids whose directory look-up (the joiner's takeover check, made when a row is submitted)
 * waits until `release` is called: holds an import at a known row without any timing.
 */
const gate = { held: new Set<string>(), opened: Promise.resolve(), release: () => undefined as void };
function holdAt(personIds: string[]) {
  gate.held = new Set(personIds);
  gate.opened = new Promise<void>((resolve) => (gate.release = resolve));
}

const call = apiClient(() => stack.baseUrl);

beforeAll(async () => {
  stack = await startTestStack({
    // Stopping the worker cancels its activities at once, as a crash would leave them.
    shutdownGraceSeconds: 0,
    directory: (real) =>
      new Proxy(real, {
        get(target, name, receiver) {
          const value = Reflect.get(target, name, receiver) as unknown;
          if (name !== 'getUser') return value;
          return async (tenantId: string, userId: string) => {
            if (gate.held.has(userId)) await gate.opened;
            return real.getUser(tenantId, userId);
          };
        },
      }),
  });
  id = await seedTenancy(stack.pool);
  const directory = createPostgresDirectory(stack.pool);
  for (const role of ['Staff', 'FinanceReaders']) await directory.upsertRole(id.tenantA, { name: role });
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
    expectedVersion: 1,
    document: {
      lifecycle: {
        attributes: ['department'],
        rules: [
          { id: 'everyone', roles: ['Staff'] },
          { id: 'finance', when: { department: 'Finance' }, roles: ['FinanceReaders'] },
        ],
      },
    },
  });
  expect(approval?.body.status).toBe('applied');
});
afterAll(async () => {
  gate.release();
  await stack?.stop();
});

const base = () => `/v1/tenants/${id.tenantA}`;
const hr = () => id.tokens.hrA!;
const past = new Date(Date.now() - 60_000).toISOString();
const joinerRow = (personId: string, department = 'Finance') =>
  `${personId}-join,${personId},joiner,${past},${personId},Person ${personId},${personId}@example.test,${department}`;
const CSV_HEADER = 'eventId,personId,type,effectiveAt,username,displayName,email,department';
const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i + 1).padStart(3, '0')}`);

/** How long a job may take on a loaded two-core machine; a bound, not an expectation. */
const JOB_MS = 240_000;

const progress = async (location: string, query = '') => (await call(hr(), 'GET', `${location}${query}`)).body;
const completed = (location: string) =>
  eventually(
    () => progress(location, '?limit=1'),
    (p) => p.status === 'completed',
    JOB_MS,
  );
/** Every row result of an import, paged through by cursor. */
async function allRows(location: string, query = ''): Promise<Json[]> {
  const rows: Json[] = [];
  for (let after: number | null = 0; after !== null;) {
    const page = await progress(location, `?limit=100&after=${after}${query}`);
    rows.push(...page.rows);
    after = page.nextCursor;
  }
  return rows;
}
const owner = async (sql: string, params: unknown[] = []) => (await stack.db.pool.query(sql, params)).rows;
async function importWorkflows(): Promise<number> {
  let n = 0;
  for await (const _ of stack.temporal.workflow.list({ query: `${stack.workflowQuery} AND WorkflowType = '${HR_IMPORT_WORKFLOW_TYPE}'` }))
    n++;
  return n;
}

// Each test waits for whole jobs, which a loaded machine runs slowly; JOB_MS bounds every wait inside.
describe('bulk HR event imports as jobs', { timeout: JOB_MS + 60_000 }, () => {
  it('a few hundred rows: 202 with Location, progress read back, every row applied once, start and completion audited', async () => {
    const people = ids('bulk', 200);
    const csv = [CSV_HEADER, ...people.map((p, i) => joinerRow(p, i % 2 ? 'Finance' : 'Sales'))].join('\n');
    const posted = await call(hr(), 'POST', `${base()}/hr-events/import`, csv, { contentType: 'text/csv' });
    expect(posted.status).toBe(202);
    const location = posted.headers.get('location')!;
    expect(location).toBe(`${base()}/hr-events/imports/${posted.body.importId}`);
    expect(posted.body).toMatchObject({
      status: 'queued',
      format: 'csv',
      total: 200,
      done: 0,
      workflowId: `import/${id.tenantA}/${posted.body.importId}`,
    });

    const done = await completed(location);
    expect(done).toMatchObject({ total: 200, done: 200, failed: 0, counts: { accepted: 200, pending: 0, duplicate: 0 } });
    expect(done.completedAt).toEqual(expect.any(String));
    const rows = await allRows(location);
    expect(rows.map((r) => r.row)).toEqual(people.map((_, i) => i + 1));
    expect(new Set(rows.map((r) => r.status))).toEqual(new Set(['accepted']));
    expect(rows[199]).toMatchObject({ row: 200, eventId: 'bulk-200-join', personId: 'bulk-200', issues: [], error: null });

    const listed = await call(hr(), 'GET', `${base()}/hr-events/imports?limit=5`);
    expect(listed.body.imports.map((j: Json) => j.importId)).toContain(posted.body.importId);

    // Each row registered once.
    const [registered] = await owner(`SELECT count(*)::int AS n FROM hr_events WHERE tenant_id = $1 AND event_id LIKE 'bulk-%'`, [
      id.tenantA,
    ]);
    expect(registered.n).toBe(200);

    // The job's start and completion in the tenant's chain, as the HR feed's acts; each person's own trail says which import.
    const audit = await owner(
      `SELECT action, actor_id, authority, payload FROM audit_events WHERE tenant_id = $1 AND target_type = 'hr_import' AND target_id = $2 ORDER BY seq`,
      [id.tenantA, posted.body.importId],
    );
    expect(audit.map((e) => e.action)).toEqual(['hr_import.started', 'hr_import.completed']);
    for (const event of audit) {
      expect(event.actor_id).toBe(id.actors.hrA!.id);
      expect(event.authority).toMatchObject({
        importId: posted.body.importId,
        roles: ['hr_integration'],
        policyVersion: done.policyVersion,
      });
    }
    expect(audit[1].payload).toMatchObject({ total: 200, done: 200, failed: 0 });
    const joined = await eventually(
      () =>
        owner(`SELECT authority FROM audit_events WHERE tenant_id = $1 AND target_id = 'bulk-001' AND action = 'person.joined'`, [
          id.tenantA,
        ]),
      (found) => found.length > 0,
      JOB_MS,
    );
    expect(joined).toHaveLength(1);
    expect(joined[0].authority).toMatchObject({ hrEventId: 'bulk-001-join' });
    const verify = await call(id.tokens.auditorA, 'GET', `/v1/audit/${id.tenantA}/verify`);
    expect(verify.body.intact).toBe(true);
  });

  it('a worker stopped mid-import is replaced and the job resumes at the first pending row, applying no row twice', async () => {
    const people = ids('crash', 120);
    // Rows 61 on wait at the takeover check until the gate opens: the first batch (rows 1-100)
    // stops in its middle, with the rows in flight registered nowhere yet.
    holdAt(people.slice(60));
    const posted = await call(hr(), 'POST', `${base()}/hr-events/import`, [CSV_HEADER, ...people.map((p) => joinerRow(p))].join('\n'), {
      contentType: 'text/csv',
    });
    expect(posted.status).toBe(202);
    const location = posted.headers.get('location')!;
    const held = await eventually(
      () => progress(location, '?limit=1'),
      (p) => p.done === 60,
      JOB_MS,
    );
    expect(held).toMatchObject({ status: 'running', total: 120, done: 60, counts: { accepted: 60, pending: 60 } });

    // The worker goes away with rows in flight; nothing moves without one.
    await stack.stopWorker();
    expect(await progress(location, '?limit=1')).toMatchObject({ status: 'running', done: 60 });
    // The rows in flight at the stop now reach the register and the person workflows, as a dying
    // process's last requests may; a new worker takes the job over.
    gate.release();
    await stack.startWorker();

    const done = await completed(location);
    // The first batch was cut off by the stop and finished by the new worker on its second attempt.
    const history = await stack.temporal.workflow.getHandle(posted.body.workflowId).fetchHistory();
    const attempts = history.events!.flatMap((e) =>
      e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt] : [],
    );
    // start record, the batch (rows 61-120 were the next 100 pending), completion
    expect(attempts).toEqual([1, 2, 1]);
    expect(done).toMatchObject({ total: 120, done: 120, failed: 0, counts: { accepted: 120, duplicate: 0, pending: 0 } });
    const registered = await owner(`SELECT count(*)::int AS n FROM hr_events WHERE tenant_id = $1 AND event_id LIKE 'crash-%'`, [
      id.tenantA,
    ]);
    expect(registered[0].n).toBe(120);
    await eventually(
      () =>
        owner(
          `SELECT count(*)::int AS joined, count(DISTINCT target_id)::int AS people FROM audit_events
            WHERE tenant_id = $1 AND action = 'person.joined' AND target_id LIKE 'crash-%'`,
          [id.tenantA],
        ),
      ([r]) => r.people === 120,
      JOB_MS,
    );
    const [joins] = await owner(
      `SELECT count(*)::int AS joined, count(DISTINCT target_id)::int AS people FROM audit_events
        WHERE tenant_id = $1 AND action = 'person.joined' AND target_id LIKE 'crash-%'`,
      [id.tenantA],
    );
    expect(joins).toEqual({ joined: 120, people: 120 });
    const audit = await owner(`SELECT action FROM audit_events WHERE tenant_id = $1 AND target_id = $2 ORDER BY seq`, [
      id.tenantA,
      posted.body.importId,
    ]);
    expect(audit.map((e) => e.action)).toEqual(['hr_import.started', 'hr_import.completed']);
  });

  it('more rows than IMPORT_MAX_ROWS is 400 naming the body, and nothing is stored or started', async () => {
    const before = {
      imports: await owner('SELECT count(*)::int AS n FROM hr_imports'),
      rows: await owner('SELECT count(*)::int AS n FROM hr_import_rows'),
      events: await owner('SELECT count(*)::int AS n FROM hr_events'),
      workflows: await importWorkflows(),
    };
    const over = DEFAULT_IMPORT_MAX_ROWS + 1;
    const ndjson = Array.from({ length: over }, (_, i) =>
      JSON.stringify({ eventId: `cap-${i}`, personId: `cap-${i}`, type: 'leaver', effectiveAt: past }),
    ).join('\n');
    const text = await call(hr(), 'POST', `${base()}/hr-events/import`, ndjson, { contentType: 'application/x-ndjson' });
    expect(text.status).toBe(400);
    expect(text.body.error.issues).toEqual([{ path: 'body', message: `${over} rows; at most ${DEFAULT_IMPORT_MAX_ROWS} per import` }]);
    const json = await call(hr(), 'POST', `${base()}/hr-events/import`, { rows: Array.from({ length: over }, () => ({})) });
    expect(json.status).toBe(400);
    expect(json.body.error.issues.map((i: Json) => i.path)).toEqual(['body.rows']);
    expect({
      imports: await owner('SELECT count(*)::int AS n FROM hr_imports'),
      rows: await owner('SELECT count(*)::int AS n FROM hr_import_rows'),
      events: await owner('SELECT count(*)::int AS n FROM hr_events'),
      workflows: await importWorkflows(),
    }).toEqual(before);
  });

  it('an upload sent again with its Idempotency-Key answers the same job, concurrently too; the key on another body is 409', async () => {
    const people = ids('again', 5);
    const csv = [CSV_HEADER, ...people.map((p) => joinerRow(p))].join('\n');
    const send = (body: string, key: string) =>
      call(hr(), 'POST', `${base()}/hr-events/import`, body, { contentType: 'text/csv', headers: { 'idempotency-key': key } });
    const [first, second] = await Promise.all([send(csv, 'upload-again-1'), send(csv, 'upload-again-1')]);
    expect([first.status, second.status]).toEqual([202, 202]);
    expect(second.body.importId).toBe(first.body.importId);
    const location = first.headers.get('location')!;
    expect(second.headers.get('location')).toBe(location);
    await completed(location);
    // Sent again after it ran: the same job, as it is now, and no row submitted a second time.
    const late = await send(csv, 'upload-again-1');
    expect(late.status).toBe(202);
    expect(late.body).toMatchObject({ importId: first.body.importId, status: 'completed', counts: { accepted: 5, duplicate: 0 } });
    const stored = await owner('SELECT count(*)::int AS n FROM hr_imports WHERE tenant_id = $1 AND idempotency_key = $2', [
      id.tenantA,
      'upload-again-1',
    ]);
    expect(stored[0].n).toBe(1);
    const [registered] = await owner(`SELECT count(*)::int AS n FROM hr_events WHERE tenant_id = $1 AND event_id LIKE 'again-%'`, [
      id.tenantA,
    ]);
    expect(registered.n).toBe(5);

    const before = await owner('SELECT count(*)::int AS n FROM hr_imports WHERE tenant_id = $1', [id.tenantA]);
    const other = await send([CSV_HEADER, joinerRow('again-other')].join('\n'), 'upload-again-1');
    expect(other.status).toBe(409);
    expect(await owner('SELECT count(*)::int AS n FROM hr_imports WHERE tenant_id = $1', [id.tenantA])).toEqual(before);
    // A malformed key is refused before anything is read or stored.
    const bad = await call(hr(), 'POST', `${base()}/hr-events/import`, csv, {
      contentType: 'text/csv',
      headers: { 'idempotency-key': 'bad key!' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: Json) => i.path)).toEqual(['headers.idempotency-key']);
  });

  it('reports each bad row by number and field — NUL, lone surrogates, malformed, unknown, refused, repeated — and completes', async () => {
    const join = {
      eventId: 'bad-1',
      personId: 'bad-ann',
      type: 'joiner',
      effectiveAt: past,
      profile: { username: 'ann', displayName: 'Ann' },
    };
    const lines = [
      JSON.stringify(join),
      JSON.stringify({ ...join, eventId: 'bad-2', personId: 'bad-nul', profile: { username: 'nul', displayName: 'bad\u0000byte' } }),
      // JSON.stringify writes a lone surrogate as the escape \ud800, which JSON.parse reads back.
      JSON.stringify({ ...join, eventId: 'bad-3', personId: 'bad-sur', attributes: { department: 'x\ud800' } }),
      '{ not json',
      JSON.stringify({ ...join, eventId: 'bad-5', personId: 'bad-shoe', attributes: { shoeSize: '44' } }),
      JSON.stringify({ eventId: 'bad-6', personId: 'bad-ghost', type: 'leaver', effectiveAt: past }),
      JSON.stringify(join),
      JSON.stringify({ ...join, profile: { username: 'ann', displayName: 'Another Ann' } }),
    ].join('\n');
    const posted = await call(hr(), 'POST', `${base()}/hr-events/import`, lines, { contentType: 'application/x-ndjson' });
    expect(posted.status).toBe(202);
    const location = posted.headers.get('location')!;
    const done = await completed(location);
    expect(done).toMatchObject({
      total: 8,
      done: 8,
      failed: 6,
      counts: { accepted: 1, duplicate: 1, invalid: 4, rejected: 2, pending: 0 },
    });
    const rows = await allRows(location);
    expect(rows.map((r) => [r.row, r.status])).toEqual([
      [1, 'accepted'],
      [2, 'invalid'],
      [3, 'invalid'],
      [4, 'invalid'],
      [5, 'invalid'],
      [6, 'rejected'],
      [7, 'duplicate'],
      [8, 'rejected'],
    ]);
    expect(rows[1]).toMatchObject({ eventId: 'bad-2', issues: [{ path: 'profile.displayName', message: expect.stringContaining('NUL') }] });
    expect(rows[2]).toMatchObject({ issues: [{ path: 'attributes.department', message: expect.stringContaining('surrogate') }] });
    expect(rows[3]!.issues.map((i: Json) => i.path)).toEqual(['row']);
    expect(rows[4]!.issues.map((i: Json) => i.path)).toEqual(['attributes.shoeSize']);
    expect(rows[5]).toMatchObject({ personId: 'bad-ghost', error: { status: 404, code: 'person_not_found' } });
    expect(rows[7]).toMatchObject({ eventId: 'bad-1', error: { status: 409, message: expect.stringContaining('different body') } });
    expect((await allRows(location, '&status=failed')).map((r) => r.row)).toEqual([2, 3, 4, 5, 6, 8]);
    // Sent alone, the same row is refused whole, naming the same field.
    const alone = await call(hr(), 'POST', `${base()}/hr-events`, { ...join, eventId: 'bad-3', attributes: { department: 'x\ud800' } });
    expect(alone.status).toBe(400);
    expect(alone.body.error.issues).toEqual([{ path: 'body.attributes.department', message: expect.stringContaining('surrogate') }]);

    // A NUL in a CSV cell fails its row only, not the upload.
    const csv = [CSV_HEADER, joinerRow('bad-csv-ok'), joinerRow('bad-csv-nul').replace('Person bad-csv-nul', 'Per\u0000son')].join('\n');
    const csvPosted = await call(hr(), 'POST', `${base()}/hr-events/import`, csv, { contentType: 'text/csv' });
    expect(csvPosted.status).toBe(202);
    const csvLocation = csvPosted.headers.get('location')!;
    await completed(csvLocation);
    const csvRows = await allRows(csvLocation);
    expect(csvRows.map((r) => [r.row, r.status, r.issues.map((i: Json) => i.path)])).toEqual([
      [1, 'accepted', []],
      [2, 'invalid', ['profile.displayName']],
    ]);
  });

  it('reads another tenant’s import as absent, and an unknown import id is 404', async () => {
    const posted = await call(hr(), 'POST', `${base()}/hr-events/import`, [CSV_HEADER, joinerRow('scope-1')].join('\n'), {
      contentType: 'text/csv',
    });
    const other = await call(id.tokens.tenantAdminB, 'GET', `/v1/tenants/${id.tenantB}/hr-events/imports/${posted.body.importId}`);
    expect(other.status).toBe(404);
    const unknown = await call(hr(), 'GET', `${base()}/hr-events/imports/00000000-0000-4000-8000-000000000000`);
    expect(unknown.status).toBe(404);
  });

  it('the tenure CLI waits with a progress bar on a terminal, plain lines otherwise, and --no-wait returns the job at once', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-import-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const env = { TENURE_URL: stack.baseUrl, TENURE_TOKEN: hr() };
    const file = async (name: string, people: string[], extra: string[] = []) => {
      const at = path.join(dir, name);
      await writeFile(at, [CSV_HEADER, ...people.map((p) => joinerRow(p)), ...extra].join('\n'));
      return at;
    };

    const plain = await runCli(
      ['person', 'import', '--json', '--tenant', id.tenantA, '--file', await file('plain.csv', ids('cli-plain', 3), ['broken,row'])],
      env,
    );
    expect(plain.code).toBe(1); // a row failed
    const result = JSON.parse(plain.stdout) as Json;
    expect(result).toMatchObject({ status: 'completed', total: 4, done: 4, failed: 1 });
    expect(result.failedRows).toEqual([expect.objectContaining({ row: 4, status: 'invalid' })]);
    expect(plain.stderr).toContain(`import ${result.importId}: 4/4 rows done, 1 failed (completed)`);

    const queued = await runCli(
      ['person', 'import', '--no-wait', '--json', '--tenant', id.tenantA, '--file', await file('later.csv', ['cli-later'])],
      env,
    );
    expect(queued.code).toBe(0);
    const job = JSON.parse(queued.stdout) as Json;
    expect(job).toMatchObject({ status: 'queued', total: 1 });
    expect(queued.stderr).not.toContain('rows done');
    const followed = await runCli(['person', 'import-status', '--json', '--tenant', id.tenantA, '--wait', job.importId], env);
    expect(followed.code).toBe(0);
    expect(JSON.parse(followed.stdout)).toMatchObject({ importId: job.importId, status: 'completed', done: 1, failedRows: [] });

    const terminal = await runCliInTerminal(
      ['person', 'import', '--tenant', id.tenantA, '--file', await file('tty.csv', ['cli-tty'])],
      env,
    );
    expect(terminal.code).toBe(0);
    // The bar's filled blocks and its counters, drawn on the terminal.
    expect(terminal.output).toContain('\u2588');
    expect(terminal.output).toMatch(/1\/1 rows \| 0 failed \| completed/);
  });
});
