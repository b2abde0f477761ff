import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { driftScheduleId } from '../../core/templates/drift.js';
import { syncDriftSchedule } from '../../usecases/templates/drift.js';
import { runCliOk } from '../support/cli.js';
import { apiClient, bodyOf, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { mspStaff, seedTenancy, setPolicy, tenantStaff, type TestTenancy } from '../support/tenancy.js';
import { startWebhookReceiver } from '../support/webhook-receiver.js';

/**
 * Drift on the real stack: a setting changed behind Tenure's back in the built-in directory is
 * found against the exact version applied, remediated and verified where the version says so,
 * alerted once through the tenant's signed webhook, accepted by an exception until it runs out,
 * fresh right after an apply, and scanned by the drift Schedule on the dev server.
 */
let stack: TestStack;
let id: TestTenancy;
/** The built-in directory reached directly, as an admin changing it behind Tenure's back would. */
let directory: PostgresDirectory;
let owner: { actorId: string; token: string };
let owner2: { actorId: string; token: string };
let scheduleSynced = false;

const call = apiClient(() => stack.baseUrl);

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  owner = await mspStaff(call, id.tokens.mspAdmin!, 'Template owner', ['template_owner']);
  owner2 = await mspStaff(call, id.tokens.mspAdmin!, 'Second template owner', ['template_owner']);
});
afterAll(async () => {
  if (scheduleSynced) {
    await stack.temporal.schedule
      .getHandle(driftScheduleId(stack.taskQueuePrefix))
      .delete()
      .catch(() => undefined);
  }
  await stack?.stop();
});

const SETTINGS = { mfaRequired: true, passwordMinLength: 12, lockoutThreshold: 5 };

/** A fresh tenant (nothing else touches it) with two approvers of its own. */
async function freshTenant(): Promise<{ tenantId: string; approver: string; approver2: string }> {
  const slug = `t-${randomBytes(4).toString('hex')}`;
  const tenantId = bodyOf(await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug, name: `Tenant ${slug}` }), 201).id as string;
  const approver = (await tenantStaff(call, id.tokens.mspAdmin!, tenantId, 'Approver', ['tenant_approver'])).token;
  const approver2 = (await tenantStaff(call, id.tokens.mspAdmin!, tenantId, 'Second approver', ['tenant_approver'])).token;
  return { tenantId, approver, approver2 };
}

/** A template whose version 1 is approved (by someone who did not write it). */
async function approvedTemplate(document: Json): Promise<string> {
  const created = bodyOf(
    await call(owner.token, 'POST', '/v1/templates', { name: `drift-${randomBytes(4).toString('hex')}`, document }),
    201,
  );
  const templateId = created.template.id as string;
  bodyOf(await call(owner.token, 'POST', `/v1/templates/${templateId}/versions/1/propose`, {}));
  bodyOf(await call(owner2.token, 'POST', `/v1/templates/${templateId}/versions/1/approve`, {}));
  return templateId;
}

const tpl = (tenantId: string) => `/v1/tenants/${tenantId}/template`;
const driftPath = (tenantId: string) => `${tpl(tenantId)}/drift`;

/** Pins and applies version 1 of the template to the tenant, waiting for `applied`. */
async function applyTemplate(tenantId: string, templateId: string): Promise<void> {
  bodyOf(await call(id.tokens.operator, 'PUT', tpl(tenantId), { templateId, version: 1 }));
  const started = bodyOf(await call(id.tokens.operator, 'POST', `${tpl(tenantId)}/apply`, {}), 202);
  await eventually(
    async () => (await call(id.tokens.operator, 'GET', `${tpl(tenantId)}/applies/${started.rolloutId}`)).body,
    (view) => view.status === 'applied' || view.status === 'failed',
    30_000,
  ).then((view) => expect(view.status).toBe('applied'));
}

const check = async (tenantId: string) => bodyOf(await call(id.tokens.operator, 'POST', `${driftPath(tenantId)}/check`));

async function driftEvents(tenantId: string): Promise<{ action: string; payload: Json; workflow_id: string | null }[]> {
  const { rows } = await stack.db.pool.query(
    `SELECT action, payload, workflow_id FROM audit_events WHERE tenant_id = $1 AND action LIKE 'template.drift.%' ORDER BY seq`,
    [tenantId],
  );
  return rows;
}

describe('drift against the version applied', () => {
  it('is fresh right after an apply, finds a change made behind Tenure’s back, remediates the `remediate` setting, verifies it, and keeps first-seen while the rest persists', async () => {
    const { tenantId, approver } = await freshTenant();
    const templateId = await approvedTemplate({
      directory: { roles: [{ name: 'Ops', description: 'Operators', privileged: true }], settings: SETTINGS },
      drift: { default: 'report', settings: { mfaRequired: 'remediate' } },
    });
    await applyTemplate(tenantId, templateId);

    // Fresh in the same run: the apply's pin step checked it.
    const fresh = bodyOf(await call(id.tokens.operator, 'GET', driftPath(tenantId)));
    expect(fresh).toMatchObject({ status: 'in_sync', templateId, appliedVersion: 1, items: [], checkError: null });
    expect(fresh.checkedAt).not.toBeNull();
    // The tenant's own approver reads it too.
    expect(bodyOf(await call(approver, 'GET', driftPath(tenantId))).status).toBe('in_sync');

    await directory.applySecuritySettings(tenantId, { mfaRequired: false, passwordMinLength: 8 });
    const first = await check(tenantId);
    expect(first.check).toMatchObject({ outcome: 'checked', detected: 2, remediated: 1 });
    expect(first.status).toBe('drifted');
    const byPath = Object.fromEntries(first.items.map((i: Json) => [i.path, i]));
    expect(byPath['directory.settings.passwordMinLength']).toMatchObject({
      status: 'open',
      mode: 'report',
      expected: 12,
      actual: 8,
      version: 1,
    });
    expect(byPath['directory.settings.mfaRequired']).toMatchObject({
      status: 'resolved',
      resolution: 'remediated',
      expected: true,
      actual: false,
    });
    // Put back through the connector and read back: the directory holds the accepted value again.
    expect((await directory.getSecuritySettings(tenantId)).mfaRequired).toBe(true);
    expect((await directory.getSecuritySettings(tenantId)).passwordMinLength).toBe(8);

    const again = await check(tenantId);
    expect(again.check).toMatchObject({ detected: 0, resolved: 0, remediated: 0 });
    const persisting = again.items.find((i: Json) => i.path === 'directory.settings.passwordMinLength');
    expect(persisting.firstSeenAt).toBe(byPath['directory.settings.passwordMinLength'].firstSeenAt);
    expect(persisting.lastSeenAt > persisting.firstSeenAt).toBe(true);

    await directory.applySecuritySettings(tenantId, { passwordMinLength: 12 });
    const cleared = await check(tenantId);
    expect(cleared).toMatchObject({ status: 'in_sync', check: { resolved: 1 } });

    // One event per transition, not per scan.
    const events = await driftEvents(tenantId);
    expect(events.map((e) => [e.action, e.payload.path])).toEqual(
      expect.arrayContaining([
        ['template.drift.detected', 'directory.settings.mfaRequired'],
        ['template.drift.detected', 'directory.settings.passwordMinLength'],
        ['template.drift.remediated', 'directory.settings.mfaRequired'],
        ['template.drift.resolved', 'directory.settings.passwordMinLength'],
      ]),
    );
    expect(events).toHaveLength(4);
    expect(events.find((e) => e.action === 'template.drift.remediated')!.payload).toMatchObject({
      before: false,
      after: true,
      applied: { settings: { mfaRequired: true } },
      verified: true,
    });
    expect(events.every((e) => e.workflow_id === `template-drift/${tenantId}`)).toBe(true);
  });

  it('never remediates a setting the tenant made stricter itself: putting the version back would loosen its control, so it stays reported', async () => {
    const { tenantId } = await freshTenant();
    const templateId = await approvedTemplate({
      directory: { roles: [], settings: SETTINGS },
      drift: { default: 'remediate' },
    });
    await applyTemplate(tenantId, templateId);
    // The tenant tightens its password length beyond the version's and drops MFA: only the loosening is put back.
    await directory.applySecuritySettings(tenantId, { passwordMinLength: 20, mfaRequired: false });
    const checked = await check(tenantId);
    expect(checked.check).toMatchObject({ detected: 2, remediated: 1 });
    const byPath = Object.fromEntries(checked.items.map((i: Json) => [i.path, i]));
    expect(byPath['directory.settings.passwordMinLength']).toMatchObject({ status: 'open', mode: 'remediate', expected: 12, actual: 20 });
    expect(byPath['directory.settings.mfaRequired']).toMatchObject({ status: 'resolved', resolution: 'remediated' });
    expect(await directory.getSecuritySettings(tenantId)).toMatchObject({ passwordMinLength: 20, mfaRequired: true });
  });

  it('compares with the version applied, not a newer one assigned and waiting to be applied, and remediates only to what was applied', async () => {
    const { tenantId } = await freshTenant();
    const templateId = await approvedTemplate({ directory: { settings: SETTINGS }, drift: { default: 'remediate' } });
    await applyTemplate(tenantId, templateId);
    const v2 = bodyOf(
      await call(owner.token, 'POST', `/v1/templates/${templateId}/versions`, {
        document: { directory: { settings: { ...SETTINGS, passwordMinLength: 16 } }, drift: { default: 'remediate' } },
      }),
      201,
    );
    bodyOf(await call(owner.token, 'POST', `/v1/templates/${templateId}/versions/${v2.version}/propose`, {}));
    bodyOf(await call(owner2.token, 'POST', `/v1/templates/${templateId}/versions/${v2.version}/approve`, {}));
    bodyOf(await call(id.tokens.operator, 'PUT', tpl(tenantId), { templateId, version: 2 }));

    expect(await check(tenantId)).toMatchObject({ status: 'in_sync', appliedVersion: 1, items: [] });

    // Changed behind Tenure's back: put back to version 1's value, which the tenant accepted, never version 2's.
    await directory.applySecuritySettings(tenantId, { passwordMinLength: 8 });
    const remediated = await check(tenantId);
    expect(remediated).toMatchObject({ status: 'in_sync', check: { detected: 1, remediated: 1 } });
    expect(remediated.items[0]).toMatchObject({ expected: 12, actual: 8, version: 1, resolution: 'remediated' });
    expect((await directory.getSecuritySettings(tenantId)).passwordMinLength).toBe(12);
  });

  it('in `alert` mode sends the tenant one signed webhook per new drift item, however many checks see it', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const { tenantId, approver } = await freshTenant();
      const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver }, tenantId, {
        expectedVersion: 1,
        document: { notificationWebhookUrl: receiver.url },
      });
      expect(approval?.body.status).toBe('applied');
      const templateId = await approvedTemplate({ directory: { settings: SETTINGS }, drift: { default: 'alert' } });
      await applyTemplate(tenantId, templateId);

      await directory.applySecuritySettings(tenantId, { lockoutThreshold: 50 });
      expect((await check(tenantId)).check).toMatchObject({ detected: 1, alerted: 1 });
      expect((await check(tenantId)).check).toMatchObject({ detected: 0, alerted: 0 });

      const hooks = receiver.received.filter((r) => JSON.parse(r.body).type === 'template.drift.detected');
      expect(hooks).toHaveLength(1);
      const body = JSON.parse(hooks[0]!.body);
      expect(body).toMatchObject({ tenantId, drift: { path: 'directory.settings.lockoutThreshold', expected: 5, actual: 50, version: 1 } });
      const { secret } = bodyOf(await call(id.tokens.mspAdmin, 'GET', `/v1/tenants/${tenantId}/webhook-secret`)) as { secret: string };
      const signature = createHmac('sha256', secret).update(`${hooks[0]!.headers['x-tenure-timestamp']}.${hooks[0]!.body}`).digest('hex');
      expect(hooks[0]!.headers['x-tenure-signature']).toBe(`sha256=${signature}`);
      expect((await driftEvents(tenantId)).filter((e) => e.action === 'template.drift.alerted')).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });
});

describe('exceptions', () => {
  it('an approved exception accepts the drift and holds remediation back; once it runs out the path is drift again at once, and the next check remediates and records the expiry', async () => {
    const { tenantId, approver, approver2 } = await freshTenant();
    const templateId = await approvedTemplate({ directory: { settings: SETTINGS }, drift: { default: 'remediate' } });
    await applyTemplate(tenantId, templateId);
    // A legacy app of the tenant's needs shorter passwords: drift that loosens, which remediation would put back.
    await directory.applySecuritySettings(tenantId, { passwordMinLength: 8 });

    const expiresAt = new Date(Date.now() + 8_000).toISOString();
    const exceptions = `${driftPath(tenantId)}/exceptions`;
    const body = {
      path: 'directory.settings.passwordMinLength',
      owner: 'Contoso security',
      justification: 'Legacy app until its migration',
      expiresAt,
    };
    // Bounded and required: an expiry a year and more away, or none, is refused with the field.
    const tooLong = await call(approver, 'POST', exceptions, { ...body, expiresAt: new Date(Date.now() + 400 * 86_400_000).toISOString() });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.issues[0].path).toBe('body.expiresAt');
    expect((await call(approver, 'POST', exceptions, { ...body, expiresAt: undefined })).status).toBe(400);

    const created = bodyOf(await call(approver, 'POST', exceptions, body), 201);
    expect(created).toMatchObject({ status: 'pending', owner: 'Contoso security' });
    const approvePath = `${exceptions}/${created.id}/approve`;
    // Never MSP staff, never who asked for it.
    for (const token of [id.tokens.operator, id.tokens.mspAdmin]) expect((await call(token, 'POST', approvePath, {})).status).toBe(403);
    expect((await call(approver, 'POST', approvePath, {})).body.error.code).toBe('drift_exception_self_approval');
    expect(bodyOf(await call(approver2, 'POST', approvePath, { comment: 'ok for now' })).status).toBe('active');

    // Accepted: neither remediated nor counted as drift while the exception runs.
    const accepted = await check(tenantId);
    expect(accepted).toMatchObject({ status: 'accepted', check: { detected: 1, remediated: 0 } });
    expect(accepted.items[0]).toMatchObject({ status: 'accepted', exceptionId: created.id });
    expect((await directory.getSecuritySettings(tenantId)).passwordMinLength).toBe(8);

    // Ran out: drift again at read time, before any check.
    const lapsed = await eventually(
      async () => bodyOf(await call(approver, 'GET', driftPath(tenantId))),
      (view) => view.status === 'drifted',
      30_000,
    );
    expect(lapsed.items[0]).toMatchObject({ status: 'open', exceptionId: null });
    expect(lapsed.exceptions[0]).toMatchObject({ id: created.id, status: 'expired' });

    const remediated = await check(tenantId);
    expect(remediated).toMatchObject({ status: 'in_sync', check: { remediated: 1 } });
    expect((await directory.getSecuritySettings(tenantId)).passwordMinLength).toBe(12);
    expect((await check(tenantId)).check.remediated).toBe(0);
    const actions = (await driftEvents(tenantId)).map((e) => e.action);
    expect(actions.filter((a) => a === 'template.drift.exception_expired')).toHaveLength(1);
    expect(actions).toEqual(
      expect.arrayContaining([
        'template.drift.exception_requested',
        'template.drift.exception_approved',
        'template.drift.detected',
        'template.drift.remediated',
      ]),
    );
    // An ended exception cannot be approved or ended again.
    expect((await call(approver2, 'POST', approvePath, {})).status).toBe(409);
    expect((await call(id.tokens.operator, 'POST', `${exceptions}/${created.id}/expire`, {})).status).toBe(409);
  });

  it('anyone allowed ends an exception early from the CLI: the path is drift again at once', async () => {
    const { tenantId, approver, approver2 } = await freshTenant();
    const templateId = await approvedTemplate({ directory: { settings: SETTINGS } });
    await applyTemplate(tenantId, templateId);
    await directory.applySecuritySettings(tenantId, { lockoutThreshold: 0 });
    const env = (token: string) => ({ TENURE_URL: stack.baseUrl, TENURE_TOKEN: token });
    const expires = new Date(Date.now() + 86_400_000).toISOString();
    const created = JSON.parse(
      (
        await runCliOk(
          ['drift', 'except', '--json', '--tenant', tenantId, '--path', 'directory.settings.lockoutThreshold', '--owner', 'IT'] //
            .concat(['--justification', 'kiosk accounts', '--expires', expires]),
          env(id.tokens.operator!),
        )
      ).stdout,
    ) as Json;
    await runCliOk(['drift', 'approve-exception', created.id, '--tenant', tenantId], env(approver));
    const status = JSON.parse(
      (await runCliOk(['drift', 'check', '--json', '--tenant', tenantId], env(id.tokens.operator!))).stdout,
    ) as Json;
    expect(status.status).toBe('accepted');
    await runCliOk(['drift', 'expire-exception', created.id, '--tenant', tenantId, '--comment', 'kiosks gone'], env(approver2));
    const after = JSON.parse((await runCliOk(['drift', 'status', '--json', '--tenant', tenantId], env(approver))).stdout) as Json;
    expect(after).toMatchObject({ status: 'drifted', exceptions: [{ id: created.id, status: 'expired' }] });
    expect((await driftEvents(tenantId)).map((e) => e.action)).toContain('template.drift.exception_ended');
    // Five CLI processes one after another: on a loaded machine that is more than the default minute.
  }, 180_000);
});

describe('the drift Schedule', () => {
  it('runs the scan on the dev server at its interval, finds drift in every pinned tenant, and can be paused', async () => {
    const { tenantId } = await freshTenant();
    const templateId = await approvedTemplate({ directory: { settings: SETTINGS } });
    await applyTemplate(tenantId, templateId);
    await directory.applySecuritySettings(tenantId, { passwordMinLength: 6 });

    scheduleSynced = true;
    expect(await syncDriftSchedule({ temporal: stack.temporal, taskQueuePrefix: stack.taskQueuePrefix }, 2)).toBe('created');
    const schedule = bodyOf(await call(id.tokens.operator, 'GET', '/v1/templates/drift-schedule'));
    expect(schedule).toMatchObject({ scheduleId: driftScheduleId(stack.taskQueuePrefix), intervalSeconds: 2, paused: false });

    const found = await eventually(
      async () => bodyOf(await call(id.tokens.operator, 'GET', driftPath(tenantId))),
      (view) => view.status === 'drifted',
      60_000,
    );
    expect(found.items[0]).toMatchObject({ path: 'directory.settings.passwordMinLength', actual: 6, expected: 12 });
    const detected = (await driftEvents(tenantId)).find((e) => e.action === 'template.drift.detected')!;
    expect(detected.workflow_id).toMatch(new RegExp(`^${driftScheduleId(stack.taskQueuePrefix)}`));

    const paused = bodyOf(await call(id.tokens.mspAdmin, 'POST', '/v1/templates/drift-schedule/pause', { note: 'maintenance' }));
    expect(paused).toMatchObject({ paused: true, note: 'maintenance' });
    expect(bodyOf(await call(id.tokens.operator, 'GET', '/v1/templates/drift-schedule')).recentActions.length).toBeGreaterThan(0);
  });
});
