import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ChainVerifier, GENESIS_HASH, type AuditEventInput } from '../core/audit/chain.js';
import { appendAuditEvent, chainHead, streamAuditEvents } from '../db/audit.js';
import { migrate } from '../db/migrate.js';
import { APP_ROLE, createPool, type Pool } from '../db/pool.js';
import { inScope, tenantScope } from '../db/scope.js';
import { startEmbeddedPostgres } from '../runtime/embedded-postgres.js';
import { createLogger } from '../runtime/logger.js';
import { freePort } from '../runtime/ports.js';
import { adminQuery, runConcurrently, withDatabase } from './support.js';

const progress = (message: string) => process.stderr.write(`[bench audit] ${message}\n`);

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** An event shaped like the real ones: actor, authority, workflow ids and a small before/after payload. */
function eventFor(i: number, tenantId: string): AuditEventInput {
  return {
    tenantId,
    eventId: randomUUID(),
    occurredAt: new Date().toISOString(),
    actor: { id: `actor-${i % 17}`, type: 'user' },
    action: i % 3 === 0 ? 'grant.requested' : i % 3 === 1 ? 'grant.approved' : 'grant.activated',
    target: { type: 'grant', id: `g-${i}` },
    authority: { roles: ['tenant_approver'], bindingIds: [randomUUID()], ticket: `CHG-${i}` },
    workflowId: `grant/${tenantId}/g-${i}`,
    runId: randomUUID(),
    payload: { before: { state: 'requested' }, after: { state: 'approved', expiresAt: new Date().toISOString() } },
  };
}

const FLOOR_TABLE = 'bench_audit_floor';

export async function runAuditBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      events: { type: 'string', default: '20000' },
      tenants: { type: 'string', default: '100' },
      concurrency: { type: 'string', default: '8' },
    },
    strict: true,
  });
  const events = positiveInt('events', values.events);
  const tenantCount = positiveInt('tenants', values.tenants);
  const concurrency = positiveInt('concurrency', values.concurrency);

  // Ctrl-C stops handing out work, so the scratch database is still dropped below.
  const abort = new AbortController();
  const onSignal = () => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    let adminUrl = process.env.DATABASE_URL;
    if (!adminUrl) {
      progress('DATABASE_URL is not set: starting embedded PostgreSQL');
      const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-bench-'));
      cleanup.push(() => rm(dir, { recursive: true, force: true }));
      const postgres = await startEmbeddedPostgres({
        dir,
        port: await freePort(),
        database: 'tenure',
        logger: createLogger('warn', { role: 'bench' }),
      });
      cleanup.push(postgres.stop);
      adminUrl = postgres.adminUrl;
    }
    const database = `tenure_bench_${randomBytes(4).toString('hex')}`;
    await adminQuery(adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(database)}`);
    cleanup.push(() => adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`));
    const url = withDatabase(adminUrl, database);
    await migrate(url);

    const owner = createPool({ connectionString: url, max: 1 });
    cleanup.push(() => owner.end());
    // The floor: the same columns, none of the chain's constraints, indexes, policies or triggers.
    await owner.query(`CREATE TABLE ${FLOOR_TABLE} (LIKE audit_events)`);
    await owner.query(`GRANT INSERT ON ${FLOOR_TABLE} TO ${APP_ROLE}`);

    const pool: Pool = createPool({ connectionString: url, role: APP_ROLE, max: concurrency });
    cleanup.push(() => pool.end());
    // Open every connection before timing, so neither phase pays for connecting.
    const warm = await Promise.all(Array.from({ length: concurrency }, () => pool.connect()));
    for (const client of warm) client.release();

    const tenants = Array.from({ length: tenantCount }, () => randomUUID());
    progress(`appending ${events} events across ${tenantCount} tenants, ${concurrency} at a time`);
    const appendSeconds = await timed(() =>
      runConcurrently(events, concurrency, abort.signal, async (i) => {
        const input = eventFor(i, tenants[i % tenantCount]!);
        await inScope(pool, tenantScope(input.tenantId), (client) => appendAuditEvent(client, input));
      }),
    );

    progress(`inserting ${events} rows into a plain table (the floor)`);
    const floorSeconds = await timed(() =>
      runConcurrently(events, concurrency, abort.signal, async (i) => {
        const e = eventFor(i, tenants[i % tenantCount]!);
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await client.query(
            `INSERT INTO ${FLOOR_TABLE} (tenant_id, seq, event_id, occurred_at, actor_id, actor_type, action, target_type, target_id,
               authority, workflow_id, run_id, payload, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
            [
              e.tenantId,
              i + 1,
              e.eventId,
              e.occurredAt,
              e.actor.id,
              e.actor.type,
              e.action,
              e.target?.type,
              e.target?.id,
              JSON.stringify(e.authority),
              e.workflowId,
              e.runId,
              JSON.stringify(e.payload),
              GENESIS_HASH,
              GENESIS_HASH,
            ],
          );
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      }),
    );

    progress(`verifying ${tenantCount} chains`);
    let verified = 0;
    const verifySeconds = await timed(() =>
      runConcurrently(tenantCount, concurrency, abort.signal, async (t) => {
        const tenantId = tenants[t]!;
        const result = await inScope(pool, tenantScope(tenantId), async (client) => {
          const verifier = new ChainVerifier();
          for await (const event of streamAuditEvents(client, tenantId)) verifier.push(event);
          return verifier.finish(await chainHead(client, tenantId));
        });
        if (!result.intact) throw new Error(`chain ${tenantId} does not verify: ${result.reason} at seq ${result.firstBadSeq}`);
        verified += result.checked;
      }),
    );
    if (verified !== events) throw new Error(`verified ${verified} events, appended ${events}`);

    const appendPerSec = Math.round(events / appendSeconds);
    const floorPerSec = Math.round(events / floorSeconds);
    const summary = {
      bench: 'audit',
      events,
      tenants: tenantCount,
      appendPerSec,
      floorPerSec,
      ratio: Number((appendPerSec / floorPerSec).toFixed(3)),
      verifyPerSec: Math.round(events / verifySeconds),
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const step of cleanup.reverse()) {
      await step().catch((error: unknown) => progress(`cleanup failed: ${(error as Error).message}`));
    }
  }
}
