import { MSP_CHAIN } from '../../core/audit/chain.js';
import type { ActionContext } from '../../core/audit/context.js';
import { badRequest, notFound } from '../../core/errors.js';
import { ticketPatternIssues, type TenantPolicyDocument, type TenantView } from '../../core/tenancy/schemas.js';
import { appendActionEvent as audit } from '../../db/audit.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { getTenantRow, insertPolicyVersion, insertTenant, listTenantRows, updateTenantRow, type TenantRow } from '../../db/tenancy.js';
import { policyVersionOf, tenantView, translate } from './views.js';

export async function createTenant(
  pool: Pool,
  ctx: ActionContext,
  input: { slug: string; name: string; tags?: readonly string[]; policy: TenantPolicyDocument },
): Promise<TenantView> {
  const patternIssues = ticketPatternIssues(input.policy, 'body.policy');
  if (patternIssues.length) throw badRequest('The ticket pattern cannot be run.', patternIssues);
  return translate(
    inScope(pool, mspScope, async (client) => {
      const tenant = await insertTenant(client, {
        slug: input.slug,
        name: input.name,
        tags: [...(input.tags ?? [])].sort(),
        createdBy: ctx.actor.id,
      });
      await insertPolicyVersion(client, { tenantId: tenant.id, version: 1, document: input.policy, createdBy: ctx.actor.id });
      const target = { type: 'tenant', id: tenant.id };
      const payload = { slug: tenant.slug, name: tenant.name, after: { status: tenant.status, tags: tenant.tags, policyVersion: 1 } };
      await audit(client, ctx, { tenantId: MSP_CHAIN, action: 'tenant.created', target, payload });
      await audit(client, ctx, { tenantId: tenant.id, action: 'tenant.created', target, payload: { ...payload, policy: input.policy } });
      return tenantView(tenant, 1);
    }),
    { unique: `A tenant with slug "${input.slug}" already exists.` },
  );
}

export async function listTenants(pool: Pool, visible: 'all' | string[], status?: 'active' | 'suspended'): Promise<TenantView[]> {
  return inScope(pool, mspScope, async (client) => {
    const rows = await listTenantRows(client, { ids: visible === 'all' ? null : visible, ...(status ? { status } : {}) });
    return rows.map((row) => tenantView(row, row.policy_version));
  });
}

export async function getTenant(pool: Pool, tenantId: string): Promise<TenantView> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const row = await getTenantRow(client, tenantId);
    if (!row) throw notFound('tenant');
    return tenantView(row, await policyVersionOf(client, tenantId));
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
    const before = await getTenantRow(client, tenantId, true);
    if (!before) throw notFound('tenant');
    const after = await change(client, before);
    if (!after) return tenantView(before, await policyVersionOf(client, tenantId)); // nothing changed, nothing to audit
    const target = { type: 'tenant', id: tenantId };
    const payload = {
      before: { name: before.name, status: before.status, tags: before.tags },
      after: { name: after.name, status: after.status, tags: after.tags },
    };
    await audit(client, ctx, { tenantId: MSP_CHAIN, action, target, payload });
    await audit(client, ctx, { tenantId, action, target, payload });
    return tenantView(after, await policyVersionOf(client, tenantId));
  });
}

/** A new name and/or set of tags (kept sorted); nothing changed, nothing audited. */
export function updateTenant(
  pool: Pool,
  ctx: ActionContext,
  tenantId: string,
  change: { name?: string | undefined; tags?: readonly string[] | undefined },
): Promise<TenantView> {
  const tags = change.tags ? [...change.tags].sort() : undefined;
  return changeTenant(pool, ctx, tenantId, 'tenant.updated', async (client, before) => {
    const renamed = change.name !== undefined && change.name !== before.name;
    const retagged = tags !== undefined && JSON.stringify(tags) !== JSON.stringify(before.tags);
    if (!renamed && !retagged) return undefined;
    return updateTenantRow(client, tenantId, { ...(renamed ? { name: change.name } : {}), ...(retagged ? { tags } : {}) });
  });
}

export function setTenantStatus(pool: Pool, ctx: ActionContext, tenantId: string, status: 'active' | 'suspended'): Promise<TenantView> {
  return changeTenant(pool, ctx, tenantId, status === 'suspended' ? 'tenant.suspended' : 'tenant.resumed', async (client, before) =>
    before.status === status ? undefined : updateTenantRow(client, tenantId, { status }),
  );
}
