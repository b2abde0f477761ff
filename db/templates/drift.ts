import type { PlanArea } from '../../core/templates/contract.js';
import type { DriftMode } from '../../core/templates/drift.js';
import type { PoolClient } from '../pool.js';

/** Drift items, exceptions and each tenant's last check (tenant scope), and the scan's pages (MSP scope). */

export interface DriftItemRow {
  id: string;
  tenant_id: string;
  template_id: string;
  version: number;
  path: string;
  area: PlanArea;
  expected: unknown;
  actual: unknown;
  mode: DriftMode;
  first_seen_at: Date;
  last_seen_at: Date;
  resolved_at: Date | null;
  resolution: 'cleared' | 'remediated' | null;
  alerted_at: Date | null;
  remediation_failed_at: Date | null;
  remediation_error: string | null;
}

export interface DriftExceptionRow {
  id: string;
  tenant_id: string;
  path: string;
  owner: string;
  justification: string;
  expires_at: Date;
  created_at: Date;
  created_by: string;
  approved_at: Date | null;
  approved_by: string | null;
  ended_at: Date | null;
  ended_by: string | null;
  end_reason: string | null;
  expiry_recorded_at: Date | null;
}

export interface DriftStateRow {
  tenant_id: string;
  template_id: string | null;
  version: number | null;
  checked_at: Date | null;
  error: string | null;
  error_at: Date | null;
}

/** One page of the tenants a scan checks: active, with a version applied, by id after `after` (MSP scope). */
export async function pinnedTenantPage(client: PoolClient, after: string | null, limit: number): Promise<string[]> {
  const { rows } = await client.query<{ tenant_id: string }>(
    `SELECT a.tenant_id FROM template_assignments a JOIN tenants t ON t.id = a.tenant_id
      WHERE a.applied_version IS NOT NULL AND t.status = 'active' AND ($1::uuid IS NULL OR a.tenant_id > $1::uuid)
      ORDER BY a.tenant_id LIMIT $2`,
    [after, limit],
  );
  return rows.map((r) => r.tenant_id);
}

/**
 * The tenant's check state, created when missing and locked: one check of a tenant writes its
 * transitions at a time, so two checks never both detect (or resolve) the same item.
 */
export async function lockDriftState(client: PoolClient, tenantId: string): Promise<DriftStateRow> {
  await client.query('INSERT INTO template_drift_state (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING', [tenantId]);
  const { rows } = await client.query<DriftStateRow>('SELECT * FROM template_drift_state WHERE tenant_id = $1 FOR UPDATE', [tenantId]);
  return rows[0]!;
}

export async function getDriftState(client: PoolClient, tenantId: string): Promise<DriftStateRow | undefined> {
  const { rows } = await client.query<DriftStateRow>('SELECT * FROM template_drift_state WHERE tenant_id = $1', [tenantId]);
  return rows[0];
}

export async function setDriftChecked(
  client: PoolClient,
  s: { tenantId: string; templateId: string | null; version: number | null; at: Date },
): Promise<void> {
  await client.query(
    `UPDATE template_drift_state SET template_id = $2, version = $3, checked_at = $4, error = NULL, error_at = NULL WHERE tenant_id = $1`,
    [s.tenantId, s.templateId, s.version, s.at],
  );
}

export async function setDriftError(client: PoolClient, tenantId: string, error: string, at: Date): Promise<void> {
  await client.query(
    `INSERT INTO template_drift_state (tenant_id, error, error_at) VALUES ($1, $2, $3)
     ON CONFLICT (tenant_id) DO UPDATE SET error = EXCLUDED.error, error_at = EXCLUDED.error_at`,
    [tenantId, error.slice(0, 2000), at],
  );
}

export async function openDriftItems(client: PoolClient, tenantId: string): Promise<DriftItemRow[]> {
  const { rows } = await client.query<DriftItemRow>(
    'SELECT * FROM template_drift_items WHERE tenant_id = $1 AND resolved_at IS NULL ORDER BY path',
    [tenantId],
  );
  return rows;
}

/** Open items first (by path), then the `resolvedLimit` resolved most recently. */
export async function listDriftItems(client: PoolClient, tenantId: string, resolvedLimit: number): Promise<DriftItemRow[]> {
  const { rows } = await client.query<DriftItemRow>(
    `(SELECT * FROM template_drift_items WHERE tenant_id = $1 AND resolved_at IS NULL ORDER BY path)
     UNION ALL
     (SELECT * FROM template_drift_items WHERE tenant_id = $1 AND resolved_at IS NOT NULL ORDER BY resolved_at DESC LIMIT $2)`,
    [tenantId, resolvedLimit],
  );
  return rows;
}

export async function insertDriftItem(
  client: PoolClient,
  i: Pick<DriftItemRow, 'id' | 'tenant_id' | 'template_id' | 'version' | 'path' | 'area' | 'expected' | 'actual' | 'mode'> & { at: Date },
): Promise<void> {
  await client.query(
    `INSERT INTO template_drift_items (id, tenant_id, template_id, version, path, area, expected, actual, mode, first_seen_at, last_seen_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
    [i.id, i.tenant_id, i.template_id, i.version, i.path, i.area, JSON.stringify(i.expected), JSON.stringify(i.actual), i.mode, i.at],
  );
}

/** A check found the item again: first seen stays, the rest is what the check saw now. */
export async function touchDriftItem(
  client: PoolClient,
  i: Pick<DriftItemRow, 'id' | 'template_id' | 'version' | 'expected' | 'actual' | 'mode'> & { at: Date },
): Promise<void> {
  await client.query(
    `UPDATE template_drift_items SET template_id = $2, version = $3, expected = $4, actual = $5, mode = $6, last_seen_at = $7
      WHERE id = $1 AND resolved_at IS NULL`,
    [i.id, i.template_id, i.version, JSON.stringify(i.expected), JSON.stringify(i.actual), i.mode, i.at],
  );
}

/** Guarded: true when this call resolved it (an item resolves once). */
export async function resolveDriftItem(client: PoolClient, id: string, resolution: 'cleared' | 'remediated', at: Date): Promise<boolean> {
  const { rowCount } = await client.query(
    'UPDATE template_drift_items SET resolved_at = $3, resolution = $2 WHERE id = $1 AND resolved_at IS NULL',
    [id, resolution, at],
  );
  return rowCount === 1;
}

export async function markDriftAlerted(client: PoolClient, id: string, at: Date): Promise<void> {
  await client.query('UPDATE template_drift_items SET alerted_at = $2 WHERE id = $1 AND alerted_at IS NULL', [id, at]);
}

/** True when this is the item's first failed remediation (audited once). */
export async function markRemediationFailed(client: PoolClient, id: string, error: string, at: Date): Promise<boolean> {
  const { rows } = await client.query<{ first: boolean }>(
    `UPDATE template_drift_items SET remediation_error = $2, remediation_failed_at = coalesce(remediation_failed_at, $3)
      WHERE id = $1 RETURNING remediation_failed_at = $3 AS first`,
    [id, error.slice(0, 2000), at],
  );
  return rows[0]?.first ?? false;
}

// ---------------------------------------------------------------- exceptions

export async function insertDriftException(
  client: PoolClient,
  e: Pick<DriftExceptionRow, 'id' | 'tenant_id' | 'path' | 'owner' | 'justification' | 'expires_at' | 'created_by'> & { at: Date },
): Promise<DriftExceptionRow> {
  const { rows } = await client.query<DriftExceptionRow>(
    `INSERT INTO template_drift_exceptions (id, tenant_id, path, owner, justification, expires_at, created_by, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
    [e.id, e.tenant_id, e.path, e.owner, e.justification, e.expires_at, e.created_by, e.at],
  );
  return rows[0]!;
}

export async function getDriftException(
  client: PoolClient,
  tenantId: string,
  id: string,
  forUpdate = false,
): Promise<DriftExceptionRow | undefined> {
  const { rows } = await client.query<DriftExceptionRow>(
    `SELECT * FROM template_drift_exceptions WHERE tenant_id = $1 AND id = $2${forUpdate ? ' FOR UPDATE' : ''}`,
    [tenantId, id],
  );
  return rows[0];
}

export async function listDriftExceptions(client: PoolClient, tenantId: string, limit = 200): Promise<DriftExceptionRow[]> {
  const { rows } = await client.query<DriftExceptionRow>(
    'SELECT * FROM template_drift_exceptions WHERE tenant_id = $1 ORDER BY created_at DESC, id LIMIT $2',
    [tenantId, limit],
  );
  return rows;
}

/** Guarded: only a pending, unexpired exception is approved, never by its creator. */
export async function approveDriftException(
  client: PoolClient,
  e: { tenantId: string; id: string; by: string; at: Date },
): Promise<DriftExceptionRow | undefined> {
  const { rows } = await client.query<DriftExceptionRow>(
    `UPDATE template_drift_exceptions SET approved_at = $4, approved_by = $3
      WHERE tenant_id = $1 AND id = $2 AND approved_at IS NULL AND ended_at IS NULL AND expires_at > $4 AND created_by <> $3
      RETURNING *`,
    [e.tenantId, e.id, e.by, e.at],
  );
  return rows[0];
}

/** Guarded: ends an exception that has not ended or run out. */
export async function endDriftException(
  client: PoolClient,
  e: { tenantId: string; id: string; by: string; reason: string | null; at: Date },
): Promise<DriftExceptionRow | undefined> {
  const { rows } = await client.query<DriftExceptionRow>(
    `UPDATE template_drift_exceptions SET ended_at = $4, ended_by = $3, end_reason = $5
      WHERE tenant_id = $1 AND id = $2 AND ended_at IS NULL AND expires_at > $4 RETURNING *`,
    [e.tenantId, e.id, e.by, e.at, e.reason],
  );
  return rows[0];
}

/** Approved exceptions that ran out by themselves and no check has recorded yet. */
export async function unrecordedExpiries(client: PoolClient, tenantId: string, now: Date): Promise<DriftExceptionRow[]> {
  const { rows } = await client.query<DriftExceptionRow>(
    `SELECT * FROM template_drift_exceptions
      WHERE tenant_id = $1 AND approved_at IS NOT NULL AND ended_at IS NULL AND expires_at <= $2 AND expiry_recorded_at IS NULL
      ORDER BY expires_at`,
    [tenantId, now],
  );
  return rows;
}

export async function markExpiryRecorded(client: PoolClient, id: string, at: Date): Promise<void> {
  await client.query('UPDATE template_drift_exceptions SET expiry_recorded_at = $2 WHERE id = $1', [id, at]);
}
