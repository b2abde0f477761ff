import { randomBytes, randomUUID } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { DirectoryUnavailableError, type DirectoryConnector } from '../../core/directory/connector.js';
import { runCliOk } from '../support/cli.js';
import { apiClient, bodyOf, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { mspStaff, seedTenancy, type TestTenancy } from '../support/tenancy.js';

/**
 * The cross-tenant RBAC drift report on the real stack: three tenants applied the same template
 * version, one of them drifted afterwards (in a setting the version states and in a role it does
 * not), and a fourth tenant's target is down. JSON and CSV.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: PostgresDirectory;
let owner: { actorId: string; token: string };
/** The tenant whose target answers as if it were down. */
let downTenant: string | null = null;
let tenantC: string;
let tenantD: string;
let templateId: string;

const call = apiClient(() => stack.baseUrl);

/** The stack's built-in directory, down for `downTenant` only. */
function downFor(real: DirectoryConnector): DirectoryConnector {
  const wrapped: Record<string, unknown> = { ...real };
  for (const [name, method] of Object.entries(real)) {
    if (typeof method !== 'function') continue;
    wrapped[name] = (tenantId: string, ...rest: unknown[]) =>
      tenantId === downTenant
        ? Promise.reject(new DirectoryUnavailableError(`connection refused for tenant ${tenantId}`, tenantId))
        : (method as (...a: unknown[]) => Promise<unknown>).call(real, tenantId, ...rest);
  }
  return wrapped as unknown as DirectoryConnector;
}

const BASELINE = {
  directory: {
    roles: [{ name: 'GlobalAdmin', description: 'Global administrators', privileged: true }],
    settings: { mfaRequired: true, lockoutThreshold: 5 },
  },
};

async function newTenant(name: string): Promise<string> {
  const slug = `r-${randomBytes(4).toString('hex')}`;
  return bodyOf(await call(id.tokens.mspAdmin, 'POST', '/v1/tenants', { slug, name }), 201).id as string;
}

async function pinAndApply(tenantId: string): Promise<void> {
  bodyOf(await call(id.tokens.operator, 'PUT', `/v1/tenants/${tenantId}/template`, { templateId, version: 1 }));
  const started = bodyOf(await call(id.tokens.operator, 'POST', `/v1/tenants/${tenantId}/template/apply`, {}), 202);
  await eventually(
    async () => (await call(id.tokens.operator, 'GET', `/v1/tenants/${tenantId}/template/applies/${started.rolloutId}`)).body,
    (view) => ['applied', 'failed', 'skipped', 'denied'].includes(view.status as string),
    60_000,
  ).then((view) => expect(view.status).toBe('applied'));
}

async function members(tenantId: string, role: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const user = `${role.toLowerCase()}-${i}`;
    await directory.upsertUser(tenantId, { id: user, username: user, displayName: user });
    await directory.assignRole(tenantId, user, role);
  }
}

beforeAll(async () => {
  stack = await startTestStack({ directory: downFor });
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  owner = await mspStaff(call, id.tokens.mspAdmin!, 'Template owner', ['template_owner']);
  // A name a spreadsheet would run as a formula.
  tenantC = await newTenant('=HYPERLINK("http://evil.example","C")');
  tenantD = await newTenant('Tenant D');

  const created = bodyOf(
    await call(owner.token, 'POST', '/v1/templates', { name: `rbac-${randomBytes(4).toString('hex')}`, document: BASELINE }),
    201,
  );
  templateId = created.template.id as string;
  bodyOf(await call(owner.token, 'POST', `/v1/templates/${templateId}/versions/1/propose`, {}));
  bodyOf(await call(id.tokens.mspAdmin, 'POST', `/v1/templates/${templateId}/versions/1/approve`, {}));

  for (const [tenantId, admins] of [
    [id.tenantA, 2],
    [id.tenantB, 1],
    [tenantC, 3],
  ] as const) {
    await directory.upsertRole(tenantId, { name: 'HelpdeskAdmin', description: 'Helpdesk', privileged: false });
    await pinAndApply(tenantId);
    await members(tenantId, 'GlobalAdmin', admins);
    await members(tenantId, 'HelpdeskAdmin', 1);
  }
  // C drifts after the apply: lockouts switched off, and the helpdesk role made privileged.
  await directory.applySecuritySettings(tenantC, { lockoutThreshold: 0 });
  await directory.upsertRole(tenantC, { name: 'HelpdeskAdmin', description: 'Helpdesk', privileged: true });
  downTenant = tenantD;
}, 240_000);
afterAll(async () => {
  await stack?.stop();
});

const rowOf = (report: Json, tenantId: string): Json => report.tenants.find((t: Json) => t.tenantId === tenantId);

describe('cross-tenant RBAC drift report', () => {
  it('over the tenants of a template, only the one that drifted deviates, each cell saying what it expected and why', async () => {
    const report = bodyOf(await call(id.tokens.mspAuditor, 'GET', `/v1/templates/rbac-report?templateId=${templateId}`));
    expect(report.summary).toEqual({ tenants: 3, readable: 3, unreadable: 0, deviating: 1 });
    expect(report.tenants.map((t: Json) => t.tenantId).sort()).toEqual([id.tenantA, id.tenantB, tenantC].sort());

    const a = rowOf(report, id.tenantA);
    expect(a).toMatchObject({ readable: true, target: 'postgres', deviations: 0, pin: { templateId, version: 1, appliedVersion: 1 } });
    expect(a.cells['settings.lockoutThreshold']).toEqual({ value: 5, expected: 5, basis: 'template', deviates: false });
    expect(a.cells['settings.passwordMinLength']).toEqual({ value: 8, expected: 8, basis: 'majority', deviates: false });
    expect(a.cells['roles.GlobalAdmin.members']).toMatchObject({ value: 2, deviates: false });
    expect(a.cells['pin.appliedVersion']).toEqual({ value: 1, expected: 1, basis: 'pin', deviates: false });

    const c = rowOf(report, tenantC);
    expect(c.deviations).toBe(2);
    // Against the exact version applied to it.
    expect(c.cells['settings.lockoutThreshold']).toEqual({ value: 0, expected: 5, basis: 'template', deviates: true });
    // The version does not list the role: compared with the other tenants.
    expect(c.cells['roles.HelpdeskAdmin.privileged']).toEqual({ value: true, expected: false, basis: 'majority', deviates: true });
    expect(c.cells['roles.HelpdeskAdmin.members']).toMatchObject({ value: 1 });
    expect(c.cells['roles.GlobalAdmin.privileged']).toEqual({ value: true, expected: true, basis: 'template', deviates: false });
    expect(c.cells['roles.GlobalAdmin.members']).toMatchObject({ value: 3 });
    expect(rowOf(report, id.tenantB).deviations).toBe(0);
  });

  it('a tenant whose target is down shows as unreadable, and the others are still reported', async () => {
    const report = bodyOf(await call(id.tokens.mspAdmin, 'GET', '/v1/templates/rbac-report'));
    const d = rowOf(report, tenantD);
    expect(d).toMatchObject({ readable: false, target: null, error: expect.stringContaining('connection refused') as unknown, pin: null });
    expect(d.cells['settings.mfaRequired']).toMatchObject({ value: null, deviates: false });
    expect(rowOf(report, tenantC).deviations).toBeGreaterThanOrEqual(2);
    expect(report.summary).toMatchObject({ unreadable: 1 });
  });

  it('as CSV (by Accept or format): one row per tenant, four columns per cell, and a formula-like name neutralised', async () => {
    const response = await fetch(`${stack.baseUrl}/v1/templates/rbac-report?templateId=${templateId}`, {
      headers: { authorization: `Bearer ${id.tokens.mspAuditor}`, accept: 'text/csv' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/csv/);
    const rows = parse<Record<string, string>>(await response.text(), { columns: true });
    expect(rows).toHaveLength(3);
    const c = rows.find((r) => r.tenantId === tenantC)!;
    expect(c.name).toBe(`'=HYPERLINK("http://evil.example","C")`);
    expect(c).toMatchObject({
      deviations: '2',
      'settings.lockoutThreshold': '0',
      'settings.lockoutThreshold.expected': '5',
      'settings.lockoutThreshold.basis': 'template',
      'settings.lockoutThreshold.deviates': 'true',
      'roles.HelpdeskAdmin.privileged.deviates': 'true',
    });
    expect(rows.find((r) => r.tenantId === id.tenantA)!['settings.lockoutThreshold.deviates']).toBe('false');

    const cli = await runCliOk(['template', 'report', '--csv', '--template', templateId], {
      TENURE_URL: stack.baseUrl,
      TENURE_TOKEN: id.tokens.mspAuditor!,
    });
    expect(parse(cli.stdout, { columns: true })).toEqual(rows);
  });

  it('is for MSP-wide readers: a tenant’s own approver and an admin bound to one tenant are refused; an unknown template is 404', async () => {
    expect((await call(id.tokens.approverA, 'GET', '/v1/templates/rbac-report')).status).toBe(403);
    expect((await call(id.tokens.tenantAdminB, 'GET', '/v1/templates/rbac-report')).status).toBe(403);
    expect((await call(id.tokens.mspAuditor, 'GET', `/v1/templates/rbac-report?templateId=${randomUUID()}`)).status).toBe(404);
    expect((await call(id.tokens.mspAuditor, 'GET', '/v1/templates/rbac-report?format=xml')).status).toBe(400);
  });
});
