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
 * A transaction run by the group committer (db/audit-group.ts): appends made through its client
 * are sealed in memory on the head it locked, and written together when its jobs are done.
 */
export interface GroupAppender {
  append(input: AuditEventInput): AuditEvent;
}
const groups = new WeakMap<PoolClient, GroupAppender>();

export function bindGroupAppender(client: PoolClient, appender: GroupAppender | undefined): void {
  if (appender) groups.set(client, appender);
  else groups.delete(client);
}

const groupOf = (client: PoolClient): GroupAppender | undefined => groups.get(client);

/** The event as it will be stored: time cut to milliseconds, seq and links assigned, hashed. */
export function sealEvent(input: AuditEventInput, prev: ChainPosition): AuditEvent {
  const unhashed = { ...input, occurredAt: auditTime(new Date(input.occurredAt)), seq: prev.seq + 1, prevHash: prev.hash };
  return { ...unhashed, hash: hashEvent(unhashed) };
}

export interface ChainPosition {
  seq: number;
  hash: string;
}

/**
 * The last head this process saw per chain: only a guess, checked by the database on every use
 * (the head row must still hold exactly it), so a stale guess costs a retry and never a wrong link.
 */
const headHints = new Map<string, ChainPosition>();
const MAX_HINTS = 10_000;

function rememberHead(chain: string, head: ChainPosition): void {
  if (headHints.size >= MAX_HINTS && !headHints.has(chain)) headHints.clear();
  headHints.set(chain, head);
}

function eventParams(event: AuditEvent): unknown[] {
  return [
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
  ];
}

/** Locks the chain's head row (creating it on the chain's first event) and reads it. */
export async function lockHead(client: PoolClient, chain: string): Promise<ChainPosition> {
  // An upsert that updates takes the row lock: appends to one chain queue here, which keeps seq gapless.
  const head = await client.query<{ seq: string; hash: string }>({
    name: 'audit-lock-head',
    text: `INSERT INTO audit_chain_heads (tenant_id, seq, hash) VALUES ($1, 0, $2)
     ON CONFLICT (tenant_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id
     RETURNING seq, hash`,
    values: [chain, GENESIS_HASH],
  });
  return { seq: Number(head.rows[0]!.seq), hash: head.rows[0]!.hash };
}

/** When the tenant's chain holds the event `eventId` (its time), or null when it does not. */
export async function recordedEventTime(client: PoolClient, tenantId: string, eventId: string): Promise<string | null> {
  const { rows } = await client.query<{ occurred_at: Date }>(
    'SELECT occurred_at FROM audit_events WHERE event_id = $1 AND tenant_id = $2',
    [eventId, tenantId],
  );
  return rows[0] ? auditTime(rows[0].occurred_at) : null;
}

/** The id belongs to an event on another chain: refuse, as the unique constraint itself would. */
function usedOnAnotherChain(eventId: string): Error {
  return Object.assign(new Error(`audit event id ${eventId} is already used on another chain`), {
    code: '23505',
    constraint: 'audit_events_event_id_key',
  });
}

async function storedEvent(client: PoolClient, input: AuditEventInput): Promise<AuditEvent> {
  const existing = await client.query<AuditRow>(`SELECT ${COLUMNS} FROM audit_events WHERE event_id = $1 AND tenant_id = $2`, [
    input.eventId,
    input.tenantId,
  ]);
  if (!existing.rows[0]) throw usedOnAnotherChain(input.eventId);
  return rowToEvent(existing.rows[0]);
}

/**
 * One statement for the common case: move the head from the position this process last saw to the
 * new event and insert it. The UPDATE's WHERE is the check: if another writer moved the head
 * since (or our guess came from a transaction that rolled back), it matches no row, nothing is
 * written, and the caller takes the locking path. Returns undefined then.
 */
async function appendAtHint(client: PoolClient, input: AuditEventInput, hint: ChainPosition): Promise<AuditEvent | undefined> {
  const event = sealEvent(input, hint);
  const { rows } = await client.query<{ moved: number; inserted: number }>({
    // Named, so each connection parses and plans it once: planning this statement (two tables
    // under row-level security, seven indexes) was a fifth of an append's cost.
    name: 'audit-append-at-hint',
    text: `WITH head AS (
       UPDATE audit_chain_heads SET seq = $2, hash = $15 WHERE tenant_id = $1 AND seq = $2 - 1 AND hash = $14 RETURNING tenant_id),
     ins AS (
       INSERT INTO audit_events (${COLUMNS})
       SELECT $1, $2, $3::uuid, $4::timestamptz, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13::jsonb, $14, $15 FROM head
       ON CONFLICT (event_id) DO NOTHING
       RETURNING 1)
     SELECT (SELECT count(*) FROM head)::int AS moved, (SELECT count(*) FROM ins)::int AS inserted`,
    values: eventParams(event),
  });
  const { moved, inserted } = rows[0]!;
  if (moved === 0) return undefined;
  if (inserted === 1) {
    rememberHead(event.tenantId, event);
    return event;
  }
  // The event id is already stored (a retry): we hold the head's lock, so put it back as it was.
  await client.query('UPDATE audit_chain_heads SET seq = $2, hash = $3 WHERE tenant_id = $1', [input.tenantId, hint.seq, hint.hash]);
  return storedEvent(client, input);
}

/**
 * Appends one event to its tenant's chain inside the caller's transaction (so it commits or rolls
 * back with the change it records). Idempotent by event id: a retry returns the stored event.
 * The head row lock serialises appends per chain, which keeps `seq` gapless.
 */
export async function appendAuditEvent(client: PoolClient, input: AuditEventInput): Promise<AuditEvent> {
  const group = groupOf(client);
  if (group) return group.append(input);
  const hint = headHints.get(input.tenantId);
  if (hint) {
    const appended = await appendAtHint(client, input, hint);
    if (appended) return appended;
  }
  const event = sealEvent(input, await lockHead(client, input.tenantId));
  // The event and the new head in one statement. A retry of an event already stored hits the
  // unique event id (checked against committed rows, whatever this statement's snapshot), inserts
  // nothing and moves no head; the stored event is returned instead.
  const inserted = await client.query({
    name: 'audit-append-locked',
    text: `WITH ins AS (
       INSERT INTO audit_events (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
       ON CONFLICT (event_id) DO NOTHING
       RETURNING tenant_id, seq, hash)
     UPDATE audit_chain_heads h SET seq = ins.seq, hash = ins.hash FROM ins WHERE h.tenant_id = ins.tenant_id`,
    values: eventParams(event),
  });
  if (inserted.rowCount === 1) {
    rememberHead(event.tenantId, event);
    return event;
  }
  return storedEvent(client, input);
}

/** Column types of the multi-row insert, in COLUMNS order. */
const COLUMN_TYPES = [
  'text',
  'bigint',
  'uuid',
  'timestamptz',
  'text',
  'text',
  'text',
  'text',
  'text',
  'jsonb',
  'text',
  'text',
  'jsonb',
  'text',
  'text',
];

/**
 * Writes events already sealed on top of the locked head `from`, in one statement with the head's
 * move. Without ON CONFLICT: an event id stored meanwhile fails the transaction (the caller's
 * retry then finds it stored) rather than leaving a gap.
 */
export async function insertSealed(client: PoolClient, chain: string, events: AuditEvent[]): Promise<void> {
  const columns: unknown[][] = COLUMN_TYPES.map(() => new Array<unknown>(events.length));
  events.forEach((event, row) => eventParams(event).forEach((value, column) => (columns[column]![row] = value)));
  const last = events.at(-1)!;
  const n = COLUMN_TYPES.length;
  const { rowCount } = await client.query(
    `WITH ins AS (
       INSERT INTO audit_events (${COLUMNS})
       SELECT * FROM unnest(${COLUMN_TYPES.map((type, i) => `$${i + 1}::${type}[]`).join(', ')})
       RETURNING 1)
     UPDATE audit_chain_heads SET seq = $${n + 1}, hash = $${n + 2}
     WHERE tenant_id = $${n + 3} AND seq = $${n + 4} AND (SELECT count(*) FROM ins) = $${n + 5}`,
    [...columns, last.seq, last.hash, chain, events[0]!.seq - 1, events.length],
  );
  if (rowCount !== 1) throw new Error(`audit chain ${chain}: the head moved while ${events.length} events were appended to it`);
  rememberHead(chain, last);
}

/**
 * Appends several events to one chain in the caller's transaction: one head lock and one
 * multi-row insert for all of them. Idempotent by event id like appendAuditEvent: ids already
 * stored (or repeated in `inputs`) come back as the stored event and are not written again.
 */
export async function appendAuditEvents(client: PoolClient, inputs: AuditEventInput[]): Promise<AuditEvent[]> {
  if (inputs.length === 0) return [];
  const chain = inputs[0]!.tenantId;
  if (inputs.some((input) => input.tenantId !== chain)) throw new Error('appendAuditEvents takes events of one chain');
  const group = groupOf(client);
  if (group) return inputs.map((input) => group.append(input));
  let head = await lockHead(client, chain);
  const stored = await client.query<AuditRow>(`SELECT ${COLUMNS} FROM audit_events WHERE event_id = ANY($1::uuid[])`, [
    inputs.map((input) => input.eventId),
  ]);
  const byId = new Map<string, AuditEvent>();
  for (const row of stored.rows) {
    const event = rowToEvent(row);
    if (event.tenantId !== chain) throw usedOnAnotherChain(event.eventId);
    byId.set(event.eventId, event);
  }
  const fresh: AuditEvent[] = [];
  const result = inputs.map((input) => {
    const known = byId.get(input.eventId);
    if (known) return known;
    const event = sealEvent(input, head);
    head = event;
    byId.set(event.eventId, event);
    fresh.push(event);
    return event;
  });
  if (fresh.length > 0) await insertSealed(client, chain, fresh);
  return result;
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

/** Every column as PostgreSQL's text, unparsed: the page reader below converts what it needs. */
const AS_TEXT = { getTypeParser: () => (value: string) => value };

/**
 * The chain's events with seq in (afterSeq, lastSeq], in seq order, for verification: a range
 * rather than a limit, so the next page's query can be sent before this one is checked.
 *
 * Cheaper per row than listAuditEvents and the same events as rowToEvent makes of them: rows as
 * arrays of text, the time written by PostgreSQL as toISOString writes it (the UTC time to the
 * millisecond, which is what every event holds: auditTime cuts it so; a finer stored time is cut
 * alike by both), seq as a number, the jsonb columns through JSON.parse (as pg's own parser does),
 * the target only when both its columns are set.
 */
export async function chainEventsInRange(client: PoolClient, tenantId: string, afterSeq: number, lastSeq: number): Promise<AuditEvent[]> {
  const { rows } = await client.query<(string | null)[]>({
    text: `SELECT tenant_id, seq, event_id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), actor_id,
             actor_type, action, target_type, target_id, authority, workflow_id, run_id, payload, prev_hash, hash
           FROM audit_events WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq`,
    values: [tenantId, afterSeq, lastSeq],
    rowMode: 'array',
    types: AS_TEXT,
  });
  const events = new Array<AuditEvent>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const targetType = row[7] as string | null;
    const targetId = row[8] as string | null;
    events[i] = {
      tenantId: row[0] as string,
      seq: Number(row[1]),
      eventId: row[2] as string,
      occurredAt: row[3] as string,
      actor: { id: row[4] as string, type: row[5] as AuditEvent['actor']['type'] },
      action: row[6] as string,
      target: targetType !== null && targetId !== null ? { type: targetType, id: targetId } : null,
      authority: JSON.parse(row[9] as string) as AuditEvent['authority'],
      workflowId: row[10] as string | null,
      runId: row[11] as string | null,
      payload: JSON.parse(row[12] as string) as AuditEvent['payload'],
      prevHash: row[13] as string,
      hash: row[14] as string,
    };
  }
  return events;
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
