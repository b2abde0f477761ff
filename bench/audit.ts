import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createWriteStream } from 'node:fs';
import { GENESIS_HASH, type AuditEventInput } from '../core/audit/chain.js';
import { verifyExportFile } from '../cli/audit.js';
import { appendAuditEvent, appendAuditEvents } from '../db/audit.js';
import { AuditGroupCommit } from '../db/audit-group.js';
import { migrate } from '../db/migrate.js';
import { APP_ROLE, createPool, type Pool } from '../db/pool.js';
import { inScope, tenantScope } from '../db/scope.js';
import { exportChainEvents, verifyChain } from '../usecases/audit.js';
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
  return (await timedWithCpu(fn)).seconds;
}

/** Wall time, and this process's CPU time (user + system), in seconds. */
async function timedWithCpu(fn: () => Promise<void>): Promise<{ seconds: number; cpuSeconds: number }> {
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(cpu);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, cpuSeconds: (used.user + used.system) / 1e6 };
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

/** One event as a plain INSERT in its own transaction: the floor an audit append is measured against. */
async function floorInsert(pool: Pool, seq: number, e: AuditEventInput): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO ${FLOOR_TABLE} (tenant_id, seq, event_id, occurred_at, actor_id, actor_type, action, target_type, target_id,
         authority, workflow_id, run_id, payload, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      [
        e.tenantId,
        seq,
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
}

export async function runAuditBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      events: { type: 'string', default: '20000' },
      tenants: { type: 'string', default: '100' },
      concurrency: { type: 'string', default: '8' },
      burst: { type: 'string', default: '2000' },
      'burst-concurrency': { type: 'string', default: '32' },
      'chain-events': { type: 'string', default: '50000' },
    },
    strict: true,
  });
  const events = positiveInt('events', values.events);
  const tenantCount = positiveInt('tenants', values.tenants);
  const concurrency = positiveInt('concurrency', values.concurrency);
  const burst = positiveInt('burst', values.burst);
  const burstConcurrency = positiveInt('burst-concurrency', values['burst-concurrency']);
  const chainEvents = positiveInt('chain-events', values['chain-events']);

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

    const connections = Math.max(concurrency, burstConcurrency);
    const pool: Pool = createPool({ connectionString: url, role: APP_ROLE, max: connections });
    cleanup.push(() => pool.end());
    // Open every connection before timing, so no phase pays for connecting.
    const warm = await Promise.all(Array.from({ length: connections }, () => pool.connect()));
    for (const client of warm) client.release();

    const tenants = Array.from({ length: tenantCount }, () => randomUUID());
    // Real tenants, so verification goes through the API's use case (which 404s an unknown chain).
    await owner.query(
      "INSERT INTO tenants (id, slug, name, created_by) SELECT id, 'bench-' || n, 'Bench ' || n, 'bench' FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)",
      [tenants],
    );
    // The chain and the floor take turns, a tenth of the events each round: on a shared machine
    // both see the same background load, so their ratio is fair.
    progress(
      `appending ${events} events across ${tenantCount} tenants, ${concurrency} at a time, alternating with the floor (plain INSERTs)`,
    );
    let appendSeconds = 0;
    let floorSeconds = 0;
    const rounds = Math.min(10, events);
    for (let round = 0; round < rounds; round++) {
      const from = Math.floor((events * round) / rounds);
      const count = Math.floor((events * (round + 1)) / rounds) - from;
      appendSeconds += await timed(() =>
        runConcurrently(count, concurrency, abort.signal, async (k) => {
          const input = eventFor(from + k, tenants[(from + k) % tenantCount]!);
          await inScope(pool, tenantScope(input.tenantId), (client) => appendAuditEvent(client, input));
        }),
      );
      floorSeconds += await timed(() =>
        runConcurrently(count, concurrency, abort.signal, (k) =>
          floorInsert(pool, from + k + 1, eventFor(from + k, tenants[(from + k) % tenantCount]!)),
        ),
      );
    }

    // Many producers on one tenant at once (a burst of grant expiries): each event its own
    // transaction queues on the chain's head; the group committer writes the waiting ones together.
    const burstTenant = tenants[0]!;
    progress(`burst: ${burst} events on one tenant, ${burstConcurrency} at a time, one transaction each`);
    const burstOneSeconds = await timed(() =>
      runConcurrently(burst, burstConcurrency, abort.signal, async (i) => {
        const input = eventFor(i, burstTenant);
        await inScope(pool, tenantScope(burstTenant), (client) => appendAuditEvent(client, input));
      }),
    );
    progress(`burst: the same through the group committer`);
    const group = new AuditGroupCommit(pool);
    const burstGroupSeconds = await timed(() =>
      runConcurrently(burst, burstConcurrency, abort.signal, async (i) => {
        const input = eventFor(i, burstTenant);
        await group.inTenantScope(burstTenant, (client) => appendAuditEvent(client, input));
      }),
    );
    progress(`burst: the floor, plain INSERTs at the same concurrency`);
    const burstFloorSeconds = await timed(() =>
      runConcurrently(burst, burstConcurrency, abort.signal, (i) => floorInsert(pool, events + i + 1, eventFor(i, burstTenant))),
    );

    progress(`verifying ${tenantCount} chains through the API's use case`);
    let verified = 0;
    const verifySeconds = await timed(() =>
      runConcurrently(tenantCount, concurrency, abort.signal, async (t) => {
        const result = await verifyChain({ pool }, tenants[t]!);
        if (!result.intact) throw new Error(`chain ${tenants[t]} does not verify: ${result.reason} at seq ${result.firstBadSeq}`);
        verified += result.checked;
      }),
    );
    if (verified !== events + 2 * burst) throw new Error(`verified ${verified} events, appended ${events + 2 * burst}`);

    // One long chain, for verification speed without per-chain overheads.
    const longChain = randomUUID();
    await owner.query("INSERT INTO tenants (id, slug, name, created_by) VALUES ($1, 'bench-long-chain', 'Long chain', 'bench')", [
      longChain,
    ]);
    progress(`writing a chain of ${chainEvents} events (1,000 per transaction)`);
    for (let from = 0; from < chainEvents; from += 1000) {
      abort.signal.throwIfAborted();
      const batch = Array.from({ length: Math.min(1000, chainEvents - from) }, (_, k) => eventFor(from + k, longChain));
      await inScope(pool, tenantScope(longChain), (client) => appendAuditEvents(client, batch));
    }
    progress("verifying it through the API's use case (GET /v1/audit/{chain}/verify)");
    let apiResult: Awaited<ReturnType<typeof verifyChain>> | undefined;
    const { seconds: verifyApiSeconds, cpuSeconds: verifyApiCpu } = await timedWithCpu(async () => {
      apiResult = await verifyChain({ pool }, longChain);
    });
    if (!apiResult?.intact || apiResult.checked !== chainEvents) throw new Error(`long chain: ${JSON.stringify(apiResult)}`);
    const exportDir = await mkdtemp(path.join(os.tmpdir(), 'tenure-bench-export-'));
    cleanup.push(() => rm(exportDir, { recursive: true, force: true }));
    const file = path.join(exportDir, 'chain.ndjson');
    let head: { seq: number; hash: string } | undefined;
    await exportChainEvents({ pool }, longChain, { format: 'ndjson' }, (h) => {
      head = h;
      return createWriteStream(file);
    });
    progress('verifying its NDJSON export offline (tenure audit verify --file)');
    let fileResult: Awaited<ReturnType<typeof verifyExportFile>> | undefined;
    const { seconds: verifyFileSeconds, cpuSeconds: verifyFileCpu } = await timedWithCpu(async () => {
      fileResult = await verifyExportFile(file, head);
    });
    if (!fileResult?.intact || fileResult.checked !== chainEvents) throw new Error(`long chain export: ${JSON.stringify(fileResult)}`);

    const appendPerSec = Math.round(events / appendSeconds);
    const floorPerSec = Math.round(events / floorSeconds);
    const summary = {
      bench: 'audit',
      events,
      tenants: tenantCount,
      appendPerSec,
      floorPerSec,
      ratio: Number((appendPerSec / floorPerSec).toFixed(3)),
      burst,
      burstConcurrency,
      burstOnePerSec: Math.round(burst / burstOneSeconds),
      burstGroupPerSec: Math.round(burst / burstGroupSeconds),
      burstFloorPerSec: Math.round(burst / burstFloorSeconds),
      burstGroupRatio: Number((burstFloorSeconds / burstGroupSeconds).toFixed(3)),
      verifyPerSec: Math.round(verified / verifySeconds),
      chainEvents,
      verifyApiPerSec: Math.round(chainEvents / verifyApiSeconds),
      verifyFilePerSec: Math.round(chainEvents / verifyFileSeconds),
      // Per second of this process's own CPU: what one core would do with the machine to itself
      // (for the API, PostgreSQL's share of the work is not in it).
      verifyApiPerCpuSec: Math.round(chainEvents / verifyApiCpu),
      verifyFilePerCpuSec: Math.round(chainEvents / verifyFileCpu),
    };
    progress(
      `append ${appendPerSec}/s vs floor ${floorPerSec}/s (ratio ${summary.ratio}); burst on one tenant: ` +
        `${summary.burstOnePerSec}/s one transaction each, ${summary.burstGroupPerSec}/s grouped, floor ${summary.burstFloorPerSec}/s; ` +
        `verify: ${summary.verifyPerSec}/s over ${tenantCount} chains, ${summary.verifyApiPerSec}/s API, ${summary.verifyFilePerSec}/s offline file ` +
        `(per CPU second of this process: ${summary.verifyApiPerCpuSec} API, ${summary.verifyFilePerCpuSec} file)`,
    );
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const step of cleanup.reverse()) {
      await step().catch((error: unknown) => progress(`cleanup failed: ${(error as Error).message}`));
    }
  }
}
