import { randomUUID } from 'node:crypto';
import QueryStream from 'pg-query-stream';
import { GENESIS_HASH, hashEvent, type AuditEvent, type AuditEventInput } from '../core/audit/chain.js';
import type { ActionContext } from '../core/audit/context.js';
import type { PoolClient } from './pool.js';

interface AuditRow {
  tenant_id: string;
  seq: string;
  event_id: string;
  occurred_at: Date;
  actor_id: string;
  actor_type: AuditEvent['actor']['type'];
  action: string;
  target_type: string | null;
  target_id: string | null;
  authority: AuditEvent['authority'];
  workflow_id: string | null;
  run_id: string | null;
  payload: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

const COLUMNS = `tenant_id, seq, event_id, occurred_at, actor_id, actor_type, action, target_type, target_id,
  authority, workflow_id, run_id, payload, prev_hash, hash`;

export function rowToEvent(row: AuditRow): AuditEvent {
  return {
    tenantId: row.tenant_id,
    seq: Number(row.seq),
    eventId: row.event_id,
    occurredAt: row.occurred_at.toISOString(),
    actor: { id: row.actor_id, type: row.actor_type },
    action: row.action,
    target: row.target_type !== null && row.target_id !== null ? { type: row.target_type, id: row.target_id } : null,
    authority: row.authority,
    workflowId: row.workflow_id,
    runId: row.run_id,
    payload: row.payload,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/** Millisecond ISO time, so the hashed value and the stored timestamptz read back identically. */
export function auditTime(date: Date): string {
  return new Date(Math.floor(date.getTime())).toISOString();
}

/**
 * Appends one event to its tenant's chain inside the caller's transaction (so it commits or rolls
 * back with the change it records). Idempotent by event id: a retry returns the stored event.
 * The head row lock serialises appends per chain, which keeps `seq` gapless.
 */
export async function appendAuditEvent(client: PoolClient, input: AuditEventInput): Promise<AuditEvent> {
  // Create the head on the chain's first event and lock it either way (an upsert that updates
  // takes the row lock): appends to one chain queue here, which keeps seq gapless.
  const head = await client.query<{ seq: string; hash: string }>(
    `INSERT INTO audit_chain_heads (tenant_id, seq, hash) VALUES ($1, 0, $2)
     ON CONFLICT (tenant_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id
     RETURNING seq, hash`,
    [input.tenantId, GENESIS_HASH],
  );
  const { seq: headSeq, hash: prevHash } = head.rows[0]!;
  const unhashed = { ...input, occurredAt: auditTime(new Date(input.occurredAt)), seq: Number(headSeq) + 1, prevHash };
  const event: AuditEvent = { ...unhashed, hash: hashEvent(unhashed) };
  // The event and the new head in one statement. A retry of an event already stored hits the
  // unique event id (checked against committed rows, whatever this statement's snapshot), inserts
  // nothing and moves no head; the stored event is returned instead.
  const inserted = await client.query(
    `WITH ins AS (
       INSERT INTO audit_events (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
       ON CONFLICT (event_id) DO NOTHING
       RETURNING tenant_id, seq, hash)
     UPDATE audit_chain_heads h SET seq = ins.seq, hash = ins.hash FROM ins WHERE h.tenant_id = ins.tenant_id`,
    [
      event.tenantId,
      event.seq,
      event.eventId,
      event.occurredAt,
      event.actor.id,
      event.actor.type,
      event.action,
      event.target?.type ?? null,
      event.target?.id ?? null,
      JSON.stringify(event.authority),
      event.workflowId,
      event.runId,
      JSON.stringify(event.payload),
      event.prevHash,
      event.hash,
    ],
  );
  if (inserted.rowCount === 1) return event;
  const existing = await client.query<AuditRow>(`SELECT ${COLUMNS} FROM audit_events WHERE event_id = $1 AND tenant_id = $2`, [
    input.eventId,
    input.tenantId,
  ]);
  if (!existing.rows[0]) {
    // The id belongs to an event on another chain: refuse, as the unique constraint itself would.
    throw Object.assign(new Error(`audit event id ${input.eventId} is already used on another chain`), {
      code: '23505',
      constraint: 'audit_events_event_id_key',
    });
  }
  return rowToEvent(existing.rows[0]);
}

export interface AuditFilter {
  from?: Date;
  to?: Date;
  action?: string;
  actorId?: string;
  targetId?: string;
  workflowId?: string;
  /** Only events with seq greater than this (cursor pagination). */
  afterSeq?: number;
}

function whereClause(tenantId: string, filter: AuditFilter): { sql: string; params: unknown[] } {
  const params: unknown[] = [tenantId];
  const clauses = ['tenant_id = $1'];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    clauses.push(sql.replace('?', `$${params.length}`));
  };
  if (filter.from) add('occurred_at >= ?', filter.from);
  if (filter.to) add('occurred_at < ?', filter.to);
  if (filter.action) add('action = ?', filter.action);
  if (filter.actorId) add('actor_id = ?', filter.actorId);
  if (filter.targetId) add('target_id = ?', filter.targetId);
  if (filter.workflowId) add('workflow_id = ?', filter.workflowId);
  if (filter.afterSeq !== undefined) add('seq > ?', filter.afterSeq);
  return { sql: clauses.join(' AND '), params };
}

export async function listAuditEvents(client: PoolClient, tenantId: string, filter: AuditFilter, limit: number): Promise<AuditEvent[]> {
  const { sql, params } = whereClause(tenantId, filter);
  params.push(limit);
  const { rows } = await client.query<AuditRow>(
    `SELECT ${COLUMNS} FROM audit_events WHERE ${sql} ORDER BY seq LIMIT $${params.length}`,
    params,
  );
  return rows.map(rowToEvent);
}

/** Streams matching events in seq order through a cursor, so memory stays bounded however many there are. */
export async function* streamAuditEvents(client: PoolClient, tenantId: string, filter: AuditFilter = {}): AsyncGenerator<AuditEvent> {
  const { sql, params } = whereClause(tenantId, filter);
  const stream = client.query(
    new QueryStream(`SELECT ${COLUMNS} FROM audit_events WHERE ${sql} ORDER BY seq`, params, { batchSize: 1000 }),
  );
  try {
    for await (const row of stream) yield rowToEvent(row as AuditRow);
  } finally {
    stream.destroy();
  }
}

export async function chainHead(client: PoolClient, tenantId: string): Promise<{ seq: number; hash: string }> {
  const { rows } = await client.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_chain_heads WHERE tenant_id = $1', [
    tenantId,
  ]);
  return rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : { seq: 0, hash: GENESIS_HASH };
}

export interface AuditRecord {
  /** The tenant's id, or MSP_CHAIN for MSP-wide events. */
  tenantId: string;
  action: string;
  target: { type: string; id: string } | null;
  payload: Record<string, unknown>;
}

/** Records an action outside any workflow (an API write, a first use), in the same transaction as the change itself. */
export function appendActionEvent(client: PoolClient, ctx: ActionContext, record: AuditRecord): Promise<AuditEvent> {
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
