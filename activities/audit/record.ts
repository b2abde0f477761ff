import { Context } from '@temporalio/activity';
import type { ActorType, AuditEvent, Authority } from '../../core/audit/chain.js';
import { appendAuditEvent } from '../../db/audit.js';
import type { PoolClient } from '../../db/pool.js';
import type { Clock } from '../index.js';

/** What a workflow hands its record activity: the event id it made (so it is written once), who, what, on whose authority. */
export interface WorkflowEvent {
  eventId: string;
  action: string;
  actor: { id: string; type: ActorType };
  authority: Authority;
  payload: Record<string, unknown>;
}

/**
 * Appends a workflow's event to its tenant's chain, stamped with the calling workflow's id and
 * run and the activity clock. Call it from inside the activity, in the caller's transaction.
 */
export function appendWorkflowEvent(
  client: PoolClient,
  clock: Clock,
  tenantId: string,
  target: { type: string; id: string },
  event: WorkflowEvent,
): Promise<AuditEvent> {
  const { workflowId, runId } = Context.current().info.workflowExecution ?? { workflowId: null, runId: null };
  return appendAuditEvent(client, {
    tenantId,
    eventId: event.eventId,
    occurredAt: clock.now().toISOString(),
    actor: event.actor,
    action: event.action,
    target,
    authority: event.authority,
    workflowId,
    runId,
    payload: event.payload,
  });
}
