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
  const settings = scopeSettings(scope);
  const client = await pool.connect();
  // While checked out, pg-pool no longer listens for this client's errors; a connection lost
  // mid-transaction (e.g. PostgreSQL restarting) would otherwise crash the process. The pending
  // query rejects anyway, which is how the caller learns of it.
  const onError = () => undefined;
  client.on('error', onError);
  try {
    // One round trip: BEGIN and the scope settings as a single simple-protocol query.
    await client.query(`BEGIN; ${settings}`);
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

/** What a read in `readInScope` may call: a query with text and positional values, nothing else. */
export interface Reader {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * A value as a literal: text and numbers only (the reads that use this pass ids, filters and limits).
 * Text with a NUL is refused: the simple protocol sends the query as a C string, which would end at
 * the NUL and leave the rest of the message to be misread (the API edge refuses NUL before this).
 */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'string') {
    if (value.includes('\u0000')) throw new TypeError('readInScope: a text value contains NUL (U+0000), which PostgreSQL text cannot hold');
    return escapeLiteral(value);
  }
  if (typeof value === 'number' && Number.isFinite(value)) return escapeLiteral(String(value));
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  throw new TypeError(`readInScope: a ${typeof value} cannot be a query value here`);
}

/** The scope's settings as one simple-protocol statement (the tenant id inlined, as `literal` checks it). */
function scopeSettings(scope: Scope): string {
  const tenant = 'tenantId' in scope ? scope.tenantId : '';
  return `SELECT set_config('tenure.tenant_id', ${literal(tenant)}, true), set_config('tenure.msp_scope', '${'msp' in scope ? 'on' : 'off'}', true)`;
}

// A quoted string (kept as it is) or a $n placeholder.
const PLACEHOLDER = /'(?:[^']|'')*'|\$(\d+)/g;

/** `text` with each $n replaced by its value as a quoted literal (PostgreSQL infers its type from the context, as for a parameter). */
export function withLiterals(text: string, values: readonly unknown[]): string {
  return text.replace(PLACEHOLDER, (match, n: string | undefined) => {
    if (n === undefined) return match;
    const index = Number(n) - 1;
    if (index < 0 || index >= values.length) throw new RangeError(`readInScope: no value for $${n}`);
    return literal(values[index]);
  });
}

interface Pending {
  text: string;
  resolve: (result: pg.QueryResult) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs the reads of `fn` bound to `scope`, like `inScope` but in one round trip instead of three:
 * the queries `fn` starts together (in the same tick, e.g. with Promise.all) go to PostgreSQL as one
 * simple-protocol message, after the scope's set_config. PostgreSQL runs the statements of such a
 * message as one implicit transaction, so the scope is transaction-local exactly as in `inScope`
 * (row-level security sees it; it is gone when the message's transaction ends, nothing leaks to
 * the pooled connection) and no BEGIN or COMMIT is sent. Queries started later go as a further
 * message, scoped again: at READ COMMITTED each statement has its own snapshot anyway.
 *
 * For reads only: a write here would commit on its own. The values are inlined as quoted literals
 * (pg's escapeLiteral); only text, numbers, booleans and null are accepted.
 */
export async function readInScope<T>(pool: Pool, scope: Scope, fn: (reader: Reader) => Promise<T>): Promise<T> {
  const setScope = scopeSettings(scope);
  const client = await pool.connect();
  const onError = () => undefined;
  client.on('error', onError);
  let batch: Pending[] = [];
  const sent: Promise<unknown>[] = [];
  const send = () => {
    const queries = batch;
    if (queries.length === 0) return;
    batch = [];
    const message = [setScope, ...queries.map((q) => q.text)].join(';\n');
    const done = client.query(message).then(
      (result: pg.QueryResult | pg.QueryResult[]) => {
        const results = Array.isArray(result) ? result : [result];
        queries.forEach((q, i) => {
          const r = results[i + 1];
          if (r) q.resolve(r);
          else q.reject(new Error(`readInScope: ${results.length} results for ${queries.length + 1} statements`));
        });
      },
      (error: unknown) => queries.forEach((q) => q.reject(error)),
    );
    sent.push(done);
  };
  const reader: Reader = {
    query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
      return new Promise<pg.QueryResult<R>>((resolve, reject) => {
        const inlined = withLiterals(text, values);
        if (batch.length === 0) queueMicrotask(send);
        batch.push({ text: inlined, resolve: resolve as Pending['resolve'], reject });
      });
    },
  };
  try {
    return await fn(reader);
  } finally {
    // Nothing of ours may still be running on the connection when it goes back to the pool.
    while (batch.length) send();
    await Promise.allSettled(sent);
    client.off('error', onError);
    client.release();
  }
}
