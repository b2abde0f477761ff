import type { Pool } from '../../db/pool.js';
import type { Json } from './http.js';

/** A chain's events with `action`, oldest first, read as the owner (who, on what authority, about what). */
export async function auditActions(pool: Pool, tenantId: string, action: string): Promise<Json[]> {
  const { rows } = await pool.query(
    'SELECT actor_id, authority, workflow_id, payload, target_id, event_id FROM audit_events WHERE tenant_id = $1 AND action = $2 ORDER BY seq',
    [tenantId, action],
  );
  return rows as Json[];
}
