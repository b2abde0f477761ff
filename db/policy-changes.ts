import type { PolicyChangeStatus, PolicyChangeView } from '../core/tenancy/contract.js';
import type { PolicyRow } from './tenancy.js';
import type { PoolClient } from './pool.js';

/** Writes the change's read-model row; the newest version wins, so a replayed older event changes nothing. */
export async function upsertPolicyChangeRow(client: PoolClient, view: PolicyChangeView): Promise<void> {
  await client.query(
    `INSERT INTO policy_changes (tenant_id, change_id, workflow_id, status, proposer_id, base_version, applied_version, view, version)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (tenant_id, change_id) DO UPDATE SET
       status = EXCLUDED.status, applied_version = EXCLUDED.applied_version, view = EXCLUDED.view, version = EXCLUDED.version,
       updated_at = now()
     WHERE policy_changes.version < EXCLUDED.version`,
    [
      view.tenantId,
      view.changeId,
      view.workflowId,
      view.status,
      view.proposerId,
      view.baseVersion,
      view.appliedVersion,
      JSON.stringify(view),
      view.version,
    ],
  );
}

/** Takes back a proposal no workflow has written to yet (version 0). */
export async function deleteUnstartedPolicyChange(client: PoolClient, tenantId: string, changeId: string): Promise<void> {
  await client.query('DELETE FROM policy_changes WHERE tenant_id = $1 AND change_id = $2 AND version = 0', [tenantId, changeId]);
}

export async function policyChangeViewOf(client: PoolClient, tenantId: string, changeId: string): Promise<PolicyChangeView | undefined> {
  const { rows } = await client.query<{ view: PolicyChangeView }>(
    'SELECT view FROM policy_changes WHERE tenant_id = $1 AND change_id = $2',
    [tenantId, changeId],
  );
  return rows[0]?.view;
}

/** A tenant's changes, newest first, optionally only those in one status (e.g. the pending ones beside the policy). */
export async function listPolicyChangeRows(
  client: PoolClient,
  tenantId: string,
  filter: { status?: PolicyChangeStatus; limit: number },
): Promise<PolicyChangeView[]> {
  const { rows } = await client.query<{ view: PolicyChangeView }>(
    `SELECT view FROM policy_changes WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
      ORDER BY created_at DESC, change_id DESC LIMIT $3`,
    [tenantId, filter.status ?? null, filter.limit],
  );
  return rows.map((r) => r.view);
}

/** A policy version written by an approved change: the proposer as its author, the change and its approvers beside it. */
export async function insertApprovedPolicyVersion(
  client: PoolClient,
  p: { tenantId: string; version: number; document: Record<string, unknown>; proposerId: string; changeId: string; approvedBy: string[] },
): Promise<PolicyRow & { change_id: string; approved_by: string[] }> {
  const { rows } = await client.query<PolicyRow & { change_id: string; approved_by: string[] }>(
    `INSERT INTO tenant_policies (tenant_id, version, document, created_by, change_id, approved_by)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
    [p.tenantId, p.version, JSON.stringify(p.document), p.proposerId, p.changeId, p.approvedBy],
  );
  return rows[0]!;
}

/** The version an approved change wrote, if it wrote one: a retried apply finds its own write instead of a conflict. */
export async function policyVersionWrittenBy(client: PoolClient, tenantId: string, changeId: string): Promise<number | undefined> {
  const { rows } = await client.query<{ version: number }>('SELECT version FROM tenant_policies WHERE tenant_id = $1 AND change_id = $2', [
    tenantId,
    changeId,
  ]);
  return rows[0]?.version;
}
