import type { PoolClient } from './pool.js';

// First key of the two-key advisory lock form, so this lock never meets single-key ones or the
// entitlement ledger's (db/directory/ledger.ts).
const LOCK_NAMESPACE = 0x544e5453;

/**
 * Serializes starting applies and rollouts (for the rest of the transaction): the check that no
 * tenant is under way elsewhere and the row that makes it so are then one step, so two requests at
 * once cannot both find a tenant free and both start it. Starts are rare; one lock is enough.
 */
export async function lockTemplateStarts(client: PoolClient): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_NAMESPACE]);
}

/** An apply whose workflow never started (its placeholder row, revision 0): nobody will run it. */
export async function deleteUnstartedApply(client: PoolClient, tenantId: string, rolloutId: string): Promise<void> {
  await client.query('DELETE FROM template_applies WHERE tenant_id = $1 AND rollout_id = $2 AND revision = 0', [tenantId, rolloutId]);
}

/** A rollback whose workflow never started (its placeholder row, revision 0): nobody will run it. */
export async function deleteUnstartedRollback(client: PoolClient, tenantId: string, rolloutId: string): Promise<void> {
  await client.query('DELETE FROM template_rollbacks WHERE tenant_id = $1 AND rollout_id = $2 AND revision = 0', [tenantId, rolloutId]);
}
