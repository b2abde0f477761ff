import { ChainVerifier, type VerifyResult } from '../../core/audit/chain.js';
import { chainHead, streamAuditEvents } from '../../db/audit.js';
import type { Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';

export interface ChainVerification extends VerifyResult {
  chain: string;
}

/** Every audit chain of the database, verified from genesis to its stored head. */
export async function verifyChains(owner: Pool): Promise<ChainVerification[]> {
  const { rows: heads } = await owner.query<{ tenant_id: string }>('SELECT tenant_id FROM audit_chain_heads ORDER BY tenant_id');
  const results: ChainVerification[] = [];
  for (const { tenant_id: chain } of heads) {
    const result = await inScope(owner, tenantScope(chain), async (client) => {
      const verifier = new ChainVerifier();
      for await (const event of streamAuditEvents(client, chain)) verifier.push(event);
      return verifier.finish(await chainHead(client, chain));
    });
    results.push({ chain, ...result });
  }
  return results;
}
