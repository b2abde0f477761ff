import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { TEMPLATES_TASK_QUEUE, rolloutRollbackWorkflowId } from '../../core/templates/contract.js';
import { createPool } from '../../db/pool.js';
import { startRolloutRollback } from '../../usecases/template-rollbacks.js';
import { dryRun } from '../../usecases/templates.js';
import { waitUntil } from '../../bench/campaigns/phases.js';
import { approvedTemplate, seedRolloutStaff, seedRolloutTenants, startOneWaveRollout, waitForRollout } from '../../bench/rollouts/setup.js';
import { faultsDuring, outageDriver } from '../support/inject.js';
import { faultRun, growthFactor, positiveInt, range, zeroOrMore } from '../support/run.js';
import { startRunStack, startSupervisedWorker } from '../support/stack.js';
import { waitWorkflowsClosed } from '../support/temporal.js';
import { Timeline } from '../support/timeline.js';
import { applyWorkflowIds, checkApplyPhase, checkRollbackPhase, rollbackWorkflowIds } from './invariants.js';
import { readTenantState, type TenantState } from './state.js';

/**
 * Fault run for template rollouts: a rollout of a version (two roles, stricter settings, shorter grant
 * rule: nothing a tenant's gate must pass) to `--tenants` tenants on the built-in directory in the
 * run's own PostgreSQL, while the worker (a child process polling the templates queue) is
 * SIGKILLed every few seconds and PostgreSQL restarted; then, quiet, every tenant is either at
 * the version (a dry-run is empty, the pin records it) or, where its apply did not end applied,
 * holds nothing or all of it, and nothing was written twice. Then the whole rollout is rolled
 * back under the same faults, and, quiet, every tenant equals what it held before the rollout
 * (roles, settings, policy content, the pin's applied version), restored once; every chain verifies.
 */

/** Creates one role, changes another some tenants already hold, tightens settings, shortens grant timeouts. */
const FAULT_DOCUMENT = {
  directory: {
    roles: [
      { name: 'HelpdeskAdmin', description: 'Helpdesk of {{tenant.slug}}' },
      { name: 'BreakGlass', description: 'Emergency access for {{tenant.name}}', privileged: true },
    ],
    settings: { mfaRequired: true, passwordMinLength: 12, passwordComplexity: true, lockoutThreshold: 5 },
  },
  policy: { grants: { approvalTimeoutMinutes: 240, maxTotalDurationMinutes: 480 } },
};

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      tenants: { type: 'string', default: '30' },
      window: { type: 'string', default: '3' },
      timeout: { type: 'string', default: '900' },
      'kill-every': { type: 'string', default: '3-6' },
      'postgres-restarts': { type: 'string', default: '1' },
      /** Each kill's period of uptime is this many times the one before (1: a fixed period). */
      'kill-growth': { type: 'string', default: '1' },
    },
    strict: true,
  });
  return {
    tenantCount: positiveInt('tenants', values.tenants),
    window: positiveInt('window', values.window),
    timeoutMs: positiveInt('timeout', values.timeout) * 1000,
    killEvery: range('kill-every', values['kill-every']),
    /** Per phase: during apply and during rollback. */
    postgresRestarts: zeroOrMore('postgres-restarts', values['postgres-restarts']),
    killGrowth: growthFactor('kill-growth', values['kill-growth']),
  };
}

export async function runRolloutsFaults(argv: string[]): Promise<boolean> {
  const options = parse(argv);
  const runStart = Date.now();
  const deadline = runStart + options.timeoutMs;
  const run = faultRun('rollouts');
  const { progress } = run;
  const timeline = new Timeline();
  const { stop, retrying, retries: driverRetries } = outageDriver(() => run.interrupted || Date.now() > deadline);
  try {
    const stack = await startRunStack(run, timeline);
    const { db, temporal } = stack;
    const directoryPool = createPool({ connectionString: db.appUrl, max: 3, applicationName: 'tenure-faults-directory' });
    run.cleanup.push({ name: 'directory pool', step: () => directoryPool.end() });
    const directory = createPostgresDirectory(directoryPool);
    const prefix = `faults-rollouts-${randomBytes(3).toString('hex')}`;
    progress(`seeding ${options.tenantCount} tenants; every third holds HelpdeskAdmin already, every third other a password history`);
    const cast = await seedRolloutStaff(db.pool);
    const tenantIds = await seedRolloutTenants(db.pool, prefix, options.tenantCount);
    for (const [i, tenantId] of tenantIds.entries()) {
      if (i % 3 === 0) await directory.upsertRole(tenantId, { name: 'HelpdeskAdmin', description: 'Run by the tenant', privileged: false });
      if (i % 3 === 1) await directory.applySecuritySettings(tenantId, { passwordHistory: 5 });
    }
    const templateId = await approvedTemplate(db.pool, cast, `${prefix}-baseline`, FAULT_DOCUMENT);
    const before = new Map<string, TenantState>();
    for (const tenantId of tenantIds) before.set(tenantId, await readTenantState(db.owner, directory, tenantId));
    // The run means to exercise applies, not gates: a plan that needs one would wait there for days.
    const gated = await dryRun({ pool: db.pool, directory }, tenantIds[0]!, { templateId, version: 1 });
    if (gated.needsTenantApproval) {
      const why = gated.items.filter((i) => i.effect === 'loosens').map((i) => `${i.path}: ${i.reason}`);
      throw new Error(
        `the fault run’s version needs a tenant gate: it should only tighten (${why.join('; ') || 'the tenant decides every policy change'})`,
      );
    }

    const deps = { pool: db.pool, temporal: temporal.client };
    const supervisor = await startSupervisedWorker(run, stack, [TEMPLATES_TASK_QUEUE], timeline);
    const parts = { supervisor, postgres: db.postgres };

    // Apply under faults.
    const started = await retrying(() =>
      startOneWaveRollout(deps, cast, templateId, tenantIds, { window: options.window, maxFailures: options.tenantCount }),
    );
    const rolloutId = started.rolloutId;
    progress(`rollout ${rolloutId}: applying to ${options.tenantCount} tenants, window ${options.window}, under faults`);
    let applied = false;
    const applying = waitForRollout(db.owner, rolloutId, (v) => v.status === 'completed', {
      timeoutMs: deadline - Date.now(),
      everyMs: 500,
    }).finally(() => (applied = true));
    const duringApply = await faultsDuring(() => applied || stop(), options, parts, progress);
    const appliedView = await applying;
    const appliesClosed = await waitWorkflowsClosed(temporal.client, applyWorkflowIds(rolloutId, tenantIds), deadline - 60_000, stop);
    progress(
      `rollout completed with ${duringApply.workerKills} worker kills and ${duringApply.postgresRestarts} PostgreSQL restarts meanwhile: ${JSON.stringify(appliedView.waves.map((w) => ({ applied: w.applied, failed: w.failed })))}`,
    );
    progress('checking the apply phase (quiet)');
    const applyCheck = await checkApplyPhase(db.owner, directory, { rolloutId, templateId }, before);
    progress(`apply phase: ${JSON.stringify(applyCheck)}`);

    // Rollback under faults.
    await retrying(() => startRolloutRollback(deps, cast.operator, rolloutId, { window: options.window }));
    progress(`rolling the rollout back under faults (${rolloutRollbackWorkflowId(rolloutId)})`);
    let rolledBack = false;
    const rollingBack = waitUntil(
      'the rollout’s rollback',
      async () => {
        const { rows } = await db.owner
          .query<{ status: string }>('SELECT status FROM rollout_rollbacks WHERE rollout_id = $1', [rolloutId])
          .catch(() => ({ rows: [] as { status: string }[] }));
        return rows[0]?.status === 'completed';
      },
      { timeoutMs: deadline - Date.now(), everyMs: 500 },
    ).finally(() => (rolledBack = true));
    const duringRollback = await faultsDuring(() => rolledBack || stop(), options, parts, progress);
    await rollingBack;
    const rollbacksClosed = await waitWorkflowsClosed(
      temporal.client,
      [rolloutRollbackWorkflowId(rolloutId), ...rollbackWorkflowIds(rolloutId, tenantIds)],
      deadline - 30_000,
      stop,
    );
    progress(
      `rolled back with ${duringRollback.workerKills} worker kills and ${duringRollback.postgresRestarts} PostgreSQL restarts meanwhile`,
    );
    // A quiet system for the checks: nothing may append to a chain while it is verified.
    await supervisor.stop();
    if (run.interrupted) throw new Error('interrupted');

    progress('checking the rollback (quiet)');
    const rollbackCheck = await checkRollbackPhase(db.owner, directory, rolloutId, before);
    const notCompleted = (closed: Awaited<ReturnType<typeof waitWorkflowsClosed>>) =>
      closed.open.length + [...closed.closedAs.values()].filter((s) => s !== 'COMPLETED').length;
    const summary = {
      scenario: 'rollouts',
      tenants: options.tenantCount,
      window: options.window,
      applyStatuses: applyCheck.statuses,
      rollbackStatuses: rollbackCheck.statuses,
      policyVersionsWritten: applyCheck.policyVersionsWritten,
      policyVersionsRestored: rollbackCheck.policyVersionsRestored,
      workerKillsDuringApply: duringApply.workerKills,
      postgresRestartsDuringApply: duringApply.postgresRestarts,
      workerKillsDuringRollback: duringRollback.workerKills,
      postgresRestartsDuringRollback: duringRollback.postgresRestarts,
      workerUnexpectedExits: supervisor.unexpectedExits,
      durationSeconds: Math.round((Date.now() - runStart) / 1000),
      driverRetries: driverRetries(),
      tenantsAppliedTwice: applyCheck.tenantsAppliedTwice,
      tenantsLeftHalfApplied: applyCheck.tenantsLeftHalfApplied,
      rollbacksNotExact: rollbackCheck.rollbacksNotExact,
      tenantsRolledBackTwice: rollbackCheck.tenantsRolledBackTwice,
      chains: rollbackCheck.chains,
      chainsFailingVerification: rollbackCheck.chainsFailingVerification,
      workflowsNotCompleted: notCompleted(appliesClosed) + notCompleted(rollbacksClosed),
      examples: { ...applyCheck.examples, ...rollbackCheck.examples },
    };
    const mustBeZero = [
      'tenantsAppliedTwice',
      'tenantsLeftHalfApplied',
      'rollbacksNotExact',
      'tenantsRolledBackTwice',
      'chainsFailingVerification',
      'workflowsNotCompleted',
    ] as const;
    // Coverage: faults landed in both phases, and both phases did their work (a run where nothing
    // was applied, or nothing restored, would hold every invariant vacuously).
    const appliedCount = applyCheck.statuses.applied ?? 0;
    const faultsMissed = [
      ...(summary.workerKillsDuringApply < 1 ? ['workerKillsDuringApply'] : []),
      ...(summary.postgresRestartsDuringApply < options.postgresRestarts ? ['postgresRestartsDuringApply'] : []),
      ...(summary.workerKillsDuringRollback < 1 ? ['workerKillsDuringRollback'] : []),
      ...(summary.postgresRestartsDuringRollback < options.postgresRestarts ? ['postgresRestartsDuringRollback'] : []),
      ...(appliedCount < Math.ceil(options.tenantCount / 2) ? [`applied: ${appliedCount} of ${options.tenantCount}`] : []),
      ...(summary.policyVersionsWritten < appliedCount
        ? [`policy versions written: ${summary.policyVersionsWritten} < ${appliedCount}`]
        : []),
      ...((rollbackCheck.statuses.rolled_back ?? 0) < appliedCount
        ? [`rolled back: ${rollbackCheck.statuses.rolled_back ?? 0} < ${appliedCount}`]
        : []),
    ];
    const violations = mustBeZero.filter((k) => summary[k] !== 0);
    const held = violations.length === 0 && faultsMissed.length === 0;
    progress(
      held
        ? 'all invariants held'
        : `${violations.length ? `INVARIANTS VIOLATED: ${violations.join(', ')}` : ''}${faultsMissed.length ? ` FAULTS OR COVERAGE MISSED: ${faultsMissed.join(', ')}` : ''}`,
    );
    process.stdout.write(`${JSON.stringify({ ...summary, violations, faultsMissed })}\n`);
    return held;
  } finally {
    await run.finish();
  }
}
