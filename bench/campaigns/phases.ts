import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type { Pool } from '../../db/pool.js';
import { moveReviewDeadline, type CampaignDeps } from '../../usecases/campaigns.js';
import { runConcurrently } from '../support.js';
import type { CampaignCast } from './setup.js';

/**
 * What the campaigns benchmark and fault run read back about one campaign run, from PostgreSQL
 * as its owner (across tenants, outside row-level security): the truth the API answers from.
 */

/** Polls `check` every `everyMs` until it answers true; gives up after `timeoutMs` or on abort. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  options: { timeoutMs: number; signal?: AbortSignal; everyMs?: number },
) {
  const deadline = Date.now() + options.timeoutMs;
  while (!(await check())) {
    options.signal?.throwIfAborted();
    if (Date.now() > deadline) throw new Error(`${what}: not within ${Math.round(options.timeoutMs / 1000)} s`);
    await delay(options.everyMs ?? 500);
  }
}

/** The run's reviews by status. */
export async function reviewStatuses(owner: Pool, runId: string): Promise<Record<string, number>> {
  const { rows } = await owner.query<{ status: string; n: number }>(
    'SELECT status, count(*)::int AS n FROM reviews WHERE run_id = $1 GROUP BY status',
    [runId],
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** True once `tenants` reviews of the run exist and none is still storing items. */
export const allMaterialised = (owner: Pool, runId: string, tenants: number) => async () => {
  const statuses = await reviewStatuses(owner, runId);
  const total = Object.values(statuses).reduce((a, b) => a + b, 0);
  return total === tenants && !statuses.materialising;
};

/** The run's stored items: how many, how many lack a reviewer at their stage, and the last `review.items_materialised` (epoch ms). */
export async function materialisedItems(owner: Pool, runId: string): Promise<{ items: number; unassigned: number; lastStoredAt: number }> {
  const { rows } = await owner.query<{ items: number; unassigned: number; last_at: number | null }>(
    `SELECT (SELECT count(*)::int FROM review_items WHERE run_id = $1) AS items,
            (SELECT count(*)::int FROM review_items i WHERE i.run_id = $1 AND NOT EXISTS (
               SELECT 1 FROM review_assignments a WHERE a.tenant_id = i.tenant_id AND a.item_id = i.id AND a.stage = i.stage)) AS unassigned,
            (SELECT (extract(epoch FROM max(occurred_at)) * 1000)::float8 FROM audit_events
              WHERE action = 'review.items_materialised' AND target_type = 'review' AND target_id = $1::text) AS last_at`,
    [runId],
  );
  const row = rows[0]!;
  return { items: row.items, unassigned: row.unassigned, lastStoredAt: row.last_at ?? NaN };
}

/** Each tenant's items of the run, ordered by subject. */
export async function itemsByTenant(owner: Pool, runId: string): Promise<Map<string, { id: string; subjectId: string }[]>> {
  const { rows } = await owner.query<{ tenant_id: string; id: string; subject_id: string }>(
    'SELECT tenant_id, id, subject_id FROM review_items WHERE run_id = $1 ORDER BY tenant_id, subject_id',
    [runId],
  );
  const out = new Map<string, { id: string; subjectId: string }[]>();
  for (const r of rows) out.set(r.tenant_id, [...(out.get(r.tenant_id) ?? []), { id: r.id, subjectId: r.subject_id }]);
  return out;
}

/** Revocations of the run still to apply or confirm, and the time of the last result written (epoch ms). */
export async function remediationState(
  owner: Pool,
  runId: string,
): Promise<{ revokes: number; pending: number; lastResultAt: number; results: Record<string, number> }> {
  const { rows } = await owner.query<{ result: string | null; n: number; last_at: number | null }>(
    `SELECT result, count(*)::int AS n, (extract(epoch FROM max(result_at)) * 1000)::float8 AS last_at
       FROM review_items WHERE run_id = $1 AND outcome = 'revoke' GROUP BY result`,
    [runId],
  );
  const results = Object.fromEntries(rows.map((r) => [r.result ?? 'pending', r.n]));
  return {
    revokes: rows.reduce((sum, r) => sum + r.n, 0),
    pending: (results.pending ?? 0) + (results.retrying ?? 0),
    lastResultAt: Math.max(...rows.map((r) => r.last_at ?? 0)),
    results,
  };
}

/**
 * Closes each tenant's open stage now, as the tenant's own approver does through the API (the
 * review's workflow takes an Update): with items undecided, only the tenant may close early.
 */
export async function closeStagesNow(
  deps: CampaignDeps,
  cast: CampaignCast,
  tenantIds: readonly string[],
  runId: string,
  concurrency: number,
  signal: AbortSignal,
): Promise<void> {
  const approvers = new Map(cast.tenants.map((t) => [t.tenantId, t.reviewer.principal.actorId]));
  await runConcurrently(tenantIds.length, concurrency, signal, async (t) => {
    const actorId = approvers.get(tenantIds[t]!);
    if (!actorId) throw new Error(`tenant ${tenantIds[t]} is not one of this cast's: no approver of its own to close its review`);
    await moveReviewDeadline(deps, tenantIds[t]!, runId, {
      actorId,
      closesAt: new Date().toISOString(),
      authority: { roles: ['tenant_approver'], reason: 'benchmark: close the stage now' },
    });
  });
}

/**
 * The longest history among the workflows `query` lists (every execution, continued-as-new ones
 * included), read with describe, which counts the events of a running one too.
 */
export async function maxHistoryEvents(
  client: Client,
  query: string,
  signal: AbortSignal,
): Promise<{ events: number; workflowId: string | null; executions: number }> {
  const executions: { workflowId: string; runId: string }[] = [];
  for await (const info of client.workflow.list({ query })) executions.push({ workflowId: info.workflowId, runId: info.runId });
  let max = { events: 0, workflowId: null as string | null };
  await runConcurrently(executions.length, 8, signal, async (i) => {
    const { workflowId, runId } = executions[i]!;
    const { historyLength } = await client.workflow.getHandle(workflowId, runId).describe();
    if (historyLength > max.events) max = { events: historyLength, workflowId };
  });
  return { ...max, executions: executions.length };
}
