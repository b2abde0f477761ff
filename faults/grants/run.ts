import os from 'node:os';
import type { Client } from '@temporalio/client';
import { parseArgs } from 'node:util';
import { sweepScheduleHook } from '../../activities/directory/sweep-schedule.js';
import { REMOTE_TARGET_KINDS, startRunTargets, type RemoteTargetKind } from '../../bench/directory-targets.js';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { createDirectoryRegistry } from '../../connectors/directory/registry.js';
import { DIRECTORY_TASK_QUEUE, sweepScheduleId } from '../../core/directory/sweep.js';
import { GRANTS_TASK_QUEUE, grantWorkflowId } from '../../core/grants/contract.js';
import { createPool } from '../../db/pool.js';
import type { GrantDeps } from '../../usecases/grants.js';
import { sampleAccess, type AccessSource } from '../support/access-sampler.js';
import { closingFailure, diagnoseLateWorkflows } from '../support/history.js';
import { killWorkerRepeatedly, restartPostgresEvenly, restartTemporalEvenly, type TemporalRestart } from '../support/inject.js';
import { faultRun, positiveInt, range, zeroOrMore, type FaultRun } from '../support/run.js';
import { startRunStack, startSupervisedWorker, type RunStack } from '../support/stack.js';
import { waitWorkflowsClosed } from '../support/temporal.js';
import { Timeline } from '../support/timeline.js';
import { grantDriver } from './driver.js';
import * as invariant from './invariants.js';
import { EXPIRY_GRACE_MS } from './invariants.js';
import { observe } from './observations.js';
import { APPROVED_ROLE, AUTO_ROLE, makePlan, type Tracked } from './plan.js';
import { reportStatusEvery5s, waitGrantsFinal } from './progress.js';
import { seedGrantsFaults } from './seed.js';
import { grantsFaultsSummary } from './summary.js';

/**
 * Fault run for grants: a few hundred short grant lifecycles driven through the use cases while
 * the worker (a child process, as `tenure worker` runs in production) is SIGKILLed and restarted
 * every few seconds, the PostgreSQL it and the driver use is stopped and started again, and so is
 * the Temporal server itself (persisted to a file, SIGKILL or SIGTERM, same port and file), which
 * the worker and the driver's client must ride through. Then, with the system quiet, it checks
 * the three promises the design makes under faults:
 *
 * - no grant outlives its expiry: sampled twice a second during the run, the target gives no
 *   access that a grant whose window is open (its end, or the moment an early revoke was sent, +
 *   EXPIRY_GRACE_MS) does not explain; at the end none is still open and no membership is left
 *   that no open entitlement explains, and no grant was activated after its window had closed;
 *   the workflows' own confirmation lag (`verifiedRevocationLate`, expiry lag percentiles) is
 *   reported beside it;
 * - no audit event lost or doubled: each grant's trail has each transition its final state implies
 *   exactly once (approval_recorded once per recorded approval, revocation_alert at most once per
 *   revocation step), nothing else, in lifecycle order, and as many events as the workflow
 *   counted (`view.version`);
 * - every hash chain verifies from genesis to its stored head.
 * Each is computed in ./invariants.ts from what ./observations.ts reads; ./summary.ts lists the
 * counters that must be 0 and the fault counts the run must reach.
 */

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      grants: { type: 'string', default: '300' },
      'launch-seconds': { type: 'string', default: '60' },
      timeout: { type: 'string', default: '300' },
      'kill-every': { type: 'string', default: '5-8' },
      'min-worker-kills': { type: 'string', default: '8' },
      'postgres-restarts': { type: 'string', default: '2' },
      'temporal-restarts': { type: 'string', default: '2' },
      // Coverage: how many grants the target must have taken, and early revokes sent while it held them.
      'min-access-given': { type: 'string' },
      'min-revokes-of-given-access': { type: 'string', default: '10' },
      target: { type: 'string', default: 'builtin' },
      'sweep-every': { type: 'string', default: '2' },
    },
    strict: true,
  });
  const target = values.target;
  if (target !== 'builtin' && !(REMOTE_TARGET_KINDS as readonly string[]).includes(target))
    throw new Error(`--target must be builtin, ${REMOTE_TARGET_KINDS.join(' or ')}, got ${target}`);
  const temporalRestarts = zeroOrMore('temporal-restarts', values['temporal-restarts']);
  if (temporalRestarts > 0 && process.env.TEMPORAL_ADDRESS)
    throw new Error('the grants fault run restarts the Temporal server it owns: unset TEMPORAL_ADDRESS, or pass --temporal-restarts 0');
  return {
    grantCount: positiveInt('grants', values.grants),
    launchMs: positiveInt('launch-seconds', values['launch-seconds']) * 1000,
    timeoutMs: positiveInt('timeout', values.timeout) * 1000,
    killEvery: range('kill-every', values['kill-every']),
    minWorkerKills: zeroOrMore('min-worker-kills', values['min-worker-kills']),
    postgresRestarts: zeroOrMore('postgres-restarts', values['postgres-restarts']),
    temporalRestarts,
    // A quarter of the grants by default: most plans give access, so fewer means the run was starved.
    minAccessGiven:
      values['min-access-given'] === undefined
        ? Math.floor(Number(values.grants) / 4)
        : zeroOrMore('min-access-given', values['min-access-given']),
    minRevokesOfGivenAccess: zeroOrMore('min-revokes-of-given-access', values['min-revokes-of-given-access']),
    target: target as 'builtin' | RemoteTargetKind,
    /** DIRECTORY_SWEEP_INTERVAL_SECONDS of the run's sweeper, on a target without `membershipEnd`. */
    sweepEverySeconds: positiveInt('sweep-every', values['sweep-every']),
  };
}

/** Runs the tenants' sweep schedules started, skipped (a sweep still running) and missed (Temporal down), summed. */
async function describeSweepSchedules(client: Client, tenantIds: string[], progress: (message: string) => void) {
  const totals = { taken: 0, skippedOverlap: 0, missedCatchupWindow: 0, missing: 0 };
  for (const tenantId of tenantIds) {
    try {
      const { info } = await client.schedule.getHandle(sweepScheduleId(tenantId)).describe();
      totals.taken += info.numActionsTaken;
      totals.skippedOverlap += info.numActionsSkippedOverlap;
      totals.missedCatchupWindow += info.numActionsMissedCatchupWindow;
    } catch (error) {
      progress(`sweep schedule of tenant ${tenantId}: ${(error as Error).message}`);
      totals.missing++;
    }
  }
  return totals;
}

/**
 * `--target ldap|scim`: the servers, and the same directory registry the API and worker build, so
 * each tenant's sweep schedule is made before it first uses its target; its secrets go to the
 * worker processes' environment.
 */
async function remoteTargets(run: FaultRun, stack: RunStack, kind: RemoteTargetKind, sweepEverySeconds: number) {
  run.progress(`starting ${kind === 'ldap' ? 'slapd' : 'a scim2-server per tenant'} for the tenants' targets`);
  const targets = await startRunTargets(kind, { logger: run.logger });
  run.cleanup.push({ name: `${kind} targets`, step: () => targets.stop() });
  // Its own small pool: the registry reads policies while its callers hold theirs.
  const pool = createPool({ connectionString: stack.db.appUrl, max: 2 });
  run.cleanup.push({ name: 'registry pool', step: () => pool.end() });
  const directories = createDirectoryRegistry({
    pool,
    builtin: createPostgresDirectory(stack.db.pool),
    secrets: { env: targets.secretEnv },
    onTarget: sweepScheduleHook(
      { temporal: stack.temporal.client, taskQueuePrefix: stack.temporal.taskQueuePrefix, intervalSeconds: sweepEverySeconds },
      (tenantId, outcome) => run.progress(`sweep schedule of tenant ${tenantId}: ${outcome}`),
    ),
  });
  run.cleanup.push({ name: 'directory registry', step: () => directories.close() });
  return { run: targets, directories };
}

export async function runGrantsFaults(argv: string[]): Promise<boolean> {
  const {
    grantCount,
    launchMs,
    timeoutMs,
    killEvery,
    minWorkerKills,
    postgresRestarts,
    temporalRestarts,
    minAccessGiven,
    minRevokesOfGivenAccess,
    target,
    sweepEverySeconds,
  } = parse(argv);
  const runStart = Date.now();
  // Expiry lag depends on CPU as much as on faults: record how busy the machine was.
  const loadAtStart = os.loadavg()[0]!;
  const runDeadline = runStart + timeoutMs;
  const run = faultRun('grants');
  const { progress, cleanup } = run;
  const timeline = new Timeline();
  try {
    const stack = await startRunStack(run, timeline);
    const { db, temporal } = stack;
    const remote = target === 'builtin' ? undefined : await remoteTargets(run, stack, target, sweepEverySeconds);
    progress(`seeding tenants, actors, grant policy and directory (${target})`);
    const seed = await seedGrantsFaults(db.pool, db.owner, remote);
    const deps: GrantDeps = {
      pool: db.pool,
      temporal: temporal.client,
      directory: seed.directory,
      ...(seed.directories ? { directories: seed.directories } : {}),
    };
    const { tenantIds } = seed;
    const workerSettings = remote ? { ...remote.run.secretEnv, DIRECTORY_SWEEP_INTERVAL_SECONDS: String(sweepEverySeconds) } : {};
    const supervisor = await startSupervisedWorker(run, stack, [GRANTS_TASK_QUEUE], timeline, workerSettings);
    // On a target that cannot end a membership, the sweeper enforces ends the grants worker misses
    // while it is down: a worker of its own on the directory queue, never killed.
    const sweeper = remote
      ? await startSupervisedWorker(run, stack, [DIRECTORY_TASK_QUEUE], timeline, workerSettings, 'sweeper')
      : undefined;

    // ---- drive grants while injecting faults
    const plan = makePlan(grantCount, tenantIds.length, launchMs);
    const lastPlannedEnd = Math.max(...plan.map((p) => p.launchAtMs + (p.startDelaySec + p.durationSec) * 1000));
    const driveStart = Date.now();
    // Faults go on until every planned grant should have ended (plus the grace) and, on a slow
    // machine where workers take longer to start, until the worker was killed as often as asked,
    // within the budget; what is left of the budget drains the lifecycles on a healthy system.
    const faultsLatest = runDeadline - 90_000;
    const faultsEnd = Math.min(driveStart + lastPlannedEnd + EXPIRY_GRACE_MS, faultsLatest);
    const driverDeadline = runDeadline - 60_000;
    progress(
      `driving ${grantCount} grants over ${launchMs / 1000} s (${plan.filter((p) => p.role === APPROVED_ROLE).length} needing approval; ` +
        `endings: ${(['expire', 'revoke', 'cancel', 'deny'] as const).map((e) => `${e} ${plan.filter((p) => p.ending === e).length}`).join(', ')}); ` +
        `faults for ${Math.round((faultsEnd - driveStart) / 1000)} s`,
    );
    const tracked: Tracked[] = plan.map((p) => ({ plan: p, tenantId: tenantIds[p.tenant]! }));
    const driver = grantDriver(deps, seed, driveStart, () => run.interrupted || Date.now() > driverDeadline);
    const faultsOver = () => run.interrupted || Date.now() > faultsLatest || (Date.now() > faultsEnd && supervisor.kills >= minWorkerKills);
    const stopReports = reportStatusEvery5s(
      db.owner,
      tenantIds,
      driveStart,
      () =>
        `worker kills ${supervisor.kills}, PostgreSQL restarts ${db.postgres.restarts}, Temporal restarts ${temporal.server?.restarts ?? 0}`,
      progress,
    );
    cleanup.push({ name: 'progress reports', step: () => Promise.resolve(stopReports()) });

    // What the target gives, twice a second, from the first request until the checks.
    const accessSource: AccessSource = remote
      ? {
          kind: 'target',
          tenants: tenantIds.map((tenantId, t) => ({ tenantId, connector: seed.targets[t]! })),
          roles: [APPROVED_ROLE, AUTO_ROLE],
        }
      : { kind: 'builtin', owner: db.owner, tenantIds };
    const sampler = sampleAccess(accessSource, 500);
    cleanup.push({ name: 'access sampler', step: () => sampler.stop() });
    const driving = Promise.all(tracked.map(driver.drive));
    // Worker kills pause while a Temporal restart is observed, so its worker rides through on its own.
    let observingTemporal = false;
    const faultWindow = { from: driveStart, to: faultsEnd };
    const [, , temporalRestartsDone] = await Promise.all([
      killWorkerRepeatedly(supervisor, killEvery, faultsOver, () => observingTemporal),
      restartPostgresEvenly(db.postgres, { times: postgresRestarts, ...faultWindow }, faultsOver, progress),
      temporalRestarts > 0
        ? restartTemporalEvenly(
            temporal,
            supervisor,
            [GRANTS_TASK_QUEUE],
            { times: temporalRestarts, ...faultWindow },
            faultsOver,
            (paused) => (observingTemporal = paused),
            progress,
          )
        : Promise.resolve([] as TemporalRestart[]),
    ]);
    progress(
      `faults stopped after ${supervisor.kills} worker kills, ${db.postgres.restarts} PostgreSQL restarts and ` +
        `${temporal.server?.restarts ?? 0} Temporal restarts; draining`,
    );
    await driving;
    if (!(await supervisor.waitReady(60_000, () => run.interrupted))) progress('warning: the worker is not polling while draining');

    // ---- drain: every lifecycle finishes on a healthy system
    const drainDeadline = runDeadline - 15_000;
    const started = tracked.filter((t) => t.grantId);
    await waitGrantsFinal(db.owner, tenantIds, drainDeadline, () => run.interrupted, progress);
    // Final rows are written just before each workflow returns (it still waits for its webhook
    // deliveries); wait for the workflows themselves to close.
    const { open, closedAs } = await waitWorkflowsClosed(
      temporal.client,
      started.map((t) => grantWorkflowId(t.tenantId, t.grantId!)),
      drainDeadline,
      () => run.interrupted,
    );
    const workflowsNotCompleted = [...closedAs.values()].filter((status) => status !== 'COMPLETED').length;
    if (open.length || workflowsNotCompleted)
      progress(`${open.length} grant workflows still running, ${workflowsNotCompleted} closed other than completed`);
    for (const [workflowId, status] of [...closedAs].filter(([, status]) => status !== 'COMPLETED').slice(0, 5)) {
      const why = await closingFailure(temporal.client, workflowId).catch((error: Error) => `history unreadable: ${error.message}`);
      progress(`${workflowId} ${status}: ${why}`);
    }
    stopReports();
    // What the tenants' sweep schedules did: evidence the sweeper ran at all, and how often it could not.
    const sweepSchedules = remote ? await describeSweepSchedules(temporal.client, tenantIds, progress) : null;
    // A quiet system for the checks: nothing may append to a chain while it is verified.
    await supervisor.stop();
    await sweeper?.stop();
    await sampler.stop();
    if (run.interrupted) throw new Error('interrupted');

    progress('checking invariants');
    const obs = await observe(db.owner, tracked, tenantIds, accessSource, sampler.samples);
    invariant.explainFindings(obs, timeline, progress);
    // Diagnosis only: it must not turn a finished run into a crash.
    const temporalOutages = timeline.outages('temporal_down', 'temporal_up');
    const lateCauses = await diagnoseLateWorkflows(temporal.client, invariant.lateRevocations(obs), temporalOutages, progress).catch(
      (error: Error) => {
        progress(`could not read late grants' histories: ${error.message}`);
        return null;
      },
    );
    const driverErrors = tracked.filter((t) => t.driverError);
    for (const t of driverErrors.slice(0, 10)) progress(`driver: grant #${t.plan.index} ${t.grantId ?? '(not created)'}: ${t.driverError}`);

    const summary = grantsFaultsSummary(obs, {
      started: started.length,
      planned: grantCount,
      supervisor,
      postgresRestarts: db.postgres.restarts,
      temporalRestarts: temporalRestartsDone,
      minimums: {
        workerKills: minWorkerKills,
        postgresRestarts,
        temporalRestarts,
        accessGiven: minAccessGiven,
        revokesOfGivenAccess: minRevokesOfGivenAccess,
      },
      accessSamplesFailed: sampler.failed,
      lateCauses,
      stillRunning: open.length,
      workflowsNotCompleted,
      driverErrors: driverErrors.length,
      driverRetries: driver.retries,
      runStart,
      loadAtStart,
      target,
      sweeper: sweeper ? { everySeconds: sweepEverySeconds, unexpectedExits: sweeper.unexpectedExits, schedules: sweepSchedules } : null,
    });
    progress(
      summary.violations.length === 0
        ? 'all invariants held and every fault happened as often as asked'
        : `INVARIANTS VIOLATED or faults short: ${summary.violations.join(', ')} (see above)`,
    );
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return summary.violations.length === 0;
  } finally {
    await run.finish();
  }
}
