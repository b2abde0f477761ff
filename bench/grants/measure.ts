import type { GrantView } from '../../core/grants/contract.js';
import type { Pool } from '../../db/pool.js';
import type { CpuMs } from '../cpu.js';
import { ROLE, type GrantsBenchSetup } from './setup.js';

/** More grants than this share missing their window make a batch meaningless. */
const MAX_WINDOW_PASSED = 0.1;

export interface BatchResult {
  seconds: number;
  /** Measured for the throughput batch only. */
  cpuMsPerGrant?: CpuMs;
  views: GrantView[];
  /** Complete lifecycles: activated, expired, revocation verified. */
  completed: number;
  /**
   * Never activated because the window closed first: approved after it, or approved in time but
   * the access reached the ledger after it, which refused it (`grant.activation_failed`, checked
   * against the trail by crossCheck).
   */
  windowPassed: number;
  /** revocationVerifiedAt − endAt per complete lifecycle, ascending. */
  lagsMs: number[];
  /** startAt (the request) → activation per complete lifecycle, ascending. */
  activationDelaysMs: number[];
  /** Time from the batch start to the last activation. */
  activationSpanMs: number;
}

/** CPU ms per lifecycle, rounded. */
export function perGrant(cpu: CpuMs, lifecycles: number): CpuMs {
  const per = (ms: number) => Math.round(ms / lifecycles);
  return {
    benchProcess: per(cpu.benchProcess),
    ...(cpu.worker !== undefined ? { worker: per(cpu.worker) } : {}),
    ...(cpu.temporalServer !== undefined ? { temporalServer: per(cpu.temporalServer) } : {}),
    ...(cpu.postgres !== undefined ? { postgres: per(cpu.postgres) } : {}),
  };
}

/** A grant whose activation the ledger refused: on a loaded machine, one that reached it after its window closed. */
export const refusedActivation = (view: GrantView) => view.status === 'ended' && view.endReason === 'failed' && view.activatedAt === null;

/**
 * What a batch of `count` lifecycles, started at `started` (epoch ms), measured: every grant must
 * have expired with a verified revocation, or never activated because its window closed first
 * (at most MAX_WINDOW_PASSED of them).
 */
export function measureBatch(views: GrantView[], count: number, started: number, cpu?: CpuMs): BatchResult {
  const seconds = (Date.now() - started) / 1000;
  const completed = views.filter((v) => v.activatedAt !== null && v.revocationVerifiedAt !== null);
  for (const view of views) {
    if (refusedActivation(view)) continue;
    if (view.status !== 'ended' || view.endReason !== 'expired' || (view.activatedAt !== null) !== (view.revocationVerifiedAt !== null)) {
      throw new Error(
        `grant ${view.workflowId} finished ${view.status}/${view.endReason ?? '-'}, neither expired with a verified revocation nor past its window`,
      );
    }
  }
  const windowPassed = views.length - completed.length;
  if (windowPassed > count * MAX_WINDOW_PASSED) {
    throw new Error(
      `${windowPassed} of ${count} grants reached their activation only after their window closed: approvals lag more than the grants last. ` +
        'Raise --duration or lower --concurrency.',
    );
  }
  const ascending = (values: number[]) => values.sort((a, b) => a - b);
  return {
    seconds,
    ...(cpu ? { cpuMsPerGrant: perGrant(cpu, completed.length) } : {}),
    views,
    completed: completed.length,
    windowPassed,
    lagsMs: ascending(completed.map((v) => Date.parse(v.revocationVerifiedAt!) - Date.parse(v.endAt))),
    activationDelaysMs: ascending(completed.map((v) => Date.parse(v.activatedAt!) - Date.parse(v.startAt))),
    activationSpanMs: Math.max(...completed.map((v) => Date.parse(v.activatedAt!))) - started,
  };
}

/** Audit events one grant writes: requested, approval recorded, approved, then activated, expiring, expired. */
const EVENTS_COMPLETED = 6;
/** …or, its window closed first: requested, approval recorded, approved, window passed (or activation failed). */
const EVENTS_WINDOW_PASSED = 4;

/**
 * What the database says, against what the workflows returned: each grant's row has its final
 * status and the same expiry and verified-revocation times, each grant's audit events are all
 * there once, and no bench role is left on the tenants' targets (read through their connectors)
 * or open in the ledger.
 */
export async function crossCheck(
  owner: Pool,
  setup: Pick<GrantsBenchSetup, 'tenants' | 'targetKind'>,
  views: GrantView[],
  progress: (message: string) => void,
): Promise<void> {
  const { rows } = await owner.query<{ grant_id: string; status: string; lag_ms: number | null; events: number }>(
    `SELECT g.grant_id, g.status, (extract(epoch FROM g.revocation_verified_at - g.end_at) * 1000)::float8 AS lag_ms,
            (SELECT count(*)::int FROM audit_events e WHERE e.target_type = 'grant' AND e.target_id = g.grant_id::text) AS events
       FROM grants g WHERE g.grant_id = ANY($1::uuid[])`,
    [views.map((v) => v.grantId)],
  );
  const stored = new Map(rows.map((r) => [r.grant_id, r]));
  // A refused activation counts as a window passed only when the ledger refused it for that: it
  // closed the grant's entitlement with the reason 'window_passed' (activities/directory/ledger.ts).
  const refused = views.filter(refusedActivation).map((v) => v.grantId);
  const windowClosed = await owner.query<{ source_id: string }>(
    `SELECT DISTINCT source_id FROM entitlements
      WHERE source_type = 'grant' AND source_id = ANY($1::text[]) AND end_reason = 'window_passed'`,
    [refused],
  );
  const refusedForWindow = new Set(windowClosed.rows.map((r) => r.source_id));
  const otherRefusal = refused.find((grantId) => !refusedForWindow.has(grantId));
  if (otherRefusal) throw new Error(`grant ${otherRefusal} was refused at activation for another reason than its window having closed`);
  for (const view of views) {
    const row = stored.get(view.grantId);
    const lag = view.revocationVerifiedAt ? Date.parse(view.revocationVerifiedAt) - Date.parse(view.endAt) : null;
    const events = view.activatedAt ? EVENTS_COMPLETED : EVENTS_WINDOW_PASSED;
    if (
      !row ||
      row.status !== view.status ||
      (lag === null) !== (row.lag_ms === null) ||
      Math.abs((row.lag_ms ?? 0) - (lag ?? 0)) > 1 ||
      row.events !== events
    ) {
      throw new Error(
        `the database disagrees with grant ${view.workflowId}: ${JSON.stringify(row)}, expected ${view.status}, lag ${lag} ms, ${events} audit events`,
      );
    }
  }
  const tenantIds = setup.tenants.map((t) => t.tenantId);
  const leftover = await owner.query<{ open: number }>(
    `SELECT count(*)::int AS open FROM entitlements WHERE ended_at IS NULL AND tenant_id = ANY($1)`,
    [tenantIds],
  );
  const held = (await Promise.all(setup.tenants.map((t) => t.connector.listMembers(t.tenantId, ROLE)))).flat().length;
  const { open } = leftover.rows[0]!;
  if (held !== 0 || open !== 0)
    throw new Error(
      `after every grant ended, ${held} roles are still held on the ${setup.targetKind} directory and ${open} entitlements open`,
    );
  progress(
    `cross-check: ${views.length} grants agree with the database (rows, verified-revocation times, audit events); ` +
      `no role left on the ${setup.targetKind} directory or open in the ledger`,
  );
}
