import type { TemplateApplyView } from '../core/templates/contract.js';
import type { RollbackCandidate, RolloutRollbackView, TemplateRollbackView } from '../core/templates/rollback.js';
import type { PoolClient } from './pool.js';

/** Rollbacks of template applies: each tenant's (tenant scope) and a whole rollout's (MSP scope). */

/** The newest revision of a rollback's view wins; an older write (a retried activity) changes nothing. */
export async function upsertRollbackRow(client: PoolClient, view: TemplateRollbackView): Promise<void> {
  await client.query(
    `INSERT INTO template_rollbacks AS r (tenant_id, rollout_id, workflow_id, snapshot_id, status, view, revision)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (tenant_id, rollout_id) DO UPDATE SET status = EXCLUDED.status, view = EXCLUDED.view,
       revision = EXCLUDED.revision, updated_at = now()
     WHERE r.revision < EXCLUDED.revision`,
    [view.tenantId, view.rolloutId, view.workflowId, view.snapshotId, view.status, JSON.stringify(view), view.revision],
  );
}

export async function getRollbackRow(client: PoolClient, tenantId: string, rolloutId: string): Promise<TemplateRollbackView | undefined> {
  const { rows } = await client.query<{ view: TemplateRollbackView }>(
    'SELECT view FROM template_rollbacks WHERE tenant_id = $1 AND rollout_id = $2',
    [tenantId, rolloutId],
  );
  return rows[0]?.view;
}

/** The rollout's tenant rollbacks (MSP scope), by tenant. */
export async function listRollbackRows(client: PoolClient, rolloutId: string): Promise<TemplateRollbackView[]> {
  const { rows } = await client.query<{ view: TemplateRollbackView }>(
    'SELECT view FROM template_rollbacks WHERE rollout_id = $1 ORDER BY tenant_id',
    [rolloutId],
  );
  return rows.map((r) => r.view);
}

export async function upsertRolloutRollbackRow(client: PoolClient, view: RolloutRollbackView): Promise<void> {
  await client.query(
    `INSERT INTO rollout_rollbacks AS r (rollout_id, workflow_id, status, view, revision) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (rollout_id) DO UPDATE SET status = EXCLUDED.status, view = EXCLUDED.view, revision = EXCLUDED.revision,
       updated_at = now()
     WHERE r.revision < EXCLUDED.revision`,
    [view.rolloutId, view.workflowId, view.status, JSON.stringify(view), view.revision],
  );
}

export async function getRolloutRollbackRow(client: PoolClient, rolloutId: string): Promise<RolloutRollbackView | undefined> {
  const { rows } = await client.query<{ view: RolloutRollbackView }>('SELECT view FROM rollout_rollbacks WHERE rollout_id = $1', [
    rolloutId,
  ]);
  return rows[0]?.view;
}

/** How the rollout's applies stand (MSP scope): by status, and how many took a snapshot. */
export async function rolloutApplyCounts(
  client: PoolClient,
  rolloutId: string,
): Promise<{ total: number; running: number; snapshotted: number }> {
  const { rows } = await client.query<{ total: number; running: number; snapshotted: number }>(
    `SELECT count(*)::int AS total,
            count(*) FILTER (WHERE status IN ('planning', 'awaiting_approval', 'applying'))::int AS running,
            count(*) FILTER (WHERE view->>'snapshotId' IS NOT NULL)::int AS snapshotted
       FROM template_applies WHERE rollout_id = $1`,
    [rolloutId],
  );
  return rows[0]!;
}

/**
 * A page of the rollout's tenants whose apply took a snapshot, after `after` by tenant id (MSP
 * scope), each saying whether a rollback of it was already requested.
 */
export async function rollbackCandidates(
  client: PoolClient,
  rolloutId: string,
  after: string | null,
  limit: number,
): Promise<(RollbackCandidate & { requested: boolean })[]> {
  const { rows } = await client.query<{ view: TemplateApplyView; requested: boolean }>(
    `SELECT a.view, EXISTS (SELECT 1 FROM template_rollbacks r WHERE r.tenant_id = a.tenant_id AND r.rollout_id = a.rollout_id) AS requested
       FROM template_applies a
      WHERE a.rollout_id = $1 AND a.view->>'snapshotId' IS NOT NULL AND ($2::uuid IS NULL OR a.tenant_id > $2::uuid)
      ORDER BY a.tenant_id LIMIT $3`,
    [rolloutId, after, limit],
  );
  return rows.map(({ view, requested }) => ({
    tenantId: view.tenantId,
    snapshotId: view.snapshotId!,
    templateId: view.templateId,
    version: view.version,
    requested,
  }));
}

/** The tenant's pin as stored (tenant scope; without the template's name, which is the MSP's). */
export async function pinState(
  client: PoolClient,
  tenantId: string,
): Promise<{
  templateId: string;
  /** The version assigned, and its values. */
  version: number;
  parameters: Record<string, string>;
  appliedVersion: number | null;
  appliedAt: string | null;
  appliedParameters: Record<string, string> | null;
} | null> {
  const { rows } = await client.query<{
    template_id: string;
    version: number;
    parameters: Record<string, string>;
    applied_version: number | null;
    applied_at: Date | null;
    applied_parameters: Record<string, string> | null;
  }>(
    'SELECT template_id, version, parameters, applied_version, applied_at, applied_parameters FROM template_assignments WHERE tenant_id = $1',
    [tenantId],
  );
  const row = rows[0];
  return row
    ? {
        templateId: row.template_id,
        version: row.version,
        parameters: row.parameters,
        appliedVersion: row.applied_version,
        appliedAt: row.applied_at?.toISOString() ?? null,
        appliedParameters: row.applied_parameters,
      }
    : null;
}

/**
 * Moves the applied version back from `from` to `to` (with its time), only while the pin still
 * names the template and `from`: false when it does not (moved on, or already moved back).
 */
export async function restorePin(
  client: PoolClient,
  p: {
    tenantId: string;
    templateId: string;
    from: number;
    to: number | null;
    toAt: string | null;
    /** The values `to` was applied with (drift compares against them); null with no version. */
    toParameters: Record<string, string> | null;
    /** The assignment before the apply moved it (absent in older snapshots: the assignment stays). */
    assigned?: { version: number; parameters: Record<string, string> } | undefined;
  },
): Promise<boolean> {
  // The assignment goes back too while it is still the one the apply pinned.
  const { rowCount } = await client.query(
    `UPDATE template_assignments SET applied_version = $4, applied_at = $5, applied_parameters = $6,
            version = CASE WHEN $7::int IS NOT NULL AND version = $3 THEN $7::int ELSE version END,
            parameters = CASE WHEN $7::int IS NOT NULL AND version = $3 THEN $8::jsonb ELSE parameters END
      WHERE tenant_id = $1 AND template_id = $2 AND applied_version = $3`,
    [
      p.tenantId,
      p.templateId,
      p.from,
      p.to,
      p.toAt,
      p.to === null || !p.toParameters ? null : JSON.stringify(p.toParameters),
      p.assigned?.version ?? null,
      p.assigned ? JSON.stringify(p.assigned.parameters) : null,
    ],
  );
  return rowCount === 1;
}

/** The tenant's rollback under way (restoring or verifying), if any: its rollout id. */
export async function openRollbackOf(client: PoolClient, tenantId: string): Promise<string | undefined> {
  const { rows } = await client.query<{ rollout_id: string }>(
    `SELECT rollout_id FROM template_rollbacks WHERE tenant_id = $1 AND status IN ('restoring', 'verifying') LIMIT 1`,
    [tenantId],
  );
  return rows[0]?.rollout_id;
}
