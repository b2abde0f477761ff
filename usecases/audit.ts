import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stringify } from 'csv-stringify';
import { ChainVerifier, MSP_CHAIN, type AuditEvent } from '../core/audit/chain.js';
import { notFound } from '../core/errors.js';
import { neutraliseCsvCell } from '../core/text.js';
import {
  encodeCursor,
  type AuditEventPage,
  type AuditExportQuery,
  type AuditFilterQuery,
  type AuditListQuery,
  type ChainVerification,
} from '../core/audit/schemas.js';
import { chainEventsInRange, chainHead, listAuditEvents, streamAuditEvents, type AuditFilter } from '../db/audit.js';
import type { Pool, PoolClient } from '../db/pool.js';
import { inScope, mspScope, tenantScope } from '../db/scope.js';
import { tenantExists } from '../db/tenancy.js';

export interface AuditDeps {
  pool: Pool;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

/**
 * Notices a checked-out client losing its connection. pg-pool leaves a checked-out client without
 * an 'error' listener, so such a loss (PostgreSQL restarted) would otherwise be an uncaught
 * exception that ends the process. (Belongs in inScope for every transaction; here until it is.)
 */
class ConnectionWatch {
  private lost: Error | undefined;
  private rejectPending: ((error: Error) => void) | undefined;

  readonly onError = (error: Error): void => {
    this.lost ??= error;
    this.rejectPending?.(error);
  };

  /** Settles as `promise` does, or rejects once the connection is lost, whichever comes first. */
  guard<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.lost) return reject(this.lost);
      // One slot, overwritten by the next read: nothing piles up over a million events.
      this.rejectPending = reject;
      promise.then(resolve, reject);
    });
  }
}

/**
 * Runs `fn` in the chain's own row-level-security scope, after checking that a tenant chain
 * belongs to a tenant that exists (an unknown id is "not found", not an empty chain).
 */
function inChain<T>(pool: Pool, chainId: string, fn: (client: PoolClient, watch: ConnectionWatch) => Promise<T>): Promise<T> {
  const scope = chainId === MSP_CHAIN ? mspScope : tenantScope(chainId);
  return inScope(pool, scope, async (client) => {
    const watch = new ConnectionWatch();
    client.on('error', watch.onError);
    try {
      if (chainId !== MSP_CHAIN) {
        if (!(await tenantExists(client, chainId))) throw notFound('audit chain');
      }
      return await fn(client, watch);
    } finally {
      client.off('error', watch.onError);
    }
  });
}

function toFilter(query: AuditFilterQuery): AuditFilter {
  return {
    ...(query.from ? { from: new Date(query.from) } : {}),
    ...(query.to ? { to: new Date(query.to) } : {}),
    ...(query.action ? { action: query.action } : {}),
    ...(query.actorId ? { actorId: query.actorId } : {}),
    ...(query.targetId ? { targetId: query.targetId } : {}),
    ...(query.workflowId ? { workflowId: query.workflowId } : {}),
  };
}

/**
 * Events up to `headSeq` only: appends that commit while we read are left out, so an unfiltered
 * export or verification describes exactly the chain as of the head we report.
 * Reads are guarded because, once the connection dies, a cursor stream waits forever for the
 * server to confirm its closing: unguarded, the export would hang instead of failing.
 */
async function* eventsUpTo(
  client: PoolClient,
  watch: ConnectionWatch,
  chainId: string,
  filter: AuditFilter,
  headSeq: number,
): AsyncGenerator<AuditEvent> {
  const events = streamAuditEvents(client, chainId, filter);
  let connectionLost = false;
  try {
    for (;;) {
      const next = await watch.guard(events.next()).catch((error: unknown) => {
        connectionLost = true;
        throw error;
      });
      if (next.done || next.value.seq > headSeq) return;
      yield next.value;
    }
  } finally {
    // After a lost connection the cursor's cleanup can never finish, so it is left behind.
    if (connectionLost) void events.return(undefined);
    else await events.return(undefined);
  }
}

export async function listChainEvents(deps: AuditDeps, chainId: string, query: AuditListQuery): Promise<AuditEventPage> {
  const filter: AuditFilter = { ...toFilter(query), ...(query.cursor !== undefined ? { afterSeq: query.cursor } : {}) };
  // One extra row tells whether another page exists, so the last page never links to an empty one.
  const rows = await inChain(deps.pool, chainId, (client) => listAuditEvents(client, chainId, filter, query.limit + 1));
  const events = rows.slice(0, query.limit);
  return { events, nextCursor: rows.length > query.limit ? encodeCursor(events.at(-1)!.seq) : null };
}

/** CSV columns: the AuditEvent's own top-level keys, so a row maps back to the JSON form. */
export const CSV_COLUMNS = [
  'tenantId',
  'seq',
  'eventId',
  'occurredAt',
  'actor',
  'action',
  'target',
  'authority',
  'workflowId',
  'runId',
  'payload',
  'prevHash',
  'hash',
] as const satisfies readonly (keyof AuditEvent)[];

function csvRecord(event: AuditEvent): Record<(typeof CSV_COLUMNS)[number], string | number | null> {
  const record: Record<(typeof CSV_COLUMNS)[number], string | number | null> = {
    ...event,
    actor: JSON.stringify(event.actor),
    target: event.target === null ? null : JSON.stringify(event.target),
    authority: JSON.stringify(event.authority),
    payload: JSON.stringify(event.payload),
  };
  for (const column of CSV_COLUMNS) record[column] = neutraliseCsvCell(record[column]);
  return record;
}

/** Gathers NDJSON lines into chunks of about this size: far fewer writes than one per event. */
const CHUNK_BYTES = 64 * 1024;

async function* ndjsonChunks(events: AsyncIterable<AuditEvent>): AsyncGenerator<string> {
  let chunk = '';
  for await (const event of events) {
    chunk += `${JSON.stringify(event)}\n`;
    if (chunk.length >= CHUNK_BYTES) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

/**
 * Streams a chain's events to `open(head)`'s stream, pulling rows from a database cursor only as
 * fast as the stream drains, so memory stays bounded whatever the chain's length. `open` runs once
 * the chain is known to exist, before the first byte (the place to set response headers).
 * If the destination closes early the cursor is closed and the transaction rolled back; the
 * returned promise then rejects with the stream error.
 */
export async function exportChainEvents(
  deps: AuditDeps,
  chainId: string,
  query: AuditExportQuery,
  open: (head: ChainHead) => Writable,
): Promise<void> {
  await inChain(deps.pool, chainId, async (client, watch) => {
    const head = await chainHead(client, chainId);
    const events = eventsUpTo(client, watch, chainId, toFilter(query), head.seq);
    const out = open(head);
    if (query.format === 'csv') {
      const records = Readable.from(
        (async function* () {
          for await (const event of events) yield csvRecord(event);
        })(),
      );
      await pipeline(records, stringify({ header: true, columns: [...CSV_COLUMNS] }), out);
    } else {
      await pipeline(Readable.from(ndjsonChunks(events)), out);
    }
  });
}

/** Events per page when verifying: large enough that round trips do not count, small enough for flat memory. */
const VERIFY_PAGE = 2000;

/**
 * Recomputes every hash and link of the chain from the database and compares the end with its
 * head. Reads pages by seq range (one indexed query each, rows as unparsed text), and asks for
 * the next page before checking this one, so PostgreSQL reads and writes it while this process
 * hashes: at most two pages are held at once.
 */
export async function verifyChain(deps: AuditDeps, chainId: string): Promise<ChainVerification> {
  return inChain(deps.pool, chainId, async (client, watch) => {
    const head = await chainHead(client, chainId);
    const verifier = new ChainVerifier();
    // Appends committed after the head was read are not part of this verification: no page
    // goes past it. A missing seq is the verifier's to find (a page then holds fewer events).
    const page = (after: number) => chainEventsInRange(client, chainId, after, Math.min(after + VERIFY_PAGE, head.seq));
    let pending = head.seq > 0 ? page(0) : undefined;
    try {
      for (let after = 0; pending; after += VERIFY_PAGE) {
        const events = await watch.guard(pending);
        const next = after + VERIFY_PAGE;
        pending = next < head.seq ? page(next) : undefined;
        let intact = true;
        for (const event of events) if (!(intact = verifier.push(event))) break;
        if (!intact) break;
      }
    } finally {
      // A page still in flight once the chain broke (or a check threw) is dropped; its query
      // still completes before the transaction ends.
      void pending?.catch(() => undefined);
    }
    const result = verifier.finish(head);
    return { intact: result.intact, checked: result.checked, firstBadSeq: result.firstBadSeq, reason: result.reason, headSeq: head.seq };
  });
}
