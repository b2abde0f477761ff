import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { runCliOk } from '../support/cli.js';
import { apiClient, type ApiResponse, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, setPolicy, tenantStaff, type TestTenancy } from '../support/tenancy.js';

/**
 * Issue 10 through HTTP on the real stack: the MSP proposes, the tenant decides. A change that
 * loosens the tenant's control is a pending change (202) and the policy stays as it was until the
 * tenant's own approvers approve; a change that only tightens applies at once (201).
 */
let stack: TestStack;
let id: TestTenancy;
const call = apiClient(() => stack.baseUrl);
const tenant = () => `/v1/tenants/${id.tenantA}`;

/** Strict enough that every loosening kind has something to loosen. */
const BASE = {
  contactEmail: 'it@a.example',
  grants: {
    roles: {
      GlobalAdmin: { privileged: true, maxDurationMinutes: 60, approvalsRequired: 1, requestableBy: ['operator'] },
      HelpdeskAdmin: { privileged: true, maxDurationMinutes: 30, approvalsRequired: 1, requestableBy: ['operator', 'msp_admin'] },
    },
    extensionRequiresApproval: true,
    justificationRequired: true,
    ticketPattern: 'INC-\\d+',
    maxTotalDurationMinutes: 120,
  },
  lifecycle: { attributes: ['department'], rules: [{ id: 'sales', when: { department: 'Sales' }, roles: ['Staff'] }] },
};

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  const directory = createPostgresDirectory(stack.pool);
  for (const role of ['GlobalAdmin', 'HelpdeskAdmin', 'Staff', 'Readers']) await directory.upsertRole(id.tenantA, { name: role });
  await directory.upsertUser(id.tenantA, { id: 'alex', username: 'alex', displayName: 'Alex' });
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
    expectedVersion: 1,
    document: BASE,
  });
  expect(approval?.body.status).toBe('applied');
});
afterAll(async () => {
  await stack?.stop();
});

type Document = Json;
const current = async (): Promise<Json> => (await call(id.tokens.mspAdmin, 'GET', `${tenant()}/policy`)).body;

/** PUTs the current document as `change` modifies it, based on the current version. */
async function propose(change: (d: Document) => void, token = id.tokens.mspAdmin!): Promise<ApiResponse> {
  const now = await current();
  const document = structuredClone(now.document) as Document;
  change(document);
  return call(token, 'PUT', `${tenant()}/policy`, { expectedVersion: now.version, document });
}

const decide = (token: string | undefined, changeId: string, decision: 'approve' | 'deny' | 'withdraw', body: Json = {}) =>
  call(token, 'POST', `${tenant()}/policy/changes/${changeId}/${decision}`, body);

async function auditActions(): Promise<string[]> {
  const { rows } = await stack.db.pool.query('SELECT action FROM audit_events WHERE tenant_id = $1 ORDER BY seq', [id.tenantA]);
  return rows.map((r: { action: string }) => r.action);
}

describe('a change that loosens the tenant’s control waits for its approvers', () => {
  const cases: [string, (d: Document) => void, string][] = [
    ['lowers approvalsRequired', (d) => (d.grants.roles.GlobalAdmin.approvalsRequired = 0), 'grants.roles.GlobalAdmin.approvalsRequired'],
    [
      'raises a role’s duration cap',
      (d) => (d.grants.roles.GlobalAdmin.maxDurationMinutes = 600),
      'grants.roles.GlobalAdmin.maxDurationMinutes',
    ],
    ['raises the total duration cap', (d) => (d.grants.maxTotalDurationMinutes = 240), 'grants.maxTotalDurationMinutes'],
    ['makes a role grantable', (d) => (d.grants.roles.Readers = { maxDurationMinutes: 30 }), 'grants.roles.Readers'],
    [
      'marks a grantable role non-privileged',
      (d) => (d.grants.roles.GlobalAdmin.privileged = false),
      'grants.roles.GlobalAdmin.privileged',
    ],
    [
      'widens requestableBy',
      (d) => (d.grants.roles.GlobalAdmin.requestableBy = ['operator', 'tenant_reviewer']),
      'grants.roles.GlobalAdmin.requestableBy',
    ],
    ['turns off extensionRequiresApproval', (d) => (d.grants.extensionRequiresApproval = false), 'grants.extensionRequiresApproval'],
    ['turns off justificationRequired', (d) => (d.grants.justificationRequired = false), 'grants.justificationRequired'],
    ['changes ticketPattern', (d) => (d.grants.ticketPattern = '.*'), 'grants.ticketPattern'],
    ['removes ticketPattern', (d) => (d.grants.ticketPattern = null), 'grants.ticketPattern'],
    ['makes a lifecycle rule give a new role', (d) => d.lifecycle.rules[0].roles.push('Readers'), 'lifecycle.rules.sales.roles'],
    [
      'makes a lifecycle rule give grant eligibility',
      (d) => (d.lifecycle.rules[0].eligibleGrantRoles = ['GlobalAdmin']),
      'lifecycle.rules.sales.eligibleGrantRoles',
    ],
    [
      'adds a lifecycle rule with no `when` giving GlobalAdmin',
      (d) => d.lifecycle.rules.push({ id: 'x', roles: ['GlobalAdmin'] }),
      'lifecycle.rules.x',
    ],
    ['widens a lifecycle rule’s `when`', (d) => delete d.lifecycle.rules[0].when, 'lifecycle.rules.sales.when'],
    ['changes the webhook URL', (d) => (d.notificationWebhookUrl = 'https://hooks.example.test/tenure'), 'notificationWebhookUrl'],
    ['changes contactEmail', (d) => (d.contactEmail = 'someone@elsewhere.example'), 'contactEmail'],
  ];

  it.each(cases)(
    'a change that %s → 202 with Location, the policy unchanged, the change pending beside it',
    async (_kind, change, diffPath) => {
      const before = await current();
      const res = await propose(change, id.tokens.operator);
      expect(res.status).toBe(202);
      const changeId = res.body.changeId as string;
      expect(res.headers.get('location')).toBe(`${tenant()}/policy/changes/${changeId}`);
      expect(res.body).toMatchObject({
        status: 'pending',
        proposerId: id.actors.operator!.id,
        baseVersion: before.version,
        approvalsRequired: 1,
      });
      expect(res.body.diff).toContainEqual(expect.objectContaining({ path: diffPath, effect: 'loosens' }));

      const after = await current();
      expect(after).toMatchObject({ version: before.version, document: before.document });
      expect((after.pendingChanges as Json[]).map((c) => c.changeId)).toEqual([changeId]);
      expect((await call(id.tokens.approverA, 'GET', `${tenant()}/policy/changes/${changeId}`)).body).toMatchObject({ status: 'pending' });

      // The proposer takes it back, so each case starts from the same policy.
      expect((await decide(id.tokens.operator, changeId, 'withdraw')).body).toMatchObject({
        status: 'withdrawn',
        withdrawnBy: id.actors.operator!.id,
      });
      expect((await current()).pendingChanges).toEqual([]);
    },
  );

  it('lists changes by status', async () => {
    const withdrawn = await call(id.tokens.auditorA, 'GET', `${tenant()}/policy/changes?status=withdrawn`);
    expect(withdrawn.status).toBe(200);
    expect(withdrawn.body.changes).toHaveLength(cases.length);
    expect(new Set((withdrawn.body.changes as Json[]).map((c) => c.status))).toEqual(new Set(['withdrawn']));
    expect((await call(id.tokens.auditorA, 'GET', `${tenant()}/policy/changes?status=pending`)).body.changes).toEqual([]);
    const bad = await call(id.tokens.auditorA, 'GET', `${tenant()}/policy/changes?status=maybe`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toBe('query.status');
  });
});

describe('a change that only tightens applies at once', () => {
  const cases: [string, (d: Document) => void][] = [
    ['raises approvalsRequired', (d) => (d.grants.roles.HelpdeskAdmin.approvalsRequired = 2)],
    ['lowers a role’s duration cap', (d) => (d.grants.roles.HelpdeskAdmin.maxDurationMinutes = 20)],
    ['lowers the total duration cap', (d) => (d.grants.maxTotalDurationMinutes = 90)],
    ['narrows requestableBy', (d) => (d.grants.roles.HelpdeskAdmin.requestableBy = ['operator'])],
    ['turns on the review of a mover’s privileged access', (d) => (d.lifecycle.moverReviewsPrivilegedAccess = true)],
    ['removes a lifecycle rule', (d) => (d.lifecycle.rules = [])],
    ['removes a grantable role', (d) => delete d.grants.roles.HelpdeskAdmin],
    ['changes nothing', () => undefined],
  ];

  it.each(cases)('a change that %s → 201, the next version', async (_kind, change) => {
    const before = await current();
    const res = await propose(change, id.tokens.operator);
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`${tenant()}/policy/versions/${before.version + 1}`);
    expect(res.body).toMatchObject({ version: before.version + 1, createdBy: id.actors.operator!.id, changeId: null, approvedBy: null });
    expect((await current()).version).toBe(before.version + 1);
  });

  it('the tightening write is audited with its diff', async () => {
    const { rows } = await stack.db.pool.query(
      "SELECT payload FROM audit_events WHERE tenant_id = $1 AND action = 'tenant_policy.updated' ORDER BY seq DESC LIMIT 2",
      [id.tenantA],
    );
    expect(rows[1].payload.diff).toEqual([expect.objectContaining({ path: 'grants.roles.HelpdeskAdmin', effect: 'tightens' })]);
  });
});

describe('a tenant that decides every change', () => {
  it('opting in applies at once; then even a tightening change waits, and opting out waits too', async () => {
    expect((await propose((d) => (d.governance.approveEveryChange = true))).status).toBe(201);

    const tighten = await propose((d) => (d.grants.maxTotalDurationMinutes = 80));
    expect(tighten.status).toBe(202);
    expect(tighten.body.diff).toEqual([expect.objectContaining({ path: 'grants.maxTotalDurationMinutes', effect: 'tightens' })]);
    expect((await current()).document.grants.maxTotalDurationMinutes).toBe(90);
    expect((await decide(id.tokens.approverA, tighten.body.changeId, 'approve')).body.status).toBe('applied');
    expect((await current()).document.grants.maxTotalDurationMinutes).toBe(80);

    const optOut = await propose((d) => (d.governance.approveEveryChange = false));
    expect(optOut.status).toBe(202);
    expect((await decide(id.tokens.approverA, optOut.body.changeId, 'approve')).body.status).toBe('applied');
    expect((await current()).document.governance.approveEveryChange).toBe(false);
  });
});

describe('the demo attack: the operator sets approvalsRequired 0 for GlobalAdmin', () => {
  it('waits for the tenant; a grant requested meanwhile still needs the old quorum; denied, nothing changes', async () => {
    const before = await current();
    const attack = await propose((d) => (d.grants.roles.GlobalAdmin.approvalsRequired = 0), id.tokens.operator);
    expect(attack.status).toBe(202);

    const grant = await call(id.tokens.operator, 'POST', `${tenant()}/grants`, {
      subjectId: 'alex',
      role: 'GlobalAdmin',
      durationMinutes: 30,
      justification: 'while the change is pending',
      ticket: 'INC-42',
    });
    expect(grant.status).toBe(201);
    const grantPath = `${tenant()}/grants/${grant.body.grantId}`;
    await eventually(
      async () => (await call(id.tokens.operator, 'GET', grantPath)).body,
      (g) => g.status === 'pending_approval' && g.approvalsRequired === 1,
    );
    expect((await call(id.tokens.approverA, 'POST', `${grantPath}/approve`, {})).status).toBe(200);
    await eventually(
      async () => (await call(id.tokens.operator, 'GET', grantPath)).body.status,
      (s) => s === 'active',
    );

    // MSP staff cannot approve the change, whatever their role.
    for (const token of [id.tokens.mspAdmin, id.tokens.operator]) {
      const refused = await decide(token, attack.body.changeId, 'approve');
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe('forbidden');
    }
    const denied = await decide(id.tokens.approverA, attack.body.changeId, 'deny', { comment: 'no standing admin for the MSP' });
    expect(denied.body).toMatchObject({ status: 'denied', deniedBy: id.actors.approverA!.id });
    expect(await current()).toMatchObject({ version: before.version, document: before.document, pendingChanges: [] });
    expect(await auditActions()).toContain('policy_change.denied');
    // Decided once: a later approval no longer applies.
    expect((await decide(id.tokens.approverA, attack.body.changeId, 'approve')).status).toBe(409);
  });
});

describe('approval', () => {
  it('applies the change as a new version recording the proposer and the approver, audited with before, after and diff', async () => {
    const before = await current();
    const proposed = await propose((d) => (d.contactEmail = 'security@a.example'), id.tokens.operator);
    expect(proposed.status).toBe(202);
    const approved = await decide(id.tokens.approverA, proposed.body.changeId, 'approve', { comment: 'our new mailbox' });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'applied', appliedVersion: before.version + 1 });
    expect(approved.body.approvals).toEqual([expect.objectContaining({ approverId: id.actors.approverA!.id, comment: 'our new mailbox' })]);

    const after = await current();
    expect(after).toMatchObject({
      version: before.version + 1,
      createdBy: id.actors.operator!.id,
      changeId: proposed.body.changeId,
      approvedBy: [id.actors.approverA!.id],
      pendingChanges: [],
    });
    expect(after.document.contactEmail).toBe('security@a.example');
    const { rows } = await stack.db.pool.query(
      'SELECT action, payload FROM audit_events WHERE tenant_id = $1 AND target_id = $2 ORDER BY seq',
      [id.tenantA, proposed.body.changeId],
    );
    expect(rows.map((r: { action: string }) => r.action)).toEqual(
      expect.arrayContaining(['policy_change.proposed', 'policy_change.applied']),
    );
    const applied = rows.find((r: { action: string }) => r.action === 'policy_change.applied')!.payload;
    expect(applied).toMatchObject({
      before: { version: before.version },
      after: { version: before.version + 1 },
      diff: [expect.objectContaining({ path: 'contactEmail', effect: 'loosens' })],
    });
  });

  it('a proposer who is also a tenant approver cannot approve their own change (403); another approver can', async () => {
    const owner = await tenantStaff(call, id.tokens.mspAdmin!, id.tenantA, 'Owner A', ['operator', 'tenant_approver']);
    const proposed = await propose((d) => (d.contactEmail = 'owner@a.example'), owner.token);
    expect(proposed.status).toBe(202);
    const self = await decide(owner.token, proposed.body.changeId, 'approve');
    expect(self.status).toBe(403);
    expect((await call(id.tokens.approverA, 'GET', `${tenant()}/policy/changes/${proposed.body.changeId}`)).body.approvals).toEqual([]);
    expect((await decide(id.tokens.approverA, proposed.body.changeId, 'approve')).body.status).toBe('applied');
  });
});

describe('concurrency', () => {
  let secondApprover: { actorId: string; token: string };

  it('two approvals at once on a quorum of two apply the change once; the quorum is the current policy’s', async () => {
    secondApprover = await tenantStaff(call, id.tokens.mspAdmin!, id.tenantA, 'Approver A2', ['tenant_approver']);
    expect((await propose((d) => (d.governance.policyChangeApprovals = 2))).status).toBe(201);
    const before = await current();
    // Proposes going back to one approval as well: the quorum is still the current two.
    const proposed = await propose((d) => {
      d.governance.policyChangeApprovals = 1;
      d.contactEmail = 'quorum@a.example';
    });
    expect(proposed.status).toBe(202);
    expect(proposed.body.approvalsRequired).toBe(2);

    const answers = await Promise.all([
      decide(id.tokens.approverA, proposed.body.changeId, 'approve'),
      decide(secondApprover.token, proposed.body.changeId, 'approve'),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    const change = (await call(id.tokens.approverA, 'GET', `${tenant()}/policy/changes/${proposed.body.changeId}`)).body;
    expect(change).toMatchObject({ status: 'applied', appliedVersion: before.version + 1 });
    expect(change.approvals.map((a: Json) => a.approverId).sort()).toEqual([id.actors.approverA!.id, secondApprover.actorId].sort());
    const { rows } = await stack.db.pool.query('SELECT version FROM tenant_policies WHERE tenant_id = $1 AND change_id = $2', [
      id.tenantA,
      proposed.body.changeId,
    ]);
    expect(rows).toEqual([{ version: before.version + 1 }]);
    expect(await current()).toMatchObject({ version: before.version + 1, document: { governance: { policyChangeApprovals: 1 } } });
  });

  it('an approval after the policy moved on is 409 conflicted and writes nothing', async () => {
    const proposed = await propose((d) => (d.contactEmail = 'late@a.example'));
    expect(proposed.status).toBe(202);
    const tightened = await propose((d) => (d.grants.maxTotalDurationMinutes = 70));
    expect(tightened.status).toBe(201);
    const approved = await decide(id.tokens.approverA, proposed.body.changeId, 'approve');
    expect(approved.status).toBe(409);
    expect(approved.body.error.message).toMatch(/moved from version \d+ to version \d+/);
    expect((await call(id.tokens.approverA, 'GET', `${tenant()}/policy/changes/${proposed.body.changeId}`)).body.status).toBe('conflicted');
    expect(await current()).toMatchObject({ version: tightened.body.version, document: { contactEmail: 'quorum@a.example' } });
  });
});

describe('bad input changes nothing', () => {
  it('an unknown field is 400 with its path; a stale expectedVersion is 409; no version, no change', async () => {
    const before = await current();
    const changes = async () => (await call(id.tokens.mspAdmin, 'GET', `${tenant()}/policy/changes`)).body.changes.length as number;
    const count = await changes();

    const unknown = await call(id.tokens.operator, 'PUT', `${tenant()}/policy`, {
      expectedVersion: before.version,
      document: { ...before.document, grants: { ...before.document.grants, approvalsRequired: 0 }, shoeSize: 9 },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.issues.map((i: Json) => i.path).sort()).toEqual([
      'body.document.grants.approvalsRequired',
      'body.document.shoeSize',
    ]);

    const stale = await call(id.tokens.operator, 'PUT', `${tenant()}/policy`, {
      expectedVersion: before.version - 1,
      document: { ...before.document, contactEmail: 'stale@a.example' },
    });
    expect(stale.status).toBe(409);

    const unknownChange = await call(id.tokens.approverA, 'POST', `${tenant()}/policy/changes/${randomUUID()}/approve`, {});
    expect(unknownChange.status).toBe(404);

    expect(await current()).toMatchObject({ version: before.version, document: before.document, pendingChanges: [] });
    expect(await changes()).toBe(count);
  });
});

describe('the CLI', () => {
  it('tenure policy propose, changes and approve: the MSP proposes at the terminal, the tenant approves', async () => {
    const as = (token: string) => ({ TENURE_URL: stack.baseUrl, TENURE_TOKEN: token });
    const now = await current();
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'tenure-policy-')), 'policy.json');
    await writeFile(file, JSON.stringify({ ...now.document, contactEmail: 'cli@a.example' }));

    const proposed = await runCliOk(['policy', 'propose', '--json', '--tenant', id.tenantA, '--file', file], as(id.tokens.operator!));
    expect(proposed.stderr).toMatch(/waits for the tenant's approvers/);
    const { changeId } = JSON.parse(proposed.stdout) as { changeId: string };
    const pending = await runCliOk(
      ['policy', 'changes', '--json', '--tenant', id.tenantA, '--status', 'pending'],
      as(id.tokens.approverA!),
    );
    expect((JSON.parse(pending.stdout) as { changes: Json[] }).changes.map((c) => c.changeId)).toEqual([changeId]);
    const approved = await runCliOk(
      ['policy', 'approve', '--json', '--tenant', id.tenantA, changeId, '--comment', 'ok'],
      as(id.tokens.approverA!),
    );
    expect(JSON.parse(approved.stdout)).toMatchObject({ status: 'applied', appliedVersion: now.version + 1 });
  });
});
