import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLedgerActivities } from '../../activities/directory/ledger.js';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { singleDirectory } from '../../core/directory/connector.js';
import { runCli, runCliOk } from '../support/cli.js';
import { auditActions as auditEvents } from '../support/audit.js';
import { apiClient, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, setPolicy, tenantStaff, type TestTenancy } from '../support/tenancy.js';

/**
 * Campaign evidence and scope on the real stack: the printable HTML report (same report, same
 * hash, every value escaped), the tenant's webhook told of access that needs a rule change, the
 * standing-privilege report and a review of exactly what it lists, tenant tags and service
 * accounts in a campaign's scope, and cron recurrences with a time zone.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: PostgresDirectory;
let receiver: Server;
let runId: string;
const received: { headers: Record<string, string>; body: Json }[] = [];
const call = apiClient(() => stack.baseUrl);
const SLOW = 90_000;
const HOSTILE = `<script>alert("x")</script> & 'q'`;

const ok = (response: { status: number; body: Json }, status = 200) => {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  return response.body;
};

async function reviewReaches(tenantId: string, run: string, status: string): Promise<void> {
  await eventually(
    async () =>
      ((await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/reviews`)).body.reviews as Json[]).find((r) => r.runId === run),
    (r) => r?.status === status,
    SLOW,
  );
}

async function items(tenantId: string, run: string): Promise<Json[]> {
  return ok(await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/reviews/items?runId=${run}&limit=1000`)).items as Json[];
}

const auditActions = (tenantId: string, action: string) => auditEvents(stack.db.pool, tenantId, action);

const get = (token: string, url: string) => fetch(`${stack.baseUrl}${url}`, { headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ headers: req.headers as Record<string, string>, body: JSON.parse(body) as Json });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  const A = id.tenantA;
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, A, {
    expectedVersion: 1,
    document: { notificationWebhookUrl: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook` },
  });
  expect(approval?.body.status).toBe('applied');
  await directory.upsertRole(A, { name: 'GlobalAdmin', privileged: true });
  for (const user of ['bert', 'xena', 'kim']) await directory.upsertUser(A, { id: user, username: user, displayName: user });
  await directory.upsertUser(A, { id: 'svc-backup', username: 'svc-backup', displayName: 'Backup', attributes: { serviceAccount: true } });
  for (const user of ['xena', 'kim']) await directory.openSession(A, user);
  const ledger = createLedgerActivities({ pool: stack.pool, directories: singleDirectory(directory) });
  await ledger.grantAccess({ tenantId: A, subjectId: 'bert', role: 'GlobalAdmin', sourceType: 'birthright', sourceId: 'it-admins' });
  await ledger.grantAccess({ tenantId: A, subjectId: 'xena', role: 'GlobalAdmin', sourceType: 'manual', sourceId: 'CHG-1' });
  await ledger.grantAccess({ tenantId: A, subjectId: 'kim', role: 'GlobalAdmin', sourceType: 'manual', sourceId: 'CHG-2' });
  await directory.assignRole(A, 'svc-backup', 'GlobalAdmin');

  // One review of tenant A, decided and completed: the evidence the tests read.
  const definition = ok(
    await call(id.tokens.operator, 'POST', '/v1/campaigns', {
      name: 'Evidence',
      definition: { scope: { tenantIds: [A] }, stages: [{ durationMinutes: 600 }], nonResponse: 'keep' },
    }),
    201,
  );
  runId = ok(await call(id.tokens.operator, 'POST', `/v1/campaigns/${definition.id}/runs`), 202).runId;
  await reviewReaches(A, runId, 'open');
  const by = Object.fromEntries((await items(A, runId)).map((i) => [i.subjectId, i.itemId]));
  ok(
    await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${A}/reviews/items/${by.bert}/decision`, {
      decision: 'revoke',
      justification: HOSTILE,
    }),
  );
  ok(await call(id.tokens.reviewerA, 'POST', `/v1/tenants/${A}/reviews/items/${by.xena}/decision`, { decision: 'keep' }));
  ok(await call(id.tokens.approverA, 'POST', `/v1/tenants/${A}/reviews/${runId}/deadline`, { closesAt: new Date().toISOString() }));
  await reviewReaches(A, runId, 'completed');
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe('the printable HTML report', () => {
  it('is the same report with the same hash, every value escaped, and loads or runs nothing', async () => {
    const A = id.tenantA;
    const { hash, report } = ok(await call(id.tokens.auditorA, 'GET', `/v1/tenants/${A}/reviews/${runId}/report`));
    const page = await get(id.tokens.auditorA!, `/v1/tenants/${A}/reviews/${runId}/report?format=html`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('x-report-hash')).toBe(hash);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;');
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain(hash);
    for (const item of report.items as Json[]) expect(html).toContain(item.itemId);
    expect(html).toContain('Reviewer A');
    // The chain event that carries the hash, by its sequence number.
    const [recorded] = await stack.db.pool
      .query("SELECT seq FROM audit_events WHERE tenant_id = $1 AND action = 'review.report_recorded' AND target_id = $2", [A, runId])
      .then((r) => r.rows as { seq: string }[]);
    expect(html).toContain(`event seq ${recorded!.seq}`);

    // The CLI saves the very page; a reviewer (who decides, but does not read evidence) is refused.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-report-'));
    const out = path.join(dir, 'report.html');
    const env = { TENURE_URL: stack.baseUrl, TENURE_TOKEN: id.tokens.auditorA! };
    const saved = await runCliOk(['review', 'report', '--tenant', A, runId, '--format', 'html', '--out', out], env);
    expect(saved.stderr).toContain(hash);
    expect(await readFile(out, 'utf8')).toBe(html);
    const refused = await runCli(['review', 'report', '--tenant', A, runId, '--format', 'html'], {
      ...env,
      TENURE_TOKEN: id.tokens.reviewerA!,
    });
    expect(refused.code).toBe(4); // refused: not allowed
    expect(refused.stderr).toContain('403');
    expect((await get(id.tokens.auditorB!, `/v1/tenants/${A}/reviews/${runId}/report?format=html`)).status).toBe(404);
  });
});

describe('access that needs a rule change', () => {
  it('is sent to the tenant’s signed webhook once per item, naming the rule, and audited once', async () => {
    const A = id.tenantA;
    const notices = await eventually(
      async () => received.filter((r) => r.body.type === 'review.needs_rule_change'),
      (list) => list.length >= 1,
      SLOW,
    );
    expect(notices).toHaveLength(1);
    expect(notices[0]!.body).toMatchObject({
      tenantId: A,
      review: { runId, workflowId: `review/${A}/${runId}` },
      item: { subjectId: 'bert', role: 'GlobalAdmin', rules: ['it-admins'] },
    });
    const { secret } = ok(await call(id.tokens.mspAdmin, 'GET', `/v1/tenants/${A}/webhook-secret`));
    const { headers } = notices[0]!;
    const raw = JSON.stringify(notices[0]!.body);
    expect(headers['x-tenure-signature']).toBe(
      `sha256=${createHmac('sha256', secret).update(`${headers['x-tenure-timestamp']}.${raw}`).digest('hex')}`,
    );
    const audited = await auditActions(A, 'review.rule_change_notified');
    expect(audited).toHaveLength(1);
    expect(audited[0]!.payload).toMatchObject({ subjectId: 'bert', rules: ['it-admins'], webhookEventId: headers['x-tenure-event-id'] });
    const item = (await items(A, runId)).find((i) => i.subjectId === 'bert')!;
    expect(item).toMatchObject({ result: 'needs_rule_change', resultDetail: { rules: ['it-admins'] } });
  });
});

describe('service accounts', () => {
  it('are marked on their items and recommended by ownership, not by sign-ins', async () => {
    const svc = (await items(id.tenantA, runId)).find((i) => i.subjectId === 'svc-backup')!;
    expect(svc).toMatchObject({
      serviceAccount: true,
      recommendation: 'revoke',
      recommendationReason: 'a service account nobody owns → revoke',
    });
    const person = (await items(id.tenantA, runId)).find((i) => i.subjectId === 'kim')!;
    expect(person.serviceAccount).toBe(false);
  });
});

describe('tenant tags in a campaign scope', () => {
  let tagged: string;
  let pilot: string;

  beforeAll(async () => {
    tagged = ok(
      await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug: `eu-${runId.slice(0, 6)}`, name: 'EU one', tags: ['region:eu'] }),
      201,
    ).id;
    pilot = ok(
      await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug: `eup-${runId.slice(0, 6)}`, name: 'EU pilot', tags: ['region:eu'] }),
      201,
    ).id;
    const ledger = createLedgerActivities({ pool: stack.pool, directories: singleDirectory(directory) });
    for (const tenant of [tagged, pilot]) {
      await directory.upsertRole(tenant, { name: 'GlobalAdmin', privileged: true });
      await directory.upsertUser(tenant, { id: 'pat', username: 'pat', displayName: 'Pat' });
      await directory.upsertUser(tenant, {
        id: 'svc-sync',
        username: 'svc-sync',
        displayName: 'Sync',
        attributes: { serviceAccount: true, owner: 'ops@eu.example' },
      });
      for (const user of ['pat', 'svc-sync'])
        await ledger.grantAccess({ tenantId: tenant, subjectId: user, role: 'GlobalAdmin', sourceType: 'manual', sourceId: 'CHG-9' });
    }
    await tenantStaff(call, id.tokens.mspAdmin!, tagged, 'Reviewer EU', ['tenant_reviewer']);
  });

  it('are set and changed by MSP admins, audited with before and after, and refused with a field path when malformed', async () => {
    const changed = ok(await call(id.tokens.mspAdmin, 'PATCH', `/v1/tenants/${pilot}`, { tags: ['pilot', 'region:eu'] }));
    expect(changed).toMatchObject({ name: 'EU pilot', tags: ['pilot', 'region:eu'] });
    const events = (await auditActions(pilot, 'tenant.updated')).map((e) => e.payload);
    expect(events).toEqual([
      expect.objectContaining({
        before: expect.objectContaining({ tags: ['region:eu'] }),
        after: expect.objectContaining({ tags: ['pilot', 'region:eu'] }),
      }),
    ]);
    const again = ok(await call(id.tokens.mspAdmin, 'PATCH', `/v1/tenants/${pilot}`, { tags: ['region:eu', 'pilot'] }));
    expect(again.tags).toEqual(['pilot', 'region:eu']);
    expect(await auditActions(pilot, 'tenant.updated')).toHaveLength(1); // nothing changed, nothing audited
    const bad = await call(id.tokens.mspAdmin, 'PATCH', `/v1/tenants/${pilot}`, { tags: ['Not A Tag'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toBe('body.tags.0');
    expect((await call(id.tokens.operator, 'PATCH', `/v1/tenants/${pilot}`, { tags: [] })).status).toBe(403);
    const env = { TENURE_URL: stack.baseUrl, TENURE_TOKEN: id.tokens.mspAdmin! };
    const shown = JSON.parse(
      (await runCliOk(['tenant', 'update', '--json', tagged, '--tag', 'region:eu', '--tag', 'tier-gold'], env)).stdout,
    ) as Json;
    expect(shown.tags).toEqual(['region:eu', 'tier-gold']);
  });

  it('choose the tenants a run reviews, less the excluded tags, and a definition may review only service accounts', async () => {
    const definition = ok(
      await call(id.tokens.operator, 'POST', '/v1/campaigns', {
        name: 'EU service accounts',
        definition: {
          scope: { tags: ['region:eu'], excludeTags: ['pilot'] },
          items: { accounts: 'service_accounts' },
          stages: [{ durationMinutes: 600 }],
        },
      }),
      201,
    );
    const run = ok(await call(id.tokens.operator, 'POST', `/v1/campaigns/${definition.id}/runs`), 202);
    await reviewReaches(tagged, run.runId, 'open');
    const progress = ok(await call(id.tokens.mspAuditor, 'GET', `/v1/campaign-runs/${run.runId}`));
    expect(progress.tenantCount).toBe(1);
    expect((progress.reviews as Json[]).map((r) => r.tenantId)).toEqual([tagged]);
    const reviewed = await items(tagged, run.runId);
    expect(reviewed.map((i) => i.subjectId)).toEqual(['svc-sync']);
    expect(reviewed[0]).toMatchObject({
      serviceAccount: true,
      recommendation: 'keep',
      recommendationReason: 'a service account owned by ops@eu.example → keep',
    });
  });
});

describe('the standing-privilege report', () => {
  beforeAll(async () => {
    const A = id.tenantA;
    const ledger = createLedgerActivities({ pool: stack.pool, directories: singleDirectory(directory) });
    await directory.upsertUser(A, { id: 'dora', username: 'dora', displayName: 'Dora' });
    await ledger.grantAccess({ tenantId: A, subjectId: 'dora', role: 'GlobalAdmin', sourceType: 'manual', sourceId: 'CHG-3' });
    await directory.setUserStatus(A, 'dora', 'disabled');
    await directory.upsertUser(A, { id: 'tempo', username: 'tempo', displayName: 'Tempo' });
    await ledger.grantAccess({
      tenantId: A,
      subjectId: 'tempo',
      role: 'GlobalAdmin',
      sourceType: 'manual',
      sourceId: 'CHG-4',
      expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
  });

  it('lists each tenant’s privileged access with no end, no owner, no recent review or an inactive holder, with its reasons', async () => {
    const A = id.tenantA;
    const report = ok(await call(id.tokens.auditorA, 'GET', `/v1/tenants/${A}/standing-privilege?reviewDays=30`));
    const by = Object.fromEntries((report.entries as Json[]).map((e) => [e.subjectId, e]));
    expect(by.bert.reasons).toEqual(['no_end_date']); // reviewed (decided) in the completed run
    expect(by.bert.lastReviewRunId).toBe(runId);
    expect(by.xena.reasons).toEqual(['no_end_date']);
    expect(by.kim.reasons).toEqual(['no_end_date', 'not_reviewed']); // nobody decided it: a non-response is no review
    expect(by['svc-backup']).toMatchObject({ serviceAccount: true, owner: null, reasons: ['no_end_date', 'no_owner', 'not_reviewed'] });
    expect(by.dora).toMatchObject({ subjectStatus: 'disabled', reasons: ['no_end_date', 'not_reviewed', 'holder_inactive'] });
    expect(by.tempo).toMatchObject({ reasons: ['not_reviewed'], endsAt: expect.any(String) });
    expect(report.unavailable).toEqual([]);
    const inactive = ok(await call(id.tokens.operator, 'GET', `/v1/tenants/${A}/standing-privilege?reason=holder_inactive`));
    expect((inactive.entries as Json[]).map((e) => e.subjectId)).toEqual(['dora']);

    const csv = await get(id.tokens.auditorA!, `/v1/tenants/${A}/standing-privilege?format=csv`);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const rows = (await csv.text()).trim().split('\n');
    expect(rows[0]).toBe(
      'tenantId,subjectId,subjectStatus,serviceAccount,owner,role,sources,endsAt,lastReviewedAt,lastReviewRunId,reasons',
    );
    expect(rows).toHaveLength(1 + (report.entries as Json[]).length);
  });

  it('reads across tenants for MSP staff (by tag too), and stays inside the tenant for a tenant’s own auditor', async () => {
    const all = ok(await call(id.tokens.mspAuditor, 'GET', '/v1/standing-privilege'));
    const tenants = new Set((all.entries as Json[]).map((e) => e.tenantId));
    expect(tenants.has(id.tenantA)).toBe(true);
    expect(tenants.size).toBeGreaterThan(1);
    const eu = ok(await call(id.tokens.operator, 'GET', '/v1/standing-privilege?tag=region:eu'));
    expect((eu.entries as Json[]).some((e) => e.tenantId === id.tenantA)).toBe(false);
    expect((eu.entries as Json[]).length).toBeGreaterThan(0);
    expect((await call(id.tokens.auditorA, 'GET', '/v1/standing-privilege')).status).toBe(403);
    expect((await call(id.tokens.auditorB, 'GET', `/v1/tenants/${id.tenantA}/standing-privilege`)).status).toBe(404);
    expect((await call(id.tokens.reviewerA, 'GET', `/v1/tenants/${id.tenantA}/standing-privilege`)).status).toBe(403);
    const bad = await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}/standing-privilege?reviewDays=0&reason=old`);
    expect(bad.status).toBe(400);
    expect((bad.body.error.issues as Json[]).map((i) => i.path).sort()).toEqual(['query.reason', 'query.reviewDays']);
  });

  it('starts a review of exactly the listed access, from the API or a saved report through the CLI', async () => {
    const A = id.tenantA;
    const before = await stack.db.pool.query('SELECT count(*)::int AS n FROM campaign_definitions');
    const refused = await call(id.tokens.operator, 'POST', '/v1/standing-privilege/reviews', {
      name: 'nope',
      items: [{ tenantId: '00000000-0000-4000-8000-000000000000', subjectId: 'dora', role: 'GlobalAdmin' }],
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.issues[0].path).toBe('body.items.0.tenantId');
    expect((await call(id.tokens.mspAuditor, 'POST', '/v1/standing-privilege/reviews', { name: 'x', items: [] })).status).toBe(403);
    expect((await stack.db.pool.query('SELECT count(*)::int AS n FROM campaign_definitions')).rows[0].n).toBe(before.rows[0].n);

    const started = ok(
      await call(id.tokens.operator, 'POST', '/v1/standing-privilege/reviews', {
        name: 'Inactive and unowned',
        items: [
          { tenantId: A, subjectId: 'dora', role: 'GlobalAdmin' },
          { tenantId: A, subjectId: 'svc-backup', role: 'GlobalAdmin' },
        ],
      }),
      202,
    );
    expect(started.campaign.definition.items.exactly).toHaveLength(2);
    expect(started.run).toMatchObject({ runNo: 1, trigger: 'api' });
    await reviewReaches(A, started.run.runId, 'open');
    expect((await items(A, started.run.runId)).map((i) => i.subjectId).sort()).toEqual(['dora', 'svc-backup']);
    const created = (await auditActions('msp', 'campaign.created')).find((e) => e.target_id === started.campaign.id)!;
    expect(created.payload.definition.items.exactly).toHaveLength(2);

    // The CLI: save the report filtered to one reason, then review exactly what it lists.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-standing-'));
    const file = path.join(dir, 'inactive.json');
    const env = { TENURE_URL: stack.baseUrl, TENURE_TOKEN: id.tokens.operator! };
    await runCliOk(['standing', 'report', '--tenant', A, '--reason', 'holder_inactive', '--out', file], env);
    const saved = JSON.parse(await readFile(file, 'utf8')) as Json;
    expect((saved.entries as Json[]).map((e) => e.subjectId)).toEqual(['dora']);
    const fromCli = JSON.parse(
      (await runCliOk(['standing', 'review', '--json', '--name', 'From the CLI', '--file', file], env)).stdout,
    ) as Json;
    await reviewReaches(A, fromCli.run.runId, 'open');
    expect((await items(A, fromCli.run.runId)).map((i) => i.subjectId)).toEqual(['dora']);
  });
});

describe('cron recurrences with a time zone', () => {
  it('become a Temporal Schedule on the cron spec in that zone, shown as the definition states it', async () => {
    const created = ok(
      await call(id.tokens.operator, 'POST', '/v1/campaigns', {
        name: 'Weekday mornings in Berlin',
        definition: {
          scope: { tenantIds: [id.tenantB] },
          stages: [{ durationMinutes: 60 }],
          schedule: { cron: '0 9 * * MON-FRI', timezone: 'Europe/Berlin' },
        },
      }),
      201,
    );
    const schedule = ok(await call(id.tokens.mspAuditor, 'GET', `/v1/campaigns/${created.id}/schedule`));
    expect(schedule).toMatchObject({ cron: '0 9 * * MON-FRI', timezone: 'Europe/Berlin', intervalMinutes: null, paused: false });
    expect(schedule.nextActionTimes.length).toBeGreaterThan(0);
    for (const at of schedule.nextActionTimes as string[]) {
      const local = new Intl.DateTimeFormat('en-GB', {
        timeZone: 'Europe/Berlin',
        weekday: 'short',
        hour: '2-digit',
        minute: '2-digit',
        hourCycle: 'h23',
      }).format(new Date(at));
      expect(local).toMatch(/^(Mon|Tue|Wed|Thu|Fri) 09:00$/);
    }
    const described = await stack.temporal.schedule.getHandle(`campaign-schedule/${created.id}`).describe();
    expect(described.spec.timezone).toBe('Europe/Berlin');
    // Back to an interval: the same Schedule, now every hour.
    const v2 = ok(
      await call(id.tokens.operator, 'PUT', `/v1/campaigns/${created.id}`, {
        expectedVersion: 1,
        definition: {
          scope: { tenantIds: [id.tenantB] },
          stages: [{ durationMinutes: 60 }],
          schedule: { intervalMinutes: 60, paused: true },
        },
      }),
    );
    expect(v2.version).toBe(2);
    expect(ok(await call(id.tokens.operator, 'GET', `/v1/campaigns/${created.id}/schedule`))).toMatchObject({
      intervalMinutes: 60,
      cron: null,
      timezone: null,
      paused: true,
    });
  });

  it('refuses a bad expression, an unknown zone, both forms at once or a zone without cron with 400 naming the field, and writes nothing', async () => {
    const before = await stack.db.pool.query('SELECT count(*)::int AS n FROM campaign_definitions');
    const cases: [Json, string, RegExp][] = [
      [{ cron: '61 9 * * *' }, 'body.definition.schedule.cron', /minute: 61 is outside 0-59/],
      [{ cron: '0 9 * *' }, 'body.definition.schedule.cron', /five fields/],
      [{ cron: '0 9 * * MON', timezone: 'Mars/Olympus' }, 'body.definition.schedule.timezone', /IANA/],
      [{ cron: '0 9 * * MON', timezone: 'europe/berlin' }, 'body.definition.schedule.timezone', /IANA/],
      [{ cron: '0 9 * * MON', intervalMinutes: 60 }, 'body.definition.schedule.cron', /exactly one/],
      [{ intervalMinutes: 60, timezone: 'UTC' }, 'body.definition.schedule.timezone', /goes with a cron/],
    ];
    for (const [schedule, where, message] of cases) {
      const bad = await call(id.tokens.operator, 'POST', '/v1/campaigns', {
        name: 'bad',
        definition: { stages: [{ durationMinutes: 1 }], schedule },
      });
      expect(bad.status, JSON.stringify(schedule)).toBe(400);
      const issue = (bad.body.error.issues as Json[]).find((i) => i.path === where);
      expect(issue?.message, JSON.stringify(bad.body)).toMatch(message);
    }
    expect((await stack.db.pool.query('SELECT count(*)::int AS n FROM campaign_definitions')).rows[0].n).toBe(before.rows[0].n);
  });

  it('is set from the CLI file like any definition', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-cron-'));
    const file = path.join(dir, 'definition.json');
    await writeFile(
      file,
      JSON.stringify({
        scope: { tenantIds: [id.tenantB] },
        stages: [{ durationMinutes: 60 }],
        schedule: { cron: '30 6 1 * *', timezone: 'Asia/Tokyo', paused: true },
      }),
    );
    const env = { TENURE_URL: stack.baseUrl, TENURE_TOKEN: id.tokens.operator! };
    const created = JSON.parse(
      (await runCliOk(['campaign', 'create', '--json', '--name', 'Monthly Tokyo', '--file', file], env)).stdout,
    ) as Json;
    const shown = JSON.parse((await runCliOk(['campaign', 'schedule', 'show', '--json', created.id], env)).stdout) as Json;
    expect(shown).toMatchObject({ cron: '30 6 1 * *', timezone: 'Asia/Tokyo', paused: true });
    // Unpaused and paused again from the CLI, each an event on the MSP chain.
    const unpaused = JSON.parse((await runCliOk(['campaign', 'schedule', 'unpause', '--json', created.id], env)).stdout) as Json;
    expect(unpaused.paused).toBe(false);
    const paused = JSON.parse(
      (await runCliOk(['campaign', 'schedule', 'pause', '--json', created.id, '--note', 'audit week'], env)).stdout,
    ) as Json;
    expect(paused).toMatchObject({ paused: true, note: 'audit week' });
    for (const action of ['campaign.schedule_unpaused', 'campaign.schedule_paused'])
      expect((await auditActions('msp', action)).filter((e) => e.target_id === created.id)).toHaveLength(1);
  });
});
