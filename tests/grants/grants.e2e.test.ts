import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createApp } from '../../api/app.js';
import { startServer } from '../../api/server.js';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import type { DirectoryConnector } from '../../core/directory/connector.js';
import { freePort } from '../../runtime/ports.js';
import { runCli, runCliOk } from '../support/cli.js';
import { apiClient, type Json } from '../support/http.js';
import { eventually, startTestStack, testDataConverter, testLogger, testPayloadCodec, type TestStack } from '../support/stack.js';
import { seedTenancy, setPolicy, tenantStaff as staffOf, type TestTenancy } from '../support/tenancy.js';

/**
 * Grants through HTTP on the real stack: API → Temporal → worker → built-in directory and ledger
 * in PostgreSQL, with the audit trail read back. Durations are seconds-short (policy in minutes,
 * windows via endAt) so expiry really happens; long timers are covered on the time-skipping server.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: DirectoryConnector;
let approver2Token: string;
/** When set, the directory refuses removals until this many have failed. */
let failRemovals = 0;

const call = apiClient(() => stack.baseUrl);

beforeAll(async () => {
  stack = await startTestStack({
    directory: (real) => ({
      ...real,
      removeRole: async (...args) => {
        if (failRemovals > 0) {
          failRemovals--;
          throw new Error('directory unavailable (test outage)');
        }
        return real.removeRole(...args);
      },
    }),
  });
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  for (const tenant of [id.tenantA, id.tenantB]) {
    await directory.upsertRole(tenant, { name: 'GlobalAdmin', privileged: true });
    await directory.upsertRole(tenant, { name: 'HelpdeskAdmin', privileged: true });
    for (const user of ['alex', 'blake', 'casey']) await directory.upsertUser(tenant, { id: user, username: user, displayName: user });
  }
  const policy = {
    expectedVersion: 1,
    document: {
      grants: {
        roles: {
          GlobalAdmin: { maxDurationMinutes: 60, approvalsRequired: 2, requestableBy: ['operator'] },
          HelpdeskAdmin: { maxDurationMinutes: 30, approvalsRequired: 0, requestableBy: ['operator'] },
        },
        ticketPattern: 'INC-\\d+',
        maxTotalDurationMinutes: 120,
      },
    },
  };
  // Making roles grantable loosens the tenant's control: its approver approves the change.
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, policy);
  expect(approval?.body.status).toBe('applied');
  approver2Token = (await tenantStaff('Approver A2', ['tenant_approver'])).token;
});
afterAll(async () => {
  await stack?.stop();
});

/** A new member of tenant A's own staff holding `roles` there, with a token. */
const tenantStaff = (displayName: string, roles: string[]) => staffOf(call, id.tokens.mspAdmin!, id.tenantA, displayName, roles);

const grants = () => `/v1/tenants/${id.tenantA}/grants`;
const request = (body: Json, headers: Record<string, string> = {}) =>
  call(id.tokens.operator, 'POST', grants(), { justification: 'incident', ticket: 'INC-1', ...body }, { headers });
const read = async (grantId: string) => (await call(id.tokens.operator, 'GET', `${grants()}/${grantId}`)).body;
const waitFor = (grantId: string, status: string, timeoutMs = 30_000) =>
  eventually(
    () => read(grantId),
    (g) => g.status === status,
    timeoutMs,
  );
const waitForIn = (tenantId: string, grantId: string, status: string) =>
  eventually(
    async () => (await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/grants/${grantId}`)).body,
    (g) => g.status === status,
  );
const soon = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();
const auditActions = async (grantId: string) =>
  (
    await stack.db.pool.query<{ action: string }>(
      "SELECT action FROM audit_events WHERE target_type = 'grant' AND target_id = $1 ORDER BY seq",
      [grantId],
    )
  ).rows.map((r) => r.action);

describe('grant lifecycle through the API', () => {
  it('request → two distinct tenant approvals → active in the directory → expiry → verified revocation, each step audited', async () => {
    const created = await request({ subjectId: 'alex', role: 'GlobalAdmin', endAt: soon(6) });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`${grants()}/${created.body.grantId}`);
    const grantId = created.body.grantId as string;
    await waitFor(grantId, 'pending_approval');

    const operator = await call(id.tokens.operator, 'POST', `${grants()}/${grantId}/approve`, {});
    expect(operator.status).toBe(403);
    expect(operator.body.error).toMatchObject({
      code: 'forbidden',
      message: 'Only a tenant_approver of this tenant may decide on its grants.',
    });
    expect((await call(id.tokens.approverA, 'POST', `${grants()}/${grantId}/approve`, { comment: 'ok' })).status).toBe(200);
    expect((await call(id.tokens.approverA, 'POST', `${grants()}/${grantId}/approve`, {})).status).toBe(409); // distinct approvers
    expect((await call(approver2Token, 'POST', `${grants()}/${grantId}/approve`, {})).body.approvals).toHaveLength(2);

    await waitFor(grantId, 'active');
    expect(await directory.hasRole(id.tenantA, 'alex', 'GlobalAdmin')).toBe(true);
    const ended = await waitFor(grantId, 'ended');
    expect(ended).toMatchObject({ endReason: 'expired', revocationVerifiedAt: expect.any(String) });
    expect(await directory.hasRole(id.tenantA, 'alex', 'GlobalAdmin')).toBe(false);
    expect(await auditActions(grantId)).toEqual([
      'grant.requested',
      'grant.approval_recorded',
      'grant.approval_recorded',
      'grant.approved',
      'grant.activated',
      'grant.expiring',
      'grant.expired',
    ]);
    const approved = await stack.db.pool.query("SELECT authority FROM audit_events WHERE target_id = $1 AND action = 'grant.approved'", [
      grantId,
    ]);
    expect(approved.rows[0].authority).toMatchObject({
      approvalIds: [expect.any(String), expect.any(String)],
      policyVersion: 2,
      ticket: 'INC-1',
      grantId,
    });
    const approvals = await stack.db.pool.query(
      "SELECT actor_id, authority FROM audit_events WHERE target_id = $1 AND action = 'grant.approval_recorded' ORDER BY seq",
      [grantId],
    );
    expect(approvals.rows[0]).toMatchObject({
      actor_id: id.actors.approverA!.id,
      authority: { roles: ['tenant_approver'], bindingIds: [expect.any(String)], requestId: expect.any(String) },
    });
    expect((await call(approver2Token, 'POST', `${grants()}/${grantId}/revoke`, {})).status).toBe(409); // already ended
  });

  it('a requester who is also a tenant approver cannot approve their own request: 403 from the self-approval rule, nothing recorded', async () => {
    const both = await tenantStaff('Requesting approver A', ['operator', 'tenant_approver']);
    const created = await call(both.token, 'POST', grants(), {
      subjectId: 'alex',
      role: 'GlobalAdmin',
      durationMinutes: 5,
      justification: 'incident',
      ticket: 'INC-9',
    });
    expect(created.status).toBe(201);
    const grantId = created.body.grantId as string;
    expect(created.body.requesterId).toBe(both.actorId);
    await waitFor(grantId, 'pending_approval');

    const self = await call(both.token, 'POST', `${grants()}/${grantId}/approve`, {});
    expect(self.status).toBe(403);
    expect(self.body.error).toMatchObject({ code: 'forbidden', message: 'The requester cannot approve their own request.' });
    expect(await read(grantId)).toMatchObject({ status: 'pending_approval', approvals: [] });
    // The workflow records the request on its own time: wait for it, then nothing else may follow.
    expect(
      await eventually(
        () => auditActions(grantId),
        (actions) => actions.length > 0,
      ),
    ).toEqual(['grant.requested']);
  });

  it('the same Idempotency-Key returns the same grant, never a second one', async () => {
    const key = randomUUID();
    const first = await request({ subjectId: 'blake', role: 'HelpdeskAdmin', durationMinutes: 5 }, { 'idempotency-key': key });
    const second = await request({ subjectId: 'blake', role: 'HelpdeskAdmin', durationMinutes: 5 }, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    expect(second.body.grantId).toBe(first.body.grantId);
    const reused = await request({ subjectId: 'casey', role: 'HelpdeskAdmin', durationMinutes: 5 }, { 'idempotency-key': key });
    expect(reused.status).toBe(409);
    const { rows } = await stack.db.pool.query('SELECT count(*)::int AS n FROM grants WHERE idempotency_key = $1', [key]);
    expect(rows[0].n).toBe(1);
    await waitFor(first.body.grantId as string, 'active');
    expect((await call(id.tokens.operator, 'POST', `${grants()}/${first.body.grantId as string}/relinquish`, {})).status).toBe(200);
    await waitFor(first.body.grantId as string, 'ended');
  });

  it('a replayed Idempotency-Key never re-opens a closed grant: the denied grant comes back and no run starts', async () => {
    const key = randomUUID();
    const body = { subjectId: 'casey', role: 'GlobalAdmin', durationMinutes: 5 };
    const first = await request(body, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    const grantId = first.body.grantId as string;
    await waitFor(grantId, 'pending_approval');
    // While pending, a replay answers with the same pending grant and joins its one run.
    const pending = await request(body, { 'idempotency-key': key });
    expect([200, 201]).toContain(pending.status);
    expect(pending.body).toMatchObject({ grantId, status: 'pending_approval' });

    expect((await call(id.tokens.approverA, 'POST', `${grants()}/${grantId}/deny`, { comment: 'no' })).status).toBe(200);
    await waitFor(grantId, 'denied');
    const handle = stack.temporal.workflow.getHandle(first.body.workflowId as string);
    const closed = await eventually(
      () => handle.describe(),
      (d) => d.status.name !== 'RUNNING',
    );

    const replay = await request(body, { 'idempotency-key': key });
    expect([200, 201]).toContain(replay.status);
    expect(replay.body).toMatchObject({ grantId, status: 'denied' });
    const latest = await handle.describe();
    expect(latest).toMatchObject({ runId: closed.runId, status: { name: closed.status.name } });
    const runs: string[] = [];
    for await (const run of stack.temporal.workflow.list({ query: `WorkflowId = '${first.body.workflowId as string}'` }))
      runs.push(run.runId);
    expect(runs).toEqual([closed.runId]);
    expect(await read(grantId)).toMatchObject({ status: 'denied' });
  });

  it('ticket patterns are RE2: one RE2 cannot run is refused at policy write; a hostile ticket is answered while /healthz answers too', async () => {
    const policy = (ticketPattern: string) => ({
      expectedVersion: 1,
      document: { grants: { roles: { GlobalAdmin: { maxDurationMinutes: 60, requestableBy: ['operator'] } }, ticketPattern } },
    });
    const tokens = { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverB! };
    const backreference = await setPolicy(call, tokens, id.tenantB, policy('(a)\\1'));
    expect(backreference.put.status).toBe(400);
    expect(backreference.put.body.error.issues).toEqual([{ path: 'body.document.grants.ticketPattern', message: expect.any(String) }]);
    expect((await setPolicy(call, tokens, id.tenantB, policy('(a|aa)+'))).approval?.body.status).toBe('applied');

    const ask = (ticket: string) =>
      call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantB}/grants`, {
        subjectId: 'alex',
        role: 'GlobalAdmin',
        durationMinutes: 5,
        justification: 'catastrophic backtracking',
        ticket,
      });
    // Exponential for a backtracking engine; RE2 answers at once, and the event loop stays free.
    const [hostile, health] = await Promise.all([ask(`${'a'.repeat(45)}b`), fetch(`${stack.baseUrl}/healthz`)]);
    expect(health.status).toBe(200);
    expect(hostile.status).toBe(400);
    expect(hostile.body.error.issues).toEqual([{ path: 'body.ticket', message: expect.stringContaining('(a|aa)+') }]);
    // The whole ticket must match, not a part of it.
    expect((await ask('aaa-1')).status).toBe(400);
    const fine = await ask('aaaaa');
    expect(fine.status).toBe(201);
    await waitForIn(id.tenantB, fine.body.grantId as string, 'pending_approval');
    expect(
      (await call(id.tokens.approverB, 'POST', `/v1/tenants/${id.tenantB}/grants/${fine.body.grantId as string}/deny`, {})).status,
    ).toBe(200);
  });

  it('a version stored before the RE2 check, with a pattern RE2 cannot run, still loads and refuses every ticket with 400', async () => {
    // As an older release stored it: the current version's pattern rewritten past the API.
    await stack.db.pool.query(
      `UPDATE tenant_policies SET document = jsonb_set(document, '{grants,ticketPattern}', to_jsonb('(a)\\1'::text))
        WHERE tenant_id = $1 AND version = (SELECT max(version) FROM tenant_policies WHERE tenant_id = $1)`,
      [id.tenantB],
    );
    const res = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantB}/grants`, {
      subjectId: 'alex',
      role: 'GlobalAdmin',
      durationMinutes: 5,
      justification: 'legacy pattern',
      ticket: 'aa',
    });
    expect(res.status).toBe(400);
    expect(res.body.error.issues).toEqual([{ path: 'body.ticket', message: expect.stringContaining('(a)\\1') }]);
  });

  it('refuses policy violations with 400 naming the field, and starts nothing', async () => {
    const before = (await stack.db.pool.query('SELECT count(*)::int AS n FROM grants')).rows[0].n;
    const tooLong = await request({ subjectId: 'alex', role: 'GlobalAdmin', durationMinutes: 61 });
    expect(tooLong.body.error.issues).toEqual([{ path: 'body.durationMinutes', message: expect.stringContaining('60 minutes') }]);
    const unknownRole = await request({ subjectId: 'alex', role: 'DomainGod', durationMinutes: 5 });
    expect(unknownRole.body.error.issues[0].path).toBe('body.role');
    const noJustification = await call(id.tokens.operator, 'POST', grants(), {
      subjectId: 'alex',
      role: 'GlobalAdmin',
      durationMinutes: 5,
      ticket: 'INC-1',
    });
    expect(noJustification.body.error.issues[0].path).toBe('body.justification');
    const badTicket = await request({ subjectId: 'alex', role: 'GlobalAdmin', durationMinutes: 5, ticket: 'whenever' });
    expect(badTicket.body.error.issues[0].path).toBe('body.ticket');
    const noUser = await request({ subjectId: 'nobody', role: 'GlobalAdmin', durationMinutes: 5 });
    expect(noUser.body.error.issues[0].path).toBe('body.subjectId');
    for (const response of [tooLong, unknownRole, noJustification, badTicket, noUser]) expect(response.status).toBe(400);
    expect((await request({ subjectId: 'alex', role: 'GlobalAdmin', durationMinutes: 5 }, {})).status).toBe(201); // sanity: valid passes
    expect((await stack.db.pool.query('SELECT count(*)::int AS n FROM grants')).rows[0].n).toBe(before + 1);
  });

  it('a reviewer may not request, and another tenant’s approver sees 404', async () => {
    expect((await call(id.tokens.reviewerA, 'POST', grants(), { subjectId: 'alex', role: 'GlobalAdmin', durationMinutes: 5 })).status).toBe(
      403,
    );
    const created = await request({ subjectId: 'casey', role: 'GlobalAdmin', durationMinutes: 5 });
    expect((await call(id.tokens.approverB, 'GET', `${grants()}/${created.body.grantId as string}`)).status).toBe(404);
    expect((await call(id.tokens.approverB, 'POST', `${grants()}/${created.body.grantId as string}/approve`, {})).status).toBe(404);
  });

  it('overlapping grants of one role to one subject: ending the first leaves access until the last ends', async () => {
    const first = await request({ subjectId: 'casey', role: 'HelpdeskAdmin', durationMinutes: 10 });
    const second = await request({ subjectId: 'casey', role: 'HelpdeskAdmin', durationMinutes: 10 });
    await waitFor(first.body.grantId as string, 'active');
    await waitFor(second.body.grantId as string, 'active');
    await call(id.tokens.operator, 'POST', `${grants()}/${first.body.grantId as string}/revoke`, { comment: 'done' });
    const firstEnded = await waitFor(first.body.grantId as string, 'ended');
    expect(firstEnded.endReason).toBe('revoked');
    expect(await directory.hasRole(id.tenantA, 'casey', 'HelpdeskAdmin')).toBe(true);
    await call(approver2Token, 'POST', `${grants()}/${second.body.grantId as string}/revoke`, {});
    await waitFor(second.body.grantId as string, 'ended');
    expect(await directory.hasRole(id.tenantA, 'casey', 'HelpdeskAdmin')).toBe(false);
  });

  it('a directory that refuses removals for a while: revocation retries, raises an alert, and completes', async () => {
    const created = await request({ subjectId: 'blake', role: 'GlobalAdmin', endAt: soon(4) });
    const grantId = created.body.grantId as string;
    await call(id.tokens.approverA, 'POST', `${grants()}/${grantId}/approve`, {});
    await call(approver2Token, 'POST', `${grants()}/${grantId}/approve`, {});
    await waitFor(grantId, 'active');
    failRemovals = 8;
    const ended = await waitFor(grantId, 'ended', 45_000);
    expect(ended.endReason).toBe('expired');
    expect(failRemovals).toBe(0);
    expect(await directory.hasRole(id.tenantA, 'blake', 'GlobalAdmin')).toBe(false);
    const actions = await auditActions(grantId);
    expect(actions.filter((a) => a === 'grant.revocation_alert')).toHaveLength(1);
    expect(actions.at(-1)).toBe('grant.expired');
  });

  it('extends within the policy cap, refuses past it with 400, and revokes on request', async () => {
    const created = await request({ subjectId: 'alex', role: 'HelpdeskAdmin', durationMinutes: 5 });
    const grantId = created.body.grantId as string;
    const active = await waitFor(grantId, 'active');
    const extended = await call(id.tokens.operator, 'POST', `${grants()}/${grantId}/extend`, {
      additionalMinutes: 10,
      justification: 'longer change window',
    });
    expect(extended.status).toBe(200);
    expect(Date.parse(extended.body.endAt as string) - Date.parse(active.endAt as string)).toBe(10 * 60_000);
    // The directory's own end for the membership moved with it (the backstop follows extensions).
    const membership = await stack.db.pool.query<{ expires_at: Date }>(
      "SELECT expires_at FROM directory_memberships WHERE tenant_id = $1 AND user_id = 'alex' AND role = 'HelpdeskAdmin'",
      [id.tenantA],
    );
    expect(membership.rows[0]?.expires_at.toISOString()).toBe(extended.body.endAt);
    const overCap = await call(id.tokens.operator, 'POST', `${grants()}/${grantId}/extend`, { additionalMinutes: 200 });
    expect(overCap.status).toBe(400);
    expect(overCap.body.error.issues[0].path).toBe('body.additionalMinutes');
    expect((await call(id.tokens.reviewerA, 'POST', `${grants()}/${grantId}/extend`, { additionalMinutes: 1 })).status).toBe(403);
    await call(id.tokens.operator, 'POST', `${grants()}/${grantId}/revoke`, { comment: 'done early' });
    expect(await waitFor(grantId, 'ended')).toMatchObject({ endReason: 'revoked' });
    expect(await auditActions(grantId)).toEqual([
      'grant.requested',
      'grant.approved',
      'grant.activated',
      'grant.extended',
      'grant.revoking',
      'grant.revoked',
    ]);
  });

  it('a revoke, extension or request carrying text the database cannot store is a 400 naming the field, and the grant stays revocable', async () => {
    const created = await request({ subjectId: 'blake', role: 'HelpdeskAdmin', durationMinutes: 5 });
    const grantId = created.body.grantId as string;
    await waitFor(grantId, 'active');
    for (const bad of ['bad\u0000byte', 'lone \ud800 half', 'tail \udc00']) {
      const revoke = await call(id.tokens.operator, 'POST', `${grants()}/${grantId}/revoke`, { comment: bad });
      expect(revoke.status).toBe(400);
      expect(revoke.body.error.issues.map((i: Json) => i.path)).toEqual(['body.comment']);
      const extend = await call(id.tokens.operator, 'POST', `${grants()}/${grantId}/extend`, { additionalMinutes: 1, justification: bad });
      expect(extend.status).toBe(400);
      expect(extend.body.error.issues.map((i: Json) => i.path)).toEqual(['body.justification']);
      const another = await request({ subjectId: 'casey', role: 'HelpdeskAdmin', durationMinutes: 5, justification: bad });
      expect(another.status).toBe(400);
      expect(another.body.error.issues.map((i: Json) => i.path)).toEqual(['body.justification']);
    }
    for (const query of ['subjectId=a%00b', 'role=%00']) {
      const list = await call(id.tokens.operator, 'GET', `${grants()}?${query}`);
      expect(list.status).toBe(400);
      expect(list.body.error.issues.map((i: Json) => i.path)).toEqual([`query.${query.split('=')[0]}`]);
    }
    // A valid pair (an emoji) is text like any other.
    expect((await call(id.tokens.operator, 'POST', `${grants()}/${grantId}/revoke`, { comment: 'done \u{1F512}' })).status).toBe(200);
    expect(await waitFor(grantId, 'ended')).toMatchObject({ endReason: 'revoked' });
    expect(await auditActions(grantId)).toEqual([
      'grant.requested',
      'grant.approved',
      'grant.activated',
      'grant.revoking',
      'grant.revoked',
    ]);
  });

  it('a subject who leaves before a scheduled start never gets the role (eligibility re-checked at activation)', async () => {
    await directory.upsertUser(id.tenantA, { id: 'leaver', username: 'leaver', displayName: 'Soon gone' });
    const created = await request({ subjectId: 'leaver', role: 'HelpdeskAdmin', startAt: soon(3), durationMinutes: 5 });
    const grantId = created.body.grantId as string;
    await waitFor(grantId, 'scheduled');
    await directory.setUserStatus(id.tenantA, 'leaver', 'disabled');
    const ended = await waitFor(grantId, 'ended');
    expect(ended).toMatchObject({ endReason: 'ineligible', activatedAt: null });
    expect(await directory.hasRole(id.tenantA, 'leaver', 'HelpdeskAdmin')).toBe(false);
    expect((await auditActions(grantId)).at(-1)).toBe('grant.activation_refused');
  });

  it('the tenure CLI requests, lists, approves and revokes grants against the API, and exits 1 on a decision that no longer applies', async () => {
    const args = (command: string[]) => ['grant', ...command, '--tenant', id.tenantA];
    const as = (token: string) => ({ TENURE_URL: stack.baseUrl, TENURE_TOKEN: token });
    const requested = JSON.parse(
      (
        await runCliOk(
          args([
            'request',
            '--subject',
            'casey',
            '--role',
            'GlobalAdmin',
            '--minutes',
            '10',
            '--justification',
            'cli',
            '--ticket',
            'INC-7',
            '--idempotency-key',
            randomUUID(),
          ]),
          as(id.tokens.operator!),
        )
      ).stdout,
    ) as Json;
    expect(requested).toMatchObject({ status: 'pending_approval', subjectId: 'casey' });
    const grantId = requested.grantId as string;
    const listed = JSON.parse(
      (await runCliOk(args(['list', '--subject', 'casey', '--status', 'pending_approval']), as(id.tokens.approverA!))).stdout,
    ) as {
      grants: Json[];
    };
    expect(listed.grants.map((g) => g.grantId)).toContain(grantId);
    await runCliOk(args(['approve', grantId, '--comment', 'from the terminal']), as(id.tokens.approverA!));
    await runCliOk(args(['approve', grantId]), as(approver2Token));
    await waitFor(grantId, 'active');
    await runCliOk(args(['revoke', grantId]), as(id.tokens.operator!));
    await waitFor(grantId, 'ended');
    expect(await runCli(args(['approve', grantId]), as(id.tokens.approverA!))).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('409'),
    });
  });

  it('Temporal unreachable: 503; a request without Idempotency-Key is taken back, one with a key stays for its retry', async () => {
    const connection = Connection.lazy({ address: `127.0.0.1:${await freePort()}`, connectTimeout: '1 second' });
    const app = createApp({
      config: { BODY_LIMIT: '100kb', IMPORT_BODY_LIMIT: '10mb' },
      pool: stack.pool,
      temporal: new Client({ connection, dataConverter: testDataConverter }),
      payloadCodec: testPayloadCodec,
      directory: stack.directory,
      logger: testLogger,
      version: 'test',
    });
    const server = await startServer(app, '127.0.0.1', 0);
    const rows = async () =>
      (await stack.db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM grants WHERE subject_id = 'casey'")).rows[0]!.n;
    onTestFinished(async () => {
      await server.stop();
      await connection.close();
    });
    const cutOff = apiClient(() => server.url);
    const body = { subjectId: 'casey', role: 'HelpdeskAdmin', durationMinutes: 5, justification: 'outage', ticket: 'INC-503' };
    const send = (headers: Record<string, string>) => cutOff(id.tokens.operator, 'POST', grants(), body, { headers });
    const before = await rows();
    const unkeyed = await send({});
    expect(unkeyed.status).toBe(503);
    expect(await rows()).toBe(before);
    const key = randomUUID();
    const keyed = await send({ 'idempotency-key': key });
    expect(keyed.status).toBe(503);
    expect(await rows()).toBe(before + 1);
    // Once Temporal is back, the retry with the key starts that same grant.
    const retried = await request(body, { 'idempotency-key': key });
    expect(retried.status).toBe(201);
    expect(await rows()).toBe(before + 1);
    expect((await waitFor(retried.body.grantId as string, 'active')).subjectId).toBe('casey');
  });

  it('lists a subject’s grants newest first in cursor pages that never overlap and together hold every grant; filters narrow it', async () => {
    const subjectId = `lister-${randomUUID().slice(0, 8)}`;
    await directory.upsertUser(id.tenantA, { id: subjectId, username: subjectId, displayName: 'Listed subject' });
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await request({ subjectId, role: 'GlobalAdmin', durationMinutes: 5 });
      expect(response.status).toBe(201);
      created.push(response.body.grantId as string);
    }
    for (const grantId of created) await waitFor(grantId, 'pending_approval');

    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const query = new URLSearchParams({ subjectId, limit: '2', ...(cursor ? { cursor } : {}) });
      const page = await call(id.tokens.approverA, 'GET', `${grants()}?${query.toString()}`);
      expect(page.status).toBe(200);
      pages.push((page.body.grants as Json[]).map((g) => g.grantId as string));
      cursor = page.body.nextCursor as string | null;
    } while (cursor && pages.length < 10);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual([...created].reverse()); // each once, newest first

    const denied = created[2]!;
    expect((await call(id.tokens.approverA, 'POST', `${grants()}/${denied}/deny`, { comment: 'not needed' })).status).toBe(200);
    await waitFor(denied, 'denied');
    const byStatus = async (status: string) =>
      ((await call(id.tokens.auditorA, 'GET', `${grants()}?status=${status}&subjectId=${subjectId}`)).body.grants as Json[]).map(
        (g) => g.grantId as string,
      );
    expect(await byStatus('denied')).toEqual([denied]);
    expect(await byStatus('pending_approval')).toEqual([...created].reverse().filter((g) => g !== denied));
    expect(await byStatus('ended')).toEqual([]);
    const bogus = await call(id.tokens.approverA, 'GET', `${grants()}?cursor=bogus`);
    expect(bogus.status).toBe(400);
    expect(bogus.body.error.issues[0].path).toBe('query.cursor');
  });
});

/**
 * Decisions sent at once through the API (truly concurrent Updates on the dev server). Each pair
 * ends consistent, each approval or denial recorded once, and no workflow task ever fails.
 */
describe('concurrent decisions through the API', () => {
  const decideOn = (token: string, grantId: string, decision: string, body: Json = {}) =>
    call(token, 'POST', `${grants()}/${grantId}/${decision}`, body);
  const taskFailures = async (workflowId: string) => {
    const { events } = await stack.temporal.workflow.getHandle(workflowId).fetchHistory();
    return (events ?? []).filter((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED).length;
  };
  /** An active GlobalAdmin grant (two approvals) with an extension the operator asked for. */
  async function activeWithExtension(subjectId: string) {
    const created = await request({ subjectId, role: 'GlobalAdmin', durationMinutes: 5 });
    const grantId = created.body.grantId as string;
    await waitFor(grantId, 'pending_approval');
    await decideOn(id.tokens.approverA!, grantId, 'approve');
    await decideOn(approver2Token, grantId, 'approve');
    const active = await waitFor(grantId, 'active');
    const extension = await decideOn(id.tokens.operator!, grantId, 'extend', { additionalMinutes: 10 });
    expect(extension.body.pendingExtension).toMatchObject({ additionalSeconds: 600 });
    return { grantId, workflowId: created.body.workflowId as string, endAt: active.endAt as string };
  }

  it('two approvers approving the same extension at once: both recorded, extended once', async () => {
    const { grantId, workflowId, endAt } = await activeWithExtension('alex');
    const answers = await Promise.all([decideOn(id.tokens.approverA!, grantId, 'approve'), decideOn(approver2Token, grantId, 'approve')]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    const extended = await eventually(
      () => read(grantId),
      (g) => g.pendingExtension === null && g.endAt !== endAt,
    );
    expect(Date.parse(extended.endAt as string) - Date.parse(endAt)).toBe(600_000);
    await decideOn(id.tokens.operator!, grantId, 'revoke');
    await waitFor(grantId, 'ended');
    const actions = await auditActions(grantId);
    expect(actions.filter((a) => a === 'grant.extension_approval_recorded')).toHaveLength(2);
    expect(actions.filter((a) => a === 'grant.extended')).toHaveLength(1);
    expect(await taskFailures(workflowId)).toBe(0);
  });

  it('approve and deny of one extension together: one decision stands, each recorded once', async () => {
    const { grantId, workflowId, endAt } = await activeWithExtension('blake');
    const [approved, denied] = await Promise.all([
      decideOn(id.tokens.approverA!, grantId, 'approve'),
      decideOn(approver2Token, grantId, 'deny', { comment: 'enough' }),
    ]);
    // The extension needs two approvals, so the denial always finds it pending.
    expect(denied.status).toBe(200);
    const settled = await eventually(
      () => read(grantId),
      (g) => g.pendingExtension === null,
    );
    expect(settled.endAt).toBe(endAt);
    await decideOn(id.tokens.operator!, grantId, 'revoke');
    await waitFor(grantId, 'ended');
    const actions = await auditActions(grantId);
    expect(actions.filter((a) => a === 'grant.extension_approval_recorded')).toHaveLength(approved.status === 200 ? 1 : 0);
    expect(actions.filter((a) => a === 'grant.extension_denied')).toHaveLength(1);
    expect(actions).not.toContain('grant.extended');
    expect(await taskFailures(workflowId)).toBe(0);
  });

  it('a revoke while activation runs: never left with access, ended once', async () => {
    // A subject of its own: no other grant in this file gives it the role.
    await directory.upsertUser(id.tenantA, { id: 'dana', username: 'dana', displayName: 'dana' });
    const created = await request({ subjectId: 'dana', role: 'HelpdeskAdmin', durationMinutes: 5 });
    const grantId = created.body.grantId as string;
    await eventually(
      () => read(grantId),
      (g) => g.status !== 'pending_approval',
    );
    expect((await decideOn(id.tokens.operator!, grantId, 'revoke', { comment: 'mistake' })).status).toBe(200);
    const ended = await eventually(
      () => read(grantId),
      (g) => g.status === 'ended' || g.status === 'cancelled',
    );
    expect(ended.endReason === 'revoked' || ended.status === 'cancelled').toBe(true);
    expect(await directory.hasRole(id.tenantA, 'dana', 'HelpdeskAdmin')).toBe(false);
    const actions = await auditActions(grantId);
    expect(actions.filter((a) => a === 'grant.cancelled' || a === 'grant.revoking')).toHaveLength(1);
    expect(await taskFailures(created.body.workflowId as string)).toBe(0);
  });

  it('an approver disabled before activation no longer counts: the grant drops below quorum and never activates', async () => {
    const leaving = await tenantStaff('Approver soon disabled', ['tenant_approver']);
    const created = await request({ subjectId: 'alex', role: 'GlobalAdmin', startAt: soon(4), durationMinutes: 5 });
    const grantId = created.body.grantId as string;
    await waitFor(grantId, 'pending_approval');
    await decideOn(id.tokens.approverA!, grantId, 'approve');
    await decideOn(leaving.token, grantId, 'approve');
    await waitFor(grantId, 'scheduled');
    expect((await call(id.tokens.mspAdmin, 'POST', `/v1/actors/${leaving.actorId}/disable`, {})).status).toBe(200);
    const ended = await waitFor(grantId, 'ended');
    expect(ended).toMatchObject({ endReason: 'ineligible', activatedAt: null });
    expect(await directory.hasRole(id.tenantA, 'alex', 'GlobalAdmin')).toBe(false);
    expect((await auditActions(grantId)).at(-1)).toBe('grant.activation_refused');
    expect(await taskFailures(created.body.workflowId as string)).toBe(0);
  });

  it('an approver unbound before activation no longer counts either', async () => {
    const unbound = await tenantStaff('Approver soon unbound', ['tenant_approver']);
    const created = await request({ subjectId: 'blake', role: 'GlobalAdmin', startAt: soon(4), durationMinutes: 5 });
    const grantId = created.body.grantId as string;
    await waitFor(grantId, 'pending_approval');
    await decideOn(unbound.token, grantId, 'approve');
    await decideOn(id.tokens.approverA!, grantId, 'approve');
    await waitFor(grantId, 'scheduled');
    const { bindings } = (await call(id.tokens.mspAdmin, 'GET', `/v1/role-bindings?actorId=${unbound.actorId}`)).body;
    for (const binding of bindings as Json[])
      expect((await call(id.tokens.mspAdmin, 'DELETE', `/v1/role-bindings/${binding.id as string}`)).status).toBe(204);
    expect(await waitFor(grantId, 'ended')).toMatchObject({ endReason: 'ineligible', activatedAt: null });
    expect(await directory.hasRole(id.tenantA, 'blake', 'GlobalAdmin')).toBe(false);
  });

  it('while every approver still counts, a scheduled grant activates as before', async () => {
    const created = await request({ subjectId: 'casey', role: 'GlobalAdmin', startAt: soon(2), durationMinutes: 5 });
    const grantId = created.body.grantId as string;
    await waitFor(grantId, 'pending_approval');
    await decideOn(id.tokens.approverA!, grantId, 'approve');
    await decideOn(approver2Token, grantId, 'approve');
    await waitFor(grantId, 'active');
    await decideOn(id.tokens.operator!, grantId, 'revoke');
    await waitFor(grantId, 'ended');
  });
});
