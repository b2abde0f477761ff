import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createLedgerActivities } from '../../activities/directory/ledger.js';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { CAMPAIGNS_TASK_QUEUE, campaignRunWorkflowId, tenantReviewWorkflowId } from '../../core/campaigns/contract.js';
import { singleDirectory } from '../../core/directory/connector.js';
import { AppError } from '../../core/errors.js';
import { createPool } from '../../db/pool.js';
import { decideItems, startCampaignRun, type CampaignDeps } from '../../usecases/campaigns.js';
import {
  allMaterialised,
  closeStagesNow,
  itemsByTenant,
  remediationState,
  reviewStatuses,
  waitUntil,
} from '../../bench/campaigns/phases.js';
import { defineCampaign, grantSubjects, seedCampaignCast, type CampaignTenant } from '../../bench/campaigns/setup.js';
import { faultsDuring, outageDriver } from '../support/inject.js';
import { faultRun, growthFactor, positiveInt, range, zeroOrMore } from '../support/run.js';
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
 * and read back the same faults go on. Then a second campaign over `--on-decision-tenants` other
 * tenants remediates on decision: the same faults start as their reviewers decide, and each revoke
 * is applied while the stage is still open (the run waits for that before closing it), under
 * kills and a PostgreSQL restart. Quiet again, it checks for both runs that no item was lost or
 * doubled, every revoke is applied exactly once and proven (ledger closed, target without the
 * role) and every keep untouched, each tenant's report matches its items and its hash is in the
 * tenant's chain once, and every chain verifies.
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
      /** Each kill's period of uptime is this many times the one before (1: a fixed period). */
      'kill-growth': { type: 'string', default: '1' },
      /** Tenants of the remediation-on-decision campaign (as many as --tenants when absent; 0: none). */
      'on-decision-tenants': { type: 'string' },
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
    killGrowth: growthFactor('kill-growth', values['kill-growth']),
    onDecisionTenants: zeroOrMore('on-decision-tenants', values['on-decision-tenants'] ?? values.tenants),
  };
}

export async function runCampaignsFaults(argv: string[]): Promise<boolean> {
  const options = parse(argv);
  const runStart = Date.now();
  const deadline = runStart + options.timeoutMs;
  const run = faultRun('campaigns');
  const { progress } = run;
  const timeline = new Timeline();
  const { stop, retrying, retries: driverRetries } = outageDriver(() => run.interrupted || Date.now() > deadline);
  try {
    const stack = await startRunStack(run, timeline);
    const { db, temporal } = stack;
    // The built-in directory gets a pool of its own: ledger steps hold a connection while calling it.
    const directoryPool = createPool({ connectionString: db.appUrl, max: 5, applicationName: 'tenure-faults-directory' });
    run.cleanup.push({ name: 'directory pool', step: () => directoryPool.end() });
    const directory = createPostgresDirectory(directoryPool);
    progress(`seeding ${options.tenantCount} tenants × ${options.items} users holding a privileged role by a manual entitlement`);
    const prefix = `faults-campaigns-${randomBytes(3).toString('hex')}`;
    const cast = await seedCampaignCast(db.pool, {
      prefix,
      tenantCount: options.tenantCount,
      usersOf: () => options.items,
    });
    const ledger = createLedgerActivities({ pool: db.pool, directories: singleDirectory(directory) });
    await grantSubjects(directory, ledger, cast.tenants);
    // The remediation-on-decision campaign's tenants: others, so each run finds its subjects untouched.
    const onDecisionCast =
      options.onDecisionTenants > 0
        ? await seedCampaignCast(db.pool, { prefix: `${prefix}-od`, tenantCount: options.onDecisionTenants, usersOf: () => options.items })
        : undefined;
    if (onDecisionCast) await grantSubjects(directory, ledger, onDecisionCast.tenants);
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

    /** Every other item revoke (in subject order), the rest keep, one call per tenant; answers the revoked subjects per tenant. */
    const decideAll = async (tenants: readonly CampaignTenant[], ofRun: string) => {
      const items = await itemsByTenant(db.owner, ofRun);
      const revoked = new Map<string, Set<string>>();
      for (const tenant of tenants) {
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
      return revoked;
    };
    /** Closes each tenant's stage (an earlier attempt may have: 409) and waits for the run and its reviews to close. */
    const closeAndWait = async (
      ofCast: typeof cast,
      tenants: readonly string[],
      ofRun: { definitionId: string; runId: string; runNo: number },
    ) => {
      for (const tenantId of tenants) {
        await retrying(() => closeStagesNow(deps, ofCast, [tenantId], ofRun.runId, 1, new AbortController().signal)).catch(
          (error: unknown) => {
            if (!(error instanceof AppError && error.status === 409)) throw error; // 409: an earlier attempt closed it
          },
        );
      }
      return waitWorkflowsClosed(
        temporal.client,
        [campaignRunWorkflowId(ofRun.definitionId, ofRun.runNo), ...tenants.map((t) => tenantReviewWorkflowId(t, ofRun.runId))],
        deadline - 60_000,
        stop,
      );
    };

    // Decisions, quiet.
    const revoked = await decideAll(cast.tenants, runId);

    // Remediation under faults.
    progress('closing every stage; remediation under faults');
    let remediated = false;
    const closing = closeAndWait(cast, tenantIds, { definitionId, runId, runNo: runView.runNo }).finally(() => (remediated = true));
    const duringRemediation = await faultsDuring(() => remediated || stop(), options, parts, progress);
    const { open, closedAs } = await closing;
    progress(
      `remediation over with ${duringRemediation.workerKills} worker kills and ${duringRemediation.postgresRestarts} PostgreSQL restarts meanwhile`,
    );

    // Remediation on decision under faults: each revoke applied while the stage is still open.
    let onDecision:
      | {
          runId: string;
          revoked: Map<string, Set<string>>;
          faults: { workerKills: number; postgresRestarts: number };
          closed: Awaited<ReturnType<typeof closeAndWait>>;
        }
      | undefined;
    if (onDecisionCast && !stop()) {
      const odTenantIds = onDecisionCast.tenants.map((t) => t.tenantId);
      const odDefinitionId = await defineCampaign(deps, onDecisionCast, 'faults: campaigns on decision', odTenantIds, 'on_decision');
      const odRun = await startCampaignRun(deps, onDecisionCast.operator, odDefinitionId);
      progress(`run ${odRun.runId}: remediation on decision over ${odTenantIds.length} other tenants; materialising quietly`);
      await waitUntil('on-decision materialisation', allMaterialised(db.owner, odRun.runId, odTenantIds.length), {
        timeoutMs: deadline - Date.now(),
        everyMs: 250,
      });
      let settled = false;
      const acting = (async () => {
        progress('deciding under faults; every revoke is to be applied and proven while the stage is open');
        const odRevoked = await decideAll(onDecisionCast.tenants, odRun.runId);
        const expected = [...odRevoked.values()].reduce((sum, s) => sum + s.size, 0);
        await waitUntil(
          'revocations applied on decision',
          async () => {
            const state = await remediationState(db.owner, odRun.runId).catch(() => undefined);
            const statuses = await reviewStatuses(db.owner, odRun.runId).catch(() => undefined);
            if (!state || !statuses) return false;
            // No stage has been closed yet: every revoke applied now was applied on decision.
            if ((statuses.open ?? 0) !== odTenantIds.length) throw new Error(`on-decision reviews left open: ${JSON.stringify(statuses)}`);
            return state.revokes === expected && state.pending === 0;
          },
          { timeoutMs: deadline - Date.now(), everyMs: 500 },
        );
        const closed = await closeAndWait(onDecisionCast, odTenantIds, {
          definitionId: odDefinitionId,
          runId: odRun.runId,
          runNo: odRun.runNo,
        });
        return { revoked: odRevoked, closed };
      })().finally(() => (settled = true));
      const faults = await faultsDuring(() => settled || stop(), options, parts, progress);
      const { revoked: odRevoked, closed } = await acting;
      onDecision = { runId: odRun.runId, revoked: odRevoked, faults, closed };
      progress(
        `remediation on decision over with ${faults.workerKills} worker kills and ${faults.postgresRestarts} PostgreSQL restarts meanwhile`,
      );
    }
    // A quiet system for the checks: nothing may append to a chain while it is verified.
    await supervisor.stop();
    if (run.interrupted) throw new Error('interrupted');

    progress('checking invariants');
    const revokeCount = (map: Map<string, Set<string>>) => [...map.values()].reduce((sum, s) => sum + s.size, 0);
    const notCompleted = ({ open: left, closedAs: as }: Awaited<ReturnType<typeof closeAndWait>>) =>
      [...as.values()].filter((status) => status !== 'COMPLETED').length + left.length;
    const { results, items: itemCount, ...counts } = await checkCampaignInvariants(db.owner, runId, cast.tenants, revoked);
    const od = onDecision
      ? await checkCampaignInvariants(db.owner, onDecision.runId, onDecisionCast!.tenants, onDecision.revoked)
      : undefined;
    // Every must-be-zero counter covers both runs; the chains are the same for both (all of them, verified once).
    const both = Object.fromEntries(
      Object.entries(counts).map(([k, n]) => [k, k === 'chainsFailingVerification' ? n : n + (od?.[k as keyof typeof counts] ?? 0)]),
    ) as typeof counts;
    const summary = {
      scenario: 'campaigns',
      tenants: options.tenantCount,
      items: itemCount + (od?.items ?? 0),
      revokes: revokeCount(revoked) + (onDecision ? revokeCount(onDecision.revoked) : 0),
      results,
      onDecisionTenants: onDecision ? options.onDecisionTenants : 0,
      onDecisionItems: od?.items ?? 0,
      onDecisionRevokes: onDecision ? revokeCount(onDecision.revoked) : 0,
      onDecisionResults: od?.results ?? {},
      workerKillsDuringMaterialisation: duringMaterialisation.workerKills,
      postgresRestartsDuringMaterialisation: duringMaterialisation.postgresRestarts,
      workerKillsDuringRemediation: duringRemediation.workerKills,
      postgresRestartsDuringRemediation: duringRemediation.postgresRestarts,
      workerKillsDuringOnDecision: onDecision?.faults.workerKills ?? 0,
      postgresRestartsDuringOnDecision: onDecision?.faults.postgresRestarts ?? 0,
      workerUnexpectedExits: supervisor.unexpectedExits,
      durationSeconds: Math.round((Date.now() - runStart) / 1000),
      driverRetries: driverRetries(),
      ...both,
      workflowsNotCompleted: notCompleted({ open, closedAs }) + (onDecision ? notCompleted(onDecision.closed) : 0),
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
      ...(options.onDecisionTenants > 0 && summary.workerKillsDuringOnDecision < 1 ? ['workerKillsDuringOnDecision'] : []),
      ...(options.onDecisionTenants > 0 && summary.postgresRestartsDuringOnDecision < options.postgresRestarts
        ? ['postgresRestartsDuringOnDecision']
        : []),
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
