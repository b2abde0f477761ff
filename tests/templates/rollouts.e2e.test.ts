import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { MSP_CHAIN } from '../../core/audit/chain.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { currentPolicy, insertPolicyVersion } from '../../db/tenancy.js';
import { runCliOk } from '../support/cli.js';
import { startSlapd, type Slapd } from '../support/directory-targets.js';
import { apiClient, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { mspStaff, seedTenancy, tenantStaff, type TestTenancy } from '../support/tenancy.js';

/**
 * Rollouts on the real stack: the API starts `rollout/<id>`, which applies a template version to
 * tenants through their own connectors wave by wave, with tenants' approval gates, operator
 * approval between waves, and a halt when tenants' targets fail.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: PostgresDirectory;
let slapd: Slapd;
let owner: { actorId: string; token: string };
let owner2: { actorId: string; token: string };
/** A secret reference whose value is not the LDAP server's password: a target that refuses Tenure. */
const WRONG_SECRET = 'TENURE_SECRET_ROLLOUT_STALE_LDAP';

const call = apiClient(() => stack.baseUrl);
const cli = (args: string[], token: string) => runCliOk([...args, '--json'], { TENURE_URL: stack.baseUrl, TENURE_TOKEN: token });

const DOCUMENT = {
  directory: {
    roles: [{ name: 'HelpdeskAdmin', description: 'Helpdesk of {{tenant.slug}}' }],
    settings: { mfaRequired: true, passwordMinLength: 12, lockoutThreshold: 5 },
  },
};

beforeAll(async () => {
  slapd = await startSlapd();
  stack = await startTestStack({ secretEnv: { [WRONG_SECRET]: 'not-the-password' } });
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  owner = await mspStaff(call, id.tokens.mspAdmin!, 'Template owner', ['template_owner']);
  owner2 = await mspStaff(call, id.tokens.mspAdmin!, 'Second template owner', ['template_owner']);
});
afterAll(async () => {
  await stack?.stop();
  await slapd?.stop();
});

async function approvedTemplate(): Promise<string> {
  const created = await call(owner.token, 'POST', '/v1/templates', {
    name: `baseline-${randomBytes(4).toString('hex')}`,
    document: DOCUMENT,
  });
  expect(created.status).toBe(201);
  const templateId = created.body.template.id as string;
  expect((await call(owner.token, 'POST', `/v1/templates/${templateId}/versions/1/propose`, {})).status).toBe(200);
  expect((await call(owner2.token, 'POST', `/v1/templates/${templateId}/versions/1/approve`, {})).status).toBe(200);
  return templateId;
}

/** A fresh tenant with its own approver. */
async function freshTenant(): Promise<{ tenantId: string; approver: string }> {
  const slug = `r-${randomBytes(4).toString('hex')}`;
  const created = await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug, name: `Tenant ${slug}` });
  expect(created.status).toBe(201);
  const tenantId = created.body.id as string;
  return { tenantId, approver: (await tenantStaff(call, id.tokens.mspAdmin!, tenantId, 'Approver', ['tenant_approver'])).token };
}

const rollout = async (rolloutId: string) => (await call(id.tokens.operator, 'GET', `/v1/rollouts/${rolloutId}`)).body;
const waitFor = (rolloutId: string, accept: (view: Json) => boolean, timeoutMs = 60_000) =>
  eventually(() => rollout(rolloutId), accept, timeoutMs);
const counts = (view: Json) =>
  (view.waves as Json[]).map((w) => ({
    name: w.name,
    size: w.size,
    applied: w.applied,
    skipped: w.skipped,
    failed: w.failed,
    passedOver: w.passedOver,
  }));

/** The rollout's events on the MSP chain, in order. */
async function rolloutEvents(rolloutId: string): Promise<{ action: string; actor_id: string; workflow_id: string; payload: Json }[]> {
  const { rows } = await stack.db.pool.query(
    `SELECT action, actor_id, workflow_id, payload FROM audit_events
      WHERE tenant_id = $1 AND target_type = 'template_rollout' AND target_id = $2 ORDER BY seq`,
    [MSP_CHAIN, rolloutId],
  );
  return rows;
}

describe('template rollouts', () => {
  it('a canary then two waves over five tenants: operators approve each wave, one tenant’s own approver approves its gate, one gate times out and that tenant is skipped', async () => {
    const templateId = await approvedTemplate();
    const tenants = await Promise.all(Array.from({ length: 5 }, () => freshTenant()));
    const [t1, t2, t3, t4, t5] = tenants.map((t) => t.tenantId) as [string, string, string, string, string];
    // t3 and t5 hold a longer minimum password than the template: for them it loosens control.
    for (const tenantId of [t3, t5]) await directory.applySecuritySettings(tenantId, { passwordMinLength: 16 });
    const body = {
      templateId,
      version: 1,
      tenants: [t1, t2, t3, t4, t5],
      canary: { tenants: [t1] },
      waves: [{ count: 2 }],
      bakeSeconds: 1,
      approveBetweenWaves: true,
      approvalTimeoutMinutes: 1,
      window: 2,
    };

    // Refused up front, naming the field: a tenant twice, a canary outside the rollout.
    const twice = await call(id.tokens.operator, 'POST', '/v1/rollouts', { ...body, tenants: [t1, t1] });
    expect(twice.status).toBe(400);
    expect(twice.body.error.issues).toEqual([expect.objectContaining({ path: 'body.tenants.1' })]);
    const stranger = await call(id.tokens.operator, 'POST', '/v1/rollouts', { ...body, canary: { tenants: [id.tenantB] } });
    expect(stranger.status).toBe(400);
    expect(stranger.body.error.issues).toEqual([expect.objectContaining({ path: 'body.canary.tenants.0' })]);
    const nonePinned = await call(id.tokens.operator, 'POST', '/v1/rollouts', { ...body, tenants: 'pinned', canary: { count: 1 } });
    expect(nonePinned.status).toBe(400);
    expect(nonePinned.body.error.issues).toEqual([{ path: 'body.tenants', message: 'no tenant is pinned to the template' }]);
    // A tenant's approver and an auditor may not start one.
    expect((await call(id.tokens.approverA, 'POST', '/v1/rollouts', body)).status).toBe(403);
    expect((await call(id.tokens.mspAuditor, 'POST', '/v1/rollouts', body)).status).toBe(403);

    // Retried with the same key, the same rollout; the same key for another request is refused.
    const key = randomUUID();
    const started = await call(id.tokens.operator, 'POST', '/v1/rollouts', body, { headers: { 'idempotency-key': key } });
    expect(started.status).toBe(201);
    const rolloutId = started.body.rolloutId as string;
    expect(started.headers.get('location')).toBe(`/v1/rollouts/${rolloutId}`);
    expect(started.body).toMatchObject({ workflowId: `rollout/${rolloutId}`, tenants: 5, status: 'running' });
    const again = await call(id.tokens.operator, 'POST', '/v1/rollouts', body, { headers: { 'idempotency-key': key } });
    expect(again.status).toBe(201);
    expect(again.body.rolloutId).toBe(rolloutId);
    const other = await call(id.tokens.operator, 'POST', '/v1/rollouts', { ...body, window: 3 }, { headers: { 'idempotency-key': key } });
    expect(other.status).toBe(409);
    // Its tenants are taken while it runs.
    const busy = await call(id.tokens.operator, 'POST', '/v1/rollouts', { templateId, version: 1, tenants: [t4] });
    expect(busy.status).toBe(409);
    expect(busy.body.error.code).toBe('rollout_tenant_busy');

    const afterCanary = await waitFor(rolloutId, (v) => v.status === 'awaiting_wave_approval' && v.currentWave === 0);
    expect(counts(afterCanary)[0]).toEqual({ name: 'canary', size: 1, applied: 1, skipped: 0, failed: 0, passedOver: 0 });
    expect(afterCanary.tenantStates.map((t: Json) => [t.tenantId, t.wave, t.state])).toEqual([
      [t1, 0, 'applied'],
      [t2, 1, 'pending'],
      [t3, 1, 'pending'],
      [t4, 2, 'pending'],
      [t5, 2, 'pending'],
    ]);
    const refused = await call(id.tokens.operator, 'POST', `/v1/rollouts/${rolloutId}/skip`, {});
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('rollout_state');
    expect((await call(id.tokens.mspAuditor, 'POST', `/v1/rollouts/${rolloutId}/approve-wave`, {})).status).toBe(403);
    const approved = JSON.parse(
      (await cli(['rollout', 'approve-wave', rolloutId, '--comment', 'canary looks right'], id.tokens.operator!)).stdout,
    ) as Json;
    expect(approved.waves[1].approvedBy).toBe(id.actors.operator!.id);

    // t3's gate: MSP staff cannot decide it, the tenant's own approver does.
    const t3Apply = `/v1/tenants/${t3}/template/applies/${rolloutId}`;
    await eventually(
      async () => (await call(id.tokens.operator, 'GET', t3Apply)).body,
      (v) => v.status === 'awaiting_approval',
      60_000,
    );
    expect((await call(id.tokens.operator, 'POST', `${t3Apply}/approve`, {})).status).toBe(403);
    expect((await call(tenants[2]!.approver, 'POST', `${t3Apply}/approve`, { comment: 'ok for us' })).status).toBe(200);

    await waitFor(rolloutId, (v) => v.status === 'awaiting_wave_approval' && v.currentWave === 1);
    expect((await call(id.tokens.mspAdmin, 'POST', `/v1/rollouts/${rolloutId}/approve-wave`, {})).status).toBe(200);
    // t5's gate is left to time out (one minute).
    const done = await waitFor(rolloutId, (v) => v.status === 'completed', 150_000);
    expect(counts(done)).toEqual([
      { name: 'canary', size: 1, applied: 1, skipped: 0, failed: 0, passedOver: 0 },
      { name: 'wave 1', size: 2, applied: 2, skipped: 0, failed: 0, passedOver: 0 },
      { name: 'wave 2', size: 2, applied: 1, skipped: 1, failed: 0, passedOver: 0 },
    ]);
    expect(done.tenantStates.map((t: Json) => t.state)).toEqual(['applied', 'applied', 'applied', 'applied', 'skipped']);

    // Applied where the tenant allowed it, read back and pinned; t5 is as it was.
    for (const tenantId of [t1, t2, t3, t4]) {
      expect(await directory.getSecuritySettings(tenantId)).toMatchObject({
        mfaRequired: true,
        passwordMinLength: 12,
        lockoutThreshold: 5,
      });
      expect((await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/template`)).body).toMatchObject({
        templateId,
        appliedVersion: 1,
      });
    }
    expect(await directory.getSecuritySettings(t5)).toMatchObject({ passwordMinLength: 16 });
    expect((await call(id.tokens.operator, 'GET', `/v1/tenants/${t5}/template`)).status).toBe(404);

    const events = await rolloutEvents(rolloutId);
    expect(events.map((e) => e.action)).toEqual([
      'template.rollout.started',
      'template.rollout.wave_started',
      'template.rollout.wave_completed',
      'template.rollout.wave_approved',
      'template.rollout.wave_started',
      'template.rollout.wave_completed',
      'template.rollout.wave_approved',
      'template.rollout.wave_started',
      'template.rollout.wave_completed',
      'template.rollout.completed',
    ]);
    expect(events.every((e) => e.workflow_id === `rollout/${rolloutId}`)).toBe(true);
    expect(events.filter((e) => e.action === 'template.rollout.wave_approved').map((e) => e.actor_id)).toEqual([
      id.actors.operator!.id,
      id.actors.mspAdmin!.id,
    ]);
    expect(events[0]!.actor_id).toBe(id.actors.operator!.id);
    // Each tenant's own chain holds its apply, started by the rollout.
    const t5Chain = await stack.db.pool.query(
      `SELECT action, workflow_id FROM audit_events WHERE tenant_id = $1 AND action LIKE 'template.%' ORDER BY seq`,
      [t5],
    );
    expect(t5Chain.rows).toEqual(
      ['template.apply.requested', 'template.apply.planned', 'template.apply.skipped'].map((action) => ({
        action,
        workflow_id: `rollout/${rolloutId}/${t5}`,
      })),
    );

    const listed = JSON.parse((await cli(['rollout', 'list', '--template', templateId], id.tokens.mspAuditor!)).stdout) as Json;
    expect(listed.rollouts.map((r: Json) => [r.rolloutId, r.status])).toEqual([[rolloutId, 'completed']]);
    expect((await call(id.tokens.operator, 'POST', `/v1/rollouts/${rolloutId}/cancel`, {})).status).toBe(409);
  }, 240_000);

  it('tenants whose target refuses Tenure fail; past the error budget the rollout halts, no tenant starts after it, and skipping moves on to the next wave', async () => {
    const templateId = await approvedTemplate();
    const tenants = (await Promise.all(Array.from({ length: 5 }, () => freshTenant()))).map((t) => t.tenantId);
    const [f1, f2] = tenants as [string, string];
    // f1 and f2 use an LDAP directory whose bind password Tenure holds is stale: every call is refused.
    for (const tenantId of [f1, f2]) {
      await inScope(stack.pool, tenantScope(tenantId), async (client) => {
        const policy = (await currentPolicy(client, tenantId))!;
        const target = { type: 'ldap', settings: slapd.settings(), bindPassword: { env: WRONG_SECRET } };
        await insertPolicyVersion(client, {
          tenantId,
          version: policy.version + 1,
          document: { ...policy.document, directory: target },
          createdBy: 'test',
        });
      });
    }
    const started = await call(id.tokens.operator, 'POST', '/v1/rollouts', {
      templateId,
      version: 1,
      tenants,
      waves: [{ count: 4 }],
      window: 2,
      errorBudget: { maxFailures: 1 },
    });
    expect(started.status).toBe(201);
    const rolloutId = started.body.rolloutId as string;
    expect(started.body.waves.map((w: Json) => w.size)).toEqual([4, 1]);

    const halted = await waitFor(rolloutId, (v) => v.status === 'halted' && v.inFlight === 0);
    expect(halted.halt).toMatchObject({ wave: 0, failures: 2, budget: 'more than 1 failure' });
    const [haltEvent] = (await rolloutEvents(rolloutId)).filter((e) => e.action === 'template.rollout.halted');
    const startedAtHalt = 4 - (haltEvent!.payload.notStarted as number);
    // Nobody starts while it is halted: the applies are those started before the halt, and stay so.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const applies = await stack.db.pool.query('SELECT tenant_id, status, view FROM template_applies WHERE rollout_id = $1', [rolloutId]);
    const tenantsStartedAfterHalt = applies.rowCount! - startedAtHalt;
    expect(tenantsStartedAfterHalt).toBe(0);
    expect((await rollout(rolloutId)).waves[0].started).toBe(startedAtHalt);
    const failed = applies.rows.filter((r) => r.status === 'failed');
    expect(failed.map((r) => r.tenant_id).sort()).toEqual([f1, f2].sort());
    for (const row of failed) expect(row.view.outcome).toMatch(/^plan: /);

    for (const step of ['pause', 'approve-wave']) {
      const refused = await call(id.tokens.operator, 'POST', `/v1/rollouts/${rolloutId}/${step}`, {});
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('rollout_state');
    }
    const skipped = JSON.parse(
      (await cli(['rollout', 'skip', rolloutId, '--comment', 'targets being fixed'], id.tokens.operator!)).stdout,
    ) as Json;
    expect(skipped.waves[0].passedOver).toBe(4 - startedAtHalt);

    const done = await waitFor(rolloutId, (v) => v.status === 'completed');
    expect(done.waves[0]).toMatchObject({ failed: 2, passedOver: 4 - startedAtHalt, applied: startedAtHalt - 2 });
    expect(done.waves[1]).toMatchObject({ applied: 1, failed: 0 });
    expect(done.tenantStates.filter((t: Json) => t.state === 'passed_over')).toHaveLength(4 - startedAtHalt);
    expect(done.nextCursor).toBeNull();

    // Its tenants a page at a time (a rollout holds up to 5,000): the same ones in the same order.
    const pages: Json[] = [];
    let cursor: string | null = null;
    do {
      const answer = await call(id.tokens.operator, 'GET', `/v1/rollouts/${rolloutId}?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(answer.status).toBe(200);
      const page = answer.body;
      expect(page.tenantStates.length).toBeLessThanOrEqual(2);
      pages.push(...(page.tenantStates as Json[]));
      cursor = page.nextCursor as string | null;
    } while (cursor);
    expect(pages).toEqual(done.tenantStates);
    expect(pages.length).toBe(5);
    const cliPage = JSON.parse((await cli(['rollout', 'status', rolloutId, '--limit', '3'], id.tokens.operator!)).stdout) as Json;
    expect(cliPage.tenantStates).toEqual(done.tenantStates.slice(0, 3));
    for (const bad of ['cursor=1', 'cursor=1.2%00', 'limit=0', 'limit=1001']) {
      const refused = await call(id.tokens.operator, 'GET', `/v1/rollouts/${rolloutId}?${bad}`);
      expect(refused.status).toBe(400);
      expect(refused.body.error.issues[0].path).toBe(`query.${bad.split('=')[0]}`);
    }
    const events = await rolloutEvents(rolloutId);
    expect(events.map((e) => [e.action, e.actor_id])).toEqual([
      ['template.rollout.started', id.actors.operator!.id],
      ['template.rollout.wave_started', 'system'],
      ['template.rollout.halted', 'system'],
      ['template.rollout.wave_skipped', id.actors.operator!.id],
      ['template.rollout.wave_completed', 'system'],
      ['template.rollout.wave_started', 'system'],
      ['template.rollout.wave_completed', 'system'],
      ['template.rollout.completed', 'system'],
    ]);
    expect(events[3]!.payload).toMatchObject({ passedOver: 4 - startedAtHalt });
    // The failed tenants' chains say why; nothing was changed there.
    const f1Chain = await stack.db.pool.query(
      `SELECT action, payload FROM audit_events WHERE tenant_id = $1 AND action = 'template.apply.failed'`,
      [f1],
    );
    expect(f1Chain.rows).toEqual([expect.objectContaining({ payload: expect.objectContaining({ stage: 'plan' }) })]);
  }, 180_000);

  it('rolling back a halted rollout cancels it first, so no further tenant starts, and restores the tenants it applied', async () => {
    const templateId = await approvedTemplate();
    const tenants = (await Promise.all(Array.from({ length: 5 }, () => freshTenant()))).map((t) => t.tenantId);
    const [ok1, ok2, f1, f2, last] = tenants as [string, string, string, string, string];
    for (const tenantId of [f1, f2]) {
      await inScope(stack.pool, tenantScope(tenantId), async (client) => {
        const policy = (await currentPolicy(client, tenantId))!;
        const target = { type: 'ldap', settings: slapd.settings(), bindPassword: { env: WRONG_SECRET } };
        await insertPolicyVersion(client, {
          tenantId,
          version: policy.version + 1,
          document: { ...policy.document, directory: target },
          createdBy: 'test',
        });
      });
    }
    const before = await Promise.all(
      [ok1, ok2].map(async (t) => ({ settings: await directory.getSecuritySettings(t), roles: await directory.listAllRoles(t) })),
    );
    const started = await call(id.tokens.operator, 'POST', '/v1/rollouts', {
      templateId,
      version: 1,
      tenants,
      waves: [{ count: 4 }],
      window: 1,
      errorBudget: { maxFailures: 1 },
    });
    expect(started.status).toBe(201);
    const rolloutId = started.body.rolloutId as string;
    await waitFor(rolloutId, (v) => v.status === 'halted' && v.inFlight === 0);
    expect((await directory.getSecuritySettings(ok1)).mfaRequired).toBe(true);

    const rollback = await call(id.tokens.operator, 'POST', `/v1/rollouts/${rolloutId}/rollback`, {});
    expect(rollback.status).toBe(202);
    // The rollout was cancelled on the way, by whoever asked for the rollback: nothing more starts, and it cannot be resumed.
    const cancelled = await waitFor(rolloutId, (v) => v.status === 'cancelled');
    expect(cancelled.tenantStates.find((t: Json) => t.tenantId === last).state).toBe('cancelled');
    const events = (await rolloutEvents(rolloutId)).map((e) => [e.action, e.actor_id]);
    expect(events).toContainEqual(['template.rollout.cancelled', id.actors.operator!.id]);
    expect((await call(id.tokens.operator, 'POST', `/v1/rollouts/${rolloutId}/resume`, {})).status).toBe(409);
    const done = await eventually(
      async () => (await call(id.tokens.operator, 'GET', `/v1/rollouts/${rolloutId}/rollback`)).body,
      (v) => v.status === 'completed',
      90_000,
    );
    expect(done.tenants.map((t: Json) => [t.tenantId, t.status]).sort()).toEqual(
      [
        [ok1, 'rolled_back'],
        [ok2, 'rolled_back'],
      ].sort(),
    );
    const after = await Promise.all(
      [ok1, ok2].map(async (t) => ({ settings: await directory.getSecuritySettings(t), roles: await directory.listAllRoles(t) })),
    );
    expect(after).toEqual(before);
    const applies = await stack.db.pool.query('SELECT tenant_id FROM template_applies WHERE rollout_id = $1', [rolloutId]);
    expect(applies.rows.map((r) => r.tenant_id)).not.toContain(last);
  }, 180_000);

  it('a rollout of a newer version moves the tenant’s pin to it, and rolling that rollout back moves the pin back', async () => {
    const templateId = await approvedTemplate();
    const { tenantId } = await freshTenant();
    const pin = async () => (await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/template`)).body;
    const roll = async (version: number) => {
      const started = await call(id.tokens.operator, 'POST', '/v1/rollouts', { templateId, version, tenants: [tenantId] });
      expect(started.status).toBe(201);
      const rolloutId = started.body.rolloutId as string;
      expect((await waitFor(rolloutId, (v) => v.status === 'completed')).waves[0].applied).toBe(1);
      return rolloutId;
    };
    expect((await call(id.tokens.operator, 'PUT', `/v1/tenants/${tenantId}/template`, { templateId, version: 1 })).status).toBe(200);
    await roll(1);
    expect(await pin()).toMatchObject({ version: 1, appliedVersion: 1 });
    const v2 = { directory: { ...DOCUMENT.directory, settings: { ...DOCUMENT.directory.settings, passwordMinLength: 14 } } };
    expect((await call(owner.token, 'POST', `/v1/templates/${templateId}/versions`, { document: v2 })).status).toBe(201);
    expect((await call(owner.token, 'POST', `/v1/templates/${templateId}/versions/2/propose`, {})).status).toBe(200);
    expect((await call(owner2.token, 'POST', `/v1/templates/${templateId}/versions/2/approve`, {})).status).toBe(200);

    const second = await roll(2);
    expect(await pin()).toMatchObject({ version: 2, appliedVersion: 2 });
    expect((await call(id.tokens.operator, 'POST', `/v1/rollouts/${second}/rollback`, {})).status).toBe(202);
    await eventually(
      async () => (await call(id.tokens.operator, 'GET', `/v1/rollouts/${second}/rollback`)).body,
      (v) => v.status === 'completed',
      90_000,
    );
    expect(await pin()).toMatchObject({ version: 1, appliedVersion: 1 });
    expect((await directory.getSecuritySettings(tenantId)).passwordMinLength).toBe(12);
  }, 180_000);

  it('cancelled while tenants wait at their gates: those are skipped with nothing changed, the rest never start, and the rollout ends cancelled', async () => {
    const templateId = await approvedTemplate();
    const tenants = (await Promise.all(Array.from({ length: 3 }, () => freshTenant()))).map((t) => t.tenantId);
    for (const tenantId of tenants) await directory.applySecuritySettings(tenantId, { passwordMinLength: 16 });
    const before = await Promise.all(tenants.map((tenantId) => directory.getSecuritySettings(tenantId)));
    const started = await call(id.tokens.operator, 'POST', '/v1/rollouts', { templateId, version: 1, tenants, window: 2 });
    expect(started.status).toBe(201);
    const rolloutId = started.body.rolloutId as string;
    const gated = await waitFor(rolloutId, (v) => v.tenantStates.filter((t: Json) => t.state === 'awaiting_approval').length === 2);
    expect(gated.tenantStates.map((t: Json) => t.state)).toEqual(['awaiting_approval', 'awaiting_approval', 'pending']);

    const cancelling = await call(id.tokens.mspAdmin, 'POST', `/v1/rollouts/${rolloutId}/cancel`, { comment: 'wrong baseline' });
    expect(cancelling.status).toBe(200);
    expect(cancelling.body).toMatchObject({ status: 'cancelling', waves: [{ cancelled: 1 }] });
    const done = await waitFor(rolloutId, (v) => v.status === 'cancelled');
    expect(done.waves[0]).toMatchObject({ started: 2, skipped: 2, applied: 0, cancelled: 1 });
    expect(done.tenantStates.map((t: Json) => t.state)).toEqual(['skipped', 'skipped', 'cancelled']);
    expect(await Promise.all(tenants.map((tenantId) => directory.getSecuritySettings(tenantId)))).toEqual(before);
    const chain = await stack.db.pool.query(
      `SELECT actor_id FROM audit_events WHERE tenant_id = $1 AND action = 'template.apply.cancelled'`,
      [tenants[0]],
    );
    expect(chain.rows).toEqual([{ actor_id: id.actors.mspAdmin!.id }]);
    expect((await rolloutEvents(rolloutId)).map((e) => [e.action, e.actor_id])).toEqual([
      ['template.rollout.started', id.actors.operator!.id],
      ['template.rollout.wave_started', 'system'],
      ['template.rollout.cancelled', id.actors.mspAdmin!.id],
    ]);
    const refused = await call(id.tokens.operator, 'POST', `/v1/rollouts/${rolloutId}/resume`, {});
    expect(refused.status).toBe(409);
    const listed = await call(id.tokens.mspAuditor, 'GET', `/v1/rollouts?status=cancelled&templateId=${templateId}`);
    expect(listed.body.rollouts.map((r: Json) => r.rolloutId)).toEqual([rolloutId]);
  }, 120_000);
});
