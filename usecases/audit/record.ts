import { randomUUID } from 'node:crypto';
import type { AuditEvent } from '../../core/audit/chain.js';
import { appendAuditEvent } from '../../db/audit.js';
import type { PoolClient } from '../../db/pool.js';
import type { ActionContext } from '../context.js';

export interface AuditRecord {
  /** The tenant's id, or MSP_CHAIN for MSP-wide events. */
  tenantId: string;
  action: string;
  target: { type: string; id: string } | null;
  payload: Record<string, unknown>;
}

/** Records an API write in the same transaction as the change itself. */
export function audit(client: PoolClient, ctx: ActionContext, record: AuditRecord): Promise<AuditEvent> {
  return appendAuditEvent(client, {
    ...record,
    eventId: randomUUID(),
    occurredAt: new Date().toISOString(),
    actor: ctx.actor,
    authority: ctx.authority,
    workflowId: null,
    runId: null,
  });
}
