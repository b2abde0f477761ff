import pg from 'pg';
import type { Logger } from 'pino';
import type { Principal } from '../core/tenancy/authz.js';
import type { Pool } from '../db/pool.js';
import { inScope, mspScope } from '../db/scope.js';
import { principalRow, recordTokenUse, type PrincipalRow } from '../db/tenancy.js';

/** The channel migration 0030's triggers notify on commit when a principal may have changed. */
const CHANNEL = 'tenure_auth';
const RECONNECT_MS = { first: 500, max: 10_000 };

export interface PrincipalSourceOptions {
  pool: Pool;
  logger: Logger;
  /** How long a looked-up principal is reused (AUTH_CACHE_SECONDS); 0 looks up every request. */
  cacheSeconds: number;
  /** How often token use is written (AUTH_TOKEN_USE_FLUSH_SECONDS); 0 writes it on every request. */
  useFlushSeconds: number;
}

export interface PrincipalSource {
  /** The row a token (by hash) or OIDC subject names, from the cache or the database. */
  lookup(key: { tokenHash: Buffer } | { oidcSubject: string }): Promise<PrincipalRow | undefined>;
  /** Notes that a token was used; written in batches (or at once when batching is off). */
  used(tokenId: string): Promise<void>;
  /** Opens the listener that empties the cache when a principal changes; until then nothing is cached. */
  start(): Promise<void>;
  /** Writes pending token use and closes the listener. */
  stop(): Promise<void>;
  /** Lookups answered from the cache and from the database, for tests and metrics. */
  stats(): { hits: number; misses: number; listening: boolean };
}

interface Entry {
  row: PrincipalRow | undefined;
  until: number;
}

/**
 * Who the callers are, looked up in one round trip and kept for `cacheSeconds`. A revoked token, a
 * disabled actor, a changed role binding or a suspended tenant empties the cache of every API
 * process as soon as the change commits (LISTEN on migration 0030's channel). Entries are used only
 * while the listener is connected: after it drops, nothing is cached until it is back (and the
 * cache is emptied then, as a notification may have been missed). So the longest a revocation can
 * go unheard is the cache time, and only if a notification is lost with the connection still up.
 */
export function createPrincipalSource(options: PrincipalSourceOptions): PrincipalSource {
  const { pool, logger, cacheSeconds, useFlushSeconds } = options;
  const cache = new Map<string, Entry>();
  // Bumped by every invalidation: a lookup that began before one must not store what it read.
  let generation = 0;
  let listening = false;
  let stopped = false;
  let listener: pg.Client | undefined;
  let reconnect: NodeJS.Timeout | undefined;
  let retryMs = RECONNECT_MS.first;
  let hits = 0;
  let misses = 0;

  const invalidate = () => {
    generation++;
    cache.clear();
  };

  const connect = async (): Promise<void> => {
    // Keep-alive, so a connection that died silently is noticed rather than taken for a quiet channel.
    const client = new pg.Client({ ...pool.options, keepAlive: true });
    const lost = (error?: Error) => {
      if (listener !== client) return;
      listener = undefined;
      listening = false;
      invalidate();
      client.end().catch(() => undefined);
      if (stopped) return;
      logger.warn({ err: error }, 'principal cache: lost the invalidation listener; caching is off until it reconnects');
      scheduleReconnect();
    };
    client.on('notification', invalidate);
    client.on('error', lost);
    client.on('end', () => lost());
    listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (error) {
      lost(error as Error);
      return;
    }
    if (listener !== client) return;
    // Whatever changed while no one listened is forgotten before caching resumes.
    invalidate();
    listening = true;
    retryMs = RECONNECT_MS.first;
  };
  const scheduleReconnect = () => {
    clearTimeout(reconnect);
    reconnect = setTimeout(() => void connect(), retryMs);
    reconnect.unref();
    retryMs = Math.min(retryMs * 2, RECONNECT_MS.max);
  };

  const pendingUse = new Map<string, Date>();
  let flushing: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => {
    if (pendingUse.size === 0) return flushing;
    const uses = [...pendingUse].map(([tokenId, at]) => ({ tokenId, at }));
    pendingUse.clear();
    flushing = flushing
      .then(() => inScope(pool, mspScope, (client) => recordTokenUse(client, uses)))
      .catch((error: unknown) => logger.warn({ err: error, tokens: uses.length }, 'could not record API token use'));
    return flushing;
  };
  const flushTimer = useFlushSeconds > 0 ? setInterval(() => void flush(), useFlushSeconds * 1000) : undefined;
  flushTimer?.unref();

  const keyOf = (key: { tokenHash: Buffer } | { oidcSubject: string }) =>
    'tokenHash' in key ? `t:${key.tokenHash.toString('hex')}` : `o:${key.oidcSubject}`;

  return {
    async lookup(key) {
      const cacheKey = keyOf(key);
      const now = Date.now();
      if (listening && cacheSeconds > 0) {
        const entry = cache.get(cacheKey);
        if (entry && entry.until > now) {
          hits++;
          return entry.row;
        }
      }
      misses++;
      const before = generation;
      const row = await principalRow(pool, key);
      if (listening && cacheSeconds > 0 && before === generation) cache.set(cacheKey, { row, until: now + cacheSeconds * 1000 });
      return row;
    },
    async used(tokenId) {
      pendingUse.set(tokenId, new Date());
      if (!flushTimer) await flush();
    },
    async start() {
      stopped = false;
      if (cacheSeconds > 0) await connect();
    },
    async stop() {
      stopped = true;
      clearInterval(flushTimer);
      clearTimeout(reconnect);
      listening = false;
      invalidate();
      const client = listener;
      listener = undefined;
      await client?.end().catch(() => undefined);
      await flush();
    },
    stats: () => ({ hits, misses, listening }),
  };
}

/** A principal from its row, or undefined when the row no longer allows authentication. */
export function principalFrom(row: PrincipalRow | undefined, via: Principal['via'], now = Date.now()): Principal | undefined {
  if (!row || row.status !== 'active') return undefined;
  if (via === 'api_token' && (!row.tokenId || row.revokedAt || (row.expiresAt && Date.parse(row.expiresAt) <= now))) return undefined;
  return {
    actorId: row.actorId,
    kind: row.kind,
    displayName: row.displayName,
    via,
    ...(via === 'api_token' && row.tokenId ? { tokenId: row.tokenId } : {}),
    bindings: row.bindings.map((b) => ({ id: b.id, role: b.role, tenantId: b.tenantId })),
  };
}
