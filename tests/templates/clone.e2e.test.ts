import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { MSP_CHAIN } from '../../core/audit/chain.js';
import { DirectoryUnavailableError, type DirectoryConnector } from '../../core/directory/connector.js';
import { runCliOk } from '../support/cli.js';
import { apiClient, bodyOf, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { mspStaff, seedTenancy, setPolicy, type TestTenancy } from '../support/tenancy.js';

/**
 * Org cloning on the real stack: the clone holds the source's roles, settings, policy and pin and
 * none of its people or secrets; the idempotency key answers a retry with the same tenant and
 * refuses another body; a worker restart in the middle creates nothing twice.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: PostgresDirectory;
let templateId: string;
/** While set, writing roles into any tenant but the seeded ones fails as if the target were down. */
let newTenantsDown = false;

const call = apiClient(() => stack.baseUrl);
const clonePath = () => `/v1/tenants/${id.tenantA}/clone`;
const cloneWith = (key: string, body: Json, token = id.tokens.mspAdmin) =>
  call(token, 'POST', clonePath(), body, { headers: { 'idempotency-key': key } });
const fresh = () => randomBytes(4).toString('hex');

function downForNewTenants(real: DirectoryConnector): DirectoryConnector {
  return {
    ...real,
    upsertRole: (tenantId, role) =>
      newTenantsDown && tenantId !== id.tenantA && tenantId !== id.tenantB
        ? Promise.reject(new DirectoryUnavailableError('connection refused', tenantId))
        : real.upsertRole(tenantId, role),
  };
}

/** The pinned version's role, written for each tenant with its own name. */
const HELPDESK = 'Helpdesk of {{tenant.name}}, run by {{helpdesk}}';

beforeAll(async () => {
  stack = await startTestStack({ directory: downForNewTenants });
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  const A = id.tenantA;
  await directory.upsertRole(A, { name: 'GlobalAdmin', description: 'Global administrators', privileged: true });
  await directory.upsertUser(A, { id: 'alex', username: 'alex', displayName: 'Alex' });
  await directory.assignRole(A, 'alex', 'GlobalAdmin');

  // The source is on its template: version 1 applied and verified.
  const owner = await mspStaff(call, id.tokens.mspAdmin!, 'Template owner', ['template_owner']);
  const created = bodyOf(
    await call(owner.token, 'POST', '/v1/templates', {
      name: `clone-${fresh()}`,
      document: {
        parameters: { helpdesk: { description: 'Who runs the helpdesk', default: null } },
        directory: {
          roles: [{ name: 'HelpdeskAdmin', description: HELPDESK }],
          settings: { mfaRequired: true, lockoutThreshold: 3, sessionLifetimeMinutes: 600 },
        },
      },
    }),
    201,
  );
  templateId = created.template.id as string;
  bodyOf(await call(owner.token, 'POST', `/v1/templates/${templateId}/versions/1/propose`, {}));
  bodyOf(await call(id.tokens.mspAdmin, 'POST', `/v1/templates/${templateId}/versions/1/approve`, {}));
  bodyOf(await call(id.tokens.operator, 'PUT', `/v1/tenants/${A}/template`, { templateId, version: 1, parameters: { helpdesk: 'A IT' } }));
  const started = bodyOf(await call(id.tokens.operator, 'POST', `/v1/tenants/${A}/template/apply`, {}), 202);
  const applied = await eventually(
    async () => (await call(id.tokens.operator, 'GET', `/v1/tenants/${A}/template/applies/${started.rolloutId}`)).body,
    (view) => ['applied', 'failed', 'skipped', 'denied'].includes(view.status as string),
    60_000,
  );
  expect(applied.status).toBe('applied');

  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, A, {
    expectedVersion: 1,
    document: {
      timezone: 'Europe/Amsterdam',
      contactEmail: 'it@a.example',
      grants: { roles: { GlobalAdmin: { maxDurationMinutes: 60, approvalsRequired: 1 } } },
      governance: { policyChangeApprovals: 1, approveEveryChange: true },
    },
  });
  expect(approval?.body.status).toBe('applied');
  // The source's own secret, which the clone must not get.
  bodyOf(await call(id.tokens.mspAdmin, 'GET', `/v1/tenants/${A}/webhook-secret`));
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

async function events(chain: string, about?: string): Promise<{ action: string; actor: string; target: string; workflow: string }[]> {
  const { rows } = await stack.db.pool.query(
    `SELECT action, actor_id AS actor, target_id AS target, workflow_id AS workflow FROM audit_events
      WHERE tenant_id = $1 AND ($2::text IS NULL OR target_id = $2 OR payload->>'tenantId' = $2) ORDER BY seq`,
    [chain, about ?? null],
  );
  return rows as never;
}

async function countIn(table: string, tenantId: string): Promise<number> {
  return (await stack.db.pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1`, [tenantId])).rows[0].n as number;
}

const policyOf = async (tenantId: string) =>
  bodyOf(await call(id.tokens.mspAdmin, 'GET', `/v1/tenants/${tenantId}/policy`)).document as Json;

describe('org cloning', () => {
  let key: string;
  let body: Json;
  let clone: Json;

  it('creates a tenant with the source’s roles, settings, policy and pin, and none of its users, grants, bindings or secrets', async () => {
    key = `onboard-${fresh()}`;
    body = { slug: `c-${fresh()}`, name: `Clone ${fresh()}`, tags: ['region:eu'] };
    const response = await cloneWith(key, body);
    clone = bodyOf(response, 201);
    expect(response.headers.get('location')).toBe(`/v1/tenants/${clone.tenantId}`);
    expect(response.headers.get('idempotent-replayed')).toBeNull();
    const B = clone.tenantId as string;
    expect(clone).toMatchObject({
      status: 'completed',
      sourceTenantId: id.tenantA,
      workflowId: `clone/${id.tenantA}/${key}`,
      tenant: { id: B, slug: body.slug, name: body.name, tags: ['region:eu'], policyVersion: 1, status: 'active' },
      copied: { roles: 2, privilegedRoles: 1, pin: { templateId, version: 1, appliedVersion: 1 }, policyVersion: 1 },
    });

    // The roles as the source has them; the one its version wrote with the source's name, with the clone's.
    const sourceName = bodyOf(await call(id.tokens.mspAdmin, 'GET', `/v1/tenants/${id.tenantA}`)).name as string;
    expect(await directory.listAllRoles(id.tenantA)).toEqual([
      { name: 'GlobalAdmin', description: 'Global administrators', privileged: true },
      { name: 'HelpdeskAdmin', description: `Helpdesk of ${sourceName}, run by A IT`, privileged: false },
    ]);
    expect(await directory.listAllRoles(B)).toEqual([
      { name: 'GlobalAdmin', description: 'Global administrators', privileged: true },
      { name: 'HelpdeskAdmin', description: `Helpdesk of ${body.name}, run by A IT`, privileged: false },
    ]);
    expect(await directory.getSecuritySettings(B)).toEqual(await directory.getSecuritySettings(id.tenantA));
    const [source, cloned] = [await policyOf(id.tenantA), await policyOf(B)];
    expect(cloned).toEqual({ ...source, contactEmail: null });
    expect(cloned.governance).toMatchObject({ approveEveryChange: true });
    // Read back against the pin, as an apply verifies: the version counts as applied.
    expect(bodyOf(await call(id.tokens.mspAdmin, 'GET', `/v1/tenants/${B}/template`))).toMatchObject({
      templateId,
      version: 1,
      parameters: { helpdesk: 'A IT' },
      appliedVersion: 1,
    });
    expect((await call(id.tokens.mspAdmin, 'POST', `/v1/tenants/${B}/template/dry-run`, {})).body.items).toEqual([]);

    expect(await directory.listMembers(B, 'GlobalAdmin')).toEqual([]);
    expect(await directory.getUser(B, 'alex')).toBeUndefined();
    for (const table of [
      'directory_users',
      'directory_memberships',
      'grants',
      'entitlements',
      'role_bindings',
      'tenant_webhook_secrets',
      'people',
    ]) {
      expect({ table, n: await countIn(table, B) }).toEqual({ table, n: 0 });
    }
    expect((await stack.db.pool.query('SELECT count(*)::int AS n FROM actors WHERE home_tenant_id = $1', [B])).rows[0].n).toBe(0);
  });

  it('is audited once on the MSP chain, the new tenant’s and the source’s (who cloned it into which tenant), by the workflow', async () => {
    const B = clone.tenantId as string;
    const workflow = `clone/${id.tenantA}/${key}`;
    expect((await events(MSP_CHAIN, B)).map((e) => [e.action, e.actor, e.workflow])).toEqual([
      ['tenant.created', id.actors.mspAdmin!.id, workflow],
      ['tenant.cloned', id.actors.mspAdmin!.id, workflow],
    ]);
    expect((await events(B)).map((e) => e.action)).toEqual([
      'tenant.created',
      'template.assigned',
      'tenant.clone.directory_copied',
      'template.applied',
      'tenant.cloned',
    ]);
    expect((await events(id.tenantA, B)).map((e) => [e.action, e.actor, e.target])).toEqual([['tenant.cloned', id.actors.mspAdmin!.id, B]]);
  });

  it('the same key with the same body answers the same tenant and writes nothing; another body under that key is refused', async () => {
    const before = (await stack.db.pool.query('SELECT count(*)::int AS n FROM audit_events')).rows[0].n as number;
    const again = await cloneWith(key, body);
    expect(bodyOf(again, 201)).toMatchObject({ cloneId: clone.cloneId, tenantId: clone.tenantId, status: 'completed' });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await stack.db.pool.query('SELECT count(*)::int AS n FROM tenants WHERE slug = $1', [body.slug])).rows[0].n).toBe(1);
    expect((await stack.db.pool.query('SELECT count(*)::int AS n FROM audit_events')).rows[0].n).toBe(before);

    const other = await cloneWith(key, { ...body, name: 'Someone else' });
    expect(other.status).toBe(409);
    expect(other.body.error).toMatchObject({ code: 'idempotency_key_reused', issues: [{ path: 'headers.idempotency-key' }] });
  });

  it('a slug or a name already in use is a 409 naming the field, and creates nothing', async () => {
    const taken = await call(id.tokens.mspAdmin, 'GET', `/v1/tenants/${id.tenantB}`);
    const bySlug = await cloneWith(`k-${fresh()}`, { slug: taken.body.slug, name: `New ${fresh()}` });
    expect(bySlug.status).toBe(409);
    expect(bySlug.body.error.issues).toEqual([{ path: 'body.slug', message: expect.any(String) as unknown }]);
    const byName = await cloneWith(`k-${fresh()}`, { slug: `n-${fresh()}`, name: ` ${String(taken.body.name).toUpperCase()} ` });
    expect(byName.status).toBe(409);
    expect(byName.body.error.issues).toEqual([{ path: 'body.name', message: expect.any(String) as unknown }]);
    expect((await stack.db.pool.query('SELECT count(*)::int AS n FROM tenant_clones')).rows[0].n).toBe(1);
  });

  it('needs an Idempotency-Key, and MSP-wide tenant creation rights', async () => {
    const missing = await call(id.tokens.mspAdmin, 'POST', clonePath(), { slug: `m-${fresh()}`, name: 'No key' });
    expect(missing.status).toBe(400);
    expect(missing.body.error.issues).toEqual([expect.objectContaining({ path: 'headers.idempotency-key' })]);
    expect((await cloneWith(`k-${fresh()}`, { slug: `o-${fresh()}`, name: 'By an operator' }, id.tokens.operator)).status).toBe(403);
    expect((await cloneWith(`k-${fresh()}`, { slug: `o-${fresh()}`, name: 'By B’s admin' }, id.tokens.tenantAdminB)).status).toBe(403);
    const unknown = await call(
      id.tokens.mspAdmin,
      'POST',
      `/v1/tenants/${randomUUID()}/clone`,
      { slug: `u-${fresh()}`, name: 'Nobody' },
      {
        headers: { 'idempotency-key': 'k' },
      },
    );
    expect(unknown.status).toBe(404);
  });

  it('a worker restart in the middle of a clone (its tenant created, its directory not yet written) finishes it once', async () => {
    const restartKey = `restart-${fresh()}`;
    const restartBody = { slug: `w-${fresh()}`, name: `Restart ${fresh()}` };
    newTenantsDown = true;
    const first = cloneWith(restartKey, restartBody);
    // The tenant exists and its roles cannot be written yet: the clone is half way.
    const tenantId = await eventually(
      async () =>
        (await stack.db.pool.query('SELECT id FROM tenants WHERE slug = $1', [restartBody.slug])).rows[0]?.id as string | undefined,
      (found) => found !== undefined,
      30_000,
    );
    await stack.stopWorker();
    await stack.startWorker();
    newTenantsDown = false;
    expect([201, 202]).toContain((await first).status);
    const done = await eventually(
      () => cloneWith(restartKey, restartBody),
      (r) => r.status !== 202,
      60_000,
    );
    expect(bodyOf(done, 201)).toMatchObject({ tenantId, status: 'completed', copied: { roles: 2 } });
    expect((await directory.listAllRoles(tenantId!)).map((r) => r.name)).toEqual(['GlobalAdmin', 'HelpdeskAdmin']);
    expect((await events(tenantId!)).map((e) => e.action)).toEqual([
      'tenant.created',
      'template.assigned',
      'tenant.clone.directory_copied',
      'template.applied',
      'tenant.cloned',
    ]);
    expect((await events(MSP_CHAIN, tenantId)).map((e) => e.action)).toEqual(['tenant.created', 'tenant.cloned']);
  }, 120_000);

  it('a source that drifted from its version is cloned as it is: the pin is copied but left unapplied, naming the difference', async () => {
    await directory.upsertRole(id.tenantA, { name: 'HelpdeskAdmin', description: 'Changed by hand' });
    const drifted = bodyOf(await cloneWith(`drift-${fresh()}`, { slug: `d-${fresh()}`, name: `Drifted ${fresh()}` }), 201);
    expect(drifted.copied.pin).toEqual({ templateId, version: 1, appliedVersion: null });
    expect(drifted.notes).toEqual([expect.stringContaining('directory.roles.HelpdeskAdmin.description')]);
    expect((await directory.listAllRoles(drifted.tenantId as string)).find((r) => r.name === 'HelpdeskAdmin')?.description).toBe(
      'Changed by hand',
    );
    expect((await events(drifted.tenantId as string)).map((e) => e.action)).not.toContain('template.applied');
  });

  it('from the CLI, `tenure tenant clone` with a key of its own', async () => {
    const env = { TENURE_URL: stack.baseUrl, TENURE_TOKEN: id.tokens.mspAdmin! };
    const slug = `cli-${fresh()}`;
    const args = ['tenant', 'clone', '--json', id.tenantA, '--slug', slug, '--name', `CLI ${slug}`, '--idempotency-key', `cli-${slug}`];
    const first = JSON.parse((await runCliOk(args, env)).stdout) as Json;
    const second = JSON.parse((await runCliOk(args, env)).stdout) as Json;
    expect(first).toMatchObject({ status: 'completed', tenant: { slug } });
    expect(second.tenantId).toBe(first.tenantId);
  });
});
