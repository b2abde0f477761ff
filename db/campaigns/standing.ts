import type { PoolClient } from '../pool.js';

/**
 * What the standing-privilege report reads besides the target and the ledger: when a reviewer
 * last decided each access in a completed review, and the lifecycle's status of each person.
 */

/** Per (subject, role): the newest completed review in which a reviewer decided the access (not a non-response). */
export async function lastReviewedAccess(
  client: PoolClient,
  tenantId: string,
  roles: readonly string[],
): Promise<Map<string, { reviewedAt: Date; runId: string }>> {
  const { rows } = await client.query<{ subject_id: string; role: string; completed_at: Date; run_id: string }>(
    `SELECT DISTINCT ON (i.subject_id, i.role) i.subject_id, i.role, r.completed_at, r.run_id
       FROM review_items i JOIN reviews r ON r.tenant_id = i.tenant_id AND r.run_id = i.run_id
      WHERE i.tenant_id = $1 AND i.role = ANY($2::text[]) AND i.outcome_by = 'decision' AND r.status = 'completed'
      ORDER BY i.subject_id, i.role, r.completed_at DESC`,
    [tenantId, roles],
  );
  return new Map(rows.map((r) => [JSON.stringify([r.subject_id, r.role]), { reviewedAt: r.completed_at, runId: r.run_id }]));
}

/** The lifecycle's status of each of these people in the tenant (only those it knows). */
export async function personStatuses(client: PoolClient, tenantId: string, personIds: readonly string[]): Promise<Map<string, string>> {
  const { rows } = await client.query<{ person_id: string; status: string }>(
    'SELECT person_id, status FROM people WHERE tenant_id = $1 AND person_id = ANY($2::text[])',
    [tenantId, personIds],
  );
  return new Map(rows.map((r) => [r.person_id, r.status]));
}

/** Active tenants, optionally only those with a tag, by id. */
export async function activeTenantIds(client: PoolClient, tag?: string): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>(
    "SELECT id FROM tenants WHERE status = 'active' AND ($1::text IS NULL OR $1 = ANY(tags)) ORDER BY id",
    [tag ?? null],
  );
  return rows.map((r) => r.id);
}
