import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { createPostgresDirectory } from '../connectors/directory/postgres.js';
import { createActivities, systemClock, type Activities } from '../activities/index.js';
import type { Principal } from '../core/tenancy/authz.js';
import { loadConfig } from '../core/config.js';
import { tenantSearchAttributes } from '../core/temporal.js';
import { approveGrantUpdate, GRANT_WORKFLOW_TYPE, grantWorkflowId, type GrantInput, type GrantView } from '../core/grants/contract.js';
import { TenantPolicyDocument } from '../core/tenancy/schemas.js';
import type { Pool } from '../db/pool.js';
import { createCast, type CastSpec } from '../runtime/demo.js';
import { systemContext } from '../core/audit/context.js';
import { loadGrantPolicy, policySnapshot, requestGrant } from '../usecases/grants.js';
import { listBindings } from '../usecases/tenancy/bindings.js';
import { putPolicy } from '../usecases/tenancy/policies.js';
import type { grantWorkflow } from '../workflows/grants/workflow.js';
import {
  abortable,
  backendsOf,
  benchRun,
  benchTemporal,
  cpuReader,
  optionsOrUsage,
  percentile,
  positiveInt,
  runConcurrently,
  scratchService,
  UsageError,
} from './support.js';

/**
 * `npm run bench -- grants`: complete grant lifecycles (request → approve → active → expire →
 * verified revocation) on the real worker, against the bare-Temporal floor: the same
 * grantWorkflow (same updates, timers and activity calls) on a worker whose activities do nothing.
 *
 * Each worker runs alone, after a short warm-up, through two batches:
 * - throughput: `--grants` lifecycles, each lasting `--duration` seconds from its own request,
 *   requested `--concurrency` at a time; lifecycles/s = grants / (first request → last result).
 *   Both sides wait the same timer, so it is kept short and the ratio compares orchestration +
 *   activity cost (the shared timer still pulls the ratio towards 1, by about duration / wall).
 *   It cannot be shorter than the request → approval time under load, or approvals arrive after
 *   the window has closed: 10 s covers that at 20 requests in flight on a busy 2-core machine
 *   (request → active p99 reached 8.4 s there), and keeps the last expiry timer above 1 s. CPU time
 *   per lifecycle (worker process, Temporal, PostgreSQL) is measured too, for `cpuRatio`;
 * - expiry burst: `--burst` grants (default `--grants`) expiring within the same `--burst-spread`
 *   seconds (default 5, evenly; 0 = all at the same instant), set late
 *   enough that all are active by then; lag = verified revocation − expires_at, so it measures
 *   expiry under a burst, not a backlog of activations.
 * A grant approved only after its window closed is never activated (grant.window_passed); such
 * grants are counted apart (`windowPassed`) and are not lifecycles.
 * The real side's requests go through the API's use case (read-model row, then the workflow
 * start); the floor's start the workflow directly, as that use case does.
 */

const USAGE =
  'usage: npm run bench -- grants [--grants N] [--burst N] [--burst-spread SECONDS] [--tenants N] [--concurrency N] [--duration SECONDS] ' +
  '[--pool-max N] [--max-cached-workflows N] [--max-concurrent-activities N] [--max-concurrent-workflow-tasks N]';

const ROLE = 'BenchAdmin';
const WARMUP_GRANTS = 10;
const MIN_BURST_SECONDS = 12;

const progress = (message: string) => process.stderr.write(`[bench grants] ${message}\n`);

function nonNegativeNumber(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || value.trim() === '')
    throw new UsageError(`--${name} must be a number of seconds, 0 or more, got ${value}`);
  return n;
}

function parse(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        grants: { type: 'string', default: '200' },
        burst: { type: 'string' },
        'burst-spread': { type: 'string', default: '5' },
        tenants: { type: 'string', default: '8' },
        concurrency: { type: 'string', default: '20' },
        duration: { type: 'string', default: '10' },
        'pool-max': { type: 'string' },
        'max-cached-workflows': { type: 'string' },
        'max-concurrent-activities': { type: 'string' },
        'max-concurrent-workflow-tasks': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return {
    grants: positiveInt('grants', values.grants)!,
    burst: positiveInt('burst', values.burst),
    burstSpreadSeconds: nonNegativeNumber('burst-spread', values['burst-spread']),
    tenants: positiveInt('tenants', values.tenants)!,
    concurrency: positiveInt('concurrency', values.concurrency)!,
    durationSeconds: positiveInt('duration', values.duration)!,
    poolMax: positiveInt('pool-max', values['pool-max']),
    tuning: {
      maxCachedWorkflows: positiveInt('max-cached-workflows', values['max-cached-workflows']),
      maxConcurrentActivityTaskExecutions: positiveInt('max-concurrent-activities', values['max-concurrent-activities']),
      maxConcurrentWorkflowTaskExecutions: positiveInt('max-concurrent-workflow-tasks', values['max-concurrent-workflow-tasks']),
    },
  };
}

/** The grant activities with no side effects, answering in the shapes the workflow expects. */
type GrantActivities = Pick<
  Activities,
  'recordGrantEvent' | 'checkGrantEligibility' | 'grantAccess' | 'extendAccess' | 'endAccess' | 'verifyAccessGone' | 'notifyGrant'
>;
const noopActivities: GrantActivities = {
  recordGrantEvent: async () => ({ seq: 0, notify: false }),
  checkGrantEligibility: async () => ({ eligible: true, reason: null }),
  grantAccess: async () => ({ entitlementId: 'floor', assigned: true, alreadyEnded: false }),
  endAccess: async () => ({
    closed: true,
    removedFromTarget: true,
    remainingOpen: 0,
    verification: { gone: true, presentOnTarget: false, heldBy: [] },
  }),
  extendAccess: async () => ({ extended: true }),
  verifyAccessGone: async () => ({ gone: true, presentOnTarget: false, heldBy: [] }),
  notifyGrant: async () => ({ delivered: false, reason: 'floor' }),
};

/** When one grant's access starts and ends (epoch ms); a whole number of seconds apart. */
interface Window {
  startAt: number;
  endAt: number;
}

/** Starts one grant workflow; the real side goes through the API's use case, the floor straight to Temporal. */
type Requester = (i: number, window: Window) => Promise<string>;

/** CPU ms spent per lifecycle by the bench process (worker and client), Temporal and PostgreSQL. */
interface CpuPerGrant {
  benchProcess: number;
  temporalServer?: number;
  postgres?: number;
}

interface BatchResult {
  seconds: number;
  /** Measured for the throughput batch only. */
  cpuMsPerGrant?: CpuPerGrant;
  views: GrantView[];
  /** Complete lifecycles: activated, expired, revocation verified. */
  completed: number;
  /** Approved only after the window had closed, so never activated. */
  windowPassed: number;
  /** revocationVerifiedAt − endAt per complete lifecycle, ascending. */
  lagsMs: number[];
  /** startAt (the request) → activation per complete lifecycle, ascending. */
  activationDelaysMs: number[];
  /** Time from the batch start to the last activation. */
  activationSpanMs: number;
}

/** More grants than this share missing their window make a batch meaningless. */
const MAX_WINDOW_PASSED = 0.1;

export async function runGrantsBench(argv: string[]): Promise<void> {
  const parsed = optionsOrUsage(() => parse(argv), USAGE);
  if (!parsed) return;
  const options = parsed;
  const config = loadConfig();
  const { grants: n, tenants: tenantCount, concurrency, durationSeconds } = options;
  const burstSize = options.burst ?? n;
  const warmup = Math.min(WARMUP_GRANTS, n);
  const poolMax = options.poolMax ?? config.DATABASE_POOL_MAX;
  const run = benchRun('bench', progress);
  const { logger, abort, cleanup } = run;
  try {
    // ------------------------------------------------------------ PostgreSQL: a scratch database
    const { suffix, database, owner, apiPool, workerPool, directoryPool } = await scratchService({
      databaseUrl: config.DATABASE_URL,
      poolMax,
      logger,
      cleanup,
      progress,
    });

    // ------------------------------------------------------------ tenants, actors, policy, directory
    const usersPerTenant = Math.ceil(Math.max(n, burstSize) / tenantCount);
    progress(`seeding ${tenantCount} tenants with ${usersPerTenant} directory users each`);
    const slugs = Array.from({ length: tenantCount }, (_, t) => `bench-${suffix}-${t}`);
    const spec: CastSpec = {
      tenants: slugs.map((slug) => ({ slug, name: `Bench tenant ${slug}` })),
      actors: [
        { key: 'operator', displayName: 'Bench operator', kind: 'msp_staff', roles: [{ role: 'operator', tenant: null }] },
        ...slugs.map((slug) => ({
          key: `approver-${slug}`,
          displayName: `Bench approver ${slug}`,
          kind: 'tenant_staff' as const,
          homeTenant: slug,
          roles: [{ role: 'tenant_approver' as const, tenant: slug }],
        })),
      ],
    };
    const cast = await createCast(apiPool, systemContext('grants benchmark'), spec);
    const operator = cast.actors.operator!;
    const principal: Principal = {
      actorId: operator.id,
      kind: operator.kind,
      displayName: operator.displayName,
      bindings: (await listBindings(apiPool, { actorId: operator.id })).map((b) => ({ id: b.id, role: b.role, tenantId: b.tenantId })),
      via: 'api_token',
    };
    const directory = createPostgresDirectory(directoryPool);
    const tenants = await Promise.all(
      slugs.map(async (slug) => {
        const tenantId = cast.tenants[slug]!.id;
        await putPolicy(
          { pool: apiPool, directory },
          systemContext('grants benchmark'),
          tenantId,
          1,
          TenantPolicyDocument.parse({
            grants: { roles: { [ROLE]: { maxDurationMinutes: 60, approvalsRequired: 1, requestableBy: ['operator'] } } },
          }),
        );
        await directory.upsertRole(tenantId, { name: ROLE, privileged: true });
        for (let u = 0; u < usersPerTenant; u++)
          await directory.upsertUser(tenantId, { id: `user-${u}`, username: `user-${u}`, displayName: `User ${u}` });
        return { tenantId, approverId: cast.actors[`approver-${slug}`]!.id, policy: await loadGrantPolicy(apiPool, tenantId) };
      }),
    );
    // Grant i goes to its own (tenant, user), so no two grants in a batch share a ledger lock.
    const target = (i: number) => ({ ...tenants[i % tenantCount]!, subjectId: `user-${Math.floor(i / tenantCount)}` });

    // ------------------------------------------------------------ Temporal
    const { client, connection, code, temporalPid } = await benchTemporal({ config, logger, cleanup, progress });

    const tuning = Object.fromEntries(Object.entries(options.tuning).filter(([, v]) => v !== undefined)) as Partial<WorkerOptions>;
    /**
     * The options worker/worker.ts createTenureWorker sets (keep in step), plus any tuning flags;
     * the rest are SDK defaults. Both sides run with the same ones.
     */
    async function startWorker(taskQueue: string, activities: GrantActivities | Activities) {
      const worker = await Worker.create({
        connection,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue,
        activities,
        workflowBundle: { code },
        shutdownGraceTime: '5 seconds',
        stickyQueueScheduleToStartTimeout: '2 seconds',
        ...tuning,
      });
      const running = worker.run();
      running.catch(() => undefined);
      let stopped = false;
      const stop = async () => {
        if (stopped) return;
        stopped = true;
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      };
      cleanup.push(stop);
      return { running, stop };
    }

    /** Starts counting CPU time; the returned function gives ms per lifecycle since then. */
    function countCpu(): (lifecycles: number) => CpuPerGrant {
      const readCpu = cpuReader();
      const self = process.cpuUsage();
      const temporalBefore = temporalPid !== undefined ? readCpu?.(temporalPid) : undefined;
      // Backends that end in between are missed; the pools keep theirs open through a batch.
      const postgresBefore = new Map(readCpu ? backendsOf(database).map((pid) => [pid, readCpu(pid) ?? 0]) : []);
      return (lifecycles) => {
        const { user, system } = process.cpuUsage(self);
        const perGrant = (ms: number) => Math.round(ms / lifecycles);
        const temporalAfter = temporalPid !== undefined ? readCpu?.(temporalPid) : undefined;
        const postgres = readCpu
          ? backendsOf(database).reduce((sum, pid) => sum + (readCpu(pid) ?? 0) - (postgresBefore.get(pid) ?? 0), 0)
          : undefined;
        return {
          benchProcess: perGrant((user + system) / 1000),
          ...(temporalBefore !== undefined && temporalAfter !== undefined
            ? { temporalServer: perGrant(temporalAfter - temporalBefore) }
            : {}),
          ...(postgres !== undefined ? { postgres: perGrant(postgres) } : {}),
        };
      };
    }

    /**
     * Requests `count` grants `concurrency` at a time, approves each as soon as it is requested
     * (a tenant approver, never the requester), then waits for every lifecycle to end.
     */
    async function runBatch(count: number, request: Requester, windowFor: () => Window, measureCpu = false): Promise<BatchResult> {
      const results: Promise<GrantView>[] = [];
      const cpu = measureCpu ? countCpu() : undefined;
      const started = Date.now();
      // Every Temporal call is cancelled on Ctrl-C, so none is left retrying once the client closes.
      await client.withAbortSignal(abort.signal, () =>
        runConcurrently(count, concurrency, abort.signal, async (i) => {
          const workflowId = await request(i, windowFor());
          const handle = client.workflow.getHandle<typeof grantWorkflow>(workflowId);
          await handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: target(i).approverId, comment: null }] });
          const result = handle.result();
          result.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
          results.push(result);
        }),
      );
      const views = await abortable(Promise.all(results), abort.signal);
      const seconds = (Date.now() - started) / 1000;
      const completed = views.filter((v) => v.activatedAt !== null && v.revocationVerifiedAt !== null);
      for (const view of views) {
        if (
          view.status !== 'ended' ||
          view.endReason !== 'expired' ||
          (view.activatedAt !== null) !== (view.revocationVerifiedAt !== null)
        ) {
          throw new Error(
            `grant ${view.workflowId} finished ${view.status}/${view.endReason ?? '-'}, neither expired with a verified revocation nor past its window`,
          );
        }
      }
      const windowPassed = views.length - completed.length;
      if (windowPassed > count * MAX_WINDOW_PASSED) {
        throw new Error(
          `${windowPassed} of ${count} grants were approved only after their window closed: approvals lag more than the grants last. ` +
            'Raise --duration or lower --concurrency.',
        );
      }
      const ascending = (values: number[]) => values.sort((a, b) => a - b);
      return {
        seconds,
        ...(cpu ? { cpuMsPerGrant: cpu(completed.length) } : {}),
        views,
        completed: completed.length,
        windowPassed,
        lagsMs: ascending(completed.map((v) => Date.parse(v.revocationVerifiedAt!) - Date.parse(v.endAt))),
        activationDelaysMs: ascending(completed.map((v) => Date.parse(v.activatedAt!) - Date.parse(v.startAt))),
        activationSpanMs: Math.max(...completed.map((v) => Date.parse(v.activatedAt!))) - started,
      };
    }

    const throughputWindow = (): Window => {
      const now = Date.now();
      return { startAt: now, endAt: now + durationSeconds * 1000 };
    };
    /** Every grant ends at `endAt`; each starts now-ish, a whole number of seconds before it. */
    const burstWindow = (firstEnd: number) => {
      let k = 0;
      return (): Window => {
        const endAt = firstEnd + Math.floor(((k++ % burstSize) * options.burstSpreadSeconds * 1000) / burstSize);
        return { startAt: endAt - Math.ceil((endAt - Date.now()) / 1000) * 1000, endAt };
      };
    };

    async function runSide(side: 'real' | 'floor', request: Requester, burstAfterSeconds?: number) {
      progress(`${side}: warm-up, ${warmup} lifecycles`);
      const warm = await runBatch(warmup, request, throughputWindow);
      progress(`${side}: throughput, ${n} lifecycles of ${durationSeconds} s, ${concurrency} requests in flight`);
      const throughput = await runBatch(n, request, throughputWindow, true);
      const delays = throughput.activationDelaysMs;
      progress(
        `${side}: ${(throughput.completed / throughput.seconds).toFixed(1)} lifecycles/s (${throughput.completed} in ${throughput.seconds.toFixed(1)} s, ` +
          `${throughput.windowPassed} approved after their window), request → active p50 ${percentile(delays, 0.5)} ms p99 ${percentile(delays, 0.99)} ms; ` +
          `CPU ms per lifecycle ${JSON.stringify(throughput.cpuMsPerGrant)}`,
      );
      // Late enough that every grant of the burst is active before it (the real side's pace decides),
      // and at least 12 s: the workflow warns at 90% of the active time and then arms a timer for
      // the rest, and Temporal fires timers under a second only after about a second.
      const activationSeconds = ((throughput.activationSpanMs / 1000) * burstSize) / n;
      const expireAfter = burstAfterSeconds ?? Math.max(MIN_BURST_SECONDS, Math.ceil(activationSeconds * 1.25) + 3);
      progress(
        `${side}: expiry burst, ${burstSize} grants expiring ${expireAfter}–${expireAfter + options.burstSpreadSeconds} s after the first request`,
      );
      const burst = await runBatch(burstSize, request, burstWindow(Date.now() + expireAfter * 1000));
      progress(
        `${side}: expiry lag p50 ${percentile(burst.lagsMs, 0.5)} ms, p99 ${percentile(burst.lagsMs, 0.99)} ms, max ${burst.lagsMs.at(-1)} ms; ${burst.windowPassed} approved after their window`,
      );
      return { warm, throughput, burst, expireAfter, windowPassed: warm.windowPassed + throughput.windowPassed + burst.windowPassed };
    }

    // ------------------------------------------------------------ real: the worker as deployed
    const realQueue = `bench-grants-${suffix}-real`;
    const realWorker = await startWorker(realQueue, createActivities({ pool: workerPool, directory, clock: systemClock }));
    const realRequest: Requester = async (i, window) => {
      const { tenantId, subjectId, policy } = target(i);
      const { view } = await requestGrant(
        { pool: apiPool, temporal: client, taskQueue: realQueue, directory },
        principal,
        tenantId,
        policy,
        {
          subjectId,
          role: ROLE,
          startAt: new Date(window.startAt).toISOString(),
          endAt: new Date(window.endAt).toISOString(),
          justification: 'grants benchmark',
        },
        { requestId: randomUUID() },
      );
      return view.workflowId;
    };
    const real = await runSide('real', realRequest);
    const workerRssMb = Math.round(process.memoryUsage().rss / 2 ** 20);
    await realWorker.stop();
    await crossCheck(owner, [...real.warm.views, ...real.throughput.views, ...real.burst.views]);

    // ------------------------------------------------------------ floor: same workflow, no-op activities
    const floorQueue = `bench-grants-${suffix}-floor`;
    const floorWorker = await startWorker(floorQueue, noopActivities);
    const floorRequest: Requester = async (i, window) => {
      const { tenantId, subjectId, policy } = target(i);
      const rule = policy.grants.roles[ROLE]!;
      // The input requestGrant builds, started the way it starts it.
      const input: GrantInput = {
        grantId: randomUUID(),
        tenantId,
        subjectId,
        role: ROLE,
        requesterId: principal.actorId,
        justification: 'grants benchmark',
        ticket: null,
        startAt: new Date(window.startAt).toISOString(),
        durationSeconds: Math.round((window.endAt - window.startAt) / 1000),
        requestId: randomUUID(),
        policy: policySnapshot(policy, rule),
      };
      const workflowId = grantWorkflowId(tenantId, input.grantId);
      await client.workflow.start(GRANT_WORKFLOW_TYPE, {
        taskQueue: floorQueue,
        workflowId,
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        args: [input],
        typedSearchAttributes: tenantSearchAttributes(tenantId),
      });
      return workflowId;
    };
    const floor = await runSide('floor', floorRequest, real.expireAfter);
    await floorWorker.stop();

    const grantsPerSec = real.throughput.completed / real.throughput.seconds;
    const floorPerSec = floor.throughput.completed / floor.throughput.seconds;
    // On a machine where everything shares the CPUs, lifecycles/s tend to this ratio; unlike
    // wall time it barely moves with other load on the machine.
    const cpuTotal = (cpu?: CpuPerGrant) =>
      cpu?.temporalServer !== undefined && cpu.postgres !== undefined ? cpu.benchProcess + cpu.temporalServer + cpu.postgres : undefined;
    const realCpu = cpuTotal(real.throughput.cpuMsPerGrant);
    const floorCpu = cpuTotal(floor.throughput.cpuMsPerGrant);
    const summary = {
      bench: 'grants',
      grants: n,
      burst: burstSize,
      burstSpreadSeconds: options.burstSpreadSeconds,
      tenants: tenantCount,
      concurrency,
      durationSeconds,
      grantsPerSec: Number(grantsPerSec.toFixed(1)),
      floorPerSec: Number(floorPerSec.toFixed(1)),
      ratio: Number((grantsPerSec / floorPerSec).toFixed(3)),
      expiryLagP50Ms: percentile(real.burst.lagsMs, 0.5),
      expiryLagP99Ms: percentile(real.burst.lagsMs, 0.99),
      expiryLagMaxMs: real.burst.lagsMs.at(-1),
      floorExpiryLagP50Ms: percentile(floor.burst.lagsMs, 0.5),
      floorExpiryLagP99Ms: percentile(floor.burst.lagsMs, 0.99),
      burstExpireAfterSeconds: real.expireAfter,
      windowPassed: real.windowPassed,
      floorWindowPassed: floor.windowPassed,
      cpuMsPerGrant: real.throughput.cpuMsPerGrant,
      floorCpuMsPerGrant: floor.throughput.cpuMsPerGrant,
      ...(realCpu && floorCpu ? { cpuRatio: Number((floorCpu / realCpu).toFixed(3)) } : {}),
      workerRssMb,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } catch (error) {
    // Ctrl-C surfaces as the abort's reason wherever the run was; report it as such.
    if (abort.signal.aborted) {
      progress('interrupted; cleaning up');
      process.exitCode = 130;
    } else {
      throw error;
    }
  } finally {
    await run.finish();
  }
}

/** Audit events one grant writes: requested, approval recorded, approved, then activated, expiring, expired. */
const EVENTS_COMPLETED = 6;
/** …or, approved after its window: requested, approval recorded, approved, window passed. */
const EVENTS_WINDOW_PASSED = 4;

/**
 * What the database says, against what the workflows returned: each grant's row has its final
 * status and the same expiry and verified-revocation times, each grant's audit events are all
 * there once, and no bench role is left on the directory or open in the ledger.
 */
async function crossCheck(owner: Pool, views: GrantView[]): Promise<void> {
  const { rows } = await owner.query<{ grant_id: string; status: string; lag_ms: number | null; events: number }>(
    `SELECT g.grant_id, g.status, (extract(epoch FROM g.revocation_verified_at - g.end_at) * 1000)::float8 AS lag_ms,
            (SELECT count(*)::int FROM audit_events e WHERE e.target_type = 'grant' AND e.target_id = g.grant_id::text) AS events
       FROM grants g WHERE g.grant_id = ANY($1::uuid[])`,
    [views.map((v) => v.grantId)],
  );
  const stored = new Map(rows.map((r) => [r.grant_id, r]));
  for (const view of views) {
    const row = stored.get(view.grantId);
    const lag = view.revocationVerifiedAt ? Date.parse(view.revocationVerifiedAt) - Date.parse(view.endAt) : null;
    const events = view.activatedAt ? EVENTS_COMPLETED : EVENTS_WINDOW_PASSED;
    if (
      !row ||
      row.status !== view.status ||
      (lag === null) !== (row.lag_ms === null) ||
      Math.abs((row.lag_ms ?? 0) - (lag ?? 0)) > 1 ||
      row.events !== events
    ) {
      throw new Error(
        `the database disagrees with grant ${view.workflowId}: ${JSON.stringify(row)}, expected ${view.status}, lag ${lag} ms, ${events} audit events`,
      );
    }
  }
  const leftover = await owner.query<{ held: number; open: number }>(
    `SELECT (SELECT count(*)::int FROM directory_memberships) AS held, (SELECT count(*)::int FROM entitlements WHERE ended_at IS NULL) AS open`,
  );
  const { held, open } = leftover.rows[0]!;
  if (held !== 0 || open !== 0)
    throw new Error(`after every grant ended, ${held} roles are still held on the directory and ${open} entitlements open`);
  progress(
    `cross-check: ${views.length} grants agree with the database (rows, verified-revocation times, audit events); no role left on the directory or open in the ledger`,
  );
}
