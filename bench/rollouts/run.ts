import { Client } from '@temporalio/client';
import { createActivities, systemClock } from '../../activities/index.js';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { loadConfig } from '../../core/config.js';
import { TEMPLATES_TASK_QUEUE } from '../../core/templates/contract.js';
import { DRIFT_SCAN_WORKFLOW_TYPE, driftScanSearchAttributes, type DriftCounts } from '../../core/templates/drift.js';
import type { TemplateRolloutView } from '../../core/templates/rollouts.js';
import { taskQueueName, taskQueuePrefixInterceptor } from '../../core/temporal.js';
import { stepRollout, type RolloutDeps } from '../../usecases/rollouts.js';
import { maxHistoryEvents } from '../campaigns/phases.js';
import { memoryDirectory } from '../campaigns/memory-directory.js';
import { benchRun, benchTemporal, optionsOrUsage, scratchService } from '../support.js';
import { startFloorWorker, startTenureWorker } from '../workers.js';
import { countAfterHalt, refusingFor } from './halt.js';
import { parseRolloutsBenchOptions, USAGE } from './options.js';
import { approvedTemplate, seedRolloutStaff, seedRolloutTenants, startOneWaveRollout, waitForRollout, type RolloutCast } from './setup.js';

/**
 * `npm run bench -- rollouts`: template rollouts at MSP scale, on the real worker.
 *
 * - real: one rollout of an approved version that only tightens (two roles, stricter MFA,
 *   password and lockout settings: no tenant's gate) to `--tenants` tenants (default 500) on the
 *   built-in directory, `--window` applies at once; tenants/s from the start call until the
 *   rollout's `completedAt`.
 * - drift: one drift scan (the scheduled workflow, started by hand) over those applied tenants.
 * - halt: a rollout over `--halt-tenants` other tenants whose target refuses their settings (the
 *   connector's permanent rejection), error budget `--max-failures`. Once it is halted and quiet,
 *   Temporal's own list of its children minus those started when the halt was decided (the halt
 *   event's payload) is `tenantsStartedAfterHalt`: it must be 0 (exit code 1 otherwise).
 * - floor: the same rollout over `--tenants` tenants of its own, the same workflows and
 *   activities on a queue of its own, with a directory that answers from memory (roles and
 *   settings, no-op target calls); `ratio` = real / floor (goal ≥ 0.8, reported, not enforced).
 */

const progress = (message: string) => process.stderr.write(`[bench rollouts] ${message}\n`);
const PHASE_TIMEOUT_MS = 20 * 60_000;
const round = (n: number, digits = 1) => Number(n.toFixed(digits));

export async function runRolloutsBench(argv: string[]): Promise<void> {
  const options = optionsOrUsage(() => parseRolloutsBenchOptions(argv), USAGE);
  if (!options) return;
  const config = loadConfig();
  const run = benchRun('bench', progress);
  const { logger, abort, cleanup } = run;
  const { signal } = abort;
  await run.complete(async () => {
    const service = await scratchService({
      databaseUrl: config.DATABASE_URL,
      poolMax: options.poolMax ?? config.DATABASE_POOL_MAX,
      logger,
      cleanup,
      progress,
    });
    const { owner } = service;
    const seedStart = Date.now();
    progress(`seeding ${options.tenants} real, ${options.tenants} floor and ${options.haltTenants} halting tenants`);
    const cast: RolloutCast = await seedRolloutStaff(service.apiPool);
    const realTenants = await seedRolloutTenants(service.apiPool, `bench-${service.suffix}-real`, options.tenants);
    const floorTenants = await seedRolloutTenants(service.apiPool, `bench-${service.suffix}-floor`, options.tenants);
    const haltTenants = await seedRolloutTenants(service.apiPool, `bench-${service.suffix}-halt`, options.haltTenants);
    const templateId = await approvedTemplate(service.apiPool, cast, `bench-baseline-${service.suffix}`);
    progress(`seeded in ${((Date.now() - seedStart) / 1000).toFixed(0)} s`);

    const taskQueuePrefix = `bench-${service.suffix}-`;
    const floorPrefix = `bench-${service.suffix}-floor-`;
    const temporal = await benchTemporal({ config: { ...config, TEMPORAL_TASK_QUEUE_PREFIX: taskQueuePrefix }, logger, cleanup, progress });
    const { client, connection, dataConverter, namespace, bundlePath: workflowBundlePath } = temporal;
    // The floor's rollout starts on a queue of its own; its children and activities follow it there.
    const floorClient = new Client({
      connection: client.connection,
      namespace,
      dataConverter,
      interceptors: { workflow: [taskQueuePrefixInterceptor(floorPrefix)] },
    });
    const deps: RolloutDeps = { pool: service.apiPool, temporal: client };
    const directory = createPostgresDirectory(service.directoryPool);

    const timed = async (side: string, rolloutDeps: RolloutDeps, tenantIds: string[]) => {
      progress(`${side}: rolling out to ${tenantIds.length} tenants, window ${options.window}`);
      const start = Date.now();
      const started = await startOneWaveRollout(rolloutDeps, cast, templateId, tenantIds, { window: options.window });
      const done = await waitForRollout(service.apiPool, started.rolloutId, (v) => v.status === 'completed', {
        timeoutMs: PHASE_TIMEOUT_MS,
        signal,
      });
      const seconds = (Date.parse(done.completedAt!) - start) / 1000;
      const applied = done.waves.reduce((sum, w) => sum + w.applied, 0);
      progress(`${side}: ${applied} applied in ${seconds.toFixed(1)} s (${(tenantIds.length / seconds).toFixed(1)} tenants/s)`);
      return { seconds, applied, view: done };
    };

    await client.withAbortSignal(signal, async () => {
      const realWorker = await startTenureWorker(
        {
          connection,
          dataConverter,
          namespace,
          taskQueuePrefix,
          taskQueues: [TEMPLATES_TASK_QUEUE],
          workflowBundlePath,
          pool: service.workerPool,
          directory,
          directories: refusingFor(directory, new Set(haltTenants)),
          clock: systemClock,
          temporal: client,
        },
        cleanup,
      );
      const real = await timed('real', deps, realTenants);

      progress(`drift: scanning the ${real.applied} applied tenants`);
      const driftStart = Date.now();
      const drift: DriftCounts = await client.workflow.execute(DRIFT_SCAN_WORKFLOW_TYPE, {
        taskQueue: TEMPLATES_TASK_QUEUE,
        workflowId: `bench-drift-scan-${service.suffix}`,
        args: [{}],
        typedSearchAttributes: driftScanSearchAttributes(),
      });
      const driftScanSeconds = (Date.now() - driftStart) / 1000;
      progress(`drift: ${JSON.stringify(drift)} in ${driftScanSeconds.toFixed(1)} s`);

      progress(`halt: ${options.haltTenants} tenants whose target refuses, budget ${options.maxFailures} failure(s)`);
      const halting = await startOneWaveRollout(deps, cast, templateId, haltTenants, {
        window: options.window,
        maxFailures: options.maxFailures,
      });
      const halted: TemplateRolloutView = await waitForRollout(
        service.apiPool,
        halting.rolloutId,
        (v) => v.status === 'halted' && v.inFlight === 0,
        {
          timeoutMs: PHASE_TIMEOUT_MS,
          signal,
        },
      );
      const halt = await countAfterHalt(owner, client, halted);
      progress(
        `halt: ${halt.startedAtHalt} started when it halted (${halt.failures} failures, ${halt.budget}), ${halt.startedInTemporal} in Temporal`,
      );
      await stepRollout(deps, halting.rolloutId, 'cancel', {
        actorId: cast.operator.actor.id,
        comment: 'benchmark: halted as planned',
        authority: cast.operator.authority,
      });
      await waitForRollout(service.apiPool, halting.rolloutId, (v) => v.status === 'cancelled', { timeoutMs: PHASE_TIMEOUT_MS, signal });
      const afterCancel = await countAfterHalt(owner, client, halted);
      const workerRssMb = Math.round(process.memoryUsage().rss / 2 ** 20);
      await realWorker.stop();

      const memory = memoryDirectory({ settings: true });
      const floorWorker = await startFloorWorker(
        {
          connection,
          dataConverter,
          namespace,
          taskQueue: taskQueueName(floorPrefix, TEMPLATES_TASK_QUEUE),
          workflowBundlePath,
          activities: createActivities({ pool: service.workerPool, directory: memory, clock: systemClock, temporal: floorClient }),
        },
        cleanup,
      );
      const floor = await timed('floor', { pool: service.apiPool, temporal: floorClient }, floorTenants);
      await floorWorker.stop();

      const history = await maxHistoryEvents(client, `TaskQueue = '${taskQueueName(taskQueuePrefix, TEMPLATES_TASK_QUEUE)}'`, signal);
      const tenantsPerSec = options.tenants / real.seconds;
      const floorTenantsPerSec = options.tenants / floor.seconds;
      const tenantsStartedAfterHalt = Math.max(halt.tenantsStartedAfterHalt, afterCancel.tenantsStartedAfterHalt);
      const problems = [
        ...(real.applied !== options.tenants ? [`real: ${real.applied} applied, expected ${options.tenants}`] : []),
        ...(floor.applied !== options.tenants ? [`floor: ${floor.applied} applied, expected ${options.tenants}`] : []),
        ...(drift.checked !== options.tenants || drift.failed || drift.drifted
          ? [`drift scan: ${JSON.stringify(drift)}, expected ${options.tenants} checked in sync`]
          : []),
        ...(tenantsStartedAfterHalt !== 0 ? [`${tenantsStartedAfterHalt} tenant(s) started after the halt`] : []),
        ...(halt.failures <= options.maxFailures ? [`halted at ${halt.failures} failures, budget ${options.maxFailures}`] : []),
      ];
      const summary = {
        bench: 'rollouts',
        tenants: options.tenants,
        window: options.window,
        tenantsPerSec: round(tenantsPerSec),
        floorTenantsPerSec: round(floorTenantsPerSec),
        ratio: round(tenantsPerSec / floorTenantsPerSec, 3),
        rolloutSeconds: round(real.seconds),
        floorRolloutSeconds: round(floor.seconds),
        haltTenants: options.haltTenants,
        maxFailures: options.maxFailures,
        startedAtHalt: halt.startedAtHalt,
        childrenStartedInTemporal: afterCancel.startedInTemporal,
        tenantsStartedAfterHalt,
        driftScanSeconds: round(driftScanSeconds),
        driftChecked: drift.checked,
        maxHistoryEvents: history.events,
        maxHistoryWorkflow: history.workflowId,
        executionsMeasured: history.executions,
        workerRssMb,
        goalsMissed: [...(tenantsPerSec / floorTenantsPerSec < 0.8 ? ['ratio ≥ 0.8'] : [])],
        problems,
      };
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      if (problems.length) {
        progress(`WARNING: ${problems.join('; ')}`);
        process.exitCode = 1;
      }
    });
  });
}
