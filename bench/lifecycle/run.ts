import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { loadConfig } from '../../core/config.js';
import { loadLifecyclePolicy } from '../../usecases/lifecycle.js';
import { cpuMeter } from '../cpu.js';
import { quantile } from '../stats.js';
import { LIFECYCLE_TASK_QUEUE } from '../../core/lifecycle/contract.js';
import { taskQueueName } from '../../core/temporal.js';
import {
  benchRun,
  benchTemporal,
  optionsOrUsage,
  runConcurrently,
  scratchService,
  withRunPayloadKeys,
  workerProcessEnv,
} from '../support.js';
import { startWorkerProcess, type WorkerProcess } from '../workers.js';
import type { LifecycleBench } from './context.js';
import { floorSide } from './floor.js';
import { checkJoined, checkLeft, residual } from './measure.js';
import { parseLifecycleBenchOptions, USAGE } from './options.js';
import { DIRECTORY_ROLES, LIFECYCLE, peopleOf } from './people.js';
import { realSide } from './real.js';
import { lifecycleSummary } from './report.js';
import { seedLifecycleBench } from './setup.js';

/**
 * `npm run bench -- lifecycle`: onboarding and offboarding in bulk. `--people` joiners spread over
 * `--tenants` tenants are imported (one CSV per tenant, all tenants at once, through the API's
 * import use case), then a leaver for every one of them; on the real worker, against the
 * bare-Temporal floor: the same personWorkflow, sent the same Updates (update-with-start for a
 * joiner), on a worker whose activities do nothing.
 *
 * - throughput: HR events / s = 2 × people / (joiner phase + leaver phase), each phase timed from
 *   the import call to the last person reaching `active` with every birthright role (joiners),
 *   or `left` with access removed and verified (leavers);
 * - latency, per person: the step's audit event (`person.joined`; `person.left`, written once
 *   the leaver's read-back, in endPersonAccess or verifyPersonAccessGone, found the ledger and
 *   the directory empty) minus the moment the import registered that person's row
 *   (hr_events.received_at), so rows still waiting their turn in the import do not count as
 *   latency;
 * - residualEntitlements: open ledger entitlements plus directory memberships of these people once
 *   every leaver is done; must be 0 (else a warning and exit code 1);
 * - CPU ms per HR event (bench process: worker and client; Temporal dev server; PostgreSQL) over
 *   both phases, for `cpuRatio` = floor / real: on a 2-core machine where Temporal, PostgreSQL and
 *   the worker share the CPUs, events/s tend to it, and unlike wall time it barely moves when
 *   something else runs on the machine.
 *
 * Each side runs alone after a warm-up (one joiner and one leaver per tenant). The floor's
 * activities keep an in-memory note of the roles "granted", so its leavers list and end as many
 * entitlements as the real ones and the workflow makes the same activity calls. Its submissions
 * skip what the use case adds around the Update (HR event register row, policy check, the
 * person query it answers with), as bench/grants does for requests; that is part of the
 * real side's cost.
 */

const WARMUP_PER_TENANT = 1;

const progress = (message: string) => process.stderr.write(`[bench lifecycle] ${message}\n`);

export async function runLifecycleBench(argv: string[]): Promise<void> {
  const options = optionsOrUsage(() => parseLifecycleBenchOptions(argv), USAGE);
  if (!options) return;
  const config = loadConfig();
  const { people: n, tenants: tenantCount, concurrency } = options;
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
    progress(
      `seeding ${tenantCount} tenants, each with an HR feed, ${LIFECYCLE.rules.length} birthright rules and ${DIRECTORY_ROLES.length} directory roles`,
    );
    const tenants = await seedLifecycleBench(service, { suffix: service.suffix, tenantCount });
    // The client puts this run's prefix in front of every queue it starts on; workers poll the prefixed names.
    const taskQueuePrefix = `bench-${service.suffix}-`;
    const runConfig = withRunPayloadKeys({ ...config, TEMPORAL_TASK_QUEUE_PREFIX: taskQueuePrefix });
    const temporal = await benchTemporal({ config: runConfig, logger, cleanup, progress });
    const { client, bundlePath: workflowBundlePath } = temporal;
    // Each side's worker runs in a process of its own, so each side's memory is its worker's alone
    // (workerRssRatio); its CPU counts with the bench process's while that side runs.
    const workerEnv = workerProcessEnv(runConfig, temporal);
    let workerPid: number | undefined;
    const bench: LifecycleBench = {
      options,
      client,
      abort,
      apiPool: service.apiPool,
      owner: service.owner,
      tenants,
      tenantIds: tenants.map((t) => t.tenantId),
      perTenantConcurrency: Math.max(1, Math.ceil(concurrency / tenantCount)),
      started: [],
      meter: () => cpuMeter(temporal.temporalPid, service.database, workerPid),
      progress,
    };
    // Person workflows wait 30 days for their deletion: on a server that outlives the run, end them.
    if (temporal.external) {
      cleanup.push(async () => {
        const ids = bench.started.splice(0);
        await runConcurrently(ids.length, 20, new AbortController().signal, async (i) => {
          await client.workflow
            .getHandle(ids[i]!)
            .terminate('lifecycle benchmark over')
            .catch(() => undefined);
        });
      });
    }

    // Each side has people of its own: a person's workflow id is its tenant and person id.
    const warm = peopleOf('warm', WARMUP_PER_TENANT * tenantCount, tenantCount);
    const cohort = peopleOf('p', n, tenantCount);
    const roleCount = cohort.reduce((sum, p) => sum + p.roles.length, 0);
    if ((await loadLifecyclePolicy(service.apiPool, bench.tenantIds[0]!)).lifecycle.rules.length !== LIFECYCLE.rules.length)
      throw new Error('the lifecycle policy did not take');

    // real: the worker as deployed
    const realWorker = await startWorkerProcess(
      {
        side: 'real',
        taskQueuePrefix,
        taskQueues: [LIFECYCLE_TASK_QUEUE],
        workflowBundlePath,
        appUrl: service.appUrl,
        poolMax: options.poolMax ?? config.DATABASE_POOL_MAX,
      },
      workerEnv,
      cleanup,
    );
    workerPid = realWorker.pid;
    const realPhase = realSide(
      bench,
      { pool: service.apiPool, directory: createPostgresDirectory(service.directoryPool), temporal: client },
      realWorker.running,
    );
    progress(`real: warm-up, ${warm.length} joiners and leavers`);
    await realPhase('joiner', warm);
    await realPhase('leaver', warm);
    progress(
      `real: ${n} joiners (${roleCount} birthright roles) over ${tenantCount} tenants, ${bench.perTenantConcurrency} rows in flight per tenant import`,
    );
    const realJoin = await realPhase('joiner', cohort);
    progress(
      `real: joiners ${(n / realJoin.seconds).toFixed(1)}/s (${realJoin.seconds.toFixed(1)} s), row → active p50 ${quantile(realJoin.latenciesMs, 0.5)} ms p99 ${quantile(realJoin.latenciesMs, 0.99)} ms`,
    );
    await checkJoined(bench, cohort);
    progress(`real: ${n} leavers`);
    const realLeave = await realPhase('leaver', cohort);
    progress(
      `real: leavers ${(n / realLeave.seconds).toFixed(1)}/s (${realLeave.seconds.toFixed(1)} s), row → left p50 ${quantile(realLeave.latenciesMs, 0.5)} ms p99 ${quantile(realLeave.latenciesMs, 0.99)} ms`,
    );
    await checkLeft(bench, cohort);
    const workerRssMb = realWorker.peakRssMb() ?? 0;
    const left = await residual(bench, [...warm, ...cohort]);
    const residualEntitlements = left.open + left.memberships;
    progress(`residual: ${left.open} open entitlements, ${left.memberships} directory memberships`);
    await realWorker.stop();

    // floor: same workflow, no-op activities
    const floorQueue = 'lifecycle-floor';
    const floor = await floorSide(bench, floorQueue, async (onStep) => {
      const worker = await startWorkerProcess(
        { side: 'floor-lifecycle', taskQueuePrefix, taskQueue: taskQueueName(taskQueuePrefix, floorQueue), workflowBundlePath },
        workerEnv,
        cleanup,
        onStep,
      );
      workerPid = worker.pid;
      return worker;
    });
    const floorWarm = peopleOf('floor-warm', WARMUP_PER_TENANT * tenantCount, tenantCount);
    const floorCohort = peopleOf('floor-p', n, tenantCount);
    progress(`floor: warm-up, ${floorWarm.length} joiners and leavers`);
    await floor.floorPhase('joiner', floorWarm);
    await floor.floorPhase('leaver', floorWarm);
    progress(`floor: ${n} joiners`);
    const floorJoin = await floor.floorPhase('joiner', floorCohort);
    progress(
      `floor: joiners ${(n / floorJoin.seconds).toFixed(1)}/s (${floorJoin.seconds.toFixed(1)} s), p99 ${quantile(floorJoin.latenciesMs, 0.99)} ms`,
    );
    progress(`floor: ${n} leavers`);
    const floorLeave = await floor.floorPhase('leaver', floorCohort);
    progress(
      `floor: leavers ${(n / floorLeave.seconds).toFixed(1)}/s (${floorLeave.seconds.toFixed(1)} s), p99 ${quantile(floorLeave.latenciesMs, 0.99)} ms`,
    );
    const floorWorkerRssMb = (floor.worker as WorkerProcess).peakRssMb() ?? 0;
    await floor.worker.stop();
    progress(`peak worker RSS: real ${workerRssMb} MB, floor ${floorWorkerRssMb} MB (each in a process of its own)`);

    const summary = lifecycleSummary(options, {
      roleCount,
      real: { join: realJoin, leave: realLeave },
      floor: { join: floorJoin, leave: floorLeave },
      residualEntitlements,
      workerRssMb,
      floorWorkerRssMb,
    });
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    if (residualEntitlements !== 0) {
      progress(
        `WARNING: ${left.open} entitlements still open and ${left.memberships} directory memberships left after every leaver completed`,
      );
      process.exitCode = 1;
    }
  });
}
