import { randomUUID } from 'node:crypto';
import type { AuditEventInput } from '../../core/audit/chain.js';
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

/** An event to append to `tenantId`'s chain, with a fresh id; `overrides` replace any field. */
export function auditInput(tenantId: string, overrides: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    tenantId,
    eventId: randomUUID(),
    occurredAt: new Date().toISOString(),
    actor: { id: 'tester', type: 'user' },
    action: 'test.appended',
    target: { type: 'thing', id: randomUUID() },
    authority: { roles: ['msp_admin'] },
    workflowId: null,
    runId: null,
    payload: { n: 1 },
    ...overrides,
  };
}
