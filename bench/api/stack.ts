import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { loadConfig } from '../../core/config.js';
import { systemContext } from '../../core/audit/context.js';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { createPool } from '../../db/pool.js';
import { spawnManaged, type ManagedProcess } from '../../runtime/child.js';
import { createCast, DEMO_CAST, seedDemoGrants } from '../../runtime/demo.js';
import { projectRoot } from '../../runtime/paths.js';
import { freePort } from '../../runtime/ports.js';
import { benchTemporal, scratchDatabase } from '../support.js';

/** What the load runs against: the API's URL, the demo cast's tokens and ids, the person it reads. */
export interface ApiBenchStack {
  url: string;
  /** The scratch database, whose PostgreSQL backends the per-phase CPU counts. */
  database: string;
  tenantId: string;
  tokens: { operator: string; approver: string; hrFeed: string };
  subjects: string[];
  /** A grant (approved) and a person (joined) that the read routes read. */
  grantId: string;
  personId: string;
  /** The processes, for their pids and exit state. */
  api: ManagedProcess;
  worker: ManagedProcess;
}

const READY_TIMEOUT_MS = 120_000;

async function waitUntil(what: string, check: () => Promise<boolean>, child: ManagedProcess[], signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    signal.throwIfAborted();
    const dead = child.find((c) => !c.alive());
    if (dead) throw new Error(`${what}: a process of the stack stopped: ${dead.problem()}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${READY_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The real stack as deployed, on loopback: a scratch database (DATABASE_URL, else embedded; migrated, the
 * service's own non-owner login), a Temporal dev server unless TEMPORAL_ADDRESS is set, and
 * `tenure api` and `tenure worker` as processes of their own, so the load generator never shares
 * their event loop. The demo MSP is seeded into it; one person joins through the API.
 */
export async function startApiBenchStack(options: {
  logger: Logger;
  cleanup: (() => Promise<unknown>)[];
  progress: (message: string) => void;
  signal: AbortSignal;
  env: Record<string, string>;
  /** Extra node arguments for the API process (e.g. `--cpu-prof`). */
  apiNodeArgs?: string[];
}): Promise<ApiBenchStack> {
  const { logger, cleanup, progress, signal } = options;
  const { suffix, database, url, appUrl } = await scratchDatabase({ databaseUrl: process.env.DATABASE_URL, logger, cleanup, progress });

  progress('seeding the demo MSP');
  const pool = createPool({ connectionString: appUrl, max: 4 });
  const directoryPool = createPool({ connectionString: appUrl, max: 2 });
  let cast;
  try {
    cast = await createCast(pool, systemContext('api benchmark'), DEMO_CAST);
    await seedDemoGrants(pool, cast, createPostgresDirectory(directoryPool));
  } finally {
    await pool.end();
    await directoryPool.end();
  }

  const payloadKeys = `bench-1:${randomBytes(32).toString('base64')}`;
  const taskQueuePrefix = `bench-${suffix}-`;
  const config = loadConfig({ ...process.env, TEMPORAL_PAYLOAD_KEYS: payloadKeys, TEMPORAL_TASK_QUEUE_PREFIX: taskQueuePrefix });
  const temporal = await benchTemporal({ config, logger, cleanup, progress });

  const port = await freePort();
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: url,
    DATABASE_APP_URL: appUrl,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    TEMPORAL_TASK_QUEUE_PREFIX: taskQueuePrefix,
    TEMPORAL_PAYLOAD_KEYS: payloadKeys,
    TEMPORAL_PAYLOAD_KEYS_FILE: '',
    WORKFLOW_BUNDLE_PATH: temporal.bundlePath,
    TEMPORAL_METRICS_BIND_ADDRESS: `127.0.0.1:${await freePort()}`,
    DEMO_SEED: 'false',
    ...options.env,
  };
  const spawnPart = (part: 'api' | 'worker') => {
    const nodeArgs = part === 'api' ? (options.apiNodeArgs ?? []) : [];
    const child = spawnManaged(process.execPath, [...nodeArgs, '--import', 'tsx', 'cli/main.ts', part], logger, `tenure ${part}`, {
      cwd: projectRoot(),
      env,
    });
    cleanup.push(() => child.stop(15_000));
    return child;
  };
  progress('starting `tenure worker` and `tenure api` as processes of their own');
  const worker = spawnPart('worker');
  const api = spawnPart('api');
  const base = `http://127.0.0.1:${port}`;
  await waitUntil('the API', async () => (await fetch(`${base}/readyz`)).ok, [api, worker], signal);

  const tenantId = cast.tenants.contoso!.id;
  const tokens = {
    operator: cast.actors['msp-operator']!.token,
    approver: cast.actors['contoso-approver']!.token,
    hrFeed: cast.actors['contoso-hr-feed']!.token,
  };
  const call = (token: string, method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  // The worker is ready once a grant it must approve answers: the approval is an Update it runs.
  progress('waiting for the worker (one grant requested and approved)');
  const first = await call(tokens.operator, 'POST', `/v1/tenants/${tenantId}/grants`, grantBody('ana.lima'));
  if (first.status !== 201) throw new Error(`requesting a grant answered ${first.status}: ${await first.text()}`);
  const { grantId } = (await first.json()) as { grantId: string };
  await waitUntil(
    'the worker',
    async () => (await call(tokens.approver, 'POST', `/v1/tenants/${tenantId}/grants/${grantId}/approve`, {})).ok,
    [api, worker],
    signal,
  );
  const personId = 'bench.person';
  const joined = await call(tokens.hrFeed, 'POST', `/v1/tenants/${tenantId}/hr-events`, {
    eventId: `bench-join-${suffix}`,
    personId,
    type: 'joiner',
    effectiveAt: new Date(Date.now() - 60_000).toISOString(),
    attributes: { department: 'Finance' },
    profile: { username: personId, displayName: 'Bench Person' },
  });
  if (!joined.ok) throw new Error(`the joiner answered ${joined.status}: ${await joined.text()}`);
  await waitUntil(
    'the joiner',
    async () => (await call(tokens.operator, 'GET', `/v1/tenants/${tenantId}/people/${personId}`)).ok,
    [api, worker],
    signal,
  );

  return { url: base, database, tenantId, tokens, subjects: ['ana.lima', 'ben.okafor', 'chen.wei'], grantId, personId, api, worker };
}

/** A grant request the demo policy sends to the tenant's approver (GlobalAdmin needs one approval). */
export function grantBody(subjectId: string) {
  return { subjectId, role: 'GlobalAdmin', durationMinutes: 60, justification: 'api benchmark', ticket: 'INC-1' };
}
