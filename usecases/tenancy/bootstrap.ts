import { systemContext } from '../../core/audit/context.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope } from '../../db/scope.js';
import { activeMspAdminExists, hasNoTenants } from '../../db/tenancy.js';
import { createActor } from './actors.js';
import { createBinding } from './bindings.js';
import { createToken } from './tokens.js';

/** Whether this database has never had a tenant (the demo is seeded only then). */
export async function isEmpty(pool: Pool): Promise<boolean> {
  return inScope(pool, mspScope, hasNoTenants);
}

/** The first MSP admin of a fresh production install; refuses when an active one exists. */
export async function bootstrapAdmin(pool: Pool, displayName: string, tokenDays: number): Promise<{ actorId: string; token: string }> {
  if (await inScope(pool, mspScope, activeMspAdminExists))
    throw new Error('An MSP admin already exists; ask them for a token (POST /v1/tokens).');
  const ctx = systemContext('bootstrap-admin');
  const actor = await createActor(pool, ctx, { kind: 'msp_staff', displayName });
  await createBinding(pool, ctx, { actorId: actor.id, role: 'msp_admin', tenantId: null });
  const { token } = await createToken(pool, ctx, {
    actorId: actor.id,
    name: 'bootstrap',
    expiresAt: new Date(Date.now() + tokenDays * 86_400_000),
  });
  return { actorId: actor.id, token };
}
