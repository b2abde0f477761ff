import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { WithStartWorkflowOperation, WorkflowIdConflictPolicy } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { createPostgresDirectory } from '../connectors/directory/postgres.js';
import { createActivities, systemClock, type Activities } from '../activities/index.js';
import type { PersonAccess } from '../activities/lifecycle/activities.js';
import { loadConfig } from '../core/config.js';
import { tenantSearchAttributes } from '../core/temporal.js';
import {
  PERSON_WORKFLOW_TYPE,
  personWorkflowId,
  submitHrEventUpdate,
  type HrEvent,
  type PersonWorkflowInput,
  type SubmittedHrEvent,
} from '../core/lifecycle/contract.js';
import { evaluateBirthright } from '../core/lifecycle/rules.js';
import { TenantPolicyDocument } from '../core/tenancy/schemas.js';
import { LifecyclePolicy } from '../core/lifecycle/policy.js';
import { createCast, type CastSpec } from '../runtime/demo.js';
import type { ActionContext } from '../core/audit/context.js';
import { systemContext } from '../core/audit/context.js';
import { listBindings } from '../usecases/tenancy/bindings.js';
import { putPolicy } from '../usecases/tenancy/policies.js';
import {
  getPerson,
  importHrEvents,
  listPeople,
  loadLifecyclePolicy,
  type ImportResult,
  type LifecycleDeps,
} from '../usecases/lifecycle.js';
import {
  abortable,
  backendsOf,
  benchRun,
  benchTemporal,
  cpuReader,
  optionsOrUsage,
  percentile,
  positiveInt,
  runConcurrently,
  scratchService,
  UsageError,
  withTimeout,
} from './support.js';

/**
 * `npm run bench -- lifecycle`: onboarding and offboarding in bulk. `--people` joiners spread over
 * `--tenants` tenants are imported (one CSV per tenant, all tenants at once, through the API's
 * import use case), then a leaver for every one of them; on the real worker, against the
 * bare-Temporal floor: the same personWorkflow, sent the same Updates (update-with-start for a
 * joiner), on a worker whose activities do nothing.
 *
 * - throughput: HR events / s = 2 × people / (joiner phase + leaver phase), each phase timed from
 *   the import call to the last person reaching `active` with every birthright role (joiners),
 *   or `left` with access removed and verified (leavers);
 * - latency, per person: the step's audit event (`person.joined`; `person.left`, written once
 *   verifyPersonAccessGone has read the directory and the ledger back empty) minus the moment the
 *   import registered that person's row (hr_events.received_at), so rows still waiting their
 *   turn in the import do not count as latency;
 * - residualEntitlements: open ledger entitlements plus directory memberships of these people once
 *   every leaver is done; must be 0 (else a warning and exit code 1);
 * - CPU ms per HR event (bench process: worker and client; Temporal dev server; PostgreSQL) over
 *   both phases, for `cpuRatio` = floor / real: on a 2-core machine where Temporal, PostgreSQL and
 *   the worker share the CPUs, events/s tend to it, and unlike wall time it barely moves when
 *   something else runs on the machine.
 *
 * Each side runs alone after a warm-up (one joiner and one leaver per tenant). The floor's
 * activities keep an in-memory note of the roles "granted", so its leavers list and end as many
 * entitlements as the real ones and the workflow makes the same activity calls. Its submissions
 * skip what the use case adds around the Update (HR event register row, policy check, the
 * person query it answers with), as bench/grants.ts does for requests; that is part of the
 * real side's cost.
 */

const USAGE = 'usage: npm run bench -- lifecycle [--people N] [--tenants N] [--concurrency N] [--pool-max N]';

const WARMUP_PER_TENANT = 1;
/** A phase with no person finishing for this long is reported as stuck. */
const STALL_MS = 90_000;
/** Bound on one import (or the floor's submissions and steps): an Update nobody answers waits forever. */
const PHASE_TIMEOUT_MS = 600_000;
const POLL_MS = 250;

const progress = (message: string) => process.stderr.write(`[bench lifecycle] ${message}\n`);

function parse(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        people: { type: 'string', default: '1000' },
        tenants: { type: 'string', default: '10' },
        concurrency: { type: 'string', default: '10' },
        'pool-max': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const options = {
    people: positiveInt('people', values.people)!,
    tenants: positiveInt('tenants', values.tenants)!,
    concurrency: positiveInt('concurrency', values.concurrency)!,
    poolMax: positiveInt('pool-max', values['pool-max']),
  };
  if (options.tenants > options.people) throw new UsageError(`--tenants (${options.tenants}) cannot exceed --people (${options.people})`);
  return options;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      reject(signal.reason as Error);
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });

const ascending = (values: number[]) => values.sort((a, b) => a - b);

// ------------------------------------------------------------ the people and their rules

const DEPARTMENTS = ['Engineering', 'Sales', 'Support', 'Finance'] as const;
const LOCATIONS = ['London', 'Berlin', 'Remote'] as const;

/** Ordered rules: everyone is Staff, each department adds one role, remote workers add VPN: 2–3 roles each. */
const LIFECYCLE = LifecyclePolicy.parse({
  attributes: ['department', 'location'],
  rules: [
    { id: 'everyone', roles: ['Staff'] },
    { id: 'engineering', when: { department: 'Engineering' }, roles: ['Developers'] },
    { id: 'sales', when: { department: 'Sales' }, roles: ['CRM'] },
    { id: 'support', when: { department: 'Support' }, roles: ['Helpdesk'] },
    { id: 'finance', when: { department: 'Finance' }, roles: ['Ledger'] },
    { id: 'remote', when: { location: 'Remote' }, roles: ['VPN'] },
  ],
  leaver: { retentionDays: 30, afterRetention: 'delete' },
});
const DIRECTORY_ROLES = [...new Set(LIFECYCLE.rules.flatMap((r) => r.roles))];

interface Person {
  tenant: number;
  personId: string;
  attributes: { department: string; location: string };
  /** Birthright roles the rules give, sorted. */
  roles: string[];
}

function peopleOf(prefix: string, count: number, tenantCount: number): Person[] {
  return Array.from({ length: count }, (_, i) => {
    const attributes = {
      department: DEPARTMENTS[i % DEPARTMENTS.length]!,
      location: LOCATIONS[Math.floor(i / DEPARTMENTS.length) % LOCATIONS.length]!,
    };
    return { tenant: i % tenantCount, personId: `${prefix}-${i}`, attributes, roles: evaluateBirthright(LIFECYCLE, attributes).roles };
  });
}

/** An HR event as the HR system sends it; the same for the CSV (real side) and the floor's Updates. */
function hrEvent(side: string, type: 'joiner' | 'leaver', person: Person, effectiveAt: string): HrEvent {
  const event: HrEvent = { eventId: `${side}-${person.personId}-${type}`, personId: person.personId, type, effectiveAt };
  if (type === 'joiner') {
    event.attributes = person.attributes;
    event.profile = { username: person.personId, displayName: `Bench person ${person.personId}`, email: `${person.personId}@example.com` };
  }
  return event;
}

const CSV_HEADER = 'eventId,personId,type,effectiveAt,username,displayName,email,department,location';
function csvOf(events: HrEvent[]): string {
  const rows = events.map((e) =>
    [
      e.eventId,
      e.personId,
      e.type,
      e.effectiveAt,
      e.profile?.username ?? '',
      e.profile?.displayName ?? '',
      e.profile?.email ?? '',
      e.attributes?.department ?? '',
      e.attributes?.location ?? '',
    ].join(','),
  );
  return `${CSV_HEADER}\n${rows.join('\n')}\n`;
}

// ------------------------------------------------------------ the floor's activities

type PersonActivities = Pick<
  Activities,
  | 'recordPersonEvent'
  | 'provisionPersonAccount'
  | 'setPersonAccountStatus'
  | 'revokePersonSessions'
  | 'listPersonAccess'
  | 'endPersonGrants'
  | 'awaitGrantsEnded'
  | 'removeUnmanagedRoles'
  | 'verifyPersonAccessGone'
  | 'erasePerson'
  | 'grantAccess'
  | 'endAccess'
>;

/**
 * personWorkflow's activities with no side effects, answering in the shapes it expects. Granted
 * roles are kept in memory so a leaver lists (and ends) as many entitlements as on the real side;
 * `onStep` sees each recorded step (the floor's only way to know when a person is done).
 */
function noopActivities(onStep: (tenantId: string, personId: string, action: string) => void): PersonActivities {
  const held = new Map<string, Map<string, PersonAccess['entitlements'][number]>>();
  const key = (tenantId: string, personId: string) => `${tenantId}/${personId}`;
  const entitlementKey = (e: { role: string; sourceType: string; sourceId: string }) => `${e.sourceType}:${e.sourceId}:${e.role}`;
  return {
    recordPersonEvent: async (input) => {
      onStep(input.view.tenantId, input.view.personId, input.action);
      return { seq: 0 };
    },
    provisionPersonAccount: async () => ({ created: true }),
    setPersonAccountStatus: async () => ({ changed: true }),
    revokePersonSessions: async () => 0,
    listPersonAccess: async ({ tenantId, personId }) => {
      const entitlements = [...(held.get(key(tenantId, personId))?.values() ?? [])];
      return { entitlements, grants: [], directoryRoles: [...new Set(entitlements.map((e) => e.role))] };
    },
    endPersonGrants: async ({ grantIds }) => ({ requested: grantIds, alreadyEnding: [] }),
    awaitGrantsEnded: async ({ grantIds }) => ({ ended: grantIds }),
    removeUnmanagedRoles: async () => ({ removed: [] }),
    verifyPersonAccessGone: async () => ({ verified: true as const }),
    erasePerson: async () => ({ existed: true }),
    grantAccess: async (input) => {
      const mine = held.get(key(input.tenantId, input.subjectId)) ?? new Map<string, PersonAccess['entitlements'][number]>();
      mine.set(entitlementKey(input), { role: input.role, sourceType: input.sourceType, sourceId: input.sourceId, privileged: false });
      held.set(key(input.tenantId, input.subjectId), mine);
      return { entitlementId: 'floor', assigned: true, alreadyEnded: false };
    },
    endAccess: async (input) => {
      held.get(key(input.tenantId, input.subjectId))?.delete(entitlementKey(input));
      return { closed: true, removedFromTarget: true, remainingOpen: 0, verification: { gone: true, presentOnTarget: false, heldBy: [] } };
    },
  };
}

// ------------------------------------------------------------ the run

interface Tenant {
  tenantId: string;
  ctx: ActionContext;
}

/** CPU ms per HR event spent by the bench process (worker and client), Temporal and PostgreSQL. */
interface CpuPerEvent {
  benchProcess: number;
  temporalServer?: number;
  postgres?: number;
}

/** Two phases' CPU ms, per event. */
function perEvent(a: CpuPerEvent, b: CpuPerEvent, events: number): CpuPerEvent {
  const per = (x: number | undefined, y: number | undefined) =>
    x === undefined || y === undefined ? undefined : Number(((x + y) / events).toFixed(1));
  const temporalServer = per(a.temporalServer, b.temporalServer);
  const postgres = per(a.postgres, b.postgres);
  return {
    benchProcess: per(a.benchProcess, b.benchProcess)!,
    ...(temporalServer !== undefined ? { temporalServer } : {}),
    ...(postgres !== undefined ? { postgres } : {}),
  };
}

const cpuTotal = (cpu: CpuPerEvent) =>
  cpu.temporalServer !== undefined && cpu.postgres !== undefined ? cpu.benchProcess + cpu.temporalServer + cpu.postgres : undefined;

interface PhaseResult {
  /** Import call → the last person done. */
  seconds: number;
  /** Row submitted (registered) → step done, per person, ascending. */
  latenciesMs: number[];
  /** CPU ms spent during the phase (not per event). */
  cpu: CpuPerEvent;
}

export async function runLifecycleBench(argv: string[]): Promise<void> {
  const parsed = optionsOrUsage(() => parse(argv), USAGE);
  if (!parsed) return;
  const options = parsed;
  const config = loadConfig();
  const { people: n, tenants: tenantCount, concurrency } = options;
  const poolMax = options.poolMax ?? config.DATABASE_POOL_MAX;
  /** importHrEvents' own concurrency, per tenant: all tenants import at once, `--concurrency` rows in flight in all. */
  const perTenantConcurrency = Math.max(1, Math.ceil(concurrency / tenantCount));
  const run = benchRun('bench', progress);
  const { logger, abort, cleanup } = run;
  try {
    // ------------------------------------------------------------ PostgreSQL: a scratch database
    const { suffix, database, owner, apiPool, workerPool, directoryPool } = await scratchService({
      databaseUrl: config.DATABASE_URL,
      poolMax,
      logger,
      cleanup,
      progress,
    });

    // ------------------------------------------------------------ tenants, HR feeds, policy, directory roles
    progress(
      `seeding ${tenantCount} tenants, each with an HR feed, ${LIFECYCLE.rules.length} birthright rules and ${DIRECTORY_ROLES.length} directory roles`,
    );
    const slugs = Array.from({ length: tenantCount }, (_, t) => `bench-${suffix}-${t}`);
    const spec: CastSpec = {
      tenants: slugs.map((slug) => ({ slug, name: `Bench tenant ${slug}` })),
      actors: slugs.map((slug) => ({
        key: `hr-${slug}`,
        displayName: `Bench HR feed ${slug}`,
        kind: 'service_account' as const,
        roles: [{ role: 'hr_integration' as const, tenant: slug }],
      })),
    };
    const seedCtx = systemContext('lifecycle benchmark');
    const cast = await createCast(apiPool, seedCtx, spec);
    const directory = createPostgresDirectory(directoryPool);
    const tenants: Tenant[] = [];
    for (const slug of slugs) {
      const tenantId = cast.tenants[slug]!.id;
      const feed = cast.actors[`hr-${slug}`]!;
      // Roles exist on the target before any rule names them, as an onboarding checklist has it.
      for (const name of DIRECTORY_ROLES) await directory.upsertRole(tenantId, { name, privileged: name === 'Developers' });
      await putPolicy({ pool: apiPool, directory }, seedCtx, tenantId, 1, TenantPolicyDocument.parse({ lifecycle: LIFECYCLE }));
      const bindings = await listBindings(apiPool, { actorId: feed.id });
      // What the API's import route builds for this caller (api/auth.ts actionContext + the route's authority).
      tenants.push({
        tenantId,
        ctx: {
          actor: { id: feed.id, type: 'service' },
          authority: {
            roles: [...new Set(bindings.map((b) => b.role))].sort(),
            bindingIds: bindings.map((b) => b.id).sort(),
            requestId: randomUUID(),
          },
        },
      });
    }
    const tenantIds = tenants.map((t) => t.tenantId);

    // ------------------------------------------------------------ Temporal
    const {
      client,
      connection,
      code,
      temporalPid,
      external: externalTemporal,
    } = await benchTemporal({ config, logger, cleanup, progress });

    /** Person workflows wait 30 days for their deletion: on a server that outlives the run, end them. */
    const started: string[] = [];
    if (externalTemporal) {
      cleanup.push(async () => {
        const ids = started.splice(0);
        await runConcurrently(ids.length, 20, new AbortController().signal, async (i) => {
          await client.workflow
            .getHandle(ids[i]!)
            .terminate('lifecycle benchmark over')
            .catch(() => undefined);
        });
      });
    }

    /** The options worker/worker.ts createTenureWorker sets (keep in step); both sides run with the same ones. */
    async function startWorker(taskQueue: string, activities: PersonActivities | Activities) {
      const worker = await Worker.create({
        connection,
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue,
        activities,
        workflowBundle: { code },
        shutdownGraceTime: '5 seconds',
        stickyQueueScheduleToStartTimeout: '2 seconds',
      });
      const running = worker.run();
      running.catch(() => undefined);
      let stopped = false;
      const stop = async () => {
        if (stopped) return;
        stopped = true;
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      };
      cleanup.push(stop);
      return { running, stop };
    }

    /** Waits until `done()` holds, failing when the worker stops or `count()` stops moving for STALL_MS. */
    async function waitUntil(what: string, total: number, count: () => Promise<number>, workerRunning: Promise<void>): Promise<void> {
      let workerEnded: Error | undefined;
      workerRunning.then(
        () => (workerEnded = new Error('the worker stopped')),
        (error: unknown) => (workerEnded = error as Error),
      );
      let last = -1;
      let movedAt = Date.now();
      let reportedAt = Date.now();
      for (;;) {
        if (workerEnded) throw workerEnded;
        const now = Date.now();
        const done = await count();
        if (done >= total) return;
        if (done !== last) {
          last = done;
          movedAt = now;
        } else if (now - movedAt > STALL_MS) {
          throw new Error(`${what}: stuck at ${done} of ${total} for ${STALL_MS / 1000} s`);
        }
        if (now - reportedAt >= 10_000) {
          progress(`  ${what}: ${done} of ${total}`);
          reportedAt = now;
        }
        await sleep(POLL_MS, abort.signal);
      }
    }

    /** Starts counting CPU time; the returned function gives the ms spent since then. */
    function countCpu(): () => CpuPerEvent {
      const readCpu = cpuReader();
      const self = process.cpuUsage();
      const temporalBefore = temporalPid !== undefined ? readCpu?.(temporalPid) : undefined;
      // Backends that end in between are missed; the pools keep theirs open through a side.
      const postgresBefore = new Map(readCpu ? backendsOf(database).map((pid) => [pid, readCpu(pid) ?? 0]) : []);
      return () => {
        const { user, system } = process.cpuUsage(self);
        const temporalAfter = temporalPid !== undefined ? readCpu?.(temporalPid) : undefined;
        const postgres = readCpu
          ? backendsOf(database).reduce((sum, pid) => sum + (readCpu(pid) ?? 0) - (postgresBefore.get(pid) ?? 0), 0)
          : undefined;
        return {
          benchProcess: (user + system) / 1000,
          ...(temporalBefore !== undefined && temporalAfter !== undefined ? { temporalServer: temporalAfter - temporalBefore } : {}),
          ...(postgres !== undefined ? { postgres } : {}),
        };
      };
    }

    const byTenant = (list: Person[]) => tenants.map((_, t) => list.filter((p) => p.tenant === t));

    // ------------------------------------------------------------ real: the worker as deployed
    const realQueue = `bench-lifecycle-${suffix}-real`;
    const realWorker = await startWorker(
      realQueue,
      createActivities({ pool: workerPool, directory, clock: systemClock, temporal: client }),
    );
    const deps: LifecycleDeps = { pool: apiPool, temporal: client, taskQueue: realQueue };

    /** One import per tenant, all at once, as the API's import route runs it; every row must be accepted. */
    async function importAll(type: 'joiner' | 'leaver', cohort: Person[]): Promise<void> {
      const effectiveAt = new Date().toISOString();
      const texts = byTenant(cohort).map((list) => csvOf(list.map((p) => hrEvent('real', type, p, effectiveAt))));
      const importing = () =>
        Promise.all(
          tenants.map(async (t, i): Promise<ImportResult> => {
            const list = byTenant(cohort)[i]!;
            if (list.length === 0) return { total: 0, accepted: 0, superseded: 0, duplicates: 0, invalid: 0, rejected: 0, rows: [] };
            const result = await importHrEvents(
              deps,
              t.ctx,
              t.tenantId,
              { format: 'csv', text: texts[i]! },
              { concurrency: perTenantConcurrency },
            );
            if (type === 'joiner') started.push(...list.map((p) => personWorkflowId(t.tenantId, p.personId)));
            return result;
          }),
        );
      // Every Temporal call is cancelled on Ctrl-C; an Update nobody answers would wait forever, hence the bound.
      const results = await client.withAbortSignal(abort.signal, () => abortable(withTimeout(importing(), PHASE_TIMEOUT_MS), abort.signal));
      for (const result of results) {
        if (result.accepted !== result.total) {
          const bad = result.rows.find((r) => r.status !== 'accepted');
          throw new Error(`the ${type} import accepted ${result.accepted} of ${result.total} rows; first other: ${JSON.stringify(bad)}`);
        }
      }
    }

    /** Per person: the step's audit event minus the row's registration, and the time of the last step (epoch ms). */
    async function stepTimes(type: 'joiner' | 'leaver', cohort: Person[]): Promise<{ latenciesMs: number[]; lastAt: number }> {
      const action = type === 'joiner' ? 'person.joined' : 'person.left';
      const { rows } = await owner.query<{ latency_ms: number; at_ms: number }>(
        `SELECT (extract(epoch FROM a.occurred_at - h.received_at) * 1000)::float8 AS latency_ms,
                (extract(epoch FROM a.occurred_at) * 1000)::float8 AS at_ms
           FROM hr_events h
           JOIN audit_events a ON a.tenant_id = h.tenant_id::text AND a.target_type = 'person' AND a.target_id = h.person_id
                              AND a.action = $2 AND a.authority->>'hrEventId' = h.event_id
          WHERE h.tenant_id = ANY($1::uuid[]) AND h.type = $3 AND h.person_id = ANY($4)`,
        [tenantIds, action, type, cohort.map((p) => p.personId)],
      );
      if (rows.length !== cohort.length) throw new Error(`${rows.length} ${action} audit events for ${cohort.length} people`);
      return { latenciesMs: ascending(rows.map((r) => Math.round(r.latency_ms))), lastAt: Math.max(...rows.map((r) => r.at_ms)) };
    }

    const cohortIds = (cohort: Person[]) => cohort.map((p) => p.personId);
    /** People of the cohort `active` in the read model, and their open ledger entitlements. */
    const joinedCount = (cohort: Person[]) => {
      const expected = cohort.reduce((sum, p) => sum + p.roles.length, 0);
      return async () => {
        const { rows } = await owner.query<{ active: number; open: number }>(
          `SELECT (SELECT count(*)::int FROM people WHERE tenant_id = ANY($1::uuid[]) AND person_id = ANY($2) AND status = 'active') AS active,
                  (SELECT count(*)::int FROM entitlements WHERE tenant_id = ANY($1::uuid[]) AND subject_id = ANY($2) AND ended_at IS NULL) AS open`,
          [tenantIds, cohortIds(cohort)],
        );
        // Done only when every birthright entitlement is open too (the joined step records after granting).
        return rows[0]!.open >= expected ? rows[0]!.active : Math.min(rows[0]!.active, cohort.length - 1);
      };
    };
    const leftCount = (cohort: Person[]) => async () => {
      const { rows } = await owner.query<{ left: number }>(
        `SELECT count(*)::int AS left FROM people WHERE tenant_id = ANY($1::uuid[]) AND person_id = ANY($2) AND status = 'left'`,
        [tenantIds, cohortIds(cohort)],
      );
      return rows[0]!.left;
    };

    async function realPhase(type: 'joiner' | 'leaver', cohort: Person[]): Promise<PhaseResult> {
      const cpu = countCpu();
      const start = Date.now();
      await importAll(type, cohort);
      progress(
        `  real: ${cohort.length} ${type} rows imported in ${((Date.now() - start) / 1000).toFixed(1)} s; waiting for every person to be ${type === 'joiner' ? 'active' : 'left'}`,
      );
      await waitUntil(`real ${type}s`, cohort.length, type === 'joiner' ? joinedCount(cohort) : leftCount(cohort), realWorker.running);
      const spent = cpu();
      const { latenciesMs, lastAt } = await stepTimes(type, cohort);
      return { seconds: (lastAt - start) / 1000, latenciesMs, cpu: spent };
    }

    /** What the use cases answer after the joiners: each person active with exactly their birthright roles. */
    async function checkJoined(cohort: Person[]): Promise<void> {
      await runConcurrently(cohort.length, 4, abort.signal, async (i) => {
        const p = cohort[i]!;
        const { person, entitlements } = await getPerson(apiPool, tenantIds[p.tenant]!, p.personId);
        const roles = entitlements
          .filter((e) => e.sourceType === 'birthright')
          .map((e) => e.role)
          .sort();
        if (person.status !== 'active' || roles.join() !== p.roles.join() || entitlements.length !== p.roles.length) {
          throw new Error(
            `after the joiners, ${p.personId} is ${person.status} with ${JSON.stringify(roles)}, expected active with ${JSON.stringify(p.roles)}`,
          );
        }
      });
    }

    /** What the use cases answer after the leavers: every person of each tenant listed as left. */
    async function checkLeft(cohort: Person[]): Promise<void> {
      for (const [t, list] of byTenant(cohort).entries()) {
        const ids = new Set(list.map((p) => p.personId));
        const left = (await listPeople(apiPool, tenantIds[t]!, { status: 'left', limit: 100_000 })).filter((v) => ids.has(v.personId));
        if (left.length !== list.length)
          throw new Error(`after the leavers, tenant ${t} lists ${left.length} of ${list.length} people as left`);
      }
    }

    async function residual(cohort: Person[]): Promise<{ open: number; memberships: number }> {
      const { rows } = await owner.query<{ open: number; memberships: number }>(
        `SELECT (SELECT count(*)::int FROM entitlements WHERE tenant_id = ANY($1::uuid[]) AND subject_id = ANY($2) AND ended_at IS NULL) AS open,
                (SELECT count(*)::int FROM directory_memberships WHERE tenant_id = ANY($1::uuid[]) AND user_id = ANY($2)) AS memberships`,
        [tenantIds, cohortIds(cohort)],
      );
      return rows[0]!;
    }

    // Each side has people of its own: a person's workflow id is its tenant and person id.
    const warm = peopleOf('warm', WARMUP_PER_TENANT * tenantCount, tenantCount);
    const cohort = peopleOf('p', n, tenantCount);
    const roleCount = cohort.reduce((sum, p) => sum + p.roles.length, 0);
    if ((await loadLifecyclePolicy(apiPool, tenantIds[0]!)).lifecycle.rules.length !== LIFECYCLE.rules.length)
      throw new Error('the lifecycle policy did not take');

    progress(`real: warm-up, ${warm.length} joiners and leavers`);
    await realPhase('joiner', warm);
    await realPhase('leaver', warm);
    progress(
      `real: ${n} joiners (${roleCount} birthright roles) over ${tenantCount} tenants, ${perTenantConcurrency} rows in flight per tenant import`,
    );
    const realJoin = await realPhase('joiner', cohort);
    progress(
      `real: joiners ${(n / realJoin.seconds).toFixed(1)}/s (${realJoin.seconds.toFixed(1)} s), row → active p50 ${percentile(realJoin.latenciesMs, 0.5)} ms p99 ${percentile(realJoin.latenciesMs, 0.99)} ms`,
    );
    await checkJoined(cohort);
    progress(`real: ${n} leavers`);
    const realLeave = await realPhase('leaver', cohort);
    progress(
      `real: leavers ${(n / realLeave.seconds).toFixed(1)}/s (${realLeave.seconds.toFixed(1)} s), row → left p50 ${percentile(realLeave.latenciesMs, 0.5)} ms p99 ${percentile(realLeave.latenciesMs, 0.99)} ms`,
    );
    await checkLeft(cohort);
    const workerRssMb = Math.round(process.memoryUsage().rss / 2 ** 20);
    const left = await residual([...warm, ...cohort]);
    const residualEntitlements = left.open + left.memberships;
    progress(`residual: ${left.open} open entitlements, ${left.memberships} directory memberships`);
    await realWorker.stop();

    // ------------------------------------------------------------ floor: same workflow, no-op activities
    const floorQueue = `bench-lifecycle-${suffix}-floor`;
    const done = new Map<string, number>();
    let waiter: { action: string; total: number; resolve: () => void } | undefined;
    let reached = 0;
    const floorWorker = await startWorker(
      floorQueue,
      noopActivities((tenantId, personId, action) => {
        if (action !== 'person.joined' && action !== 'person.left') return;
        done.set(`${action} ${tenantId}/${personId}`, Date.now());
        if (waiter && action === waiter.action && ++reached >= waiter.total) waiter.resolve();
      }),
    );
    const submittedAt = new Map<string, number>();

    /** What the import sends each person's workflow, sent as sendToWorkflow does, with the same concurrency per tenant. */
    async function floorPhase(type: 'joiner' | 'leaver', list: Person[]): Promise<PhaseResult> {
      const action = type === 'joiner' ? 'person.joined' : 'person.left';
      reached = 0;
      const finished = new Promise<void>((resolve) => (waiter = { action, total: list.length, resolve }));
      const effectiveAt = new Date().toISOString();
      const policyVersion = (await loadLifecyclePolicy(apiPool, tenantIds[0]!)).version;
      const cpu = countCpu();
      const start = Date.now();
      const submitting = client.withAbortSignal(abort.signal, () =>
        Promise.all(
          byTenant(list).map((mine, t) =>
            runConcurrently(mine.length, perTenantConcurrency, abort.signal, async (i) => {
              const p = mine[i]!;
              const tenant = tenants[t]!;
              const submitted: SubmittedHrEvent = {
                event: hrEvent('floor', type, p, effectiveAt),
                policyVersion,
                policy: LIFECYCLE,
                actor: tenant.ctx.actor,
                authority: tenant.ctx.authority,
              };
              const workflowId = personWorkflowId(tenant.tenantId, p.personId);
              submittedAt.set(`${action} ${tenant.tenantId}/${p.personId}`, Date.now());
              if (type === 'leaver') {
                await client.workflow.getHandle(workflowId).executeUpdate(submitHrEventUpdate, { args: [submitted] });
                return;
              }
              const input: PersonWorkflowInput = { tenantId: tenant.tenantId, personId: p.personId };
              const startOperation = new WithStartWorkflowOperation(PERSON_WORKFLOW_TYPE, {
                taskQueue: floorQueue,
                workflowId,
                workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
                args: [input],
                typedSearchAttributes: tenantSearchAttributes(tenant.tenantId),
              });
              await client.workflow.executeUpdateWithStart(submitHrEventUpdate, {
                args: [submitted],
                startWorkflowOperation: startOperation,
              });
              started.push(workflowId);
            }),
          ),
        ),
      );
      const workerStopped = floorWorker.running.then(() => Promise.reject(new Error('the floor worker stopped')));
      // An Update waits for a worker to take it: bounded, so a run that cannot go on ends.
      await abortable(withTimeout(Promise.race([submitting.then(() => finished), workerStopped]), PHASE_TIMEOUT_MS), abort.signal);
      const spent = cpu();
      const keys = list.map((p) => `${action} ${tenantIds[p.tenant]}/${p.personId}`);
      const lastAt = Math.max(...keys.map((k) => done.get(k)!));
      return { seconds: (lastAt - start) / 1000, latenciesMs: ascending(keys.map((k) => done.get(k)! - submittedAt.get(k)!)), cpu: spent };
    }

    const floorWarm = peopleOf('floor-warm', WARMUP_PER_TENANT * tenantCount, tenantCount);
    const floorCohort = peopleOf('floor-p', n, tenantCount);
    progress(`floor: warm-up, ${floorWarm.length} joiners and leavers`);
    await floorPhase('joiner', floorWarm);
    await floorPhase('leaver', floorWarm);
    progress(`floor: ${n} joiners`);
    const floorJoin = await floorPhase('joiner', floorCohort);
    progress(
      `floor: joiners ${(n / floorJoin.seconds).toFixed(1)}/s (${floorJoin.seconds.toFixed(1)} s), p99 ${percentile(floorJoin.latenciesMs, 0.99)} ms`,
    );
    progress(`floor: ${n} leavers`);
    const floorLeave = await floorPhase('leaver', floorCohort);
    progress(
      `floor: leavers ${(n / floorLeave.seconds).toFixed(1)}/s (${floorLeave.seconds.toFixed(1)} s), p99 ${percentile(floorLeave.latenciesMs, 0.99)} ms`,
    );
    await floorWorker.stop();

    const events = 2 * n;
    const eventsPerSec = events / (realJoin.seconds + realLeave.seconds);
    const floorEventsPerSec = events / (floorJoin.seconds + floorLeave.seconds);
    const realCpu = perEvent(realJoin.cpu, realLeave.cpu, events);
    const floorCpu = perEvent(floorJoin.cpu, floorLeave.cpu, events);
    const realCpuTotal = cpuTotal(realCpu);
    const floorCpuTotal = cpuTotal(floorCpu);
    const summary = {
      bench: 'lifecycle',
      people: n,
      tenants: tenantCount,
      concurrency,
      events,
      birthrightRoles: roleCount,
      eventsPerSec: Number(eventsPerSec.toFixed(1)),
      floorEventsPerSec: Number(floorEventsPerSec.toFixed(1)),
      ratio: Number((eventsPerSec / floorEventsPerSec).toFixed(3)),
      joinerSeconds: Number(realJoin.seconds.toFixed(1)),
      leaverSeconds: Number(realLeave.seconds.toFixed(1)),
      floorJoinerSeconds: Number(floorJoin.seconds.toFixed(1)),
      floorLeaverSeconds: Number(floorLeave.seconds.toFixed(1)),
      joinerP50Ms: percentile(realJoin.latenciesMs, 0.5),
      joinerP99Ms: percentile(realJoin.latenciesMs, 0.99),
      leaverP50Ms: percentile(realLeave.latenciesMs, 0.5),
      leaverP99Ms: percentile(realLeave.latenciesMs, 0.99),
      leaverMaxMs: realLeave.latenciesMs.at(-1),
      floorJoinerP99Ms: percentile(floorJoin.latenciesMs, 0.99),
      floorLeaverP50Ms: percentile(floorLeave.latenciesMs, 0.5),
      floorLeaverP99Ms: percentile(floorLeave.latenciesMs, 0.99),
      cpuMsPerEvent: realCpu,
      floorCpuMsPerEvent: floorCpu,
      ...(realCpuTotal && floorCpuTotal ? { cpuRatio: Number((floorCpuTotal / realCpuTotal).toFixed(3)) } : {}),
      residualEntitlements,
      workerRssMb,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    if (residualEntitlements !== 0) {
      progress(
        `WARNING: ${left.open} entitlements still open and ${left.memberships} directory memberships left after every leaver completed`,
      );
      process.exitCode = 1;
    }
  } catch (error) {
    if (abort.signal.aborted) {
      progress('interrupted; cleaning up');
      process.exitCode = 130;
    } else {
      throw error;
    }
  } finally {
    await run.finish();
  }
}
