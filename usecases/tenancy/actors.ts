import { MSP_CHAIN } from '../../core/audit/chain.js';
import type { ActionContext } from '../../core/audit/context.js';
import { notFound } from '../../core/errors.js';
import type { ActorView } from '../../core/tenancy/schemas.js';
import { appendActionEvent as audit } from '../../db/audit.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope } from '../../db/scope.js';
import { disableActorRow, getActorRow, insertActor, listActorRows, liveBindingsOf, type ActorRow } from '../../db/tenancy.js';
import { actorView, translate } from './views.js';

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
  return inScope(pool, mspScope, async (client) => (await listActorRows(client)).map(actorView));
}

export async function getActor(pool: Pool, actorId: string): Promise<ActorView> {
  return inScope(pool, mspScope, async (client) => {
    const row = await getActorRow(client, actorId);
    if (!row) throw notFound('actor');
    return actorView(row);
  });
}

/**
 * Who an actor is, for the people of one tenant (e.g. an approver reading who asked): only an actor
 * who can act in that tenant — MSP staff, or the tenant's own staff and service accounts. Anyone
 * else is "not found", so a tenant learns nothing about another tenant's people.
 */
export async function actorInTenant(
  pool: Pool,
  tenantId: string,
  actorId: string,
): Promise<{ actorId: string; displayName: string; kind: ActorRow['kind'] }> {
  return inScope(pool, mspScope, async (client) => {
    const row = await getActorRow(client, actorId);
    const bindings = row ? await liveBindingsOf(client, actorId) : [];
    const actsHere =
      row !== undefined &&
      (row.kind === 'msp_staff' ||
        row.home_tenant_id === tenantId ||
        bindings.some((b) => b.tenant_id === null || b.tenant_id === tenantId));
    if (!actsHere) throw notFound('actor');
    return { actorId: row.id, displayName: row.display_name, kind: row.kind };
  });
}

export async function disableActor(pool: Pool, ctx: ActionContext, actorId: string): Promise<ActorView> {
  return inScope(pool, mspScope, async (client) => {
    const before = await getActorRow(client, actorId, true);
    if (!before) throw notFound('actor');
    if (before.status === 'disabled') return actorView(before);
    const after = await disableActorRow(client, actorId);
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
