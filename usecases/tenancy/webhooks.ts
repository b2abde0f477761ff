import type { ActionContext } from '../../core/audit/context.js';
import type { Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { webhookSecretOf } from '../../db/tenancy.js';

/** The tenant's webhook signing secret, created on first read or replaced on rotation (see webhookSecretOf). */
export function webhookSecret(
  pool: Pool,
  ctx: ActionContext,
  tenantId: string,
  rotate: boolean,
): Promise<{ secret: string; createdAt: string }> {
  return inScope(pool, tenantScope(tenantId), (client) => webhookSecretOf(client, ctx, tenantId, rotate));
}
