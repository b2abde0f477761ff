import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import { pino } from 'pino';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { ChainVerifier } from '../../core/audit/chain.js';
import type { Principal, Role } from '../../core/tenancy/authz.js';
import { grantWorkflowId, type GrantView } from '../../core/grants/contract.js';
import { AppError } from '../../core/errors.js';
import type { RequestGrantBody } from '../../core/grants/schemas.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { chainHead, streamAuditEvents } from '../../db/audit.js';
import { migrate } from '../../db/migrate.js';
import { createPool, type Pool } from '../../db/pool.js';
import { ensureServiceLogin, withLogin } from '../../db/roles.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { startEmbeddedPostgres, type RunningPostgres } from '../../runtime/embedded-postgres.js';
import type { Logger } from '../../runtime/logger.js';
import { projectRoot } from '../../runtime/paths.js';
import { freePort } from '../../runtime/ports.js';
import { startTemporalDevServer } from '../../runtime/temporal-dev-server.js';
import { createCast } from '../../runtime/demo.js';
import { systemContext } from '../../core/audit/context.js';
import { authorizeDecision, decide, loadGrantPolicy, requestGrant, type Decision, type GrantDeps } from '../../usecases/grants.js';
import { putPolicy } from '../../usecases/tenancy/policies.js';
import { bundleWorkflows } from '../../worker/worker.js';

/**
 * Fault run for grants: a few hundred short grant lifecycles driven through the use cases while
 * the worker (a child process, as `tenure worker` runs in production) is SIGKILLed and restarted
 * every few seconds and the PostgreSQL it and the driver use is stopped and started again. Then,
 * with the system quiet, it checks the three promises the design makes under faults:
 *
 * - no grant outlives its expiry: sampled twice a second during the run, the target gives no
 *   access that a grant whose window is open (its end, or the moment an early revoke was sent, +
 *   EXPIRY_GRACE_MS) does not explain; at the end none is still open and no membership is left
 *   that no open entitlement explains. Expiry is what must be 0 (`grantsActivePastExpiry`); late
 *   early revokes (`accessPastRevoke`) and the workflows' own confirmation lag
 *   (`verifiedRevocationLate`, expiry lag percentiles) are reported beside it;
 * - no audit event lost or doubled: each grant's trail has each transition its final state implies
 *   exactly once (approval_recorded once per recorded approval, revocation_alert at most once per
 *   revocation step), nothing else, and as many events as the workflow counted (`view.version`);
 *   events out of lifecycle order are reported, not failed;
 * - every hash chain verifies from genesis to its stored head.
 */

const EXPIRY_GRACE_MS = 5_000;
const SERVICE_LOGIN = 'tenure_service';
const FINAL_STATUSES = ['ended', 'denied', 'approval_timed_out', 'cancelled'];
/** Roles the fault tenants make grantable: one needs a tenant approval, one is approved automatically. */
const APPROVED_ROLE = 'PrivilegedAdmin';
const AUTO_ROLE = 'HelpdeskAdmin';
const USERS_PER_TENANT = 12;

const progress = (message: string) => process.stderr.write(`[faults grants] ${message}\n`);
const random = (min: number, max: number) => min + Math.random() * (max - min);

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}

function range(name: string, value: string): [number, number] {
  const match = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(value);
  const [min, max] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!(min > 0 && max >= min)) throw new Error(`--${name} must look like 5-8 (seconds), got ${value}`);
  return [min * 1000, max * 1000];
}

/** Logs of the embedded services and of our own helpers go to stderr: stdout carries the summary only. */
function stderrLogger(level: string): Logger {
  return pino({ level, base: { component: 'faults' } }, pino.destination(2));
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

// ------------------------------------------------------------------------------------ timeline

type FaultKind = 'worker_killed' | 'worker_ready' | 'worker_exited' | 'postgres_down' | 'postgres_up';

/** What the run did to the system and when, to explain a late grant by the fault before it. */
class Timeline {
  readonly events: { at: number; kind: FaultKind; detail?: string }[] = [];
  add(kind: FaultKind, detail?: string) {
    this.events.push({ at: Date.now(), kind, ...(detail ? { detail } : {}) });
  }
  /** The faults in [from - lookbackMs, to], as `kind@+offset-from-from`. */
  around(from: number, to: number, lookbackMs = 12_000): string[] {
    return this.events
      .filter((e) => e.at >= from - lookbackMs && e.at <= to)
      .map((e) => `${e.kind}${e.detail ? `(${e.detail})` : ''}@${((e.at - from) / 1000).toFixed(1)}s`);
  }
}

// ------------------------------------------------------------------------------------ PostgreSQL

/** The embedded PostgreSQL this run owns, restartable on the same port and data folder. */
class OwnedPostgres {
  private running: RunningPostgres | undefined;
  restarts = 0;
  constructor(
    private readonly options: { dir: string; port: number; logger: Logger },
    private readonly timeline: Timeline,
  ) {}

  async start(): Promise<RunningPostgres> {
    this.running = await startEmbeddedPostgres({ ...this.options, database: 'tenure' });
    return this.running;
  }

  /** Fast shutdown (clients are cut off mid-transaction), a pause, then the same cluster again. */
  async restart(downMs: number): Promise<void> {
    this.timeline.add('postgres_down');
    await this.stop();
    await delay(downMs);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.start();
        break;
      } catch (error) {
        if (attempt >= 5) throw error;
        progress(`PostgreSQL did not come back (attempt ${attempt}): ${(error as Error).message}; retrying`);
        await delay(1000);
      }
    }
    this.restarts++;
    this.timeline.add('postgres_up');
  }

  async stop(): Promise<void> {
    const running = this.running;
    this.running = undefined;
    await running?.stop();
  }
}

// ------------------------------------------------------------------------------------ worker

/**
 * Runs `tenure worker` as a child process, the way production runs it, and kills it with SIGKILL
 * on demand: no graceful shutdown, in-flight workflow and activity tasks are simply lost.
 * An exit it did not cause (e.g. the worker could not reach PostgreSQL at start) is restarted.
 */
class WorkerSupervisor {
  private child: ChildProcess | undefined;
  private childExited: Promise<void> = Promise.resolve();
  /** Set while a start is under way, so concurrent callers never start a second worker. */
  private starting: Promise<void> | undefined;
  private readyIncarnation = 0;
  private stopping = false;
  incarnation = 0;
  kills = 0;
  unexpectedExits = 0;
  warnings = 0;
  readonly startupMs: number[] = [];

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly timeline: Timeline,
  ) {}

  get ready(): boolean {
    return this.child !== undefined && this.readyIncarnation === this.incarnation;
  }

  /** Starts a worker unless one runs (or is starting) already. */
  ensureRunning(): Promise<void> {
    if (this.stopping || this.child) return Promise.resolve();
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(): Promise<void> {
    // A fresh metrics port each time, so a restart never waits for the old one to be released.
    const metricsPort = await freePort();
    if (this.stopping) return;
    const incarnation = ++this.incarnation;
    const spawnedAt = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'worker'], {
      cwd: projectRoot(),
      env: { ...this.env, TEMPORAL_METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      let entry: { level?: string; msg?: string; err?: { message?: string } } = {};
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        progress(`[worker ${incarnation}] ${line.slice(0, 300)}`);
        return;
      }
      if (entry.msg === 'worker polling' && this.child === child) {
        this.readyIncarnation = incarnation;
        this.startupMs.push(Date.now() - spawnedAt);
        this.timeline.add('worker_ready', String(incarnation));
      }
      if (entry.level === 'warn' || entry.level === 'error' || entry.level === 'fatal') {
        this.warnings++;
        // Activity retries while PostgreSQL is down are expected and many; show a sample.
        if (this.warnings <= 20 || entry.level !== 'warn') {
          progress(
            `[worker ${incarnation} ${entry.level}] ${entry.msg ?? ''}${entry.err?.message ? `: ${entry.err.message}` : ''}`.slice(0, 400),
          );
        }
      }
    });
    readline
      .createInterface({ input: child.stderr })
      .on('line', (line) => progress(`[worker ${incarnation} stderr] ${line.slice(0, 300)}`));
    this.childExited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        resolve();
        if (this.child !== child) return; // we killed or stopped it
        // E.g. it could not reach PostgreSQL at start-up, as while PostgreSQL restarts.
        this.child = undefined;
        this.unexpectedExits++;
        this.timeline.add('worker_exited', `${incarnation}:${code ?? signal}`);
        progress(`worker ${incarnation} exited by itself (${code ?? signal}); restarting it`);
        setTimeout(() => void this.ensureRunning(), 1000);
      });
    });
  }

  /** Resolves true once the current incarnation polls; false when that does not happen in time. */
  async waitReady(timeoutMs: number, abort: () => boolean): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ready) {
      if (Date.now() > deadline || abort()) return false;
      await delay(100);
    }
    return true;
  }

  /** SIGKILL: no graceful shutdown, in-flight workflow and activity tasks are simply lost. */
  async kill(): Promise<void> {
    await this.starting;
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.kill('SIGKILL');
    await this.childExited;
    this.kills++;
    this.timeline.add('worker_killed', String(this.incarnation));
  }

  /** Graceful stop (SIGTERM, then SIGKILL after `graceMs`) at the end of the run. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    await this.starting;
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.childExited;
    clearTimeout(timer);
  }
}

// ------------------------------------------------------------------------------------ plan

type Ending = 'expire' | 'revoke' | 'cancel' | 'deny';

interface PlannedGrant {
  index: number;
  tenant: number;
  role: string;
  subjectId: string;
  launchAtMs: number;
  startDelaySec: number;
  durationSec: number;
  ending: Ending;
  /** For 'revoke': when, as a fraction of the duration after the start. */
  revokeFraction: number;
  idempotencyKey: string;
}

interface Tracked {
  plan: PlannedGrant;
  tenantId: string;
  grantId?: string;
  /** When the driver first sent the early revoke; the grant's deadline when earlier than its end. */
  revokeSentAt?: number;
  driverError?: string;
}

function makePlan(count: number, tenants: number, launchMs: number): PlannedGrant[] {
  return Array.from({ length: count }, (_, index) => {
    const role = Math.random() < 0.5 ? APPROVED_ROLE : AUTO_ROLE;
    const startDelaySec = Math.random() < 0.2 ? Math.round(random(2, 10)) : 0;
    const r = Math.random();
    let ending: Ending;
    if (role === APPROVED_ROLE) ending = r < 0.04 ? 'deny' : r < 0.08 ? 'cancel' : r < 0.28 ? 'revoke' : 'expire';
    else ending = startDelaySec > 0 && r < 0.25 ? 'cancel' : r < 0.45 ? 'revoke' : 'expire';
    return {
      index,
      tenant: index % tenants,
      role,
      subjectId: `user${String(Math.floor(Math.random() * USERS_PER_TENANT)).padStart(2, '0')}`,
      launchAtMs: Math.round((index / count) * launchMs),
      startDelaySec,
      durationSec: Math.round(random(5, 30)),
      ending,
      revokeFraction: random(0.2, 0.7),
      idempotencyKey: `faults-${randomUUID()}`,
    };
  });
}

// ------------------------------------------------------------------------------------ checks

interface GrantRow {
  tenant_id: string;
  grant_id: string;
  status: string;
  end_at: Date;
  activated_at: Date | null;
  revocation_verified_at: Date | null;
  view: GrantView;
}

interface EventRow {
  tenant_id: string;
  target_id: string;
  action: string;
  seq: string;
  occurred_at: Date;
  payload: { step?: string };
}

/** Lifecycle order of the grant audit actions; a grant's events must never go backwards in it. */
const ACTION_RANK: Record<string, number> = {
  'grant.requested': 0,
  'grant.approval_recorded': 1,
  'grant.approved': 2,
  'grant.denied': 3,
  'grant.approval_timed_out': 3,
  'grant.cancelled': 3,
  'grant.activation_refused': 3,
  'grant.activated': 3,
  'grant.expiring': 4,
  'grant.revoking': 4,
  'grant.relinquishing': 4,
  'grant.revocation_alert': 5,
  'grant.expired': 6,
  'grant.revoked': 6,
  'grant.relinquished': 6,
};
const ENDING_ACTIONS = {
  expired: ['grant.expiring', 'grant.expired'],
  revoked: ['grant.revoking', 'grant.revoked'],
  relinquished: ['grant.relinquishing', 'grant.relinquished'],
} as const;

/**
 * The audit actions a grant in this (final) state must have, each as [min, max] occurrences.
 * Exactly once per transition; two states are ambiguous from the view alone and get a range:
 * a cancellation racing the last approval (approved 0 or 1), and revocation alerts (at most one
 * per revocation step, remove and verify).
 */
function expectedActions(view: GrantView, observed: Map<string, number>): Map<string, [number, number]> {
  const expected = new Map<string, [number, number]>();
  const once = (action: string, n = 1) => expected.set(action, [n, n]);
  once('grant.requested');
  if (view.approvals.length > 0) once('grant.approval_recorded', view.approvals.length);
  const approved = () => once('grant.approved');
  const activeAndEnding = (reason: keyof typeof ENDING_ACTIONS | null) => {
    approved();
    once('grant.activated');
    const [starting, finished] = reason ? ENDING_ACTIONS[reason] : [undefined, undefined];
    if (starting) once(starting);
    else {
      // Still revoking: one of the three "ending" actions, whichever was recorded.
      const seen = Object.values(ENDING_ACTIONS)
        .map(([s]) => s)
        .filter((s) => observed.has(s));
      once(seen[0] ?? 'grant.expiring');
    }
    if (finished) once(finished);
    expected.set('grant.revocation_alert', [0, 2]);
  };
  switch (view.status) {
    case 'pending_approval':
      break;
    case 'denied':
      once('grant.denied');
      break;
    case 'approval_timed_out':
      once('grant.approval_timed_out');
      break;
    case 'cancelled':
      if (view.approvalsRequired === 0) approved();
      else if (view.approvals.length >= view.approvalsRequired) expected.set('grant.approved', [0, 1]);
      once('grant.cancelled');
      break;
    case 'scheduled':
      approved();
      break;
    case 'active':
      approved();
      once('grant.activated');
      break;
    case 'revoking':
      activeAndEnding(null);
      break;
    case 'ended':
      if (view.endReason === 'ineligible') {
        approved();
        once('grant.activation_refused');
      } else if (view.activatedAt === null) {
        // Approved (or started) only after its window had closed: never activated.
        approved();
        once('grant.window_passed');
      } else {
        activeAndEnding(view.endReason);
      }
      break;
  }
  return expected;
}

/**
 * One look at the target during the run: the memberships that gave access at that moment
 * (the database's own clock, the one the directory decides by).
 */
interface AccessSample {
  at: number;
  live: { tenant_id: string; user_id: string; role: string }[];
}

/** Samples effective access every `everyMs` until stopped; a sample that fails (PostgreSQL down) is a gap. */
function sampleAccess(owner: Pool, tenantIds: string[], everyMs: number) {
  const samples: AccessSample[] = [];
  let failed = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const { rows } = await owner.query<{ at: Date; tenant_id: string; user_id: string; role: string }>(
          `SELECT now() AS at, m.tenant_id, m.user_id, m.role FROM (SELECT now()) AS t
             LEFT JOIN directory_memberships m ON m.tenant_id = ANY($1) AND (m.expires_at IS NULL OR m.expires_at > now())`,
          [tenantIds],
        );
        samples.push({ at: rows[0]!.at.getTime(), live: rows.filter((r) => r.tenant_id !== null) });
      } catch {
        failed++;
      }
      await delay(everyMs);
    }
  })();
  return {
    samples,
    get failed() {
      return failed;
    },
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

interface CheckResult {
  grantsActivePastExpiry: number;
  /** Grants whose access the target still gave more than the grace after their end (sampled). */
  accessPastExpiry: number;
  /** Early revokes whose access the target still gave more than the grace after the request (sampled). */
  accessPastRevoke: number;
  maxAccessPastDeadlineMs: number | null;
  samples: number;
  /** Grants whose workflow confirmed removal more than the grace after their deadline. */
  verifiedRevocationLate: number;
  lateGrants: number;
  lateWindows: { workflowId: string; from: number; to: number }[];
  stillOpenPastDeadline: number;
  activatedAfterEnd: number;
  orphanMemberships: number;
  maxExpiryLagMs: number | null;
  expiryLagP50Ms: number | null;
  expiryLagP99Ms: number | null;
  maxRemovalLagMs: number | null;
  auditMissing: number;
  auditDoubled: number;
  auditUnexpected: number;
  auditOutOfOrder: number;
  auditCountMismatch: number;
  chains: number;
  chainsFailingVerification: number;
  eventsVerified: number;
  outcomes: Record<string, number>;
  unfinished: number;
}

async function checkInvariants(
  owner: Pool,
  tracked: Tracked[],
  tenantIds: string[],
  timeline: Timeline,
  samples: AccessSample[],
): Promise<CheckResult> {
  const checkedAt = Date.now();
  const byGrant = new Map(tracked.filter((t) => t.grantId).map((t) => [t.grantId!, t]));
  const { rows: grants } = await owner.query<GrantRow>(
    `SELECT tenant_id, grant_id, status, end_at, activated_at, revocation_verified_at, view FROM grants WHERE tenant_id = ANY($1)`,
    [tenantIds],
  );
  const { rows: events } = await owner.query<EventRow>(
    `SELECT tenant_id, target_id, action, seq, occurred_at, payload FROM audit_events
      WHERE tenant_id = ANY($1) AND target_type = 'grant' ORDER BY tenant_id, seq`,
    [tenantIds],
  );
  const eventsOf = new Map<string, EventRow[]>();
  for (const e of events) eventsOf.set(e.target_id, [...(eventsOf.get(e.target_id) ?? []), e]);
  const { rows: entitlements } = await owner.query<{ source_id: string; granted_at: Date; ended_at: Date | null; expires_at: Date | null }>(
    `SELECT source_id, granted_at, ended_at, expires_at FROM entitlements WHERE tenant_id = ANY($1) AND source_type = 'grant'`,
    [tenantIds],
  );
  const entitlementOf = new Map(entitlements.map((e) => [e.source_id, e]));
  // A membership no open entitlement explains is access nobody is accountable for.
  const { rows: orphans } = await owner.query<{ tenant_id: string; user_id: string; role: string }>(
    `SELECT m.tenant_id, m.user_id, m.role FROM directory_memberships m
      WHERE m.tenant_id = ANY($1) AND NOT EXISTS (
        SELECT 1 FROM entitlements e WHERE e.tenant_id = m.tenant_id AND e.subject_id = m.user_id AND e.role = m.role AND e.ended_at IS NULL)`,
    [tenantIds],
  );

  // ---- 1. no grant outlives its expiry
  const lags: number[] = [];
  const removalLags: number[] = [];
  const late = new Map<string, { workflowId: string; from: number; to: number }>();
  let stillOpenPastDeadline = 0;
  // Access given although the grant's window had already closed (its start was delayed past its end).
  let activatedAfterEnd = 0;
  const examples: string[] = [];
  for (const g of grants) {
    const events = eventsOf.get(g.grant_id) ?? [];
    const entitlement = entitlementOf.get(g.grant_id);
    const activated = g.activated_at !== null || entitlement !== undefined;
    if (!activated) continue;
    if (g.activated_at && g.activated_at.getTime() > g.end_at.getTime()) activatedAfterEnd++;
    const revokeSentAt = byGrant.get(g.grant_id)?.revokeSentAt;
    const revoking = events.find((e) => e.action === 'grant.revoking' || e.action === 'grant.relinquishing');
    const requestedEnd = revokeSentAt ?? revoking?.occurred_at.getTime();
    const deadline = Math.min(g.end_at.getTime(), requestedEnd ?? Infinity);
    const verifiedAt = g.revocation_verified_at?.getTime();
    const open = entitlement !== undefined && entitlement.ended_at === null;
    let lag: number;
    if (verifiedAt !== undefined && !open) {
      lag = Math.max(0, verifiedAt - deadline);
      lags.push(lag);
      if (entitlement?.ended_at) removalLags.push(Math.max(0, entitlement.ended_at.getTime() - deadline));
    } else {
      lag = checkedAt - deadline;
      if (lag > EXPIRY_GRACE_MS) stillOpenPastDeadline++;
    }
    if (lag > EXPIRY_GRACE_MS) {
      late.set(g.grant_id, { workflowId: g.view.workflowId, from: deadline, to: deadline + lag });
      if (examples.length < 12) {
        const trail = events
          .map((e) => `${e.action.replace('grant.', '')}@${((e.occurred_at.getTime() - deadline) / 1000).toFixed(1)}s`)
          .join(' ');
        examples.push(
          `grant ${g.grant_id} ${g.status} lag ${lag} ms (deadline = ${verifiedAt === undefined ? 'unverified' : 'verified'}, ` +
            `${revokeSentAt && revokeSentAt < g.end_at.getTime() ? 'early revoke sent' : 'end_at'}); events rel. to deadline: ${trail}; ` +
            `faults: ${timeline.around(deadline, deadline + lag).join(' ') || 'none'}`,
        );
      }
    }
  }
  if (examples.length) progress(`grants verified revoked late or still open (first ${examples.length}):\n  ${examples.join('\n  ')}`);

  // ---- 1b. what the target actually gave: a sampled live membership must be explained by a grant
  // of that subject and role whose access had started and whose deadline (+ grace) had not passed.
  const grantsOfTriple = new Map<string, { grantId: string; from: number; deadline: number; revoked: boolean; targetEnd: number }[]>();
  for (const g of grants) {
    const entitlement = entitlementOf.get(g.grant_id);
    if (!entitlement) continue;
    const revokeSentAt = byGrant.get(g.grant_id)?.revokeSentAt;
    const revoking = (eventsOf.get(g.grant_id) ?? []).find((e) => e.action === 'grant.revoking' || e.action === 'grant.relinquishing');
    const requestedEnd = revokeSentAt ?? revoking?.occurred_at.getTime() ?? Infinity;
    const key = `${g.tenant_id}/${g.view.subjectId}/${g.view.role}`;
    grantsOfTriple.set(key, [
      ...(grantsOfTriple.get(key) ?? []),
      {
        grantId: g.grant_id,
        from: entitlement.granted_at.getTime(),
        deadline: Math.min(g.end_at.getTime(), requestedEnd),
        revoked: requestedEnd < g.end_at.getTime(),
        // Until when this grant could keep the membership live: the end the target was told.
        targetEnd: entitlement.expires_at?.getTime() ?? Infinity,
      },
    ]);
  }
  const accessLate = new Map<string, { lag: number; revoked: boolean }>();
  let unexplainedSamples = 0;
  for (const sample of samples) {
    for (const m of sample.live) {
      const candidates = grantsOfTriple.get(`${m.tenant_id}/${m.user_id}/${m.role}`) ?? [];
      if (candidates.some((c) => c.from <= sample.at && sample.at <= c.deadline + EXPIRY_GRACE_MS)) continue;
      // Blame a grant past its deadline that could still hold the membership (the target's end
      // for it not yet reached), the one that ended most recently.
      const blamed = candidates.filter((c) => c.deadline < sample.at && c.targetEnd > sample.at).sort((a, b) => b.deadline - a.deadline)[0];
      if (!blamed) {
        unexplainedSamples++;
        continue;
      }
      const lag = sample.at - blamed.deadline;
      if (lag > (accessLate.get(blamed.grantId)?.lag ?? 0)) accessLate.set(blamed.grantId, { lag, revoked: blamed.revoked });
    }
  }
  const accessPastExpiry = [...accessLate.values()].filter((l) => !l.revoked).length;
  const accessPastRevoke = accessLate.size - accessPastExpiry;
  if (accessLate.size) {
    progress(
      `access the target still gave past the deadline + grace: ${[...accessLate]
        .slice(0, 12)
        .map(([id, l]) => `${id} ${l.revoked ? 'revoke' : 'expiry'} +${l.lag} ms`)
        .join(', ')}`,
    );
  }
  if (unexplainedSamples) progress(`${unexplainedSamples} sampled memberships no grant of the run explains`);
  if (orphans.length) progress(`memberships no open entitlement explains: ${orphans.map((o) => `${o.user_id}/${o.role}`).join(', ')}`);
  lags.sort((a, b) => a - b);
  removalLags.sort((a, b) => a - b);

  // ---- 2. no audit event lost or doubled
  let auditMissing = 0;
  let auditDoubled = 0;
  let auditUnexpected = 0;
  let auditOutOfOrder = 0;
  let auditCountMismatch = 0;
  const auditExamples: string[] = [];
  const outcomes: Record<string, number> = {};
  let unfinished = 0;
  for (const g of grants) {
    const view = g.view;
    const outcome = view.status === 'ended' ? `ended_${view.endReason}` : view.status;
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    if (!FINAL_STATUSES.includes(view.status)) unfinished++;
    const trail = eventsOf.get(g.grant_id) ?? [];
    const observed = new Map<string, number>();
    for (const e of trail) observed.set(e.action, (observed.get(e.action) ?? 0) + 1);
    const expected = expectedActions(view, observed);
    const problems: string[] = [];
    for (const [action, [min, max]] of expected) {
      const n = observed.get(action) ?? 0;
      if (n < min) {
        auditMissing += min - n;
        problems.push(`missing ${min - n}× ${action}`);
      }
      if (n > max) {
        auditDoubled += n - max;
        problems.push(`${n}× ${action}`);
      }
    }
    for (const [action, n] of observed) {
      if (!expected.has(action)) {
        auditUnexpected += n;
        problems.push(`unexpected ${action}`);
      }
    }
    // At most one alert per revocation step (remove, verify).
    const alertSteps = trail.filter((e) => e.action === 'grant.revocation_alert').map((e) => e.payload.step ?? '?');
    const repeatedAlerts = alertSteps.length - new Set(alertSteps).size;
    if (repeatedAlerts > 0) {
      auditDoubled += repeatedAlerts;
      problems.push(`${repeatedAlerts} repeated revocation_alert`);
    }
    const ranks = trail.map((e) => ACTION_RANK[e.action] ?? -1);
    if (ranks.some((rank, i) => i > 0 && rank < ranks[i - 1]!)) {
      auditOutOfOrder++;
      problems.push('out of order');
    }
    // The workflow bumps `version` once per event it records: the counts must agree.
    if (trail.length !== view.version) {
      auditCountMismatch++;
      problems.push(`${trail.length} events for version ${view.version}`);
    }
    if (problems.length && auditExamples.length < 12) {
      auditExamples.push(
        `grant ${g.grant_id} ${outcome}: ${problems.join(', ')} [${trail.map((e) => e.action.replace('grant.', '')).join(' ')}]`,
      );
    }
  }
  if (auditExamples.length) progress(`audit trail problems (first ${auditExamples.length}):\n  ${auditExamples.join('\n  ')}`);

  // ---- 3. every chain verifies against its stored head
  const { rows: heads } = await owner.query<{ tenant_id: string }>('SELECT tenant_id FROM audit_chain_heads ORDER BY tenant_id');
  let chainsFailingVerification = 0;
  let eventsVerified = 0;
  for (const { tenant_id: chain } of heads) {
    const result = await inScope(owner, tenantScope(chain), async (client) => {
      const verifier = new ChainVerifier();
      for await (const event of streamAuditEvents(client, chain)) verifier.push(event);
      return verifier.finish(await chainHead(client, chain));
    });
    eventsVerified += result.checked;
    if (!result.intact) {
      chainsFailingVerification++;
      progress(`chain ${chain} does not verify: ${result.reason} at seq ${result.firstBadSeq}`);
    }
  }

  return {
    // Access past expiry as the target gave it (sampled), plus access never removed at all.
    grantsActivePastExpiry: accessPastExpiry + stillOpenPastDeadline + orphans.length + unexplainedSamples,
    accessPastExpiry,
    accessPastRevoke,
    maxAccessPastDeadlineMs: accessLate.size ? Math.max(...[...accessLate.values()].map((l) => l.lag)) : null,
    samples: samples.length,
    verifiedRevocationLate: late.size,
    lateGrants: late.size,
    lateWindows: [...late.values()],
    stillOpenPastDeadline,
    activatedAfterEnd,
    orphanMemberships: orphans.length,
    maxExpiryLagMs: lags.at(-1) ?? null,
    expiryLagP50Ms: percentile(lags, 50),
    expiryLagP99Ms: percentile(lags, 99),
    maxRemovalLagMs: removalLags.at(-1) ?? null,
    auditMissing,
    auditDoubled,
    auditUnexpected,
    auditOutOfOrder,
    auditCountMismatch,
    chains: heads.length,
    chainsFailingVerification,
    eventsVerified,
    outcomes,
    unfinished,
  };
}

// ------------------------------------------------------------------------------------ diagnosis

// temporal.api.enums.v1 values (stable wire numbers; the proto package is not a direct dependency).
const EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT = 8;
const EVENT_TYPE_ACTIVITY_TASK_STARTED = 11;
const TIMEOUT_TYPE_SCHEDULE_TO_START = 2;
const EVENT_NAMES: Record<number, string> = {
  5: 'wft_scheduled',
  6: 'wft_started',
  7: 'wft_completed',
  8: 'wft_timed_out',
  9: 'wft_failed',
  10: 'activity_scheduled',
  11: 'activity_started',
  12: 'activity_completed',
  13: 'activity_failed',
  14: 'activity_timed_out',
  17: 'timer_started',
  18: 'timer_fired',
  41: 'update_accepted',
  43: 'update_completed',
  47: 'update_admitted',
};

/** What held a late grant up, read from its Temporal history between its deadline and its verification. */
export interface LateCauses {
  /** A workflow task sat on the killed worker's sticky queue until its schedule-to-start timeout. */
  stickyQueueTimeout: number;
  /** A workflow task was taken by a worker that then died; it timed out start-to-close. */
  workflowTaskTimeout: number;
  /** An activity attempt died with its worker and was retried only after its start-to-close timeout. */
  activityStartToCloseTimeout: number;
  /** An activity attempt failed (PostgreSQL down) and waited out its retry backoff. */
  activityFailed: number;
  /** None of the above in the window: waiting for a worker to be up at all. */
  other: number;
}

/** Counts, per cause, the late grants whose history shows it; a grant may have several. */
async function diagnoseLateGrants(
  temporal: Client,
  late: { workflowId: string; from: number; to: number }[],
  traced = 3,
): Promise<LateCauses> {
  const causes: LateCauses = { stickyQueueTimeout: 0, workflowTaskTimeout: 0, activityStartToCloseTimeout: 0, activityFailed: 0, other: 0 };
  // The latest few get their history printed, relative to the deadline, as evidence.
  const worst = new Set([...late].sort((a, b) => b.to - b.from - (a.to - a.from)).slice(0, traced));
  let next = 0;
  const work = async () => {
    while (next < late.length) {
      const window = late[next++]!;
      const { workflowId, from, to } = window;
      const history = await temporal.workflow.getHandle(workflowId).fetchHistory();
      const found = new Set<keyof LateCauses>();
      const trace: string[] = [];
      const activityTypes = new Map<string, string>();
      for (const event of history.events ?? []) {
        const at = event.eventTime ? tsToMs(event.eventTime) : NaN;
        const type = Number(event.eventType);
        if (event.activityTaskScheduledEventAttributes?.activityType?.name)
          activityTypes.set(String(event.eventId), event.activityTaskScheduledEventAttributes.activityType.name);
        if (worst.has(window) && at > from - 2000 && at <= to + 1000 && EVENT_NAMES[type]) {
          const detail =
            type === EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
              ? Number(event.workflowTaskTimedOutEventAttributes?.timeoutType) === TIMEOUT_TYPE_SCHEDULE_TO_START
                ? '(schedule-to-start)'
                : '(start-to-close)'
              : type === 10
                ? `(${event.activityTaskScheduledEventAttributes?.activityType?.name ?? '?'})`
                : type === EVENT_TYPE_ACTIVITY_TASK_STARTED
                  ? `(${activityTypes.get(String(event.activityTaskStartedEventAttributes?.scheduledEventId)) ?? '?'} attempt ${event.activityTaskStartedEventAttributes?.attempt ?? 1})`
                  : '';
          trace.push(`${((at - from) / 1000).toFixed(1)}s ${EVENT_NAMES[type]}${detail}`);
        }
        if (!(at > from && at <= to + 1000)) continue;
        if (type === EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT) {
          const timeout = Number(event.workflowTaskTimedOutEventAttributes?.timeoutType);
          found.add(timeout === TIMEOUT_TYPE_SCHEDULE_TO_START ? 'stickyQueueTimeout' : 'workflowTaskTimeout');
        }
        // Retries are not separate history events: the started event carries the attempt and the last failure.
        const started = event.activityTaskStartedEventAttributes;
        if (type === EVENT_TYPE_ACTIVITY_TASK_STARTED && (started?.attempt ?? 1) > 1) {
          found.add(started?.lastFailure?.timeoutFailureInfo ? 'activityStartToCloseTimeout' : 'activityFailed');
        }
      }
      if (found.size === 0) found.add('other');
      for (const cause of found) causes[cause]++;
      if (trace.length) progress(`history of ${workflowId} (late ${to - from} ms), relative to its deadline:\n  ${trace.join(', ')}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, work));
  return causes;
}

// ------------------------------------------------------------------------------------ run

export async function runGrantsFaults(argv: string[]): Promise<boolean> {
  const { values } = parseArgs({
    args: argv,
    options: {
      grants: { type: 'string', default: '300' },
      'launch-seconds': { type: 'string', default: '60' },
      timeout: { type: 'string', default: '300' },
      'kill-every': { type: 'string', default: '5-8' },
      'postgres-restarts': { type: 'string', default: '2' },
    },
    strict: true,
  });
  const grantCount = positiveInt('grants', values.grants);
  const launchMs = positiveInt('launch-seconds', values['launch-seconds']) * 1000;
  const timeoutMs = positiveInt('timeout', values.timeout) * 1000;
  const [killMinMs, killMaxMs] = range('kill-every', values['kill-every']);
  const postgresRestarts = Number(values['postgres-restarts']);
  if (!Number.isSafeInteger(postgresRestarts) || postgresRestarts < 0) throw new Error('--postgres-restarts must be 0 or more');

  const runStart = Date.now();
  // Expiry lag depends on CPU as much as on faults: record how busy the machine was.
  const loadAtStart = os.loadavg()[0]!;
  const runDeadline = runStart + timeoutMs;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    progress('interrupted: stopping and cleaning up');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const logger = stderrLogger(process.env.LOG_LEVEL ?? 'warn');
  const timeline = new Timeline();
  const cleanup: { name: string; step: () => Promise<unknown> }[] = [];
  try {
    // ---- infrastructure this run owns
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-faults-'));
    cleanup.push({ name: 'temp dir', step: () => rm(dir, { recursive: true, force: true }) });
    // As root, PostgreSQL runs as the `postgres` user, which must be able to enter this folder.
    await chmod(dir, 0o755);
    const postgres = new OwnedPostgres({ dir: path.join(dir, 'postgres'), port: await freePort(), logger }, timeline);
    cleanup.push({ name: 'PostgreSQL', step: () => postgres.stop() });
    progress('starting embedded PostgreSQL');
    const pgInfo = await postgres.start();
    await migrate(pgInfo.url);
    await ensureServiceLogin(pgInfo.url, SERVICE_LOGIN, pgInfo.servicePassword);
    const appUrl = withLogin(pgInfo.url, SERVICE_LOGIN, pgInfo.servicePassword);
    const pool = createPool({ connectionString: appUrl, max: 10, applicationName: 'tenure-faults' });
    cleanup.push({ name: 'service pool', step: () => pool.end() });
    // Checks read across tenants and the ledger as the owner, outside row-level security.
    const owner = createPool({ connectionString: pgInfo.url, max: 2, applicationName: 'tenure-faults-check' });
    cleanup.push({ name: 'owner pool', step: () => owner.end() });

    let temporalAddress = process.env.TEMPORAL_ADDRESS;
    const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
    if (!temporalAddress) {
      progress('starting Temporal dev server (in memory)');
      const devServer = await startTemporalDevServer({ namespace, port: 0, logger, cliPath: process.env.TEMPORAL_CLI_PATH });
      cleanup.push({ name: 'Temporal dev server', step: () => devServer.stop() });
      temporalAddress = devServer.address;
    }
    const connection = await Connection.connect({ address: temporalAddress, connectTimeout: '10 seconds' });
    cleanup.push({ name: 'Temporal client', step: () => connection.close() });
    const temporal = new Client({ connection, namespace });
    const taskQueue = `faults-grants-${randomBytes(4).toString('hex')}`;
    const deps: GrantDeps = { pool, temporal, taskQueue, directory: createPostgresDirectory(pool) };

    // Bundled once: each worker restart then starts in about a second instead of re-bundling.
    progress('bundling workflows');
    const bundlePath = path.join(dir, 'workflow-bundle.js');
    await writeFile(bundlePath, await bundleWorkflows());

    // ---- tenants, actors, policy and directory, through the same use cases the API calls
    progress('seeding tenants, actors, grant policy and directory');
    const suffix = randomBytes(3).toString('hex');
    const ctx = systemContext('fault run seed');
    const slugs = [`faults-a-${suffix}`, `faults-b-${suffix}`];
    const cast = await createCast(pool, ctx, {
      tenants: slugs.map((slug) => ({ slug, name: `Fault tenant ${slug}` })),
      actors: [
        { key: 'operator', displayName: 'Fault-run operator', kind: 'msp_staff', roles: [{ role: 'operator', tenant: null }] },
        ...slugs.map((slug) => ({
          key: `approver-${slug}`,
          displayName: `Approver of ${slug}`,
          kind: 'tenant_staff' as const,
          homeTenant: slug,
          roles: [{ role: 'tenant_approver' as const, tenant: slug }],
        })),
      ],
    });
    const tenantIds = slugs.map((slug) => cast.tenants[slug]!.id);
    const operator = cast.actors.operator!;
    const directory = createPostgresDirectory(pool);
    const policies: Awaited<ReturnType<typeof loadGrantPolicy>>[] = [];
    for (const tenantId of tenantIds) {
      await putPolicy(
        { pool, directory },
        ctx,
        tenantId,
        1,
        TenantPolicyDocument.parse({
          grants: {
            roles: {
              [APPROVED_ROLE]: { maxDurationMinutes: 5, approvalsRequired: 1, requestableBy: ['operator'] },
              [AUTO_ROLE]: { maxDurationMinutes: 5, approvalsRequired: 0, requestableBy: ['operator'] },
            },
            approvalTimeoutMinutes: 10,
            ticketPattern: 'FLT-\\d+',
          },
        }),
      );
      await directory.upsertRole(tenantId, { name: APPROVED_ROLE, privileged: true });
      await directory.upsertRole(tenantId, { name: AUTO_ROLE, privileged: true });
      for (let u = 0; u < USERS_PER_TENANT; u++) {
        const id = `user${String(u).padStart(2, '0')}`;
        await directory.upsertUser(tenantId, { id, username: id, displayName: `Fault user ${id}` });
      }
      policies.push(await loadGrantPolicy(pool, tenantId));
    }
    // Each actor as the API would authenticate them: the actor and their role bindings.
    const principalOf = async (actor: { id: string; kind: Principal['kind']; displayName: string }): Promise<Principal> => {
      const { rows } = await owner.query<{ id: string; role: Role; tenant_id: string | null }>(
        'SELECT id, role, tenant_id FROM role_bindings WHERE actor_id = $1',
        [actor.id],
      );
      return {
        actorId: actor.id,
        kind: actor.kind,
        displayName: actor.displayName,
        via: 'api_token',
        bindings: rows.map((b) => ({ id: b.id, role: b.role, tenantId: b.tenant_id })),
      };
    };
    const principal = await principalOf(operator);
    const approvers = await Promise.all(slugs.map((slug) => principalOf(cast.actors[`approver-${slug}`]!)));

    // ---- the worker, as its own process
    const supervisor = new WorkerSupervisor(
      {
        ...process.env,
        DATABASE_URL: pgInfo.url,
        DATABASE_APP_URL: appUrl,
        TEMPORAL_ADDRESS: temporalAddress,
        TEMPORAL_NAMESPACE: namespace,
        TEMPORAL_TASK_QUEUE: taskQueue,
        WORKFLOW_BUNDLE_PATH: bundlePath,
        WORKER_SHUTDOWN_GRACE_SECONDS: '2',
        // 'info' so the supervisor sees "worker polling"; only warnings and errors are shown.
        LOG_LEVEL: 'info',
      },
      timeline,
    );
    cleanup.push({ name: 'worker', step: () => supervisor.stop() });
    progress('starting the worker');
    await supervisor.ensureRunning();
    if (!(await supervisor.waitReady(120_000, () => interrupted))) throw new Error('the worker did not start polling within 2 minutes');
    progress(`worker polling after ${supervisor.startupMs[0]} ms`);

    // ---- drive grants while injecting faults
    const plan = makePlan(grantCount, tenantIds.length, launchMs);
    const lastPlannedEnd = Math.max(...plan.map((p) => p.launchAtMs + (p.startDelaySec + p.durationSec) * 1000));
    const driveStart = Date.now();
    // Faults go on until every planned grant should have ended (plus the grace), within the
    // budget; what is left of the budget drains the lifecycles on a healthy system.
    const faultsEnd = Math.min(driveStart + lastPlannedEnd + EXPIRY_GRACE_MS, runDeadline - 90_000);
    const driverDeadline = runDeadline - 60_000;
    progress(
      `driving ${grantCount} grants over ${launchMs / 1000} s (${plan.filter((p) => p.role === APPROVED_ROLE).length} needing approval; ` +
        `endings: ${(['expire', 'revoke', 'cancel', 'deny'] as const).map((e) => `${e} ${plan.filter((p) => p.ending === e).length}`).join(', ')}); ` +
        `faults for ${Math.round((faultsEnd - driveStart) / 1000)} s`,
    );
    const tracked: Tracked[] = plan.map((p) => ({ plan: p, tenantId: tenantIds[p.tenant]! }));
    let driverRetries = 0;
    const stopDriving = () => interrupted || Date.now() > driverDeadline;

    /** Retries through worker and database outages; a 4xx is the system's answer and is returned as is. */
    async function retrying<T>(fn: () => Promise<T>): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        try {
          return await fn();
        } catch (error) {
          if (error instanceof AppError && error.status < 500) throw error;
          if (stopDriving()) throw error;
          driverRetries++;
          await delay(Math.min(2000, 250 * attempt));
        }
      }
    }

    const sleepUntil = async (at: number) => {
      while (Date.now() < at && !stopDriving()) await delay(Math.min(500, at - Date.now()));
    };

    /** A decision as the API route makes it: authorised first, with that authority passed to the audit event. */
    async function sendDecision(t: Tracked, view: GrantView, decision: Decision, actor: Principal) {
      try {
        const bindings = authorizeDecision(actor, t.tenantId, decision, view, policies[t.plan.tenant]!.grants);
        const authority = {
          roles: [...new Set(bindings.map((b) => b.role))].sort(),
          bindingIds: bindings.map((b) => b.id).sort(),
          requestId: `faults-${t.plan.index}-${decision}`,
        };
        await retrying(() =>
          decide(deps, t.tenantId, view, decision, { actorId: actor.actorId, comment: `fault run ${decision}`, authority }),
        );
      } catch (error) {
        // A 409 after a retry usually means an earlier attempt went through (the update was
        // applied, its answer lost); anything else is worth seeing.
        if (!(error instanceof AppError && error.status === 409)) t.driverError = `${decision}: ${(error as Error).message}`;
      }
    }

    async function lifecycle(t: Tracked) {
      const p = t.plan;
      await sleepUntil(driveStart + p.launchAtMs);
      if (stopDriving()) return;
      const now = Date.now();
      const startAt = now + p.startDelaySec * 1000;
      const body: RequestGrantBody = {
        subjectId: p.subjectId,
        role: p.role,
        ...(p.startDelaySec ? { startAt: new Date(startAt).toISOString() } : {}),
        endAt: new Date(startAt + p.durationSec * 1000).toISOString(),
        justification: 'fault-injection run',
        ticket: `FLT-${p.index}`,
      };
      let view: GrantView;
      try {
        ({ view } = await retrying(() =>
          requestGrant(deps, principal, t.tenantId, policies[p.tenant]!, body, {
            idempotencyKey: p.idempotencyKey,
            requestId: `faults-${p.index}`,
          }),
        ));
      } catch (error) {
        t.driverError = `request: ${(error as Error).message}`;
        return;
      }
      t.grantId = view.grantId;
      const approver = approvers[p.tenant]!;
      if (p.role === APPROVED_ROLE) {
        await delay(random(300, 1500));
        if (p.ending === 'deny') return sendDecision(t, view, 'deny', approver);
        if (p.ending === 'cancel') return sendDecision(t, view, 'revoke', principal);
        await sendDecision(t, view, 'approve', approver);
      } else if (p.ending === 'cancel') {
        await sleepUntil(now + (p.startDelaySec * 1000) / 2);
        return sendDecision(t, view, 'revoke', principal);
      }
      if (p.ending === 'revoke') {
        await sleepUntil(startAt + p.revokeFraction * p.durationSec * 1000);
        t.revokeSentAt = Date.now();
        await sendDecision(t, view, 'revoke', principal);
      }
    }

    const faultsOver = () => interrupted || Date.now() > faultsEnd;
    async function killWorkerRepeatedly() {
      while (!faultsOver()) {
        await supervisor.waitReady(60_000, faultsOver);
        const at = Date.now() + random(killMinMs, killMaxMs);
        while (Date.now() < at && !faultsOver()) await delay(100);
        if (faultsOver()) break;
        await supervisor.kill();
        await supervisor.ensureRunning();
      }
    }
    async function restartPostgresTwice() {
      for (let i = 1; i <= postgresRestarts; i++) {
        const at = driveStart + ((faultsEnd - driveStart) * i) / (postgresRestarts + 1);
        while (Date.now() < at && !faultsOver()) await delay(200);
        if (faultsOver()) break;
        progress(`restarting PostgreSQL (${i}/${postgresRestarts})`);
        await postgres.restart(random(1000, 3000));
        progress(`PostgreSQL is back (${i}/${postgresRestarts})`);
      }
    }
    const statusCounts = async () => {
      const { rows } = await owner.query<{ status: string; n: number }>(
        'SELECT status, count(*)::int AS n FROM grants WHERE tenant_id = ANY($1) GROUP BY status ORDER BY status',
        [tenantIds],
      );
      return rows;
    };
    const report = async () => {
      const counts = await statusCounts().then(
        (rows) => rows.map((r) => `${r.status} ${r.n}`).join(', '),
        () => '(database unavailable)',
      );
      progress(
        `+${Math.round((Date.now() - driveStart) / 1000)} s: ${counts}; worker kills ${supervisor.kills}, PostgreSQL restarts ${postgres.restarts}`,
      );
    };
    const reporter = setInterval(() => void report(), 5000);
    cleanup.push({ name: 'progress reports', step: () => Promise.resolve(clearInterval(reporter)) });

    // What the target gives, twice a second, from the first request until the checks.
    const sampler = sampleAccess(owner, tenantIds, 500);
    cleanup.push({ name: 'access sampler', step: () => sampler.stop() });
    const driving = Promise.all(tracked.map(lifecycle));
    await Promise.all([killWorkerRepeatedly(), restartPostgresTwice()]);
    progress(`faults stopped after ${supervisor.kills} worker kills and ${postgres.restarts} PostgreSQL restarts; draining`);
    await driving;
    if (!(await supervisor.waitReady(60_000, () => interrupted))) progress('warning: the worker is not polling while draining');

    // ---- drain: every lifecycle finishes on a healthy system
    const drainDeadline = runDeadline - 15_000;
    const started = tracked.filter((t) => t.grantId);
    for (;;) {
      const notFinal = await owner
        .query<{ n: number }>('SELECT count(*)::int AS n FROM grants WHERE tenant_id = ANY($1) AND status <> ALL($2)', [
          tenantIds,
          FINAL_STATUSES,
        ])
        .then(
          (r) => r.rows[0]!.n,
          () => Number.NaN,
        );
      if (notFinal === 0 || interrupted || Date.now() > drainDeadline) {
        if (notFinal !== 0) progress(`${notFinal} grants still not final at the drain deadline`);
        break;
      }
      await delay(1000);
    }
    // Final rows are written just before each workflow returns (it still waits for its webhook
    // deliveries); wait for the workflows themselves to close. Short describe calls rather than
    // long-polling result(), so nothing is left polling when the connection closes.
    let open = started;
    const closedAs = new Map<string, string>();
    for (;;) {
      const statuses = await Promise.all(
        open.map((t) =>
          temporal.workflow
            .getHandle(grantWorkflowId(t.tenantId, t.grantId!))
            .describe()
            .then(
              (d) => d.status.name,
              () => 'UNKNOWN',
            ),
        ),
      );
      statuses.forEach((status, i) => {
        if (status !== 'RUNNING' && status !== 'UNKNOWN') closedAs.set(open[i]!.grantId!, status);
      });
      open = open.filter((t) => !closedAs.has(t.grantId!));
      if (open.length === 0 || interrupted || Date.now() > drainDeadline) break;
      await delay(1000);
    }
    const workflowsNotCompleted = [...closedAs.values()].filter((status) => status !== 'COMPLETED').length;
    if (open.length || workflowsNotCompleted)
      progress(`${open.length} grant workflows still running, ${workflowsNotCompleted} closed other than completed`);
    clearInterval(reporter);
    // A quiet system for the checks: nothing may append to a chain while it is verified.
    await supervisor.stop();
    await sampler.stop();
    if (interrupted) throw new Error('interrupted');

    progress('checking invariants');
    const result = await checkInvariants(owner, tracked, tenantIds, timeline, sampler.samples);
    // Diagnosis only: it must not turn a finished run into a crash.
    const lateCauses = await diagnoseLateGrants(temporal, result.lateWindows).catch((error: Error) => {
      progress(`could not read late grants' histories: ${error.message}`);
      return null;
    });
    const driverErrors = tracked.filter((t) => t.driverError);
    for (const t of driverErrors.slice(0, 10)) progress(`driver: grant #${t.plan.index} ${t.grantId ?? '(not created)'}: ${t.driverError}`);

    const summary = {
      faults: 'grants',
      grants: started.length,
      planned: grantCount,
      workerKills: supervisor.kills,
      workerUnexpectedExits: supervisor.unexpectedExits,
      workerStartupP50Ms: percentile(
        [...supervisor.startupMs].sort((a, b) => a - b),
        50,
      ),
      postgresRestarts: postgres.restarts,
      grantsActivePastExpiry: result.grantsActivePastExpiry,
      accessPastExpiry: result.accessPastExpiry,
      accessPastRevoke: result.accessPastRevoke,
      maxAccessPastDeadlineMs: result.maxAccessPastDeadlineMs,
      accessSamples: result.samples,
      accessSamplesFailed: sampler.failed,
      verifiedRevocationLate: result.verifiedRevocationLate,
      auditMissing: result.auditMissing,
      auditDoubled: result.auditDoubled,
      chainsFailingVerification: result.chainsFailingVerification,
      maxExpiryLagMs: result.maxExpiryLagMs,
      expiryLagP50Ms: result.expiryLagP50Ms,
      expiryLagP99Ms: result.expiryLagP99Ms,
      maxRemovalLagMs: result.maxRemovalLagMs,
      lateGrants: result.lateGrants,
      lateCauses,
      stillOpenPastDeadline: result.stillOpenPastDeadline,
      activatedAfterEnd: result.activatedAfterEnd,
      orphanMemberships: result.orphanMemberships,
      auditUnexpected: result.auditUnexpected,
      auditOutOfOrder: result.auditOutOfOrder,
      auditCountMismatch: result.auditCountMismatch,
      chains: result.chains,
      eventsVerified: result.eventsVerified,
      unfinished: Math.max(result.unfinished, open.length),
      workflowsNotCompleted,
      outcomes: result.outcomes,
      driverErrors: driverErrors.length,
      driverRetries,
      durationSec: Math.round((Date.now() - runStart) / 1000),
      loadAverage1m: { start: Number(loadAtStart.toFixed(2)), end: Number(os.loadavg()[0]!.toFixed(2)) },
      cpus: os.cpus().length,
    };
    // The three promises, and what makes the run itself valid (every grant driven and finished).
    // Extra or miscounted audit events are "doubled/lost" seen another way; order is reported only.
    const held =
      summary.grantsActivePastExpiry === 0 &&
      summary.auditMissing === 0 &&
      summary.auditDoubled === 0 &&
      summary.chainsFailingVerification === 0 &&
      summary.auditUnexpected === 0 &&
      summary.auditCountMismatch === 0 &&
      summary.unfinished === 0 &&
      summary.workflowsNotCompleted === 0 &&
      summary.grants === grantCount;
    if (summary.auditOutOfOrder > 0) progress(`warning: ${summary.auditOutOfOrder} grants have audit events out of lifecycle order`);
    progress(held ? 'all invariants held' : 'INVARIANTS VIOLATED (see above)');
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return held;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const { name, step } of cleanup.reverse()) {
      await step().catch((error: unknown) => progress(`cleanup of ${name} failed: ${(error as Error).message}`));
    }
  }
}
