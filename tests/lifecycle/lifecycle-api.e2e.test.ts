import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { singleDirectory, type DirectoryConnector } from '../../core/directory/connector.js';
import { runCli, runCliOk } from '../support/cli.js';
import { apiClient, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, setPolicy, type TestTenancy } from '../support/tenancy.js';

/**
 * The joiner / mover / leaver API through HTTP on the real stack: HR events in (one by one and
 * as a bulk import), the person's state, entitlements and timeline out, with the directory and
 * the audit trail read back. Lifecycle semantics in depth (grace, retention, outages,
 * continue-as-new) are covered in lifecycle.e2e and the workflow tier.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: DirectoryConnector;

const call = apiClient(() => stack.baseUrl);

const LIFECYCLE = {
  attributes: ['department', 'employmentType'],
  rules: [
    { id: 'everyone', roles: ['Staff'] },
    { id: 'finance', when: { department: 'Finance' }, roles: ['FinanceReaders'] },
    {
      id: 'it-admins',
      when: { department: 'IT', employmentType: 'employee' },
      roles: ['ServiceDesk'],
      eligibleGrantRoles: ['HelpdeskAdmin'],
    },
  ],
  moverGraceMinutes: 60,
  leaver: { retentionDays: 30, afterRetention: 'anonymise' },
};

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  for (const role of ['Staff', 'FinanceReaders', 'ServiceDesk', 'HelpdeskAdmin']) await directory.upsertRole(id.tenantA, { name: role });
  // Birthright rules loosen the tenant's control: its approver approves them.
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
    expectedVersion: 1,
    document: { lifecycle: LIFECYCLE },
  });
  expect(approval?.body.status).toBe('applied');
});
afterAll(async () => {
  await stack?.stop();
});

const base = () => `/v1/tenants/${id.tenantA}`;
const hr = () => id.tokens.hrA!;
const past = (minutes = 1) => new Date(Date.now() - minutes * 60_000).toISOString();
/** One fixed time for events that are sent twice, so the second is the same body. */
const JOINED_AT = past(5);
const joiner = (personId: string, attributes: Record<string, string>, extra: Json = {}) => ({
  eventId: `${personId}-join`,
  personId,
  type: 'joiner',
  effectiveAt: JOINED_AT,
  attributes,
  profile: { username: personId, displayName: `Person ${personId}`, email: `${personId}@example.test` },
  ...extra,
});
const person = async (personId: string) => (await call(hr(), 'GET', `${base()}/people/${personId}`)).body;
/** An import's progress once its job has completed, with its first page of rows. */
const importDone = (location: string) =>
  eventually(
    async () => (await call(hr(), 'GET', location)).body,
    (p) => p.status === 'completed',
    60_000,
  );
const rolesOf = async (personId: string) =>
  (await person(personId)).entitlements?.map((e: Json) => `${e.sourceType}:${e.role}`).sort() ?? [];

describe('lifecycle API', () => {
  it('refuses rules that test an attribute the tenant does not declare, naming the field, and changes nothing', async () => {
    const before = (await call(id.tokens.mspAdmin, 'GET', `${base()}/policy`)).body.version;
    const bad = await call(id.tokens.mspAdmin, 'PUT', `${base()}/policy`, {
      expectedVersion: before,
      document: { lifecycle: { ...LIFECYCLE, rules: [{ id: 'x', when: { costCentre: '42' }, roles: ['Staff'] }] } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: Json) => i.path)).toContain('body.document.lifecycle.rules.0.when.costCentre');
    // A rule giving a role the tenant directory lacks would stop a joiner half-way: refused up front.
    const missingRole = await call(id.tokens.mspAdmin, 'PUT', `${base()}/policy`, {
      expectedVersion: before,
      document: {
        lifecycle: {
          ...LIFECYCLE,
          rules: [...LIFECYCLE.rules, { id: 'sales', when: { department: 'Sales' }, roles: ['Staff', 'CrmUsers'] }],
        },
      },
    });
    expect(missingRole.status).toBe(400);
    expect(missingRole.body.error.issues).toEqual([
      { path: 'body.document.lifecycle.rules.3.roles.1', message: 'no role CrmUsers in the tenant directory' },
    ]);
    expect((await call(id.tokens.mspAdmin, 'GET', `${base()}/policy`)).body.version).toBe(before);
  });

  it('a joiner through HTTP: 202 with Location, the account and birthright roles in the directory, each in the ledger', async () => {
    const sent = await call(hr(), 'POST', `${base()}/hr-events`, joiner('jo', { department: 'Finance', employmentType: 'employee' }));
    expect(sent.status).toBe(202);
    expect(sent.headers.get('location')).toBe(`${base()}/people/jo`);
    expect(sent.body.receipt).toMatchObject({ eventId: 'jo-join', disposition: 'accepted', duplicate: false });

    await eventually(
      () => person('jo'),
      (p) => p.person?.status === 'active',
    );
    expect(await rolesOf('jo')).toEqual(['birthright:FinanceReaders', 'birthright:Staff']);
    expect(await directory.listRoles(id.tenantA, 'jo')).toEqual(['FinanceReaders', 'Staff']);
    expect((await directory.getUser(id.tenantA, 'jo'))?.status).toBe('active');
  });

  it('the same event id again returns the first receipt (200); the same id with another body is 409', async () => {
    const again = await call(hr(), 'POST', `${base()}/hr-events`, joiner('jo', { department: 'Finance', employmentType: 'employee' }));
    expect(again.status).toBe(200);
    expect(again.body.receipt).toMatchObject({ eventId: 'jo-join', duplicate: true });
    const changed = await call(hr(), 'POST', `${base()}/hr-events`, joiner('jo', { department: 'IT', employmentType: 'employee' }));
    expect(changed.status).toBe(409);
    expect(await rolesOf('jo')).toEqual(['birthright:FinanceReaders', 'birthright:Staff']);
  });

  it('previews a mover without changing anything, then applies it: new roles at once, old ones kept for the grace period', async () => {
    const mover = {
      eventId: 'jo-move-1',
      personId: 'jo',
      type: 'mover',
      effectiveAt: past(),
      attributes: { department: 'IT', employmentType: 'employee' },
    };
    const preview = await call(hr(), 'POST', `${base()}/hr-events/preview`, mover);
    expect(preview.status, JSON.stringify(preview.body)).toBe(200);
    expect(preview.body).toMatchObject({
      outcome: 'apply',
      rolesToAdd: [{ role: 'ServiceDesk', ruleId: 'it-admins' }],
      rolesToRemoveNow: [],
    });
    expect(preview.body.rolesToRemoveAfterGrace.map((r: Json) => r.role)).toEqual(['FinanceReaders']);
    expect(await rolesOf('jo')).toEqual(['birthright:FinanceReaders', 'birthright:Staff']);
    const eventsBefore = (await call(hr(), 'GET', `${base()}/people/jo/timeline`)).body.hrEvents.length;
    expect(eventsBefore).toBe(1);

    expect((await call(hr(), 'POST', `${base()}/hr-events`, mover)).status).toBe(202);
    // The read model is written after each step: wait for the step that applied the mover.
    const state = await eventually(
      () => person('jo'),
      (p) => p.person?.lastApplied?.eventId === 'jo-move-1',
    );
    expect(state.entitlements.map((e: Json) => e.role).sort()).toEqual(['FinanceReaders', 'ServiceDesk', 'Staff']);
    expect(state.person.pendingRemovals.map((r: Json) => r.role)).toEqual(['FinanceReaders']);
    expect(await directory.listRoles(id.tenantA, 'jo')).toEqual(['FinanceReaders', 'ServiceDesk', 'Staff']);
  });

  it('a mover or leaver for someone who never joined is 404; an unknown attribute is 400 naming it', async () => {
    const ghost = await call(hr(), 'POST', `${base()}/hr-events`, {
      eventId: 'ghost-leave',
      personId: 'ghost',
      type: 'leaver',
      effectiveAt: past(),
    });
    expect(ghost.status).toBe(404);
    // Refused, so nothing is left behind: not even the event's registration.
    expect((await stack.db.pool.query("SELECT 1 FROM hr_events WHERE event_id = 'ghost-leave'")).rowCount).toBe(0);
    const unknown = await call(hr(), 'POST', `${base()}/hr-events`, joiner('kim', { department: 'IT', shoeSize: '42' }));
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.issues.map((i: Json) => i.path)).toEqual(['body.attributes.shoeSize']);
    const noProfile = await call(hr(), 'POST', `${base()}/hr-events`, {
      eventId: 'kim-join',
      personId: 'kim',
      type: 'joiner',
      effectiveAt: past(),
    });
    expect(noProfile.status).toBe(400);
    expect(noProfile.body.error.issues.map((i: Json) => i.path)).toEqual(['body.profile']);
    expect((await call(hr(), 'GET', `${base()}/people/kim`)).status).toBe(404);
    expect((await call(hr(), 'GET', `${base()}/people/ghost`)).status).toBe(404);
  });

  it('a bulk CSV import processes the valid rows and reports each bad one by row number and field', async () => {
    const csv = [
      'eventId,personId,type,effectiveAt,username,displayName,email,department,employmentType',
      `imp-1,ana,joiner,${past()},ana,Ana,ana@example.test,Finance,employee`,
      `imp-2,ben,joiner,not-a-date,ben,Ben,,IT,employee`,
      `imp-3,cy,joiner,${past()},cy,Cy,,IT,contractor`,
      `imp-4,dee,leaver,${past()},,,,,`,
    ].join('\n');
    const posted = await call(hr(), 'POST', `${base()}/hr-events/import`, csv, { contentType: 'text/csv' });
    expect(posted.status).toBe(202);
    const result = await importDone(posted.headers.get('location')!);
    expect(result).toMatchObject({ total: 4, failed: 2, counts: { accepted: 2, invalid: 1, rejected: 1 } });
    const rows = result.rows as Json[];
    expect(rows[1]).toMatchObject({ row: 2, eventId: 'imp-2', status: 'invalid' });
    expect(rows[1]!.issues.map((i: Json) => i.path)).toEqual(['effectiveAt']);
    expect(rows[3]).toMatchObject({ row: 4, personId: 'dee', status: 'rejected', error: { status: 404 } });
    expect(
      await eventually(
        () => rolesOf('cy'),
        (roles) => roles.length > 0,
      ),
    ).toEqual(['birthright:Staff']); // contractor in IT: no ServiceDesk
    expect(
      await eventually(
        () => rolesOf('ana'),
        (roles) => roles.length > 1,
      ),
    ).toEqual(['birthright:FinanceReaders', 'birthright:Staff']);
    expect((await call(hr(), 'GET', `${base()}/people/ben`)).status).toBe(404);
  });

  it('an NDJSON import and a JSON rows import work the same way; an unsupported content type is 400', async () => {
    const ndjson = [JSON.stringify(joiner('eli', { department: 'IT', employmentType: 'employee' })), '{ not json', ''].join('\n');
    const posted = await call(hr(), 'POST', `${base()}/hr-events/import`, ndjson, { contentType: 'application/x-ndjson' });
    const result = await importDone(posted.headers.get('location')!);
    expect(result).toMatchObject({ format: 'ndjson', total: 2, counts: { accepted: 1, invalid: 1 } });
    expect(result.rows[1]).toMatchObject({ row: 2, status: 'invalid', issues: [{ path: 'row' }] });
    const rows = await call(hr(), 'POST', `${base()}/hr-events/import`, { rows: [joiner('fay', { department: 'Finance' })] });
    expect(rows.status).toBe(202);
    expect(await importDone(rows.headers.get('location')!)).toMatchObject({ format: 'rows', total: 1, counts: { accepted: 1 } });
    const xml = await call(hr(), 'POST', `${base()}/hr-events/import`, '<events/>', { contentType: 'application/xml' });
    expect(xml.status).toBe(400);
    expect(xml.body.error.issues[0].path).toBe('headers.content-type');
  });

  it('a leaver removes every entitlement (birthright and manual), disables the account, and the timeline proves each step', async () => {
    await eventually(
      () => person('jo'),
      (p) => p.person?.lastApplied?.eventId === 'jo-move-1',
    );
    // Access given by hand, outside any rule: a leaver must take it away too.
    await directory.upsertRole(id.tenantA, { name: 'Payroll' });
    const ledger = await import('../../activities/directory/ledger.js');
    await ledger
      .createLedgerActivities({ pool: stack.pool, directories: singleDirectory(createPostgresDirectory(stack.pool)) })
      .grantAccess({
        tenantId: id.tenantA,
        subjectId: 'jo',
        role: 'Payroll',
        sourceType: 'manual',
        sourceId: 'ticket-7',
      });
    expect(await rolesOf('jo')).toContain('manual:Payroll');

    const leaver = await call(hr(), 'POST', `${base()}/hr-events`, {
      eventId: 'jo-leave',
      personId: 'jo',
      type: 'leaver',
      effectiveAt: past(0),
    });
    expect(leaver.status).toBe(202);
    await eventually(
      () => person('jo'),
      (p) => p.person?.status === 'left',
      30_000,
    );
    expect(await rolesOf('jo')).toEqual([]);
    expect(await directory.listRoles(id.tenantA, 'jo')).toEqual([]);
    expect((await directory.getUser(id.tenantA, 'jo'))?.status).toBe('disabled');
    expect((await person('jo')).person.deletion).toMatchObject({ mode: 'anonymise', hrEventId: 'jo-leave' });

    const timeline = (await call(id.tokens.auditorA, 'GET', `${base()}/people/jo/timeline`)).body;
    expect(timeline.hrEvents.map((e: Json) => e.eventId)).toEqual(['jo-join', 'jo-move-1', 'jo-leave']);
    const leaverSteps = (timeline.events as Json[]).filter((e) => e.authority?.hrEventId === 'jo-leave');
    expect(leaverSteps.length).toBeGreaterThan(0);
    for (const step of leaverSteps) {
      expect(step).toMatchObject({ tenantId: id.tenantA, workflowId: `person/${id.tenantA}/jo` });
      expect(step.authority.policyVersion).toEqual(expect.any(Number));
    }
    const verify = await call(id.tokens.auditorA, 'GET', `/v1/audit/${id.tenantA}/verify`);
    expect(verify.body.intact).toBe(true);
  });

  it('the tenure CLI imports a CSV as a job (exit 1 naming the bad row, 2 for a file it cannot read), previews and shows people against the API', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-cli-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const args = (command: string[]) => ['person', ...command, '--tenant', id.tenantA, '--json'];
    const env = { TENURE_URL: stack.baseUrl, TENURE_TOKEN: hr() };
    const csv = path.join(dir, 'joiners.csv');
    await writeFile(
      csv,
      [
        'eventId,personId,type,effectiveAt,username,displayName,department',
        `cli-1,gus,joiner,${past()},gus,Gus,Finance`,
        `cli-2,hal,joiner,${past()},hal,Hal,Finance,extra`,
      ].join('\n'),
    );
    const imported = await runCli(args(['import', '--file', csv]), env);
    expect(imported.code).toBe(1);
    const result = JSON.parse(imported.stdout) as Json;
    expect(result).toMatchObject({ status: 'completed', total: 2, failed: 1, counts: { accepted: 1, invalid: 1 } });
    expect(result.failedRows).toEqual([
      expect.objectContaining({ row: 2, status: 'invalid', issues: [expect.objectContaining({ path: 'row' })] }),
    ]);

    const event = path.join(dir, 'move.json');
    await writeFile(
      event,
      JSON.stringify({ eventId: 'cli-3', personId: 'gus', type: 'mover', effectiveAt: past(0), attributes: { department: 'IT' } }),
    );
    await eventually(
      () => person('gus'),
      (p) => p.person?.status === 'active',
    );
    const preview = JSON.parse((await runCliOk(args(['preview', '--file', event]), env)).stdout) as Json;
    expect(preview.rolesToRemoveAfterGrace.map((r: Json) => r.role)).toEqual(['FinanceReaders']);
    const shown = JSON.parse((await runCliOk(args(['show', 'gus']), env)).stdout) as Json;
    expect(shown.person).toMatchObject({ personId: 'gus', status: 'active' });
    expect(await runCli(args(['import', '--file', path.join(dir, 'events.xlsx')]), env)).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('.csv, .ndjson or .jsonl'),
    });
  });

  it('lists people with a status filter and a cursor', async () => {
    const page = await call(hr(), 'GET', `${base()}/people?limit=2`);
    expect(page.status).toBe(200);
    expect(page.body.people).toHaveLength(2);
    expect(page.body.nextCursor).toBe(page.body.people[1].personId);
    const left = await call(hr(), 'GET', `${base()}/people?status=left`);
    expect(left.body.people.map((p: Json) => p.personId)).toEqual(['jo']);
    expect((await call(hr(), 'GET', `${base()}/people?status=retired`)).status).toBe(400);
  });

  it('searches people by id, display name or email across pages, taking % and _ as text', async () => {
    const all = (await call(hr(), 'GET', `${base()}/people?limit=500`)).body.people as Json[];
    const target = all.find((p) => p.profile?.email)!;
    const ids = async (query: string) => {
      const response = await call(hr(), 'GET', `${base()}/people?${query}`);
      expect(response.status).toBe(200);
      return (response.body.people as Json[]).map((p) => p.personId);
    };
    // By the email's domain-free part in capitals, by a display name's tail, by the id itself.
    expect(await ids(`q=${encodeURIComponent(target.profile.email.split('@')[0].toUpperCase())}`)).toContain(target.personId);
    expect(await ids(`q=${encodeURIComponent(target.profile.displayName.slice(2))}`)).toContain(target.personId);
    const everyoneWithExample = all.filter((p) => p.profile?.email?.includes('example.test')).map((p) => p.personId);
    expect(everyoneWithExample.length).toBeGreaterThan(1);
    expect(await ids('q=example.test')).toEqual(everyoneWithExample);
    // The cursor pages the narrowed list.
    const first = await call(hr(), 'GET', `${base()}/people?q=example.test&limit=1`);
    expect(first.body.people.map((p: Json) => p.personId)).toEqual([everyoneWithExample[0]]);
    expect(await ids(`q=example.test&limit=500&after=${encodeURIComponent(first.body.nextCursor)}`)).toEqual(everyoneWithExample.slice(1));
    // A wildcard is a character like any other: nobody's name holds '%' or '_'.
    expect(await ids('q=%25')).toEqual([]);
    expect(await ids('q=_')).toEqual([]);
    // A blank search is no search (an emptied search box).
    expect(await ids('q=&limit=500')).toEqual(all.map((p) => p.personId));
    expect(await ids('q=%20%20&limit=500')).toEqual(all.map((p) => p.personId));
    for (const bad of [`q=${'x'.repeat(201)}`, 'q=a%00b']) {
      const refused = await call(hr(), 'GET', `${base()}/people?${bad}`);
      expect(refused.status).toBe(400);
      expect(JSON.stringify(refused.body)).toContain('query.q');
    }
  });
});
