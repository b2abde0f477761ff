import { ScheduleNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLdapDirectory, type LdapDirectory } from '../../connectors/directory/ldap.js';
import { sweepScheduleId } from '../../core/directory/sweep.js';
import { LdapTargetSettings } from '../../core/directory/targets.js';
import { TASK_QUEUES } from '../../core/config.js';
import { freePort } from '../../runtime/ports.js';
import { apiClient, type Json } from '../support/http.js';
import { startScimServer, startSlapd, type ScimServer, type Slapd } from '../support/directory-targets.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, setPolicy, type TestTenancy } from '../support/tenancy.js';

/**
 * Tenants on real targets through the whole stack: tenant A moves to OpenLDAP slapd and tenant B
 * to scim2-server by approved policy changes. The main worker polls every queue but `grants`,
 * whose worker runs apart so a test can take it down: the expiry sweeper (queue `directory`)
 * must then remove a grant's access by itself.
 */
let slapd: Slapd;
let scim: ScimServer;
let ldap: LdapDirectory;
let stack: TestStack;
let id: TestTenancy;
let grantsWorker: { stop: () => Promise<void> };

const call = apiClient(() => stack.baseUrl);
const SECRETS = { ldap: 'TENURE_SECRET_TEST_LDAP', scim: 'TENURE_SECRET_TEST_SCIM' };
const soon = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

const ldapTarget = (overrides: Json = {}) => ({
  type: 'ldap',
  settings: slapd.settings(),
  bindPassword: { env: SECRETS.ldap },
  ...overrides,
});

const tenantPolicy = (directory: Json) => ({
  directory,
  grants: { roles: { GlobalAdmin: { maxDurationMinutes: 60, approvalsRequired: 0, requestableBy: ['operator'] } } },
  lifecycle: { attributes: ['department'], rules: [{ id: 'staff', roles: ['AllStaff'] }], leaver: { retentionDays: 30 } },
});

/** `access.swept` events of tenant A for one membership. */
const swept = async (subjectId: string, role: string) =>
  (
    await stack.db.pool.query<{ payload: Json; actor_id: string }>(
      "SELECT payload, actor_id FROM audit_events WHERE tenant_id = $1 AND action = 'access.swept' AND payload->>'subjectId' = $2 AND payload->>'role' = $3 ORDER BY seq",
      [id.tenantA, subjectId, role],
    )
  ).rows;

beforeAll(async () => {
  [slapd, scim] = await Promise.all([startSlapd(), startScimServer()]);
  ldap = createLdapDirectory(LdapTargetSettings.parse(slapd.settings()), { bindPassword: slapd.bindPassword });
  stack = await startTestStack({
    secretEnv: { [SECRETS.ldap]: slapd.bindPassword, [SECRETS.scim]: scim.bearerToken },
    sweepIntervalSeconds: 2,
    taskQueues: TASK_QUEUES.filter((queue) => queue !== 'grants'),
  });
  grantsWorker = await stack.extraWorker(['grants']);
  id = await seedTenancy(stack.pool);
  // What the client's LDAP directory holds before Tenure is pointed at it.
  await ldap.upsertRole(id.tenantA, { name: 'GlobalAdmin', privileged: true });
  await ldap.upsertRole(id.tenantA, { name: 'AllStaff' });
  for (const user of ['ana', 'bo']) await ldap.upsertUser(id.tenantA, { id: user, username: user, displayName: user });
});
afterAll(async () => {
  await grantsWorker?.stop();
  await stack?.stop();
  await ldap?.close();
  await Promise.all([slapd?.stop(), scim?.stop()]);
});

describe('a tenant’s target directory', () => {
  it('moving a tenant to LDAP is a loosening change its approver decides; a target that cannot be used is refused up front', async () => {
    const current = (await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}/policy`)).body;
    const propose = (directory: Json) =>
      call(id.tokens.operator, 'PUT', `/v1/tenants/${id.tenantA}/policy`, {
        expectedVersion: current.version,
        document: tenantPolicy(directory),
      });

    const noSecret = await propose(ldapTarget({ bindPassword: { env: 'TENURE_SECRET_NOT_SET' } }));
    expect(noSecret.status).toBe(409);
    expect(noSecret.body.error.code).toBe('directory_target_unusable');
    expect(noSecret.body.error.message).toContain('TENURE_SECRET_NOT_SET is not set');
    const closed = await propose(ldapTarget({ settings: slapd.settings({ url: `ldap://127.0.0.1:${await freePort()}` }) }));
    expect(closed.status).toBe(409);
    expect(closed.body.error.message).toMatch(/read a user.*LDAP directory ldap:\/\/127\.0\.0\.1:\d+ .*unreachable/);
    const wrongPassword = await propose(ldapTarget({ bindPassword: { env: SECRETS.scim } }));
    expect(wrongPassword.status).toBe(409);
    expect(wrongPassword.body.error.message).toContain('result code 49');
    for (const refused of [noSecret, closed, wrongPassword]) {
      expect(JSON.stringify(refused.body)).not.toContain(slapd.bindPassword);
      expect(JSON.stringify(refused.body)).not.toContain(scim.bearerToken);
    }
    expect((await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}/policy`)).body.version).toBe(current.version);

    const { put, approval } = await setPolicy(call, { proposer: id.tokens.operator!, approver: id.tokens.approverA! }, id.tenantA, {
      expectedVersion: current.version,
      document: tenantPolicy(ldapTarget()),
    });
    expect(put.status).toBe(202);
    expect(put.body.diff).toContainEqual(expect.objectContaining({ path: 'directory', effect: 'loosens' }));
    expect(approval?.body.status).toBe('applied');
    const policy = (await call(id.tokens.approverA, 'GET', `/v1/tenants/${id.tenantA}/policy`)).body;
    expect(policy.document.directory).toMatchObject({ type: 'ldap', bindPassword: { env: SECRETS.ldap } });
    expect(JSON.stringify(policy)).not.toContain(slapd.bindPassword);
  });

  it('the test endpoint reads the LDAP target and says what it lacks; its sweeper is scheduled; /metrics shows it up', async () => {
    const tested = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantA}/directory/test`);
    expect(tested.status).toBe(200);
    expect(tested.body).toMatchObject({
      tenantId: id.tenantA,
      target: { type: 'ldap', location: slapd.url },
      connector: 'ldap',
      capabilities: {
        sessions: false,
        membershipEnd: false,
        roleLookup: true,
        unlock: true,
        mfaReset: false,
        passwordReset: true,
        mfaPolicy: false,
        passwordPolicy: false,
        lockoutPolicy: false,
        sessionPolicy: false,
      },
      notSupported: [
        'sessions: not supported by target',
        'membershipEnd: not supported by target',
        'roleDelete: not supported by target',
        'mfaReset: not supported by target',
        'mfaPolicy: not supported by target',
        'passwordPolicy: not supported by target',
        'lockoutPolicy: not supported by target',
        'sessionPolicy: not supported by target',
      ],
      sweeper: true,
      ok: true,
    });
    expect(tested.body.checks.map((c: Json) => [c.operation, c.ok])).toEqual([
      ['build the connector', true],
      ['read a user', true],
      ['look up roles', true],
    ]);
    const schedule = await stack.temporal.schedule.getHandle(sweepScheduleId(id.tenantA)).describe();
    expect(schedule.action).toMatchObject({ workflowType: 'sweepWorkflow', taskQueue: `${stack.taskQueuePrefix}directory` });
    const metrics = await (await fetch(`${stack.baseUrl}/metrics`)).text();
    expect(metrics).toContain(`tenure_directory_up{tenant_id="${id.tenantA}",target="ldap"} 1`);
  });

  it('a grant on the LDAP tenant whose grants worker is down at expiry is removed by the sweeper, verified and recorded', async () => {
    const created = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantA}/grants`, {
      subjectId: 'ana',
      role: 'GlobalAdmin',
      // Long enough for the grants worker to be stopped well before the end.
      endAt: soon(15),
      justification: 'sweeper test',
    });
    expect(created.status).toBe(201);
    const grantId = created.body.grantId as string;
    const read = async () => (await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}/grants/${grantId}`)).body;
    await eventually(read, (g) => g.status === 'active');
    expect(await ldap.hasRole(id.tenantA, 'ana', 'GlobalAdmin')).toBe(true);

    await grantsWorker.stop();
    const [event] = await eventually(
      () => swept('ana', 'GlobalAdmin'),
      (rows) => rows.length > 0,
      60_000,
    );
    expect(event!.actor_id).toBe('sweeper');
    expect(event!.payload).toMatchObject({
      reason: 'past_end',
      pastEnd: [{ source: `grant:${grantId}` }],
      target: 'ldap',
      removedNow: true,
      verified: true,
    });
    expect(await ldap.hasRole(id.tenantA, 'ana', 'GlobalAdmin')).toBe(false);
    // Nobody ran the grant's own end yet: its workflow waits for a grants worker.
    expect((await read()).status).toBe('active');

    grantsWorker = await stack.extraWorker(['grants']);
    const ended = await eventually(read, (g) => g.status === 'ended', 60_000);
    expect(ended).toMatchObject({ endReason: 'expired', revocationVerifiedAt: expect.any(String) });
    expect(await swept('ana', 'GlobalAdmin')).toHaveLength(1);
    const verify = await call(id.tokens.mspAdmin, 'GET', `/v1/audit/${id.tenantA}/verify`);
    expect(verify.body).toMatchObject({ intact: true });
  });

  it('a membership of a managed role given behind Tenure’s back is swept as unexplained', async () => {
    await ldap.assignRole(id.tenantA, 'bo', 'GlobalAdmin');
    const [event] = await eventually(
      () => swept('bo', 'GlobalAdmin'),
      (rows) => rows.length > 0,
      60_000,
    );
    expect(event!.payload).toMatchObject({ reason: 'unexplained', pastEnd: [], removedNow: true, verified: true });
    expect(await ldap.listMembers(id.tenantA, 'GlobalAdmin')).toEqual([]);
  });

  it('a leaver on LDAP completes and records "sessions: not supported by target" instead of failing', async () => {
    const hr = id.tokens.hrA!;
    const base = `/v1/tenants/${id.tenantA}`;
    const past = new Date(Date.now() - 60_000).toISOString();
    const joined = await call(hr, 'POST', `${base}/hr-events`, {
      eventId: 'cy-join',
      personId: 'cy',
      type: 'joiner',
      effectiveAt: past,
      attributes: { department: 'Finance' },
      profile: { username: 'cy', displayName: 'Cy' },
    });
    expect(joined.status).toBe(202);
    await eventually(
      async () => (await call(hr, 'GET', `${base}/people/cy`)).body,
      (p) => p.person?.status === 'active',
    );
    expect(await ldap.listRoles(id.tenantA, 'cy')).toEqual(['AllStaff']);

    const left = await call(hr, 'POST', `${base}/hr-events`, { eventId: 'cy-leave', personId: 'cy', type: 'leaver', effectiveAt: past });
    expect(left.status).toBe(202);
    await eventually(
      async () => (await call(hr, 'GET', `${base}/people/cy`)).body,
      (p) => p.person?.status === 'left',
    );
    const leftEvent = await stack.db.pool.query<{ payload: Json }>(
      "SELECT payload FROM audit_events WHERE tenant_id = $1 AND action = 'person.left' AND target_id = 'cy'",
      [id.tenantA],
    );
    expect(leftEvent.rows[0]!.payload).toMatchObject({
      sessionsRevoked: null,
      notSupported: [{ capability: 'sessions', target: 'ldap', note: 'sessions: not supported by target' }],
      verified: true,
    });
    expect(await ldap.listRoles(id.tenantA, 'cy')).toEqual([]);
    expect((await ldap.getUser(id.tenantA, 'cy'))?.status).toBe('disabled');
  });

  it('a SCIM tenant without the Group extension: the test endpoint names every capability it lacks', async () => {
    const current = (await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantB}/policy`)).body;
    const { approval } = await setPolicy(call, { proposer: id.tokens.operator!, approver: id.tokens.approverB! }, id.tenantB, {
      expectedVersion: current.version,
      document: { ...current.document, directory: { type: 'scim', settings: scim.settings(), bearerToken: { env: SECRETS.scim } } },
    });
    expect(approval?.body.status).toBe('applied');
    const tested = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantB}/directory/test`, {});
    expect(tested.body).toMatchObject({
      target: { type: 'scim', location: scim.baseUrl },
      connector: 'scim',
      capabilities: {
        sessions: false,
        membershipEnd: false,
        roleLookup: false,
        unlock: false,
        mfaReset: false,
        passwordReset: false,
        mfaPolicy: false,
        passwordPolicy: false,
        lockoutPolicy: false,
        sessionPolicy: false,
      },
      notSupported: [
        'sessions: not supported by target',
        'membershipEnd: not supported by target',
        'roleLookup: not supported by target',
        'roleDelete: not supported by target',
        'unlock: not supported by target',
        'mfaReset: not supported by target',
        'passwordReset: not supported by target',
        'mfaPolicy: not supported by target',
        'passwordPolicy: not supported by target',
        'lockoutPolicy: not supported by target',
        'sessionPolicy: not supported by target',
      ],
      sweeper: true,
      ok: true,
    });
    expect(tested.body.checks.map((c: Json) => c.operation)).toEqual(['build the connector', 'read a user']);
    const schedule = stack.temporal.schedule.getHandle(sweepScheduleId(id.tenantB));
    expect((await schedule.describe()).action).toMatchObject({ workflowType: 'sweepWorkflow' });

    // Back to the built-in directory, which ends memberships by itself: the sweeper goes.
    const onScim = (await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantB}/policy`)).body;
    const back = await setPolicy(call, { proposer: id.tokens.operator!, approver: id.tokens.approverB! }, id.tenantB, {
      expectedVersion: onScim.version,
      document: { ...onScim.document, directory: { type: 'builtin' } },
    });
    expect(back.approval?.body.status).toBe('applied');
    const builtin = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantB}/directory/test`, {});
    expect(builtin.body).toMatchObject({ connector: 'postgres', sweeper: false, notSupported: [], ok: true });
    await expect(schedule.describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });

  it('a target that is down: the test answers which operation failed and that a retry may help, and /metrics shows it down', async () => {
    await slapd.down();
    try {
      const tested = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantA}/directory/test`);
      expect(tested.status).toBe(200);
      expect(tested.body.ok).toBe(false);
      const failed = tested.body.checks.find((c: Json) => !c.ok);
      expect(failed).toMatchObject({ operation: 'read a user', error: { type: 'DirectoryUnavailableError', retryable: true } });
      expect(failed.error.message).toContain(`LDAP directory ${slapd.url} (tenant ${id.tenantA})`);
      expect(JSON.stringify(tested.body)).not.toContain(slapd.bindPassword);
      const metrics = await (await fetch(`${stack.baseUrl}/metrics`)).text();
      expect(metrics).toContain(`tenure_directory_up{tenant_id="${id.tenantA}",target="ldap"} 0`);
    } finally {
      await slapd.up();
    }
  });
});
