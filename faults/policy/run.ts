import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { policyChangeWorkflowId, TENANCY_TASK_QUEUE } from '../../core/tenancy/contract.js';
import { seedPolicyTenants } from '../../bench/policy/setup.js';
import { killWorkerRepeatedly, restartPostgresEvenly } from '../support/inject.js';
import { faultRun, positiveInt, range, zeroOrMore } from '../support/run.js';
import { startRunStack, startSupervisedWorker } from '../support/stack.js';
import { waitWorkflowsClosed } from '../support/temporal.js';
import { Timeline } from '../support/timeline.js';
import { endingOf, policyDriver, type TrackedChange } from './driver.js';
import { checkPolicyInvariants } from './invariants.js';

/**
 * Fault run for tenant-owned policy changes: loosening changes proposed, approved (both approvers
 * at once where the quorum is 2), denied, withdrawn, or overtaken by a direct tightening write,
 * through the use cases the API calls, while the worker (a child process polling the tenancy
 * queue) is SIGKILLed every few seconds and PostgreSQL is restarted. Then, quiet, it checks that
 * no change was applied twice, lost once approved, or applied short of its quorum; that every
 * policy version was written by one of the run's changes or direct writes; that each change's
 * trail has the events its final state implies exactly once; that every chain verifies; and that
 * every workflow completed.
 */

const TENANTS = 6;

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      changes: { type: 'string', default: '100' },
      'launch-seconds': { type: 'string', default: '50' },
      timeout: { type: 'string', default: '170' },
      'kill-every': { type: 'string', default: '4-7' },
      'postgres-restarts': { type: 'string', default: '2' },
    },
    strict: true,
  });
  const postgresRestarts = zeroOrMore('postgres-restarts', values['postgres-restarts']);
  return {
    changeCount: positiveInt('changes', values.changes),
    launchMs: positiveInt('launch-seconds', values['launch-seconds']) * 1000,
    timeoutMs: positiveInt('timeout', values.timeout) * 1000,
    killEvery: range('kill-every', values['kill-every']),
    postgresRestarts,
  };
}

export async function runPolicyFaults(argv: string[]): Promise<boolean> {
  const { changeCount, launchMs, timeoutMs, killEvery, postgresRestarts } = parse(argv);
  const runStart = Date.now();
  const runDeadline = runStart + timeoutMs;
  const run = faultRun('policy');
  const { progress } = run;
  const timeline = new Timeline();
  try {
    const stack = await startRunStack(run, timeline);
    const { db, temporal } = stack;
    progress(`seeding ${TENANTS} tenants with two approvers each (quorum 2 for half)`);
    const setup = await seedPolicyTenants(
      { apiPool: db.pool, directoryPool: db.pool },
      { prefix: `faults-policy-${randomBytes(3).toString('hex')}`, tenantCount: TENANTS, quorumOf: (t) => (t % 2 ? 1 : 2) },
    );
    const tenantIds = setup.tenants.map((t) => t.tenantId);
    // The tenant's first version and the seed's own write.
    const seedVersions = new Set(setup.tenants.flatMap((t) => Array.from({ length: t.version }, (_, v) => `${t.tenantId}/${v + 1}`)));
    const supervisor = await startSupervisedWorker(run, stack, [TENANCY_TASK_QUEUE], timeline);

    const tracked: TrackedChange[] = Array.from({ length: changeCount }, (_, i) => ({
      index: i,
      tenant: setup.tenants[i % TENANTS]!,
      ending: endingOf(i),
      approvalsAnswered: 0,
    }));
    const driveStart = Date.now();
    // Faults last the launch period plus a little, within the budget; the rest drains on a healthy system.
    const faultsEnd = Math.min(driveStart + launchMs + 10_000, runDeadline - 60_000);
    const driverDeadline = runDeadline - 40_000;
    const driver = policyDriver({ pool: db.pool, directory: setup.directory, temporal: temporal.client }, setup, () => {
      return run.interrupted || Date.now() > driverDeadline;
    });
    progress(`driving ${changeCount} changes over ${launchMs / 1000} s; faults for ${Math.round((faultsEnd - driveStart) / 1000)} s`);
    // Each tenant's changes one after another (each based on the version before it), paced over the launch period.
    const perLane = Math.ceil(changeCount / TENANTS);
    const lanes = setup.tenants.map(async (_, t) => {
      const mine = tracked.filter((c) => c.index % TENANTS === t);
      for (const [k, c] of mine.entries()) {
        const at = driveStart + (k * launchMs) / perLane;
        while (Date.now() < at && !run.interrupted) await delay(Math.min(200, at - Date.now()));
        if (run.interrupted || Date.now() > driverDeadline) return;
        await driver.drive(c);
      }
    });
    const faultsOver = () => run.interrupted || Date.now() > faultsEnd;
    await Promise.all([
      killWorkerRepeatedly(supervisor, killEvery, faultsOver),
      restartPostgresEvenly(db.postgres, { times: postgresRestarts, from: driveStart, to: faultsEnd }, faultsOver, progress),
    ]);
    progress(`faults stopped after ${supervisor.kills} worker kills and ${db.postgres.restarts} PostgreSQL restarts; draining`);
    await Promise.all(lanes);
    if (!(await supervisor.waitReady(60_000, () => run.interrupted))) progress('warning: the worker is not polling while draining');

    const started = tracked.filter((c) => c.changeId);
    const { open, closedAs } = await waitWorkflowsClosed(
      temporal.client,
      started.map((c) => policyChangeWorkflowId(c.tenant.tenantId, c.changeId!)),
      runDeadline - 10_000,
      () => run.interrupted,
    );
    // A quiet system for the checks: nothing may append to a chain while it is verified.
    await supervisor.stop();
    if (run.interrupted) throw new Error('interrupted');

    progress('checking invariants');
    const found = await checkPolicyInvariants(db.owner, tracked, tenantIds, driver.directWrites, seedVersions);
    const driverErrors = tracked.filter((c) => c.driverError);
    for (const c of driverErrors.slice(0, 10)) progress(`driver: change #${c.index} ${c.changeId ?? '(not proposed)'}: ${c.driverError}`);
    const { byStatus, ...counts } = found;
    const summary = {
      scenario: 'policy',
      changes: changeCount,
      proposed: started.length,
      byStatus,
      workerKills: supervisor.kills,
      postgresRestarts: db.postgres.restarts,
      durationSeconds: Math.round((Date.now() - runStart) / 1000),
      driverErrors: driverErrors.length,
      driverRetries: driver.retries,
      ...counts,
      workflowsNotCompleted: [...closedAs.values()].filter((status) => status !== 'COMPLETED').length + open.length,
    };
    const mustBeZero = [
      'changesAppliedTwice',
      'changesLost',
      'appliedWithoutQuorum',
      'versionsWithoutChange',
      'auditMissing',
      'auditDoubled',
      'chainsFailingVerification',
      'workflowsNotCompleted',
      'unfinished',
    ] as const;
    const held = mustBeZero.every((key) => summary[key] === 0);
    progress(held ? 'all invariants held' : `INVARIANTS VIOLATED: ${mustBeZero.filter((key) => summary[key] !== 0).join(', ')}`);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return held;
  } finally {
    await run.finish();
  }
}
