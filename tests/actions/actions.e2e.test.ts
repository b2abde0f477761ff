import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import type { DirectoryCapability } from '../../core/directory/connector.js';
import { runCli, runCliOk } from '../support/cli.js';
import { withToggledCapability } from '../support/directory-targets.js';
import { apiClient, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, setPolicy, tenantStaff, type TestTenancy } from '../support/tenancy.js';

/**
 * Remote actions through HTTP on the real stack: API → Temporal → worker → the built-in
 * directory, read back through the connector, with the audit trail checked. The connector-level
 * behaviour of LDAP and SCIM is in tests/directory/.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: PostgresDirectory;
let approver2: string;
/** A capability the stack's directory pretends to lack, as an LDAP or SCIM target would. */
let lacking: DirectoryCapability | null = null;

const call = apiClient(() => stack.baseUrl);

beforeAll(async () => {
  stack = await startTestStack({ directory: (real) => withToggledCapability(real, () => lacking) });
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  // Allowing remote actions loosens the tenant's control: its approver approves the change.
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
    expectedVersion: 1,
    document: {
      actions: {
        allowed: {
          unlock: { approvalsRequired: 1, requestableBy: ['operator', 'tenant_approver'] },
          reset_mfa: { approvalsRequired: 2 },
          revoke_sessions: { approvalsRequired: 0 },
          force_password_reset: { approvalsRequired: 1 },
          disable_account: { approvalsRequired: 1 },
        },
        ticketPattern: 'INC-\\d+',
      },
    },
  });
  expect(approval?.body).toMatchObject({ status: 'applied' });
  const inB = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverB! }, id.tenantB, {
    expectedVersion: 1,
    document: { actions: { allowed: { unlock: {} } } },
  });
  expect(inB.approval?.body).toMatchObject({ status: 'applied' });
  approver2 = (await tenantStaff(call, id.tokens.mspAdmin!, id.tenantA, 'Approver A2', ['tenant_approver'])).token;
});
afterAll(async () => {
  await stack?.stop();
});

const actions = (tenantId = id.tenantA) => `/v1/tenants/${tenantId}/actions`;
/** A new user of tenant A's directory. */
async function newUser(): Promise<string> {
  const user = `u-${randomBytes(4).toString('hex')}`;
  await directory.upsertUser(id.tenantA, { id: user, username: user, displayName: `User ${user}` });
  return user;
}
const request = (body: Json, token = id.tokens.operator, headers: Record<string, string> = {}) =>
  call(token, 'POST', actions(), { justification: 'user called the service desk', ticket: 'INC-1', ...body }, { headers });
const read = async (actionId: string) => (await call(id.tokens.operator, 'GET', `${actions()}/${actionId}`)).body;
const waitFor = (actionId: string, status: string) =>
  eventually(
    () => read(actionId),
    (a) => a.status === status,
    30_000,
  );
/** Waits until the workflow has recorded the request, so decisions meet a running workflow. */
const recorded = (actionId: string) =>
  eventually(
    () => read(actionId),
    (a) => a.version >= 1,
  );
const decide = (token: string | undefined, actionId: string, decision: string, body: Json = {}) =>
  call(token, 'POST', `${actions()}/${actionId}/${decision}`, body);
const audit = async (actionId: string) =>
  (
    await stack.db.pool.query<{ action: string; actor_id: string; authority: Json; payload: Json; event_id: string }>(
      "SELECT action, actor_id, authority, payload, event_id FROM audit_events WHERE target_type = 'action' AND target_id = $1 ORDER BY seq",
      [actionId],
    )
  ).rows;
const rowCount = async () => (await stack.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM remote_actions')).rows[0]!.n;

describe('remote actions through the API', () => {
  it('unlock: request → a tenant approver approves → unlocked, read back, and every step audited once with its authority', async () => {
    const user = await newUser();
    await directory.lockUser(id.tenantA, user);
    const created = await request({ action: 'unlock', subjectId: user });
    expect(created.status).toBe(201);
    const actionId = created.body.actionId as string;
    expect(created.headers.get('location')).toBe(`${actions()}/${actionId}`);
    expect(created.body).toMatchObject({ status: 'pending_approval', action: 'unlock', subjectId: user, approvalsRequired: 1 });
    await recorded(actionId);

    // The MSP never decides for the tenant, whatever its role.
    for (const token of [id.tokens.operator, id.tokens.mspAdmin]) {
      const refused = await decide(token, actionId, 'approve');
      expect(refused.status).toBe(403);
      expect(refused.body.error.message).toBe('Only a tenant_approver of this tenant may decide on its remote actions.');
    }
    expect((await directory.getAccountState(id.tenantA, user))?.locked).toBe(true);
    expect((await decide(id.tokens.approverA, actionId, 'approve', { comment: 'confirmed by phone' })).status).toBe(200);

    const done = await waitFor(actionId, 'completed');
    expect(done).toMatchObject({
      before: { locked: true, status: 'active' },
      after: { locked: false, status: 'active' },
      outcome: 'lockout lifted',
      approvals: [{ approverId: id.actors.approverA!.id, comment: 'confirmed by phone' }],
    });
    expect(await directory.getAccountState(id.tenantA, user)).toMatchObject({ locked: false, status: 'active' });

    const events = await audit(actionId);
    expect(events.map((e) => [e.action, e.actor_id])).toEqual([
      ['action.requested', id.actors.operator!.id],
      ['action.approval_recorded', id.actors.approverA!.id],
      ['action.approved', 'system'],
      ['action.executed', 'system'],
      ['action.completed', 'system'],
    ]);
    expect(new Set(events.map((e) => e.event_id)).size).toBe(events.length);
    const approvalIds = [done.approvals[0].approvalId];
    expect(events[0]!.authority).toMatchObject({ roles: ['operator'], ticket: 'INC-1', actionId, requestId: expect.any(String) });
    expect(events[1]!.authority).toMatchObject({ roles: ['tenant_approver'], approvalIds });
    for (const step of events.slice(2)) expect(step.authority).toMatchObject({ approvalIds, policyVersion: done.policyVersion });
    expect(events[3]!.payload).toMatchObject({ target: 'postgres', before: { locked: true } });
    expect(events[4]!.payload).toMatchObject({ verified: true, after: { locked: false } });
  });

  it('each action changes what it names on the target, read back: MFA reset (two approvers), sessions (no approval), password reset, disable', async () => {
    const user = await newUser();
    await directory.enrollMfa(id.tenantA, user, 'totp');
    await directory.enrollMfa(id.tenantA, user, 'webauthn');
    await directory.openSession(id.tenantA, user);
    await directory.openSession(id.tenantA, user);

    const mfa = (await request({ action: 'reset_mfa', subjectId: user })).body.actionId as string;
    await recorded(mfa);
    expect((await decide(id.tokens.approverA, mfa, 'approve')).body).toMatchObject({ status: 'pending_approval' });
    expect((await decide(approver2, mfa, 'approve')).status).toBe(200);
    expect(await waitFor(mfa, 'completed')).toMatchObject({ outcome: '2 second factor(s) removed', after: { mfaFactors: 0 } });

    const sessions = (await request({ action: 'revoke_sessions', subjectId: user })).body.actionId as string;
    expect(await waitFor(sessions, 'completed')).toMatchObject({
      approvals: [],
      before: { liveSessions: 2 },
      after: { liveSessions: 0 },
      outcome: '2 session(s) ended',
    });
    expect((await audit(sessions)).find((e) => e.action === 'action.approved')?.authority).toMatchObject({ autoApproved: true });

    for (const [action, readBack] of [
      ['force_password_reset', { passwordResetRequired: true, status: 'active' }],
      ['disable_account', { status: 'disabled' }],
    ] as const) {
      const actionId = (await request({ action, subjectId: user })).body.actionId as string;
      await recorded(actionId);
      expect((await decide(id.tokens.approverA, actionId, 'approve')).status).toBe(200);
      expect(await waitFor(actionId, 'completed')).toMatchObject({ after: readBack });
    }
    expect(await directory.getAccountState(id.tenantA, user)).toEqual({
      status: 'disabled',
      locked: false,
      mfaFactors: 0,
      passwordResetRequired: true,
      liveSessions: 0,
    });
  });

  it('an approver unbound after approving no longer counts when the action is about to run: it ends refused, reason recorded, nothing done', async () => {
    const user = await newUser();
    await directory.enrollMfa(id.tenantA, user, 'totp');
    const leaving = await tenantStaff(call, id.tokens.mspAdmin!, id.tenantA, 'Approver A3', ['tenant_approver']);
    const mfa = (await request({ action: 'reset_mfa', subjectId: user })).body.actionId as string;
    await recorded(mfa);
    expect((await decide(leaving.token, mfa, 'approve')).body).toMatchObject({ status: 'pending_approval' });
    const bindings = (await call(id.tokens.mspAdmin, 'GET', `/v1/role-bindings?actorId=${leaving.actorId}`)).body.bindings as Json[];
    for (const binding of bindings) expect((await call(id.tokens.mspAdmin, 'DELETE', `/v1/role-bindings/${binding.id}`)).status).toBe(204);

    const last = await decide(approver2, mfa, 'approve');
    expect(last.status).toBe(200);
    expect(last.body).toMatchObject({ status: 'refused', executedAt: null });
    const refused = await waitFor(mfa, 'refused');
    expect(refused.outcome).toContain(`Only 1 of the 2 approval(s) still count: ${leaving.actorId} no longer is an active approver`);
    expect((await directory.getAccountState(id.tenantA, user))?.mfaFactors).toBe(1);
    const events = await audit(mfa);
    expect(events.map((e) => e.action)).toEqual([
      'action.requested',
      'action.approval_recorded',
      'action.approval_recorded',
      'action.refused',
    ]);
    expect(events[3]!.payload).toMatchObject({
      status: 'refused',
      reason: refused.outcome,
      lapsedApprovers: [leaving.actorId],
      required: 2,
    });
    expect((await call(id.tokens.operator, 'GET', `${actions()}?status=refused`)).body.actions.map((a: Json) => a.actionId)).toContain(mfa);
  });

  it('the requester cannot approve or deny their own request (403), while another tenant approver can', async () => {
    const user = await newUser();
    await directory.lockUser(id.tenantA, user);
    const actionId = (await request({ action: 'unlock', subjectId: user }, id.tokens.approverA)).body.actionId as string;
    await recorded(actionId);
    for (const decision of ['approve', 'deny']) {
      const own = await decide(id.tokens.approverA, actionId, decision);
      expect(own.status).toBe(403);
      expect(own.body.error.message).toMatch(/^The requester cannot (approve|decide on) their own request/);
    }
    expect((await read(actionId)).status).toBe('pending_approval');
    expect((await decide(approver2, actionId, 'approve')).status).toBe(200);
    await waitFor(actionId, 'completed');
  });

  it('a denied or cancelled request does nothing, and a later decision is a 409', async () => {
    const user = await newUser();
    await directory.lockUser(id.tenantA, user);
    const denied = (await request({ action: 'unlock', subjectId: user })).body.actionId as string;
    await recorded(denied);
    expect((await decide(id.tokens.approverA, denied, 'deny', { comment: 'not verified' })).body).toMatchObject({
      status: 'denied',
      decidedBy: id.actors.approverA!.id,
    });

    const cancelled = (await request({ action: 'unlock', subjectId: user })).body.actionId as string;
    await recorded(cancelled);
    expect((await decide(id.tokens.auditorA, cancelled, 'cancel')).status).toBe(403);
    expect((await decide(id.tokens.operator, cancelled, 'cancel')).body).toMatchObject({ status: 'cancelled' });
    await waitFor(cancelled, 'cancelled');
    expect((await decide(id.tokens.approverA, cancelled, 'approve')).status).toBe(409);
    expect((await decide(id.tokens.approverA, denied, 'approve')).status).toBe(409);

    expect((await directory.getAccountState(id.tenantA, user))?.locked).toBe(true);
    expect((await audit(denied)).map((e) => e.action)).toEqual(['action.requested', 'action.denied']);
    expect((await audit(cancelled)).map((e) => e.action)).toEqual(['action.requested', 'action.cancelled']);
  });

  it("another tenant's staff, and an MSP admin bound only to it, get 404 for tenant A's action, exactly as for a missing one", async () => {
    const user = await newUser();
    const actionId = (await request({ action: 'unlock', subjectId: user })).body.actionId as string;
    await recorded(actionId);
    for (const token of [id.tokens.approverB, id.tokens.tenantAdminB]) {
      for (const [method, suffix] of [
        ['GET', ''],
        ['POST', '/approve'],
        ['POST', '/deny'],
        ['POST', '/cancel'],
      ] as const) {
        const response = await call(token, method, `${actions()}/${actionId}${suffix}`, method === 'POST' ? {} : undefined);
        expect(response.status).toBe(404);
        expect(response.body.error.code).toBe('not_found');
      }
      expect((await call(token, 'GET', actions())).status).toBe(404);
    }
    expect((await call(id.tokens.approverA, 'GET', `${actions()}/${randomUUID()}`)).status).toBe(404);
    // Tenant B's approver cannot reach it through tenant B's path either.
    expect((await call(id.tokens.approverB, 'POST', `${actions(id.tenantB)}/${actionId}/approve`, {})).status).toBe(404);
    expect((await read(actionId)).status).toBe('pending_approval');
  });

  it('a request the policy or the target refuses is a 400 naming each field, and nothing is created', async () => {
    const user = await newUser();
    const before = await rowCount();
    const bad = await call(id.tokens.operator, 'POST', actions(), { action: 'unlock', subjectId: 'nobody-here', ticket: 'CHG-1' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues).toEqual([
      { path: 'body.justification', message: 'required by the tenant policy' },
      { path: 'body.ticket', message: 'must match INC-\\d+' },
      { path: 'body.subjectId', message: 'no directory user with this id' },
    ]);

    lacking = 'mfaReset';
    try {
      const unsupported = await request({ action: 'reset_mfa', subjectId: user });
      expect(unsupported.status).toBe(400);
      expect(unsupported.body.error.issues).toEqual([
        { path: 'body.action', message: "the tenant's postgres directory lacks the mfaReset capability" },
      ]);
    } finally {
      lacking = null;
    }

    const notAllowed = await call(id.tokens.operator, 'POST', actions(id.tenantB), {
      action: 'reset_mfa',
      subjectId: user,
      justification: 'x',
    });
    expect(notAllowed.status).toBe(400);
    expect(notAllowed.body.error.issues).toEqual([
      { path: 'body.action', message: expect.stringMatching(/^not allowed under policy version \d+$/) },
    ]);

    const unknown = await request({ action: 'reboot', subjectId: user });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.issues.map((i: Json) => i.path)).toEqual(['body.action']);
    // A reviewer holds no role the policy lets request actions.
    expect((await request({ action: 'unlock', subjectId: user }, id.tokens.reviewerA)).status).toBe(403);
    expect(await rowCount()).toBe(before);
  });

  it('an Idempotency-Key answers a retry with the same action, and the key on another body is a 409', async () => {
    const user = await newUser();
    const key = randomUUID();
    const first = await request({ action: 'unlock', subjectId: user }, id.tokens.operator, { 'idempotency-key': key });
    const again = await request({ action: 'unlock', subjectId: user }, id.tokens.operator, { 'idempotency-key': key });
    expect(first.status).toBe(201);
    expect(again.body.actionId).toBe(first.body.actionId);
    const other = await request({ action: 'disable_account', subjectId: user }, id.tokens.operator, { 'idempotency-key': key });
    expect(other.status).toBe(409);
    const listed = await call(id.tokens.operator, 'GET', `${actions()}?subjectId=${user}`);
    expect(listed.body.actions.map((a: Json) => a.actionId)).toEqual([first.body.actionId]);
  });

  it('lists newest first with filters and a cursor; the list needs action.read', async () => {
    const user = await newUser();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await request({ action: 'unlock', subjectId: user })).body.actionId as string);
    const page1 = await call(id.tokens.auditorA, 'GET', `${actions()}?subjectId=${user}&action=unlock&limit=2`);
    expect(page1.status).toBe(200);
    expect(page1.body.actions.map((a: Json) => a.actionId)).toEqual([ids[2], ids[1]]);
    const page2 = await call(id.tokens.auditorA, 'GET', `${actions()}?subjectId=${user}&limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body).toMatchObject({ actions: [{ actionId: ids[0] }], nextCursor: null });
    expect((await call(id.tokens.hrA, 'GET', actions())).status).toBe(403);
  });

  it('the tenure CLI requests, shows, lists and approves actions, and exits 4 (refused) on a decision that no longer applies', async () => {
    const user = await newUser();
    await directory.lockUser(id.tenantA, user);
    const as = (token: string) => ({ TENURE_URL: stack.baseUrl, TENURE_TOKEN: token });
    const args = (command: string[]) => ['action', ...command, '--tenant', id.tenantA, '--json'];
    const requested = JSON.parse(
      (
        await runCliOk(
          args(['request', 'unlock', '--subject', user, '--justification', 'cli', '--ticket', 'INC-9']),
          as(id.tokens.operator!),
        )
      ).stdout,
    ) as Json;
    expect(requested).toMatchObject({ status: 'pending_approval', action: 'unlock', subjectId: user });
    const actionId = requested.actionId as string;
    await recorded(actionId);
    const listed = JSON.parse((await runCliOk(args(['list', '--subject', user]), as(id.tokens.approverA!))).stdout) as { actions: Json[] };
    expect(listed.actions.map((a) => a.actionId)).toEqual([actionId]);
    await runCliOk(args(['approve', actionId, '--comment', 'from the terminal']), as(id.tokens.approverA!));
    await waitFor(actionId, 'completed');
    expect(JSON.parse((await runCliOk(args(['show', actionId]), as(id.tokens.operator!))).stdout)).toMatchObject({ status: 'completed' });
    expect(await runCli(args(['cancel', actionId]), as(id.tokens.operator!))).toMatchObject({
      code: 4,
      stderr: expect.stringContaining('409'),
    });
  }, 180_000); // six CLI processes, each compiling the CLI with tsx: slow on a loaded machine
});
