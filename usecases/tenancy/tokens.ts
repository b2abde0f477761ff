import { MSP_CHAIN } from '../../core/audit/chain.js';
import type { ActionContext } from '../../core/audit/context.js';
import { badRequest, notFound } from '../../core/errors.js';
import type { TokenView } from '../../core/tenancy/schemas.js';
import { generateApiToken } from '../../core/tenancy/tokens.js';
import { appendActionEvent as audit } from '../../db/audit.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope } from '../../db/scope.js';
import { getTokenRowForUpdate, insertToken, listTokenRows, revokeTokenRow } from '../../db/tenancy.js';
import { tokenView, translate } from './views.js';

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
  return inScope(pool, mspScope, async (client) => (await listTokenRows(client, actorId)).map(tokenView));
}

export async function revokeToken(pool: Pool, ctx: ActionContext, tokenId: string): Promise<TokenView> {
  return inScope(pool, mspScope, async (client) => {
    const before = await getTokenRowForUpdate(client, tokenId);
    if (!before) throw notFound('API token');
    if (before.revoked_at) return tokenView(before); // revoking twice changes nothing
    const view = tokenView(await revokeTokenRow(client, tokenId));
    await audit(client, ctx, {
      tenantId: MSP_CHAIN,
      action: 'api_token.revoked',
      target: { type: 'api_token', id: tokenId },
      payload: { after: view },
    });
    return view;
  });
}
