import { MSP_CHAIN } from '../../core/audit/chain.js';
import type { ActionContext } from '../../core/audit/context.js';
import { badRequest, forbidden, notFound } from '../../core/errors.js';
import { TENANT_DECISION_ROLES, type Role } from '../../core/tenancy/authz.js';
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
      // The tenant decides: its approvers and reviewers are its own people, never MSP staff
      // (not even an MSP admin binding itself), so the MSP can never approve its own requests.
      if (TENANT_DECISION_ROLES.includes(input.role)) {
        if (input.tenantId === null) {
          throw badRequest(`${input.role} is held in one tenant, never MSP-wide.`, [
            { path: 'body.tenantId', message: 'required for this role' },
          ]);
        }
        const ownStaff = (actor.kind === 'tenant_staff' || actor.kind === 'service_account') && actor.home_tenant_id === input.tenantId;
        if (!ownStaff) {
          throw forbidden(
            `Only the tenant's own staff or its own service accounts may hold ${input.role}; MSP staff never decide for a tenant.`,
          );
        }
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
