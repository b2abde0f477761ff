import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createLedgerActivities } from '../../activities/directory/ledger.js';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { CAMPAIGNS_TASK_QUEUE, campaignRunWorkflowId, tenantReviewWorkflowId } from '../../core/campaigns/contract.js';
import { singleDirectory } from '../../core/directory/connector.js';
import { AppError } from '../../core/errors.js';
import { createPool } from '../../db/pool.js';
import { decideItems, startCampaignRun, type CampaignDeps } from '../../usecases/campaigns.js';
import { allMaterialised, closeStagesNow, itemsByTenant, waitUntil } from '../../bench/campaigns/phases.js';
import { defineCampaign, grantSubjects, seedCampaignCast } from '../../bench/campaigns/setup.js';
import { killWorkerRepeatedly, restartPostgresEvenly, retryThroughOutages } from '../support/inject.js';
import { faultRun, positiveInt, range, zeroOrMore } from '../support/run.js';
import { startRunStack, startSupervisedWorker } from '../support/stack.js';
import { waitWorkflowsClosed } from '../support/temporal.js';
import { Timeline } from '../support/timeline.js';
import { checkCampaignInvariants } from './invariants.js';

/**
 * Fault run for recertification campaigns: one campaign over `--tenants` tenants whose `--items`
 * users each hold a privileged role through a manual entitlement. While the reviews store their
 * items, the worker (a child process polling the campaigns queue) is SIGKILLed every few seconds
 * and PostgreSQL is restarted; then each tenant's reviewer decides (every other item revoke, the
 * rest keep) through the use case, every stage is closed, and while the revocations are applied
 * and read back the same faults go on. Quiet again, it checks that no item was lost or doubled,
 * every revoke is applied exactly once and proven (ledger closed, target without the role) and
 * every keep untouched, each tenant's report matches its items and its hash is in the tenant's
 * chain once, and every chain verifies.
 */

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      tenants: { type: 'string', default: '10' },
      items: { type: 'string', default: '100' },
      timeout: { type: 'string', default: '1200' },
      'kill-every': { type: 'string', default: '5-8' },
      'postgres-restarts': { type: 'string', default: '1' },
    },
    strict: true,
  });
  return {
    tenantCount: positiveInt('tenants', values.tenants),
    items: positiveInt('items', values.items),
    timeoutMs: positiveInt('timeout', values.timeout) * 1000,
    killEvery: range('kill-every', values['kill-every']),
    /** Per phase: during materialisation and during remediation. */
    postgresRestarts: zeroOrMore('postgres-restarts', values['postgres-restarts']),
  };
}

/**
 * A phase's faults. The first land as it begins, so even a small run has them: the worker is
 * SIGKILLed at once and PostgreSQL restarted while its replacement starts (nothing of the phase
 * can finish meanwhile); then the worker is killed every `killEvery` of uptime until the phase is done.
 */
async function faultsDuring(
  done: () => boolean,
  options: { killEvery: [number, number]; postgresRestarts: number },
  parts: { supervisor: Parameters<typeof killWorkerRepeatedly>[0]; postgres: Parameters<typeof restartPostgresEvenly>[0] },
  progress: (message: string) => void,
): Promise<{ workerKills: number; postgresRestarts: number }> {
  const kills = parts.supervisor.kills;
  const restarts = parts.postgres.restarts;
  await parts.supervisor.kill();
  await parts.supervisor.ensureRunning();
  const from = Date.now();
  await Promise.all([
    killWorkerRepeatedly(parts.supervisor, options.killEvery, done),
    restartPostgresEvenly(
      parts.postgres,
      { times: options.postgresRestarts, from, to: from + 2000 * options.postgresRestarts },
      done,
      progress,
    ),
  ]);
  return { workerKills: parts.supervisor.kills - kills, postgresRestarts: parts.postgres.restarts - restarts };
}

export async function runCampaignsFaults(argv: string[]): Promise<boolean> {
  const options = parse(argv);
  const runStart = Date.now();
  const deadline = runStart + options.timeoutMs;
  const run = faultRun('campaigns');
  const { progress } = run;
  const timeline = new Timeline();
  let driverRetries = 0;
  const stop = () => run.interrupted || Date.now() > deadline;
  const retrying = <T>(fn: () => Promise<T>) =>
    retryThroughOutages(fn, { isAnswer: (error) => error instanceof AppError && error.status < 500, stop, onRetry: () => driverRetries++ });
  try {
    const stack = await startRunStack(run, timeline);
    const { db, temporal } = stack;
    // The built-in directory gets a pool of its own: ledger steps hold a connection while calling it.
    const directoryPool = createPool({ connectionString: db.appUrl, max: 5, applicationName: 'tenure-faults-directory' });
    run.cleanup.push({ name: 'directory pool', step: () => directoryPool.end() });
    const directory = createPostgresDirectory(directoryPool);
    progress(`seeding ${options.tenantCount} tenants × ${options.items} users holding a privileged role by a manual entitlement`);
    const cast = await seedCampaignCast(db.pool, {
      prefix: `faults-campaigns-${randomBytes(3).toString('hex')}`,
      tenantCount: options.tenantCount,
      usersOf: () => options.items,
    });
    await grantSubjects(directory, createLedgerActivities({ pool: db.pool, directories: singleDirectory(directory) }), cast.tenants);
    const tenantIds = cast.tenants.map((t) => t.tenantId);
    const deps: CampaignDeps = { pool: db.pool, temporal: temporal.client, taskQueuePrefix: temporal.taskQueuePrefix };
    const supervisor = await startSupervisedWorker(run, stack, [CAMPAIGNS_TASK_QUEUE], timeline);
    const parts = { supervisor, postgres: db.postgres };

    // Materialisation under faults.
    const definitionId = await defineCampaign(deps, cast, 'faults: campaigns', tenantIds);
    const runView = await startCampaignRun(deps, cast.operator, definitionId);
    const runId = runView.runId;
    progress(`run ${runId}: materialising ${options.tenantCount * options.items} items under faults`);
    let materialised = false;
    const watchMaterialised = waitUntil(
      'materialisation',
      async () => (materialised = await allMaterialised(db.owner, runId, options.tenantCount)().catch(() => false)),
      { timeoutMs: deadline - Date.now(), everyMs: 250 },
    );
    const duringMaterialisation = await faultsDuring(() => materialised || stop(), options, parts, progress);
    await watchMaterialised;
    progress(
      `materialised with ${duringMaterialisation.workerKills} worker kills and ${duringMaterialisation.postgresRestarts} PostgreSQL restarts meanwhile`,
    );

    // Decisions, quiet: every other item revoke (in subject order), the rest keep, one call per tenant.
    const items = await itemsByTenant(db.owner, runId);
    const revoked = new Map<string, Set<string>>();
    for (const tenant of cast.tenants) {
      const mine = items.get(tenant.tenantId) ?? [];
      revoked.set(tenant.tenantId, new Set(mine.filter((_, i) => i % 2 === 0).map((i) => i.subjectId)));
      await retrying(() =>
        decideItems(
          deps,
          tenant.reviewer.principal,
          { actor: { id: tenant.reviewer.principal.actorId, type: 'user' }, authority: { roles: ['tenant_reviewer'] } },
          tenant.tenantId,
          {
            decisions: mine.map((item, i) => ({ itemId: item.id, decision: i % 2 === 0 ? 'revoke' : 'keep' })),
            justification: 'fault run',
          },
        ),
      );
    }

    // Remediation under faults.
    progress('closing every stage; remediation under faults');
    const reviewIds = tenantIds.map((t) => tenantReviewWorkflowId(t, runId));
    let remediated = false;
    const closing = (async () => {
      for (const tenantId of tenantIds) {
        await retrying(() => closeStagesNow(deps, cast, [tenantId], runId, 1, new AbortController().signal)).catch((error: unknown) => {
          if (!(error instanceof AppError && error.status === 409)) throw error; // 409: an earlier attempt closed it
        });
      }
      const closed = await waitWorkflowsClosed(
        temporal.client,
        [campaignRunWorkflowId(definitionId, runView.runNo), ...reviewIds],
        deadline - 60_000,
        stop,
      );
      remediated = true;
      return closed;
    })();
    const duringRemediation = await faultsDuring(() => remediated || stop(), options, parts, progress);
    const { open, closedAs } = await closing;
    progress(
      `remediation over with ${duringRemediation.workerKills} worker kills and ${duringRemediation.postgresRestarts} PostgreSQL restarts meanwhile`,
    );
    // A quiet system for the checks: nothing may append to a chain while it is verified.
    await supervisor.stop();
    if (run.interrupted) throw new Error('interrupted');

    progress('checking invariants');
    const { results, items: itemCount, ...counts } = await checkCampaignInvariants(db.owner, runId, cast.tenants, revoked);
    const summary = {
      scenario: 'campaigns',
      tenants: options.tenantCount,
      items: itemCount,
      revokes: [...revoked.values()].reduce((sum, s) => sum + s.size, 0),
      results,
      workerKillsDuringMaterialisation: duringMaterialisation.workerKills,
      postgresRestartsDuringMaterialisation: duringMaterialisation.postgresRestarts,
      workerKillsDuringRemediation: duringRemediation.workerKills,
      postgresRestartsDuringRemediation: duringRemediation.postgresRestarts,
      workerUnexpectedExits: supervisor.unexpectedExits,
      durationSeconds: Math.round((Date.now() - runStart) / 1000),
      driverRetries,
      ...counts,
      workflowsNotCompleted: [...closedAs.values()].filter((status) => status !== 'COMPLETED').length + open.length,
    };
    const mustBeZero = [
      'itemsLost',
      'itemsDoubled',
      'revokesNotApplied',
      'revokesAppliedTwice',
      'revokesMisreported',
      'keepsRemoved',
      'reportMismatches',
      'reviewEventsDoubled',
      'chainsFailingVerification',
      'workflowsNotCompleted',
    ] as const;
    const faultsMissed = [
      ...(summary.workerKillsDuringMaterialisation < 1 ? ['workerKillsDuringMaterialisation'] : []),
      ...(summary.postgresRestartsDuringMaterialisation < options.postgresRestarts ? ['postgresRestartsDuringMaterialisation'] : []),
      ...(summary.workerKillsDuringRemediation < 1 ? ['workerKillsDuringRemediation'] : []),
      ...(summary.postgresRestartsDuringRemediation < options.postgresRestarts ? ['postgresRestartsDuringRemediation'] : []),
    ];
    const violations = mustBeZero.filter((k) => summary[k] !== 0);
    const held = violations.length === 0 && faultsMissed.length === 0;
    progress(
      held
        ? 'all invariants held'
        : `${violations.length ? `INVARIANTS VIOLATED: ${violations.join(', ')}` : ''}${faultsMissed.length ? ` FAULTS NOT INJECTED: ${faultsMissed.join(', ')}` : ''}`,
    );
    process.stdout.write(`${JSON.stringify({ ...summary, violations, faultsMissed })}\n`);
    return held;
  } finally {
    await run.finish();
  }
}
