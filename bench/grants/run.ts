import type { Client } from '@temporalio/client';
import { systemClock } from '../../activities/index.js';
import { loadConfig } from '../../core/config.js';
import { cpuMeter, type CpuMs } from '../cpu.js';
import { quantile } from '../stats.js';
import { createDirectoryRegistry } from '../../connectors/directory/registry.js';
import { sweepScheduleHook } from '../../activities/directory/sweep-schedule.js';
import { DIRECTORY_TASK_QUEUE, sweepScheduleId } from '../../core/directory/sweep.js';
import { GRANTS_TASK_QUEUE } from '../../core/grants/contract.js';
import type { Pool } from '../../db/pool.js';
import { startRunTargets, type RemoteTargetKind } from '../directory-targets.js';
import { taskQueueName } from '../../core/temporal.js';
import { benchRun, benchTemporal, optionsOrUsage, scratchService, withRunPayloadKeys, workerProcessEnv } from '../support.js';
import { startFloorWorker, startTenureWorker, startWorkerProcess, type RunningWorker } from '../workers.js';
import { floorRequester, noopGrantActivities } from './floor.js';
import { burstWindow, realRequester, requestAndApprove, throughputWindow, type Requester, type Window } from './load.js';
import { crossCheck, measureBatch, type BatchResult } from './measure.js';
import { parseGrantsBenchOptions, USAGE, type GrantsBenchOptions } from './options.js';
import { grantsSummary, type SideResult } from './report.js';
import { seedGrantsBench, type GrantsBenchSetup } from './setup.js';

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

const WARMUP_GRANTS = 10;
const MIN_BURST_SECONDS = 12;

const progress = (message: string) => process.stderr.write(`[bench grants] ${message}\n`);

interface Bench {
  options: GrantsBenchOptions;
  client: Client;
  abort: AbortController;
  setup: GrantsBenchSetup;
  /** Starts counting CPU; the returned function gives the ms spent since. */
  meter: () => () => CpuMs;
}

async function runBatch(
  bench: Bench,
  count: number,
  request: Requester,
  windowFor: () => Window,
  measureCpu = false,
): Promise<BatchResult> {
  const cpu = measureCpu ? bench.meter() : undefined;
  const started = Date.now();
  const views = await requestAndApprove({ ...bench, concurrency: bench.options.concurrency }, count, request, windowFor);
  return measureBatch(views, count, started, cpu?.());
}

/**
 * Warm-up, throughput, then (unless `burst: false`) the expiry burst, set `burstAfterSeconds` out
 * (or as late as the throughput batch says).
 */
async function runSide(
  bench: Bench,
  side: string,
  request: Requester,
  { burstAfterSeconds, burst: withBurst = true }: { burstAfterSeconds?: number; burst?: boolean } = {},
): Promise<SideResult> {
  const { grants: n, burst: burstSize, durationSeconds, concurrency, burstSpreadSeconds } = bench.options;
  const warmup = Math.min(WARMUP_GRANTS, n);
  progress(`${side}: warm-up, ${warmup} lifecycles`);
  const warm = await runBatch(bench, warmup, request, throughputWindow(durationSeconds));
  progress(`${side}: throughput, ${n} lifecycles of ${durationSeconds} s, ${concurrency} requests in flight`);
  const throughput = await runBatch(bench, n, request, throughputWindow(durationSeconds), true);
  const delays = throughput.activationDelaysMs;
  progress(
    `${side}: ${(throughput.completed / throughput.seconds).toFixed(1)} lifecycles/s (${throughput.completed} in ${throughput.seconds.toFixed(1)} s, ` +
      `${throughput.windowPassed} approved after their window), request → active p50 ${quantile(delays, 0.5)} ms p99 ${quantile(delays, 0.99)} ms; ` +
      `CPU ms per lifecycle ${JSON.stringify(throughput.cpuMsPerGrant)}`,
  );
  if (!withBurst) return { warm, throughput, expireAfter: 0, windowPassed: warm.windowPassed + throughput.windowPassed };
  // Late enough that every grant of the burst is active before it (the real side's pace decides),
  // and at least 12 s: the workflow warns at 90% of the active time and then arms a timer for
  // the rest, and Temporal fires timers under a second only after about a second.
  const activationSeconds = ((throughput.activationSpanMs / 1000) * burstSize) / n;
  const expireAfter = burstAfterSeconds ?? Math.max(MIN_BURST_SECONDS, Math.ceil(activationSeconds * 1.25) + 3);
  progress(
    `${side}: expiry burst, ${burstSize} grants expiring ${expireAfter}–${expireAfter + burstSpreadSeconds} s after the first request`,
  );
  const burst = await runBatch(bench, burstSize, request, burstWindow(Date.now() + expireAfter * 1000, burstSize, burstSpreadSeconds));
  progress(
    `${side}: expiry lag p50 ${quantile(burst.lagsMs, 0.5)} ms, p99 ${quantile(burst.lagsMs, 0.99)} ms, max ${burst.lagsMs.at(-1)} ms; ${burst.windowPassed} approved after their window`,
  );
  return { warm, throughput, burst, expireAfter, windowPassed: warm.windowPassed + throughput.windowPassed + burst.windowPassed };
}

export async function runGrantsBench(argv: string[]): Promise<void> {
  const options = optionsOrUsage(() => parseGrantsBenchOptions(argv), USAGE);
  if (!options) return;
  const config = loadConfig();
  const run = benchRun('bench', progress);
  const { logger, abort, cleanup } = run;
  await run.complete(async () => {
    const service = await scratchService({
      databaseUrl: config.DATABASE_URL,
      poolMax: options.poolMax ?? config.DATABASE_POOL_MAX,
      logger,
      cleanup,
      progress,
    });
    const usersPerTenant = Math.ceil(Math.max(options.grants, options.burst) / options.tenants);
    progress(`seeding ${options.tenants} tenants with ${usersPerTenant} directory users each`);
    const setup = await seedGrantsBench(service, { suffix: service.suffix, tenantCount: options.tenants, usersPerTenant });
    // The client puts this run's prefix in front of every queue it starts on; workers poll the prefixed names.
    const taskQueuePrefix = `bench-${service.suffix}-`;
    const runConfig = withRunPayloadKeys({ ...config, TEMPORAL_TASK_QUEUE_PREFIX: taskQueuePrefix });
    const temporal = await benchTemporal({ config: runConfig, logger, cleanup, progress });
    const { client, connection, dataConverter, namespace, bundlePath: workflowBundlePath } = temporal;
    // The side's worker process, whose CPU counts with the bench process's while it runs.
    let workerPid: number | undefined;
    const bench: Bench = { options, client, abort, setup, meter: () => cpuMeter(temporal.temporalPid, service.database, workerPid) };
    const { target } = options;
    const remote = target === 'builtin' ? undefined : await seedRemoteTargets(target, options, service, setup, temporal, cleanup);
    // On the built-in directory each side's worker runs in a process of its own, so each side's
    // memory is its worker's alone (workerRssRatio). Against a real target the worker also runs
    // the tenants' sweeps with the run's own directory registry, so it stays in this process.
    const workerEnv = workerProcessEnv(runConfig, temporal);

    // real: the worker as deployed (with the expiry sweeper's queue when tenants are on targets that need it)
    const realWorker: RunningWorker & { peakRssMb?: () => number | undefined } = remote
      ? await startTenureWorker(
          {
            connection,
            dataConverter,
            namespace,
            taskQueuePrefix,
            taskQueues: [GRANTS_TASK_QUEUE, DIRECTORY_TASK_QUEUE],
            tuning: options.tuning,
            workflowBundlePath,
            pool: service.workerPool,
            directory: setup.directory,
            directories: remote.directories,
            clock: systemClock,
          },
          cleanup,
        )
      : await startWorkerProcess(
          {
            side: 'real',
            taskQueuePrefix,
            taskQueues: [GRANTS_TASK_QUEUE],
            workflowBundlePath,
            appUrl: service.appUrl,
            poolMax: options.poolMax ?? config.DATABASE_POOL_MAX,
            tuning: options.tuning,
          },
          workerEnv,
          cleanup,
        );
    workerPid = 'pid' in realWorker ? (realWorker.pid as number) : undefined;
    const apiDeps = { apiPool: service.apiPool, client };
    // Against a real target, the built-in directory's throughput in the same run is the yardstick (`targetRatio`).
    const builtin = remote ? await runSide(bench, 'builtin', realRequester(apiDeps, setup), { burst: false }) : undefined;
    const realSetup = remote?.setup ?? setup;
    const real = await runSide({ ...bench, setup: realSetup }, remote ? target : 'real', realRequester(apiDeps, realSetup));
    const workerRssMb = realWorker.peakRssMb?.() ?? Math.round(process.memoryUsage().rss / 2 ** 20);
    await realWorker.stop();
    if (builtin) await crossCheck(service.owner, setup, [...builtin.warm.views, ...builtin.throughput.views], progress);
    await crossCheck(service.owner, realSetup, [...real.warm.views, ...real.throughput.views, ...real.burst!.views], progress);

    // floor: same workflow, no-op activities
    const floorQueue = taskQueueName(taskQueuePrefix, 'grants-floor');
    const floorWorker: RunningWorker & { peakRssMb?: () => number | undefined } = remote
      ? await startFloorWorker(
          {
            connection,
            dataConverter,
            namespace,
            taskQueue: floorQueue,
            workflowBundlePath,
            activities: noopGrantActivities,
            tuning: options.tuning,
          },
          cleanup,
        )
      : await startWorkerProcess(
          { side: 'floor-grants', taskQueuePrefix, taskQueue: floorQueue, workflowBundlePath, tuning: options.tuning },
          workerEnv,
          cleanup,
        );
    workerPid = 'pid' in floorWorker ? (floorWorker.pid as number) : undefined;
    const floor = await runSide(bench, 'floor', floorRequester(client, 'grants-floor', setup), { burstAfterSeconds: real.expireAfter });
    const floorWorkerRssMb = floorWorker.peakRssMb?.();
    await floorWorker.stop();
    progress(
      floorWorkerRssMb === undefined
        ? `worker RSS: ${workerRssMb} MB (the bench process, both workers in it)`
        : `peak worker RSS: real ${workerRssMb} MB, floor ${floorWorkerRssMb} MB (each in a process of its own)`,
    );

    process.stdout.write(`${JSON.stringify(grantsSummary(options, real, floor, { workerRssMb, floorWorkerRssMb }, builtin))}\n`);
  });
}

/**
 * `--target ldap|scim`: the real servers started for the run, a directory registry as the API and
 * worker build it (secrets from the run's own environment, each tenant's sweep schedule created
 * before it first uses its target), and a second set of tenants, each on a target of its own.
 */
async function seedRemoteTargets(
  kind: RemoteTargetKind,
  options: GrantsBenchOptions,
  service: { apiPool: Pool; directoryPool: Pool; suffix: string },
  builtin: GrantsBenchSetup,
  temporal: { client: Client },
  cleanup: (() => Promise<unknown>)[],
) {
  progress(`starting ${kind === 'ldap' ? 'slapd' : `${options.tenants} scim2-servers`} for the ${kind} tenants`);
  const targets = await startRunTargets(kind);
  cleanup.push(() => targets.stop());
  const config = loadConfig();
  const directories = createDirectoryRegistry({
    pool: service.directoryPool,
    builtin: builtin.directory,
    secrets: { env: targets.secretEnv },
    onTarget: sweepScheduleHook({
      temporal: temporal.client,
      taskQueuePrefix: `bench-${service.suffix}-`,
      intervalSeconds: config.DIRECTORY_SWEEP_INTERVAL_SECONDS,
    }),
  });
  cleanup.push(() => directories.close());
  const usersPerTenant = Math.ceil(Math.max(options.grants, options.burst) / options.tenants);
  progress(`seeding ${options.tenants} tenants on ${kind} with ${usersPerTenant} users each`);
  const setup = await seedGrantsBench(
    service,
    { suffix: service.suffix, tenantCount: options.tenants, usersPerTenant },
    { run: targets, directories },
  );
  // A Temporal server the run did not start (TEMPORAL_ADDRESS) keeps no schedule of the run's tenants.
  cleanup.push(() =>
    Promise.all(
      setup.tenants.map((t) =>
        temporal.client.schedule
          .getHandle(sweepScheduleId(t.tenantId))
          .delete()
          .catch(() => undefined),
      ),
    ),
  );
  return { setup, directories };
}
