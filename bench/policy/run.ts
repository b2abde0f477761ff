import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { systemClock } from '../../activities/index.js';
import { loadConfig } from '../../core/config.js';
import { TENANCY_TASK_QUEUE } from '../../core/tenancy/contract.js';
import { taskQueueName } from '../../core/temporal.js';
import { decidePolicyChange } from '../../usecases/tenancy/policy-changes.js';
import { changePolicy } from '../../usecases/tenancy/policies.js';
import { cpuMeter, cpuTotal, type CpuMs } from '../cpu.js';
import { quantile } from '../stats.js';
import {
  abortable,
  benchRun,
  benchTemporal,
  optionsOrUsage,
  positiveInt,
  scratchService,
  UsageError,
  type ScratchService,
} from '../support.js';
import { startFloorWorker, startTenureWorker } from '../workers.js';
import { floorApprove, floorPropose, noopPolicyChangeActivities } from './floor.js';
import { baseCapMinutes, policyDocument, seedPolicyTenants, type PolicySetup, type PolicyTenant } from './setup.js';

/**
 * `npm run bench -- policy`: tenant policy-change lifecycles (propose a loosening change, the
 * tenant's approver approves, the change is applied) per second through the use cases the API
 * calls, on the real worker (activities write the read model, the audit chain and the policy
 * version), against the floor: the same policyChangeWorkflow started straight on Temporal, on a
 * worker whose activities do nothing. Each tenant's changes run one after another (each based on
 * the version the one before wrote); `--concurrency` tenants at a time. approve p50/p99: the
 * approve call until its answer says applied.
 */

const USAGE = 'usage: npm run bench -- policy [--changes N] [--tenants N] [--concurrency N]';
const progress = (message: string) => process.stderr.write(`[bench policy] ${message}\n`);

function parse(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { changes: { type: 'string', default: '300' }, tenants: { type: 'string' }, concurrency: { type: 'string', default: '10' } },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const concurrency = positiveInt('concurrency', values.concurrency)!;
  const tenants = positiveInt('tenants', values.tenants) ?? concurrency;
  // A tenant's changes are sequential, so more lanes than tenants would only wait.
  if (tenants < concurrency) throw new UsageError('--tenants must be at least --concurrency (one tenant takes one change at a time)');
  return { changes: positiveInt('changes', values.changes)!, tenants, concurrency };
}

/** One lifecycle on one side: propose against `baseVersion`, approve, answer the version written and the approve time. */
type Lifecycle = (tenant: PolicyTenant, baseVersion: number, capMinutes: number) => Promise<{ version: number; approveMs: number }>;

interface Batch {
  seconds: number;
  approveMs: number[];
  cpuMsPerChange: CpuMs | undefined;
}

/** `count` lifecycles, change i on tenant i % tenants, `concurrency` tenants at a time. */
async function runBatch(
  setup: PolicySetup,
  options: { tenants: number; concurrency: number },
  count: number,
  lifecycle: Lifecycle,
  signal: AbortSignal,
  meter?: () => () => CpuMs,
): Promise<Batch> {
  const cpu = meter?.();
  const started = Date.now();
  const approveMs: number[] = [];
  const lanes = Array.from({ length: options.concurrency }, async (_, lane) => {
    for (let i = 0; i < count; i++) {
      const t = i % options.tenants;
      if (t % options.concurrency !== lane) continue;
      signal.throwIfAborted();
      const tenant = setup.tenants[t]!;
      const capMinutes = baseCapMinutes + tenant.version; // strictly rising: every change loosens
      const { version, approveMs: ms } = await abortable(lifecycle(tenant, tenant.version, capMinutes), signal);
      tenant.version = version;
      approveMs.push(ms);
    }
  });
  await Promise.all(lanes);
  const seconds = (Date.now() - started) / 1000;
  const spent = cpu?.();
  const per = (ms: number | undefined) => (ms === undefined ? undefined : Number((ms / count).toFixed(2)));
  return {
    seconds,
    approveMs: approveMs.sort((a, b) => a - b),
    cpuMsPerChange: spent
      ? {
          benchProcess: per(spent.benchProcess)!,
          ...(spent.temporalServer !== undefined ? { temporalServer: per(spent.temporalServer)! } : {}),
          ...(spent.postgres !== undefined ? { postgres: per(spent.postgres)! } : {}),
        }
      : undefined,
  };
}

function realLifecycle(service: ScratchService, client: Client, setup: PolicySetup): Lifecycle {
  const deps = { pool: service.apiPool, directory: setup.directory, temporal: client };
  return async (tenant, baseVersion, capMinutes) => {
    const outcome = await changePolicy(deps, setup.proposer, tenant.tenantId, baseVersion, policyDocument(capMinutes, tenant.quorum));
    if (!('pending' in outcome)) throw new Error('a loosening change was applied without approval');
    const approveStart = Date.now();
    const view = await decidePolicyChange(deps, tenant.tenantId, outcome.pending.changeId, 'approve', {
      actorId: tenant.approverIds[0],
      authority: { roles: ['tenant_approver'] },
    });
    if (view.status !== 'applied' || view.appliedVersion === null) throw new Error(`change ${view.changeId} ended ${view.status}`);
    return { version: view.appliedVersion, approveMs: Date.now() - approveStart };
  };
}

function floorLifecycle(client: Client, taskQueue: string, setup: PolicySetup): Lifecycle {
  return async (tenant, baseVersion, capMinutes) => {
    const document = policyDocument(capMinutes, tenant.quorum);
    const workflowId = await floorPropose(client, taskQueue, setup.proposer, { tenantId: tenant.tenantId, baseVersion, document });
    const approveStart = Date.now();
    const view = await floorApprove(client, workflowId, tenant.approverIds[0]);
    if (view.status !== 'applied') throw new Error(`floor change ${view.changeId} ended ${view.status}`);
    return { version: view.appliedVersion!, approveMs: Date.now() - approveStart };
  };
}

export async function runPolicyBench(argv: string[]): Promise<void> {
  const options = optionsOrUsage(() => parse(argv), USAGE);
  if (!options) return;
  const config = loadConfig();
  const run = benchRun('bench', progress);
  const { logger, abort, cleanup } = run;
  await run.complete(async () => {
    const service = await scratchService({
      databaseUrl: config.DATABASE_URL,
      poolMax: config.DATABASE_POOL_MAX,
      logger,
      cleanup,
      progress,
    });
    progress(`seeding ${options.tenants} tenants with two approvers each (quorum 1)`);
    const setup = await seedPolicyTenants(service, { prefix: `bench-${service.suffix}`, tenantCount: options.tenants, quorumOf: () => 1 });
    const taskQueuePrefix = `bench-${service.suffix}-`;
    const temporal = await benchTemporal({ config: { ...config, TEMPORAL_TASK_QUEUE_PREFIX: taskQueuePrefix }, logger, cleanup, progress });
    const { client, connection, dataConverter, namespace, bundlePath: workflowBundlePath } = temporal;
    const meter = () => cpuMeter(temporal.temporalPid, service.database);
    const warmup = Math.min(options.changes, options.tenants);

    const side = async (name: string, lifecycle: Lifecycle): Promise<Batch> => {
      progress(`${name}: warm-up, ${warmup} lifecycles`);
      await runBatch(setup, options, warmup, lifecycle, abort.signal);
      progress(`${name}: ${options.changes} lifecycles, ${options.concurrency} tenants at a time`);
      const batch = await runBatch(setup, options, options.changes, lifecycle, abort.signal, meter);
      progress(
        `${name}: ${(options.changes / batch.seconds).toFixed(1)} changes/s, approve → applied p50 ${quantile(batch.approveMs, 0.5)} ms ` +
          `p99 ${quantile(batch.approveMs, 0.99)} ms; CPU ms per change ${JSON.stringify(batch.cpuMsPerChange)}`,
      );
      return batch;
    };

    // real: the worker as deployed, through the use cases
    const realWorker = await startTenureWorker(
      {
        connection,
        dataConverter,
        namespace,
        taskQueuePrefix,
        taskQueues: [TENANCY_TASK_QUEUE],
        workflowBundlePath,
        pool: service.workerPool,
        directory: setup.directory,
        clock: systemClock,
      },
      cleanup,
    );
    const real = await side('real', realLifecycle(service, client, setup));
    const workerRssMb = Math.round(process.memoryUsage().rss / 2 ** 20);
    await realWorker.stop();

    // floor: same workflow, no-op activities, started straight on Temporal
    const floorQueue = 'tenancy-floor';
    const floorWorker = await startFloorWorker(
      {
        connection,
        dataConverter,
        namespace,
        taskQueue: taskQueueName(taskQueuePrefix, floorQueue),
        workflowBundlePath,
        activities: noopPolicyChangeActivities,
      },
      cleanup,
    );
    const floor = await side('floor', floorLifecycle(client, floorQueue, setup));
    await floorWorker.stop();

    const changesPerSec = options.changes / real.seconds;
    const floorPerSec = options.changes / floor.seconds;
    const realCpu = cpuTotal(real.cpuMsPerChange);
    const floorCpu = cpuTotal(floor.cpuMsPerChange);
    const summary = {
      bench: 'policy',
      ...options,
      changesPerSec: Number(changesPerSec.toFixed(1)),
      floorPerSec: Number(floorPerSec.toFixed(1)),
      ratio: Number((changesPerSec / floorPerSec).toFixed(3)),
      approveP50Ms: quantile(real.approveMs, 0.5),
      approveP99Ms: quantile(real.approveMs, 0.99),
      floorApproveP50Ms: quantile(floor.approveMs, 0.5),
      floorApproveP99Ms: quantile(floor.approveMs, 0.99),
      cpuMsPerChange: real.cpuMsPerChange,
      floorCpuMsPerChange: floor.cpuMsPerChange,
      ...(realCpu && floorCpu ? { cpuRatio: Number((floorCpu / realCpu).toFixed(3)) } : {}),
      workerRssMb,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  });
}
