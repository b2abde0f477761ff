import { randomBytes } from 'node:crypto';
import { MSP_CHAIN } from '../core/audit/chain.js';
import type { Role } from '../core/tenancy/authz.js';
import { badRequest, conflict, notFound } from '../core/errors.js';
import type { ActorView, BindingView, PolicyView, TenantPolicyDocument, TenantView, TokenView } from '../core/tenancy/schemas.js';
import {
  currentPolicy,
  insertActor,
  insertBinding,
  insertPolicyVersion,
  insertTenant,
  insertToken,
  type ActorRow,
  type BindingRow,
  type PolicyRow,
  type TenantRow,
  type TokenRow,
} from '../db/tenancy.js';
import type { Pool, PoolClient } from '../db/pool.js';
import { inScope, mspScope, tenantScope } from '../db/scope.js';
import { generateApiToken } from '../api/auth.js';
import { audit } from './audit/record.js';
import type { ActionContext } from './context.js';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export const tenantView = (t: TenantRow, policyVersion: number): TenantView => ({
  id: t.id,
  slug: t.slug,
  name: t.name,
  status: t.status,
  policyVersion,
  createdAt: t.created_at.toISOString(),
  updatedAt: t.updated_at.toISOString(),
});
const policyView = (p: PolicyRow): PolicyView => ({
  tenantId: p.tenant_id,
  version: p.version,
  document: p.document as TenantPolicyDocument,
  createdAt: p.created_at.toISOString(),
  createdBy: p.created_by,
});
const actorView = (a: ActorRow): ActorView => ({
  id: a.id,
  kind: a.kind,
  displayName: a.display_name,
  email: a.email,
  homeTenantId: a.home_tenant_id,
  oidcSubject: a.oidc_subject,
  status: a.status,
  createdAt: a.created_at.toISOString(),
});
const bindingView = (b: BindingRow): BindingView => ({
  id: b.id,
  actorId: b.actor_id,
  role: b.role,
  tenantId: b.tenant_id,
  createdAt: b.created_at.toISOString(),
  createdBy: b.created_by,
});
const tokenView = (t: TokenRow): TokenView => ({
  id: t.id,
  actorId: t.actor_id,
  name: t.name,
  prefix: t.prefix,
  expiresAt: iso(t.expires_at),
  revokedAt: iso(t.revoked_at),
  lastUsedAt: iso(t.last_used_at),
  createdAt: t.created_at.toISOString(),
});

/** Turns constraint violations the caller caused into 409 / 400 instead of a 500. */
async function translate<T>(work: Promise<T>, messages: { unique?: string; foreignKey?: { path: string; message: string } }): Promise<T> {
  try {
    return await work;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === '23505' && messages.unique) throw conflict(messages.unique);
    if (code === '23503' && messages.foreignKey) throw badRequest('A referenced object does not exist.', [messages.foreignKey]);
    throw error;
  }
}

// ---------------------------------------------------------------- tenants

export async function createTenant(
  pool: Pool,
  ctx: ActionContext,
  input: { slug: string; name: string; policy: TenantPolicyDocument },
): Promise<TenantView> {
  return translate(
    inScope(pool, mspScope, async (client) => {
      const tenant = await insertTenant(client, { slug: input.slug, name: input.name, createdBy: ctx.actor.id });
      await insertPolicyVersion(client, { tenantId: tenant.id, version: 1, document: input.policy, createdBy: ctx.actor.id });
      const target = { type: 'tenant', id: tenant.id };
      const payload = { slug: tenant.slug, name: tenant.name, after: { status: tenant.status, policyVersion: 1 } };
      await audit(client, ctx, { tenantId: MSP_CHAIN, action: 'tenant.created', target, payload });
      await audit(client, ctx, { tenantId: tenant.id, action: 'tenant.created', target, payload: { ...payload, policy: input.policy } });
      return tenantView(tenant, 1);
    }),
    { unique: `A tenant with slug "${input.slug}" already exists.` },
  );
}

async function policyVersionOf(client: PoolClient, tenantId: string): Promise<number> {
  return (await currentPolicy(client, tenantId))?.version ?? 0;
}

export async function listTenants(pool: Pool, visible: 'all' | string[], status?: 'active' | 'suspended'): Promise<TenantView[]> {
  return inScope(pool, mspScope, async (client) => {
    const { rows } = await client.query<TenantRow & { policy_version: number }>(
      `SELECT t.*, coalesce((SELECT max(version) FROM tenant_policies p WHERE p.tenant_id = t.id), 0) AS policy_version
         FROM tenants t
        WHERE ($1::uuid[] IS NULL OR t.id = ANY($1)) AND ($2::text IS NULL OR t.status = $2)
        ORDER BY t.slug`,
      [visible === 'all' ? null : visible, status ?? null],
    );
    return rows.map((row) => tenantView(row, row.policy_version));
  });
}

export async function getTenant(pool: Pool, tenantId: string): Promise<TenantView> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const { rows } = await client.query<TenantRow>('SELECT * FROM tenants WHERE id = $1', [tenantId]);
    if (!rows[0]) throw notFound('tenant');
    return tenantView(rows[0], await policyVersionOf(client, tenantId));
  });
}

async function changeTenant(
  pool: Pool,
  ctx: ActionContext,
  tenantId: string,
  action: string,
  change: (client: PoolClient, before: TenantRow) => Promise<TenantRow | undefined>,
): Promise<TenantView> {
  return inScope(pool, mspScope, async (client) => {
    const { rows } = await client.query<TenantRow>('SELECT * FROM tenants WHERE id = $1 FOR UPDATE', [tenantId]);
    const before = rows[0];
    if (!before) throw notFound('tenant');
    const after = await change(client, before);
    if (!after) return tenantView(before, await policyVersionOf(client, tenantId)); // nothing changed, nothing to audit
    const target = { type: 'tenant', id: tenantId };
    const payload = { before: { name: before.name, status: before.status }, after: { name: after.name, status: after.status } };
    await audit(client, ctx, { tenantId: MSP_CHAIN, action, target, payload });
    await audit(client, ctx, { tenantId, action, target, payload });
    return tenantView(after, await policyVersionOf(client, tenantId));
  });
}

export function renameTenant(pool: Pool, ctx: ActionContext, tenantId: string, name: string): Promise<TenantView> {
  return changeTenant(pool, ctx, tenantId, 'tenant.updated', async (client, before) => {
    if (before.name === name) return undefined;
    const { rows } = await client.query<TenantRow>('UPDATE tenants SET name = $2, updated_at = now() WHERE id = $1 RETURNING *', [
      tenantId,
      name,
    ]);
    return rows[0];
  });
}

export function setTenantStatus(pool: Pool, ctx: ActionContext, tenantId: string, status: 'active' | 'suspended'): Promise<TenantView> {
  return changeTenant(pool, ctx, tenantId, status === 'suspended' ? 'tenant.suspended' : 'tenant.resumed', async (client, before) => {
    if (before.status === status) return undefined;
    const { rows } = await client.query<TenantRow>('UPDATE tenants SET status = $2, updated_at = now() WHERE id = $1 RETURNING *', [
      tenantId,
      status,
    ]);
    return rows[0];
  });
}

// ---------------------------------------------------------------- policies

export async function getPolicy(pool: Pool, tenantId: string, version?: number): Promise<PolicyView> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const row =
      version === undefined
        ? await currentPolicy(client, tenantId)
        : (await client.query<PolicyRow>('SELECT * FROM tenant_policies WHERE tenant_id = $1 AND version = $2', [tenantId, version]))
            .rows[0];
    if (!row) throw notFound('policy version');
    return policyView(row);
  });
}

export async function listPolicyVersions(pool: Pool, tenantId: string): Promise<PolicyView[]> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const { rows } = await client.query<PolicyRow>('SELECT * FROM tenant_policies WHERE tenant_id = $1 ORDER BY version DESC', [tenantId]);
    return rows.map(policyView);
  });
}

/**
 * Birthright rules may only name roles the tenant's directory has: a joiner would otherwise be
 * provisioned half-way and stop at the missing role. (The built-in directory; a tenant on
 * another connector would be asked through it.)
 */
async function checkBirthrightRoles(client: PoolClient, tenantId: string, document: TenantPolicyDocument): Promise<void> {
  const named = [...new Set(document.lifecycle.rules.flatMap((rule) => rule.roles))];
  if (named.length === 0) return;
  const { rows } = await client.query<{ name: string }>('SELECT name FROM directory_roles WHERE tenant_id = $1 AND name = ANY($2)', [
    tenantId,
    named,
  ]);
  const known = new Set(rows.map((r) => r.name));
  const issues = document.lifecycle.rules.flatMap((rule, i) =>
    rule.roles.flatMap((role, j) =>
      known.has(role)
        ? []
        : [{ path: `body.document.lifecycle.rules.${i}.roles.${j}`, message: `no role ${role} in the tenant directory` }],
    ),
  );
  if (issues.length) throw badRequest('Birthright rules name roles the tenant directory does not have.', issues);
}

export async function putPolicy(
  pool: Pool,
  ctx: ActionContext,
  tenantId: string,
  expectedVersion: number,
  document: TenantPolicyDocument,
): Promise<PolicyView> {
  return translate(
    inScope(pool, tenantScope(tenantId), async (client) => {
      await client.query('SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE', [tenantId]); // serialise versioning per tenant
      const current = await currentPolicy(client, tenantId);
      if (!current) throw notFound('tenant');
      if (current.version !== expectedVersion) {
        throw conflict(`The policy is at version ${current.version}, not ${expectedVersion}; re-read it and apply your change again.`);
      }
      await checkBirthrightRoles(client, tenantId, document);
      const next = await insertPolicyVersion(client, { tenantId, version: current.version + 1, document, createdBy: ctx.actor.id });
      await audit(client, ctx, {
        tenantId,
        action: 'tenant_policy.updated',
        target: { type: 'tenant_policy', id: `${tenantId}/${next.version}` },
        payload: { before: { version: current.version, document: current.document }, after: { version: next.version, document } },
      });
      return policyView(next);
    }),
    { unique: 'The policy changed concurrently; re-read it and apply your change again.' },
  );
}

// ---------------------------------------------------------------- actors

export async function createActor(
  pool: Pool,
  ctx: ActionContext,
  input: { kind: ActorRow['kind']; displayName: string; email?: string; homeTenantId?: string; oidcSubject?: string },
): Promise<ActorView> {
  return translate(
    inScope(pool, mspScope, async (client) => {
      const actor = await insertActor(client, { ...input, createdBy: ctx.actor.id });
      const view = actorView(actor);
      const record = { action: 'actor.created', target: { type: 'actor', id: actor.id }, payload: { after: view } };
      await audit(client, ctx, { tenantId: MSP_CHAIN, ...record });
      if (actor.home_tenant_id) await audit(client, ctx, { tenantId: actor.home_tenant_id, ...record });
      return view;
    }),
    {
      unique: `Another actor already has OIDC subject "${input.oidcSubject}".`,
      foreignKey: { path: 'body.homeTenantId', message: 'no such tenant' },
    },
  );
}

export async function listActors(pool: Pool): Promise<ActorView[]> {
  return inScope(pool, mspScope, async (client) => {
    const { rows } = await client.query<ActorRow>('SELECT * FROM actors ORDER BY display_name, id');
    return rows.map(actorView);
  });
}

export async function getActor(pool: Pool, actorId: string): Promise<ActorView> {
  return inScope(pool, mspScope, async (client) => {
    const { rows } = await client.query<ActorRow>('SELECT * FROM actors WHERE id = $1', [actorId]);
    if (!rows[0]) throw notFound('actor');
    return actorView(rows[0]);
  });
}

export async function disableActor(pool: Pool, ctx: ActionContext, actorId: string): Promise<ActorView> {
  return inScope(pool, mspScope, async (client) => {
    const { rows } = await client.query<ActorRow>('SELECT * FROM actors WHERE id = $1 FOR UPDATE', [actorId]);
    const before = rows[0];
    if (!before) throw notFound('actor');
    if (before.status === 'disabled') return actorView(before);
    const after = (await client.query<ActorRow>("UPDATE actors SET status = 'disabled' WHERE id = $1 RETURNING *", [actorId])).rows[0]!;
    const record = {
      action: 'actor.disabled',
      target: { type: 'actor', id: actorId },
      payload: { before: { status: before.status }, after: { status: after.status } },
    };
    await audit(client, ctx, { tenantId: MSP_CHAIN, ...record });
    if (after.home_tenant_id) await audit(client, ctx, { tenantId: after.home_tenant_id, ...record });
    return actorView(after);
  });
}

// ---------------------------------------------------------------- role bindings

export async function createBinding(
  pool: Pool,
  ctx: ActionContext,
  input: { actorId: string; role: Role; tenantId: string | null },
): Promise<BindingView> {
  return translate(
    inScope(pool, mspScope, async (client) => {
      const actor = (await client.query<ActorRow>('SELECT * FROM actors WHERE id = $1', [input.actorId])).rows[0];
      if (!actor) throw badRequest('A referenced object does not exist.', [{ path: 'body.actorId', message: 'no such actor' }]);
      if (actor.kind === 'tenant_staff' && input.tenantId !== actor.home_tenant_id) {
        throw badRequest('Tenant staff can hold roles only in their own tenant.', [
          { path: 'body.tenantId', message: 'must be the actor’s home tenant' },
        ]);
      }
      const binding = await insertBinding(client, { ...input, createdBy: ctx.actor.id });
      await audit(client, ctx, {
        tenantId: binding.tenant_id ?? MSP_CHAIN,
        action: 'role_binding.created',
        target: { type: 'role_binding', id: binding.id },
        payload: { after: bindingView(binding) },
      });
      return bindingView(binding);
    }),
    {
      unique: `The actor already holds ${input.role} ${input.tenantId ? 'in that tenant' : 'MSP-wide'}.`,
      foreignKey: { path: 'body.tenantId', message: 'no such tenant' },
    },
  );
}

export async function listBindings(pool: Pool, filter: { actorId?: string; tenantId?: string }): Promise<BindingView[]> {
  return inScope(pool, mspScope, async (client) => {
    const { rows } = await client.query<BindingRow>(
      `SELECT * FROM role_bindings WHERE ($1::uuid IS NULL OR actor_id = $1) AND ($2::uuid IS NULL OR tenant_id = $2)
        ORDER BY created_at, id`,
      [filter.actorId ?? null, filter.tenantId ?? null],
    );
    return rows.map(bindingView);
  });
}

export async function deleteBinding(pool: Pool, ctx: ActionContext, bindingId: string): Promise<void> {
  await inScope(pool, mspScope, async (client) => {
    const { rows } = await client.query<BindingRow>('DELETE FROM role_bindings WHERE id = $1 RETURNING *', [bindingId]);
    const removed = rows[0];
    if (!removed) throw notFound('role binding');
    await audit(client, ctx, {
      tenantId: removed.tenant_id ?? MSP_CHAIN,
      action: 'role_binding.deleted',
      target: { type: 'role_binding', id: removed.id },
      payload: { before: bindingView(removed) },
    });
  });
}

// ---------------------------------------------------------------- API tokens

export async function createToken(
  pool: Pool,
  ctx: ActionContext,
  input: { actorId: string; name: string; expiresAt?: Date },
): Promise<TokenView & { token: string }> {
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) {
    throw badRequest('The expiry is in the past.', [{ path: 'body.expiresAt', message: 'must be in the future' }]);
  }
  return translate(
    inScope(pool, mspScope, async (client) => {
      const secret = generateApiToken();
      const row = await insertToken(client, {
        actorId: input.actorId,
        name: input.name,
        hash: secret.hash,
        prefix: secret.prefix,
        expiresAt: input.expiresAt ?? null,
        createdBy: ctx.actor.id,
      });
      const view = tokenView(row);
      await audit(client, ctx, {
        tenantId: MSP_CHAIN,
        action: 'api_token.created',
        target: { type: 'api_token', id: row.id },
        payload: { after: view },
      });
      return { ...view, token: secret.token };
    }),
    { foreignKey: { path: 'body.actorId', message: 'no such actor' } },
  );
}

export async function listTokens(pool: Pool, actorId?: string): Promise<TokenView[]> {
  return inScope(pool, mspScope, async (client) => {
    const { rows } = await client.query<TokenRow>(
      `SELECT id, actor_id, name, prefix, expires_at, revoked_at, last_used_at, created_at, created_by
         FROM api_tokens WHERE ($1::uuid IS NULL OR actor_id = $1) ORDER BY created_at, id`,
      [actorId ?? null],
    );
    return rows.map(tokenView);
  });
}

export async function revokeToken(pool: Pool, ctx: ActionContext, tokenId: string): Promise<TokenView> {
  const columns = 'id, actor_id, name, prefix, expires_at, revoked_at, last_used_at, created_at, created_by';
  return inScope(pool, mspScope, async (client) => {
    const before = (await client.query<TokenRow>(`SELECT ${columns} FROM api_tokens WHERE id = $1 FOR UPDATE`, [tokenId])).rows[0];
    if (!before) throw notFound('API token');
    if (before.revoked_at) return tokenView(before); // revoking twice changes nothing
    const after = (await client.query<TokenRow>(`UPDATE api_tokens SET revoked_at = now() WHERE id = $1 RETURNING ${columns}`, [tokenId]))
      .rows[0]!;
    const view = tokenView(after);
    await audit(client, ctx, {
      tenantId: MSP_CHAIN,
      action: 'api_token.revoked',
      target: { type: 'api_token', id: tokenId },
      payload: { after: view },
    });
    return view;
  });
}

// ---------------------------------------------------------------- webhook signing secret

/**
 * The secret that signs this tenant's webhook bodies (HMAC-SHA256 over `<timestamp>.<body>`);
 * created on first read, replaced on rotation. Both are audited; the secret itself never is.
 */
export async function webhookSecret(
  pool: Pool,
  ctx: ActionContext,
  tenantId: string,
  rotate: boolean,
): Promise<{ secret: string; createdAt: string }> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const tenant = await client.query('SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE', [tenantId]);
    if (!tenant.rowCount) throw notFound('tenant');
    const existing = (
      await client.query<{ secret: string; created_at: Date }>(
        'SELECT secret, created_at FROM tenant_webhook_secrets WHERE tenant_id = $1',
        [tenantId],
      )
    ).rows[0];
    if (existing && !rotate) return { secret: existing.secret, createdAt: existing.created_at.toISOString() };
    const secret = randomBytes(32).toString('base64url');
    const { rows } = await client.query<{ created_at: Date }>(
      `INSERT INTO tenant_webhook_secrets (tenant_id, secret) VALUES ($1, $2)
       ON CONFLICT (tenant_id) DO UPDATE SET secret = EXCLUDED.secret, created_at = now() RETURNING created_at`,
      [tenantId, secret],
    );
    await audit(client, ctx, {
      tenantId,
      action: existing ? 'tenant_webhook_secret.rotated' : 'tenant_webhook_secret.created',
      target: { type: 'tenant', id: tenantId },
      payload: {},
    });
    return { secret, createdAt: rows[0]!.created_at.toISOString() };
  });
}
