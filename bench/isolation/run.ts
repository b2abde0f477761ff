import os from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { systemClock } from '../../activities/index.js';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { loadConfig } from '../../core/config.js';
import { cancelCampaignRun, startCampaignRun, type CampaignDeps } from '../../usecases/campaigns.js';
import { allMaterialised, materialisedItems, reviewStatuses, waitUntil } from '../campaigns/phases.js';
import { defineCampaign, loadSubjects, seedCampaignCast } from '../campaigns/setup.js';
import { cpuMeter, cpuTotal } from '../cpu.js';
import { burstWindow, realRequester, requestAndApprove, throughputWindow, type Requester } from '../grants/load.js';
import { crossCheck, measureBatch, type BatchResult } from '../grants/measure.js';
import { seedGrantsBench, type GrantsBenchSetup } from '../grants/setup.js';
import { quantile } from '../stats.js';
import { benchRun, benchTemporal, optionsOrUsage, scratchService } from '../support.js';
import { startTenureWorker } from '../workers.js';
import { parseIsolationBenchOptions, USAGE, type IsolationBenchOptions } from './options.js';

/**
 * `npm run bench -- isolation`: grant expiry lag while a large campaign materialises on the same
 * worker, against the same burst on a quiet one (issue 16, "isolation under mixed load").
 *
 * One worker polls every domain's queue, as `tenure worker` does by default. On it, one after another:
 * - quiet: `--burst` grants, requested through the API's use case and approved, expiring evenly
 *   within `--burst-spread` seconds; expiry lag = verified revocation − expires_at per grant, as the
 *   grants benchmark measures it (its code);
 * - mixed: the same burst, and a campaign over `--campaign-tenants` tenants holding `--items` review
 *   items in all, started `--lead` seconds before the burst's first expiry, so the expiries land
 *   while the reviews store their items. Whether they did is measured: the campaign started before
 *   the first expiry and its last review stored its items after the last revocation was verified;
 * - quiet again (unless `--no-quiet-after`), once the campaign is cancelled and settled: how far
 *   the machine's own load moved the quiet figure meanwhile.
 * The grants' expiry time is set for both bursts alike, far enough out that every grant of the burst
 * is active before the campaign starts (sized by a warm-up batch).
 */

const progress = (message: string) => process.stderr.write(`[bench isolation] ${message}\n`);
const WARMUP_GRANTS = 40;
/** The warm-up grants' length: long enough to be active within it on a busy machine (10 s was not, at load average 12). */
const WARMUP_DURATION_SECONDS = 30;
/** As in the grants benchmark: the workflow's expiry warning and Temporal's sub-second timers want room. */
const MIN_EXPIRE_AFTER_SECONDS = 12;
const PHASE_TIMEOUT_MS = 30 * 60_000;

interface Burst {
  result: BatchResult;
  /** Epoch ms: the first request, the first expiry and the last verified revocation. */
  started: number;
  firstEndAt: number;
  lastVerifiedAt: number;
  /** Epoch ms: the last activation. */
  lastActiveAt: number;
}

async function runBurst(
  run: { client: CampaignDeps['temporal']; abort: AbortController; setup: GrantsBenchSetup },
  options: IsolationBenchOptions,
  request: Requester,
  firstEnd: number,
): Promise<Burst> {
  const started = Date.now();
  const views = await requestAndApprove(
    { ...run, concurrency: options.concurrency },
    options.burst,
    request,
    burstWindow(firstEnd, options.burst, options.burstSpreadSeconds),
  );
  const result = measureBatch(views, options.burst, started);
  const done = views.filter((v) => v.revocationVerifiedAt !== null);
  return {
    result,
    started,
    firstEndAt: Math.min(...views.map((v) => Date.parse(v.endAt))),
    lastVerifiedAt: Math.max(...done.map((v) => Date.parse(v.revocationVerifiedAt!))),
    lastActiveAt: started + result.activationSpanMs,
  };
}

const lagLine = (name: string, burst: Burst) =>
  `${name}: expiry lag p50 ${quantile(burst.result.lagsMs, 0.5)} ms, p99 ${quantile(burst.result.lagsMs, 0.99)} ms, ` +
  `max ${burst.result.lagsMs.at(-1)} ms (${burst.result.completed} expired, ${burst.result.windowPassed} approved after their window)`;

const loadAverage = () => Number(os.loadavg()[0]!.toFixed(1));

export async function runIsolationBench(argv: string[]): Promise<void> {
  const options = optionsOrUsage(() => parseIsolationBenchOptions(argv), USAGE);
  if (!options) return;
  const config = loadConfig();
  const run = benchRun('bench', progress);
  const { logger, abort, cleanup } = run;
  const { signal } = abort;
  const loadAtStart = loadAverage();
  await run.complete(async () => {
    const poolMax = options.poolMax ?? config.DATABASE_POOL_MAX;
    const service = await scratchService({ ...run, databaseUrl: config.DATABASE_URL, poolMax, progress });
    const { owner } = service;
    const seedStart = Date.now();
    progress(
      `seeding ${options.tenants} grant tenants, and ${options.campaignTenants} campaign tenants × ${options.itemsPerTenant} users holding a reviewed role`,
    );
    const setup = await seedGrantsBench(service, {
      suffix: service.suffix,
      tenantCount: options.tenants,
      usersPerTenant: Math.ceil(Math.max(options.burst, WARMUP_GRANTS) / options.tenants),
    });
    const cast = await seedCampaignCast(service.apiPool, {
      prefix: `bench-${service.suffix}-c`,
      tenantCount: options.campaignTenants,
      usersOf: () => options.itemsPerTenant,
    });
    await loadSubjects(createPostgresDirectory(service.directoryPool), cast.tenants);
    progress(`seeded in ${((Date.now() - seedStart) / 1000).toFixed(0)} s`);

    const taskQueuePrefix = `bench-${service.suffix}-`;
    const temporal = await benchTemporal({ config: { ...config, TEMPORAL_TASK_QUEUE_PREFIX: taskQueuePrefix }, logger, cleanup, progress });
    const { client } = temporal;
    const deps: CampaignDeps = { pool: service.apiPool, temporal: client, taskQueuePrefix };
    const meter = () => cpuMeter(temporal.temporalPid, service.database);
    await client.withAbortSignal(signal, async () => {
      // The worker as deployed: every domain's queue, each with its own Worker, in one process.
      const worker = await startTenureWorker(
        {
          connection: temporal.connection,
          dataConverter: temporal.dataConverter,
          namespace: temporal.namespace,
          taskQueuePrefix,
          workflowBundlePath: temporal.bundlePath,
          pool: service.workerPool,
          directory: setup.directory,
          clock: systemClock,
          temporal: client,
        },
        cleanup,
      );
      const request = realRequester({ apiPool: service.apiPool, client }, setup);
      const grantsRun = { client, abort, setup };

      const warmup = Math.min(WARMUP_GRANTS, options.burst);
      progress(`warm-up: ${warmup} lifecycles of ${WARMUP_DURATION_SECONDS} s, ${options.concurrency} requests in flight`);
      const warmStart = Date.now();
      const warm = measureBatch(
        await requestAndApprove(
          { ...grantsRun, concurrency: options.concurrency },
          warmup,
          request,
          throughputWindow(WARMUP_DURATION_SECONDS),
        ),
        warmup,
        warmStart,
      );
      // Every grant of a burst active well before the campaign starts, `--lead` before the first expiry.
      const activationSeconds = ((warm.activationSpanMs / 1000) * options.burst) / warmup;
      const expireAfter = Math.max(MIN_EXPIRE_AFTER_SECONDS, Math.ceil(activationSeconds * 1.5) + 3 + Math.ceil(options.leadSeconds));
      const burstLabel = `${options.burst} grants expiring ${expireAfter}–${expireAfter + options.burstSpreadSeconds} s after the first request`;

      progress(`quiet: ${burstLabel}`);
      const quiet = await runBurst(grantsRun, options, request, Date.now() + expireAfter * 1000);
      progress(lagLine('quiet', quiet));

      const definitionId = await defineCampaign(
        deps,
        cast,
        'bench: isolation',
        cast.tenants.map((t) => t.tenantId),
      );
      progress(
        `mixed: ${burstLabel}; a campaign over ${options.campaignTenants} tenants × ${options.itemsPerTenant} items starts ${options.leadSeconds} s before the first expiry`,
      );
      const firstEnd = Date.now() + expireAfter * 1000;
      const campaign = (async () => {
        await delay(Math.max(0, firstEnd - options.leadSeconds * 1000 - Date.now()), undefined, { signal });
        const cpu = meter();
        const startedAt = Date.now();
        const { runId } = await startCampaignRun(deps, cast.operator, definitionId);
        return { runId, startedAt, cpu };
      })();
      campaign.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
      const mixed = await runBurst(grantsRun, options, request, firstEnd);
      progress(lagLine('mixed', mixed));
      const { runId, startedAt: campaignStartedAt, cpu } = await campaign;
      await waitUntil('materialisation', allMaterialised(owner, runId, options.campaignTenants), {
        timeoutMs: PHASE_TIMEOUT_MS,
        signal,
        everyMs: 250,
      });
      const stored = await materialisedItems(owner, runId);
      const materialiseCpuMs = cpuTotal(cpu());
      const materialiseSeconds = (stored.lastStoredAt - campaignStartedAt) / 1000;
      const overlapped = campaignStartedAt <= mixed.firstEndAt && mixed.lastVerifiedAt <= stored.lastStoredAt;
      progress(
        `mixed: ${stored.items} items stored (${stored.unassigned} unassigned) in ${materialiseSeconds.toFixed(1)} s; ` +
          `the burst's expiries ${overlapped ? 'landed inside' : 'did NOT land inside'} materialisation ` +
          `(campaign started ${((mixed.firstEndAt - campaignStartedAt) / 1000).toFixed(1)} s before the first expiry, ` +
          `last revocation verified ${((stored.lastStoredAt - mixed.lastVerifiedAt) / 1000).toFixed(1)} s before the last items were stored)`,
      );

      progress('cancelling the campaign run and waiting for its reviews to stop');
      await cancelCampaignRun(deps, runId, {
        actorId: cast.operator.actor.id,
        authority: { roles: ['operator'] },
        reason: 'isolation benchmark: materialised, nothing to review',
      });
      await waitUntil(
        'the reviews to stop',
        async () => {
          const statuses = await reviewStatuses(owner, runId);
          return (statuses.cancelled ?? 0) + (statuses.completed ?? 0) === options.campaignTenants;
        },
        { timeoutMs: PHASE_TIMEOUT_MS, signal, everyMs: 1000 },
      );

      let quietAfter: Burst | undefined;
      if (options.quietAfter) {
        progress(`quiet again: ${burstLabel}`);
        quietAfter = await runBurst(grantsRun, options, request, Date.now() + expireAfter * 1000);
        progress(lagLine('quiet again', quietAfter));
      }
      const workerRssMb = Math.round(process.memoryUsage().rss / 2 ** 20);
      await worker.stop();
      await crossCheck(
        owner,
        setup,
        [warm.views, ...[quiet, mixed, ...(quietAfter ? [quietAfter] : [])].map((b) => b.result.views)].flat(),
        progress,
      );

      const expectedItems = options.campaignTenants * options.itemsPerTenant;
      const problems = [
        ...(stored.items !== expectedItems ? [`${stored.items} items stored, expected ${expectedItems}`] : []),
        ...(stored.unassigned ? [`${stored.unassigned} items without a reviewer`] : []),
        ...[quiet, mixed, quietAfter].flatMap((b, i) =>
          b?.result.windowPassed
            ? [`${['quiet', 'mixed', 'quiet again'][i]}: ${b.result.windowPassed} grants approved after their window`]
            : [],
        ),
      ];
      const p99 = (b: Burst) => quantile(b.result.lagsMs, 0.99)!;
      const p50 = (b: Burst) => quantile(b.result.lagsMs, 0.5)!;
      const ratio = p99(mixed) / p99(quiet);
      const summary = {
        bench: 'isolation',
        burst: options.burst,
        burstSpreadSeconds: options.burstSpreadSeconds,
        items: stored.items,
        campaignTenants: options.campaignTenants,
        leadSeconds: options.leadSeconds,
        expireAfterSeconds: expireAfter,
        activitySlots: config.WORKER_QUEUE_ACTIVITY_SLOTS,
        quietExpiryLagP50Ms: p50(quiet),
        quietExpiryLagP99Ms: p99(quiet),
        mixedExpiryLagP50Ms: p50(mixed),
        mixedExpiryLagP99Ms: p99(mixed),
        mixedExpiryLagMaxMs: mixed.result.lagsMs.at(-1),
        ratio: Number(ratio.toFixed(3)),
        ...(quietAfter
          ? {
              quietAfterExpiryLagP50Ms: p50(quietAfter),
              quietAfterExpiryLagP99Ms: p99(quietAfter),
              ratioToQuietAfter: Number((p99(mixed) / p99(quietAfter)).toFixed(3)),
            }
          : {}),
        overlapped,
        campaignStartedBeforeFirstExpiryMs: mixed.firstEndAt - campaignStartedAt,
        materialisedAfterLastRevocationMs: stored.lastStoredAt - mixed.lastVerifiedAt,
        burstActiveBeforeCampaign: mixed.lastActiveAt <= campaignStartedAt,
        materialiseSeconds: Number(materialiseSeconds.toFixed(1)),
        ...(materialiseCpuMs !== undefined ? { materialiseCpuSeconds: Number((materialiseCpuMs / 1000).toFixed(1)) } : {}),
        workerRssMb,
        loadAverage: { start: loadAtStart, end: loadAverage() },
        // Against both quiet bursts when there are two, so a quiet burst slowed by other work cannot pass it alone.
        goalMet: overlapped && ratio <= 1.25 && (!quietAfter || p99(mixed) / p99(quietAfter) <= 1.25),
        errors: problems.length,
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
