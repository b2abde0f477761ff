import { randomUUID } from 'node:crypto';
import { createLedgerActivities } from '../../activities/directory/ledger.js';
import { createCampaignActivities } from '../../activities/campaigns/activities.js';
import { systemClock } from '../../activities/index.js';
import { systemResolver } from '../../activities/tenancy/webhook-http.js';
import { createApp } from '../../api/app.js';
import { startServer } from '../../api/server.js';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import {
  CAMPAIGN_RUN_WORKFLOW_TYPE,
  CAMPAIGNS_TASK_QUEUE,
  campaignRunInput,
  campaignRunSearchAttributes,
  campaignRunWorkflowId,
} from '../../core/campaigns/contract.js';
import { loadConfig } from '../../core/config.js';
import { singleDirectory } from '../../core/directory/connector.js';
import { taskQueueName } from '../../core/temporal.js';
import { allocateRun } from '../../db/campaigns.js';
import { inScope, mspScope } from '../../db/scope.js';
import { startCampaignRun, type CampaignDeps } from '../../usecases/campaigns.js';
import type { campaignRunWorkflow } from '../../workflows/campaigns/run.js';
import { cpuMeter, cpuTotal, type CpuMs } from '../cpu.js';
import { benchRun, benchTemporal, optionsOrUsage, runConcurrently, scratchService } from '../support.js';
import { startFloorWorker, startTenureWorker } from '../workers.js';
import { memoryDirectory } from './memory-directory.js';
import { parseCampaignsBenchOptions, USAGE, type CampaignsBenchOptions } from './options.js';
import {
  allMaterialised,
  closeStagesNow,
  itemsByTenant,
  materialisedItems,
  maxHistoryEvents,
  remediationState,
  reviewStatuses,
  waitUntil,
} from './phases.js';
import { defineCampaign, grantSubjects, loadSubjects, seedCampaignCast, type CampaignCast, type CampaignTenant } from './setup.js';

/**
 * `npm run bench -- campaigns`: recertification at MSP scale, on the real worker.
 *
 * - materialise: one campaign over `--tenants` tenants (default 1,000) whose `--items` users
 *   (default 100) each hold a privileged role on the built-in directory; from the start call
 *   until every review has stored and assigned its items (the last `review.items_materialised`).
 * - bulk decisions: on `--revokes` / `--call-size` tenants of their own (each with `--call-size`
 *   reviewed users plus one more, kept), the tenant's reviewer decides its items through the HTTP
 *   API, `--call-size` items per call (default 500), `--concurrency` calls in flight: first all
 *   keep, then all changed to revoke; decisions/s over both passes.
 * - remediation: every stage closes at once (an operator's deadline move) and the revocations
 *   (manual entitlements: ended in the ledger, removed from the target, read back) run;
 *   revocations/s from the close until the last result. The floor is the same: its own tenants,
 *   campaign, workflows and activities, with a target that answers from memory (no-op target
 *   calls); `ratio` = real / floor.
 * - then the materialised campaign's stages close too (nothing decided: all kept) so every run
 *   completes, and `maxHistoryEvents` is the longest history of any execution on the real queue.
 */

const progress = (message: string) => process.stderr.write(`[bench campaigns] ${message}\n`);
const PHASE_TIMEOUT_MS = 30 * 60_000;

interface SideResult {
  decisionsPerSec: number;
  decisionSeconds: number;
  revocationsPerSec: number;
  remediationSeconds: number;
  /** CPU ms per revocation (bench process with its worker, Temporal, PostgreSQL), when all three were measured. */
  cpuMsPerRevoke: number | undefined;
  results: Record<string, number>;
}

/** One bulk decision call through the HTTP API, as the tenant's reviewer. */
async function decideOverApi(apiUrl: string, tenant: CampaignTenant, itemIds: string[], decision: 'keep' | 'revoke'): Promise<void> {
  const response = await fetch(`${apiUrl}/v1/tenants/${tenant.tenantId}/reviews/decisions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tenant.reviewer.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ decisions: itemIds.map((itemId) => ({ itemId, decision })), justification: 'campaigns benchmark' }),
  });
  const body = (await response.json()) as { recorded?: number };
  if (response.status !== 200 || body.recorded !== itemIds.length)
    throw new Error(`bulk decision for ${tenant.tenantId}: ${response.status} ${JSON.stringify(body).slice(0, 300)}`);
}

/** Decides, closes and remediates one side's campaign run over `tenants`; `revokesOf(t)` items of tenant t are revoked. */
async function decideAndRemediate(
  ctx: {
    options: CampaignsBenchOptions;
    owner: CampaignDeps['pool'];
    deps: CampaignDeps;
    cast: CampaignCast;
    apiUrl: string;
    signal: AbortSignal;
    /** Starts counting CPU; the returned function gives the ms spent since. */
    meter: () => () => CpuMs;
  },
  side: string,
  tenants: CampaignTenant[],
  revokesOf: (t: number) => number,
  runId: string,
): Promise<SideResult> {
  const { options, owner, signal } = ctx;
  await waitUntil(`${side}: materialisation`, allMaterialised(owner, runId, tenants.length), { timeoutMs: PHASE_TIMEOUT_MS, signal });
  const items = await itemsByTenant(owner, runId);
  const calls = tenants.map((tenant, t) => ({ tenant, ids: (items.get(tenant.tenantId) ?? []).slice(0, revokesOf(t)).map((i) => i.id) }));
  const revokes = calls.reduce((sum, c) => sum + c.ids.length, 0);
  progress(
    `${side}: ${revokes} items in ${calls.length} calls of up to ${options.callSize}, ${options.concurrency} in flight: keep, then revoke`,
  );
  const decideStart = Date.now();
  for (const decision of ['keep', 'revoke'] as const)
    await runConcurrently(calls.length, options.concurrency, signal, (c) =>
      decideOverApi(ctx.apiUrl, calls[c]!.tenant, calls[c]!.ids, decision),
    );
  const decisionSeconds = (Date.now() - decideStart) / 1000;
  progress(`${side}: ${2 * revokes} decisions in ${decisionSeconds.toFixed(1)} s (${((2 * revokes) / decisionSeconds).toFixed(0)}/s)`);

  const cpu = ctx.meter();
  const closeStart = Date.now();
  await closeStagesNow(
    ctx.deps,
    ctx.cast,
    tenants.map((t) => t.tenantId),
    runId,
    8,
    signal,
  );
  let state = await remediationState(owner, runId);
  await waitUntil(
    `${side}: remediation`,
    async () => {
      state = await remediationState(owner, runId);
      return state.revokes === revokes && state.pending === 0 && (await reviewStatuses(owner, runId)).completed === tenants.length;
    },
    { timeoutMs: PHASE_TIMEOUT_MS, signal },
  );
  const remediationSeconds = (state.lastResultAt - closeStart) / 1000;
  const cpuMs = cpuTotal(cpu());
  progress(
    `${side}: ${revokes} revocations in ${remediationSeconds.toFixed(1)} s (${(revokes / remediationSeconds).toFixed(0)}/s): ${JSON.stringify(state.results)}`,
  );
  return {
    decisionsPerSec: (2 * revokes) / decisionSeconds,
    decisionSeconds,
    revocationsPerSec: revokes / remediationSeconds,
    remediationSeconds,
    cpuMsPerRevoke: cpuMs === undefined ? undefined : cpuMs / revokes,
    results: state.results,
  };
}

/** The floor's run: recorded as the API records one, started on the floor's queue. */
async function startFloorRun(deps: CampaignDeps, cast: CampaignCast, definitionId: string, floorQueue: string): Promise<string> {
  const { run, document } = (await inScope(deps.pool, mspScope, (client) =>
    allocateRun(client, cast.operator, {
      id: randomUUID(),
      definitionId,
      trigger: 'api',
      workflowIdOf: (runNo) => campaignRunWorkflowId(definitionId, runNo),
    }),
  ))!;
  await deps.temporal.workflow.start<typeof campaignRunWorkflow>(CAMPAIGN_RUN_WORKFLOW_TYPE, {
    taskQueue: floorQueue,
    workflowId: run.workflow_id,
    args: [campaignRunInput(run, document)],
    typedSearchAttributes: campaignRunSearchAttributes(),
  });
  return run.id;
}

export async function runCampaignsBench(argv: string[]): Promise<void> {
  const options = optionsOrUsage(() => parseCampaignsBenchOptions(argv), USAGE);
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
    const { tenants: tenantCount, items: itemsPerTenant, revokeTenants, callSize } = options;
    // The last remediation tenant takes what is left of --revokes; each also has one user nobody decides (kept).
    const revokesOf = (t: number) => Math.min(callSize, options.revokes - t * callSize);
    const seedStart = Date.now();
    progress(`seeding ${tenantCount} tenants × ${itemsPerTenant} users, and 2 × ${revokeTenants} remediation tenants (real, floor)`);
    const cast = await seedCampaignCast(service.apiPool, {
      prefix: `bench-${service.suffix}`,
      tenantCount: tenantCount + 2 * revokeTenants,
      usersOf: (t) => (t < tenantCount ? itemsPerTenant : revokesOf((t - tenantCount) % revokeTenants) + 1),
    });
    const materialiseTenants = cast.tenants.slice(0, tenantCount);
    const realTenants = cast.tenants.slice(tenantCount, tenantCount + revokeTenants);
    const floorTenants = cast.tenants.slice(tenantCount + revokeTenants);
    const directory = createPostgresDirectory(service.directoryPool);
    await loadSubjects(directory, materialiseTenants);
    await grantSubjects(directory, createLedgerActivities({ pool: service.apiPool, directories: singleDirectory(directory) }), realTenants);
    const memory = memoryDirectory();
    await grantSubjects(memory, createLedgerActivities({ pool: service.apiPool, directories: singleDirectory(memory) }), floorTenants);
    progress(`seeded in ${((Date.now() - seedStart) / 1000).toFixed(0)} s`);

    const taskQueuePrefix = `bench-${service.suffix}-`;
    const temporal = await benchTemporal({ config: { ...config, TEMPORAL_TASK_QUEUE_PREFIX: taskQueuePrefix }, logger, cleanup, progress });
    const { client, connection, dataConverter, namespace, bundlePath: workflowBundlePath } = temporal;
    const deps: CampaignDeps = { pool: service.apiPool, temporal: client, taskQueuePrefix };
    const app = createApp({
      config: { BODY_LIMIT: config.BODY_LIMIT, IMPORT_BODY_LIMIT: config.IMPORT_BODY_LIMIT, TEMPORAL_TASK_QUEUE_PREFIX: taskQueuePrefix },
      pool: service.apiPool,
      directory,
      temporal: client,
      payloadCodec: temporal.payloadCodec,
      logger,
      version: 'bench',
    });
    const api = await startServer(app, '127.0.0.1', 0);
    cleanup.push(api.stop);
    const ctx = { options, owner, deps, cast, apiUrl: api.url, signal, meter: () => cpuMeter(temporal.temporalPid, service.database) };
    // Every Temporal call is cancelled on Ctrl-C, so none is left retrying once the client closes.
    await client.withAbortSignal(signal, async () => {
      // real: the worker as deployed
      const realWorker = await startTenureWorker(
        {
          connection,
          dataConverter,
          namespace,
          taskQueuePrefix,
          taskQueues: [CAMPAIGNS_TASK_QUEUE],
          workflowBundlePath,
          pool: service.workerPool,
          directory,
          clock: systemClock,
          temporal: client,
        },
        cleanup,
      );

      const materialiseDef = await defineCampaign(
        deps,
        cast,
        'bench: materialise',
        materialiseTenants.map((t) => t.tenantId),
      );
      progress(`real: materialising ${tenantCount} × ${itemsPerTenant} items`);
      const materialiseCpu = ctx.meter();
      const materialiseStart = Date.now();
      const materialiseRun = (await startCampaignRun(deps, cast.operator, materialiseDef)).runId;
      await waitUntil('materialisation', allMaterialised(owner, materialiseRun, tenantCount), {
        timeoutMs: PHASE_TIMEOUT_MS,
        signal,
        everyMs: 250,
      });
      const stored = await materialisedItems(owner, materialiseRun);
      const materialiseSeconds = (stored.lastStoredAt - materialiseStart) / 1000;
      const materialiseCpuMs = cpuTotal(materialiseCpu());
      progress(`real: ${stored.items} items stored (${stored.unassigned} unassigned) in ${materialiseSeconds.toFixed(1)} s`);

      const realDef = await defineCampaign(
        deps,
        cast,
        'bench: remediation',
        realTenants.map((t) => t.tenantId),
      );
      const real = await decideAndRemediate(
        ctx,
        'real',
        realTenants,
        revokesOf,
        (await startCampaignRun(deps, cast.operator, realDef)).runId,
      );
      const workerRssMb = Math.round(process.memoryUsage().rss / 2 ** 20);

      progress(`real: closing the ${tenantCount} materialised reviews (nothing decided: all kept), so every run completes`);
      const closeStart = Date.now();
      await closeStagesNow(
        deps,
        cast,
        materialiseTenants.map((t) => t.tenantId),
        materialiseRun,
        8,
        signal,
      );
      await waitUntil(
        'closing the materialised reviews',
        async () => (await reviewStatuses(owner, materialiseRun)).completed === tenantCount,
        {
          timeoutMs: PHASE_TIMEOUT_MS,
          signal,
          everyMs: 1000,
        },
      );
      const closeSeconds = (Date.now() - closeStart) / 1000;
      progress(`real: closed and reported in ${closeSeconds.toFixed(0)} s`);
      await realWorker.stop();

      // floor: the same workflows and activities, on a target that answers from memory
      const floorQueue = 'campaigns-floor';
      const floorWorker = await startFloorWorker(
        {
          connection,
          dataConverter,
          namespace,
          taskQueue: taskQueueName(taskQueuePrefix, floorQueue),
          workflowBundlePath,
          activities: createCampaignActivities({
            pool: service.workerPool,
            directories: singleDirectory(memory),
            clock: systemClock,
            temporal: client,
            // As the real worker's (its tenants have no webhook: nothing is sent on either side).
            webhooks: { allowPrivateNetworks: false, resolve: systemResolver },
          }),
        },
        cleanup,
      );
      const floorDef = await defineCampaign(
        deps,
        cast,
        'bench: remediation floor',
        floorTenants.map((t) => t.tenantId),
      );
      const floor = await decideAndRemediate(ctx, 'floor', floorTenants, revokesOf, await startFloorRun(deps, cast, floorDef, floorQueue));
      await floorWorker.stop();

      const history = await maxHistoryEvents(client, `TaskQueue = '${taskQueueName(taskQueuePrefix, CAMPAIGNS_TASK_QUEUE)}'`, signal);
      const expectedItems = tenantCount * itemsPerTenant;
      const problems = [
        ...(stored.items !== expectedItems ? [`${stored.items} items stored, expected ${expectedItems}`] : []),
        ...(stored.unassigned ? [`${stored.unassigned} items without a reviewer`] : []),
        ...[real, floor].flatMap((s, i) =>
          s.results.applied_verified !== options.revokes
            ? [`${i ? 'floor' : 'real'}: results ${JSON.stringify(s.results)}, expected ${options.revokes} applied_verified`]
            : [],
        ),
      ];
      const round = (n: number, digits = 1) => Number(n.toFixed(digits));
      const summary = {
        bench: 'campaigns',
        tenants: tenantCount,
        itemsPerTenant,
        items: stored.items,
        materialiseSeconds: round(materialiseSeconds),
        ...(materialiseCpuMs !== undefined ? { materialiseCpuSeconds: round(materialiseCpuMs / 1000) } : {}),
        bulkDecisionsPerSec: round(real.decisionsPerSec),
        callSize,
        revokes: options.revokes,
        revocationsPerSec: round(real.revocationsPerSec),
        floorRevocationsPerSec: round(floor.revocationsPerSec),
        ratio: round(real.revocationsPerSec / floor.revocationsPerSec, 3),
        ...(real.cpuMsPerRevoke !== undefined && floor.cpuMsPerRevoke !== undefined
          ? {
              cpuMsPerRevoke: round(real.cpuMsPerRevoke),
              floorCpuMsPerRevoke: round(floor.cpuMsPerRevoke),
              cpuRatio: round(floor.cpuMsPerRevoke / real.cpuMsPerRevoke, 3),
            }
          : {}),
        remediationSeconds: round(real.remediationSeconds),
        floorRemediationSeconds: round(floor.remediationSeconds),
        closeSeconds: round(closeSeconds),
        maxHistoryEvents: history.events,
        maxHistoryWorkflow: history.workflowId,
        executionsMeasured: history.executions,
        workerRssMb,
        goalsMissed: [
          ...(materialiseSeconds > 60 ? ['materialiseSeconds ≤ 60'] : []),
          ...(real.decisionsPerSec < 2000 ? ['bulkDecisionsPerSec ≥ 2000'] : []),
          ...(real.revocationsPerSec / floor.revocationsPerSec < 0.8 ? ['ratio ≥ 0.8'] : []),
        ],
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
