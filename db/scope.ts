import pg from 'pg';
import type { Pool, PoolClient } from './pool.js';

const { escapeLiteral } = pg;

/**
 * Whose rows a transaction may see. Row-level security reads these settings, so a query that
 * forgets its tenant filter still sees only this tenant's rows.
 */
export type Scope = { tenantId: string } | { msp: true };

export const mspScope: Scope = { msp: true };
export const tenantScope = (tenantId: string): Scope => ({ tenantId });

/** Runs `fn` in one transaction bound to `scope`; rolls back on error and rethrows it unchanged. */
export async function inScope<T>(pool: Pool, scope: Scope, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // While checked out, pg-pool no longer listens for this client's errors; a connection lost
  // mid-transaction (e.g. PostgreSQL restarting) would otherwise crash the process. The pending
  // query rejects anyway, which is how the caller learns of it.
  const onError = () => undefined;
  client.on('error', onError);
  try {
    // One round trip: BEGIN and the scope settings as a single simple-protocol query.
    const tenant = 'tenantId' in scope ? scope.tenantId : '';
    await client.query(
      `BEGIN; SELECT set_config('tenure.tenant_id', ${escapeLiteral(tenant)}, true), set_config('tenure.msp_scope', '${'msp' in scope ? 'on' : 'off'}', true)`,
    );
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.off('error', onError);
    client.release();
  }
}
