import { MSP_CHAIN } from '../../core/audit/chain.js';
import type { ActionContext } from '../../core/audit/context.js';
import { badRequest, notFound } from '../../core/errors.js';
import type { Role } from '../../core/tenancy/authz.js';
import type { BindingView } from '../../core/tenancy/schemas.js';
import { appendActionEvent as audit } from '../../db/audit.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope } from '../../db/scope.js';
import { deleteBindingRow, getActorRow, insertBinding, listBindingRows } from '../../db/tenancy.js';
import { bindingView, translate } from './views.js';

export async function createBinding(
  pool: Pool,
  ctx: ActionContext,
  input: { actorId: string; role: Role; tenantId: string | null },
): Promise<BindingView> {
  return translate(
    inScope(pool, mspScope, async (client) => {
      const actor = await getActorRow(client, input.actorId);
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
  return inScope(pool, mspScope, async (client) => (await listBindingRows(client, filter)).map(bindingView));
}

export async function deleteBinding(pool: Pool, ctx: ActionContext, bindingId: string): Promise<void> {
  await inScope(pool, mspScope, async (client) => {
    const removed = await deleteBindingRow(client, bindingId);
    if (!removed) throw notFound('role binding');
    await audit(client, ctx, {
      tenantId: removed.tenant_id ?? MSP_CHAIN,
      action: 'role_binding.deleted',
      target: { type: 'role_binding', id: removed.id },
      payload: { before: bindingView(removed) },
    });
  });
}
