import type { CloneSourceState, CloneStatus, TenantCloneResult } from '../../core/templates/clone.js';
import type { PoolClient } from '../pool.js';

/** A clone request and its outcome (MSP scope). */
export interface CloneRow {
  clone_id: string;
  source_tenant_id: string;
  idempotency_key: string;
  request_hash: string;
  new_tenant_id: string;
  workflow_id: string;
  slug: string;
  name: string;
  requested_by: string;
  status: CloneStatus;
  source_state: CloneSourceState | null;
  result: TenantCloneResult | null;
  created_at: Date;
  updated_at: Date;
}

export async function cloneByKey(client: PoolClient, sourceTenantId: string, key: string): Promise<CloneRow | undefined> {
  const { rows } = await client.query<CloneRow>('SELECT * FROM tenant_clones WHERE source_tenant_id = $1 AND idempotency_key = $2', [
    sourceTenantId,
    key,
  ]);
  return rows[0];
}

export async function cloneById(client: PoolClient, cloneId: string): Promise<CloneRow | undefined> {
  const { rows } = await client.query<CloneRow>('SELECT * FROM tenant_clones WHERE clone_id = $1', [cloneId]);
  return rows[0];
}

/** The request, before its workflow starts; a second one under the same key breaks the unique key (23505). */
export async function insertClone(
  client: PoolClient,
  c: Pick<
    CloneRow,
    | 'clone_id'
    | 'source_tenant_id'
    | 'idempotency_key'
    | 'request_hash'
    | 'new_tenant_id'
    | 'workflow_id'
    | 'slug'
    | 'name'
    | 'requested_by'
  >,
): Promise<CloneRow> {
  const { rows } = await client.query<CloneRow>(
    `INSERT INTO tenant_clones (clone_id, source_tenant_id, idempotency_key, request_hash, new_tenant_id, workflow_id, slug, name,
                                requested_by, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'running') RETURNING *`,
    [c.clone_id, c.source_tenant_id, c.idempotency_key, c.request_hash, c.new_tenant_id, c.workflow_id, c.slug, c.name, c.requested_by],
  );
  return rows[0]!;
}

/** Keeps the first state read from the source; a retried read finds it and clones the same. */
export async function captureSourceState(client: PoolClient, cloneId: string, state: CloneSourceState): Promise<CloneSourceState> {
  await client.query('UPDATE tenant_clones SET source_state = $2, updated_at = now() WHERE clone_id = $1 AND source_state IS NULL', [
    cloneId,
    JSON.stringify(state),
  ]);
  return (await cloneById(client, cloneId))!.source_state!;
}

/** The outcome, once: a retry after it was written changes nothing. True when this call wrote it. */
export async function finishCloneRow(client: PoolClient, cloneId: string, result: TenantCloneResult): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE tenant_clones SET status = $2, result = $3, updated_at = now() WHERE clone_id = $1 AND status = 'running'`,
    [cloneId, result.status, JSON.stringify(result)],
  );
  return rowCount === 1;
}

/** Another tenant already uses this slug, or (case and spaces aside) this name. */
export async function tenantNameTaken(
  client: PoolClient,
  t: { slug: string; name: string; exceptId?: string },
): Promise<{ slug: boolean; name: boolean }> {
  const { rows } = await client.query<{ slug: boolean; name: boolean }>(
    `SELECT coalesce(bool_or(slug = $1), false) AS slug, coalesce(bool_or(lower(trim(name)) = lower(trim($2))), false) AS name
       FROM tenants WHERE ($3::uuid IS NULL OR id <> $3::uuid)`,
    [t.slug, t.name, t.exceptId ?? null],
  );
  return rows[0]!;
}
