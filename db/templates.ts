import type { TemplateApplyView, TemplatePlan, TemplateVersionStatus } from '../core/templates/contract.js';
import type { PoolClient } from './pool.js';

/** Templates and their versions (MSP scope), and each tenant's pin (tenant scope). */

export interface TemplateRow {
  id: string;
  name: string;
  description: string;
  created_at: Date;
  created_by: string;
  updated_at: Date;
  latest_version: number;
  latest_approved_version: number | null;
}

export interface TemplateVersionRow {
  template_id: string;
  version: number;
  status: TemplateVersionStatus;
  document: Record<string, unknown>;
  authors: string[];
  created_at: Date;
  created_by: string;
  updated_at: Date;
  proposed_at: Date | null;
  proposed_by: string | null;
  approved_at: Date | null;
  approved_by: string | null;
  deprecated_at: Date | null;
  deprecated_by: string | null;
  comment: string | null;
}

export interface AssignmentRow {
  tenant_id: string;
  template_id: string;
  template_name: string;
  version: number;
  parameters: Record<string, string>;
  assigned_at: Date;
  assigned_by: string;
  applied_version: number | null;
  applied_at: Date | null;
  /** The values the applied version was rendered with (migration 0026); drift compares against them. */
  applied_parameters: Record<string, string> | null;
}

const TEMPLATE_SELECT = `SELECT t.*,
    (SELECT max(version) FROM template_versions v WHERE v.template_id = t.id)::int AS latest_version,
    (SELECT max(version) FROM template_versions v WHERE v.template_id = t.id AND v.status = 'approved')::int AS latest_approved_version
  FROM templates t`;

/** False when the name is taken. */
export async function insertTemplate(
  client: PoolClient,
  t: { id: string; name: string; description: string; createdBy: string },
): Promise<boolean> {
  const { rowCount } = await client.query(
    'INSERT INTO templates (id, name, description, created_by) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING',
    [t.id, t.name, t.description, t.createdBy],
  );
  return rowCount === 1;
}

export async function getTemplateRow(client: PoolClient, id: string, forUpdate = false): Promise<TemplateRow | undefined> {
  if (forUpdate) await client.query('SELECT 1 FROM templates WHERE id = $1 FOR UPDATE', [id]);
  const { rows } = await client.query<TemplateRow>(`${TEMPLATE_SELECT} WHERE t.id = $1`, [id]);
  return rows[0];
}

export async function listTemplateRows(client: PoolClient): Promise<TemplateRow[]> {
  const { rows } = await client.query<TemplateRow>(`${TEMPLATE_SELECT} ORDER BY t.name`);
  return rows;
}

export async function touchTemplate(client: PoolClient, id: string): Promise<void> {
  await client.query('UPDATE templates SET updated_at = now() WHERE id = $1', [id]);
}

/** The next version of the template, as a draft by `createdBy`; the caller holds the template's row lock. */
export async function insertDraftVersion(
  client: PoolClient,
  templateId: string,
  document: unknown,
  createdBy: string,
): Promise<TemplateVersionRow> {
  const { rows } = await client.query<TemplateVersionRow>(
    `INSERT INTO template_versions (template_id, version, status, document, authors, created_by)
     SELECT $1, coalesce(max(version), 0) + 1, 'draft', $2, ARRAY[$3], $3 FROM template_versions WHERE template_id = $1
     RETURNING *`,
    [templateId, JSON.stringify(document), createdBy],
  );
  return rows[0]!;
}

export async function getVersionRow(
  client: PoolClient,
  templateId: string,
  version: number,
  forUpdate = false,
): Promise<TemplateVersionRow | undefined> {
  const { rows } = await client.query<TemplateVersionRow>(
    `SELECT * FROM template_versions WHERE template_id = $1 AND version = $2${forUpdate ? ' FOR UPDATE' : ''}`,
    [templateId, version],
  );
  return rows[0];
}

export async function listVersionRows(client: PoolClient, templateId: string): Promise<TemplateVersionRow[]> {
  const { rows } = await client.query<TemplateVersionRow>('SELECT * FROM template_versions WHERE template_id = $1 ORDER BY version', [
    templateId,
  ]);
  return rows;
}

/** A draft's new document; its editor joins the authors. Guarded: only a draft changes. */
export async function updateDraftDocument(
  client: PoolClient,
  templateId: string,
  version: number,
  document: unknown,
  editor: string,
): Promise<TemplateVersionRow | undefined> {
  const { rows } = await client.query<TemplateVersionRow>(
    `UPDATE template_versions SET document = $3, updated_at = now(),
            authors = CASE WHEN $4 = ANY (authors) THEN authors ELSE authors || $4 END
      WHERE template_id = $1 AND version = $2 AND status = 'draft' RETURNING *`,
    [templateId, version, JSON.stringify(document), editor],
  );
  return rows[0];
}

/** One guarded step of a version's life; undefined when the version was not in `from`. */
export async function moveVersion(
  client: PoolClient,
  templateId: string,
  version: number,
  step: { from: TemplateVersionStatus; to: TemplateVersionStatus; actor: string; comment: string | null },
): Promise<TemplateVersionRow | undefined> {
  const stamp: Record<TemplateVersionStatus, string> = {
    draft: 'proposed_at = NULL, proposed_by = NULL',
    // The proposer joins the authors: four eyes means someone who did not put it forward approves it.
    proposed: `proposed_at = now(), proposed_by = $5, authors = CASE WHEN $5 = ANY (authors) THEN authors ELSE authors || $5 END`,
    approved: 'approved_at = now(), approved_by = $5',
    deprecated: 'deprecated_at = now(), deprecated_by = $5',
  };
  const { rows } = await client.query<TemplateVersionRow>(
    `UPDATE template_versions SET status = $4, updated_at = now(), comment = $6, ${stamp[step.to]}
      WHERE template_id = $1 AND version = $2 AND status = $3 RETURNING *`,
    [templateId, version, step.from, step.to, step.actor, step.comment],
  );
  return rows[0];
}

const ASSIGNMENT_SELECT = `SELECT a.*, t.name AS template_name FROM template_assignments a JOIN templates t ON t.id = a.template_id`;

export async function getAssignmentRow(client: PoolClient, tenantId: string): Promise<AssignmentRow | undefined> {
  const { rows } = await client.query<AssignmentRow>(`${ASSIGNMENT_SELECT} WHERE a.tenant_id = $1`, [tenantId]);
  return rows[0];
}

/**
 * Pins the tenant to a template version with its parameter values. Moving to another template
 * forgets the applied version (it was another template's); the same template keeps it.
 */
export async function upsertAssignment(
  client: PoolClient,
  a: { tenantId: string; templateId: string; version: number; parameters: Record<string, string>; assignedBy: string },
): Promise<void> {
  await client.query(
    `INSERT INTO template_assignments AS a (tenant_id, template_id, version, parameters, assigned_by)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (tenant_id) DO UPDATE SET template_id = EXCLUDED.template_id, version = EXCLUDED.version,
       parameters = EXCLUDED.parameters, assigned_by = EXCLUDED.assigned_by, assigned_at = now(),
       applied_version = CASE WHEN a.template_id = EXCLUDED.template_id THEN a.applied_version END,
       applied_at = CASE WHEN a.template_id = EXCLUDED.template_id THEN a.applied_at END,
       applied_parameters = CASE WHEN a.template_id = EXCLUDED.template_id THEN a.applied_parameters END`,
    [a.tenantId, a.templateId, a.version, JSON.stringify(a.parameters), a.assignedBy],
  );
}

/** Assignments to the template (MSP scope), by tenant. */
export async function listAssignmentRows(client: PoolClient, templateId: string): Promise<AssignmentRow[]> {
  const { rows } = await client.query<AssignmentRow>(`${ASSIGNMENT_SELECT} WHERE a.template_id = $1 ORDER BY a.tenant_id`, [templateId]);
  return rows;
}

// ---------------------------------------------------------------- applies (tenant scope)

/** The newest revision of an apply's view wins; an older write (a retried activity) changes nothing. */
export async function upsertApplyRow(client: PoolClient, view: TemplateApplyView): Promise<void> {
  await client.query(
    `INSERT INTO template_applies AS a (tenant_id, rollout_id, workflow_id, template_id, version, status, view, revision)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (tenant_id, rollout_id) DO UPDATE SET status = EXCLUDED.status, view = EXCLUDED.view,
       revision = EXCLUDED.revision, updated_at = now()
     WHERE a.revision < EXCLUDED.revision`,
    [view.tenantId, view.rolloutId, view.workflowId, view.templateId, view.version, view.status, JSON.stringify(view), view.revision],
  );
}

export async function setApplyPlan(client: PoolClient, tenantId: string, rolloutId: string, plan: unknown): Promise<void> {
  await client.query('UPDATE template_applies SET plan = $3 WHERE tenant_id = $1 AND rollout_id = $2', [
    tenantId,
    rolloutId,
    JSON.stringify(plan),
  ]);
}

export async function getApplyRow(
  client: PoolClient,
  tenantId: string,
  rolloutId: string,
): Promise<{ view: TemplateApplyView; plan: TemplatePlan | null } | undefined> {
  const { rows } = await client.query<{ view: TemplateApplyView; plan: TemplatePlan | null }>(
    'SELECT view, plan FROM template_applies WHERE tenant_id = $1 AND rollout_id = $2',
    [tenantId, rolloutId],
  );
  return rows[0];
}

/** The tenant's applies, newest first; only those in `status` when given. */
export async function listApplyRows(
  client: PoolClient,
  tenantId: string,
  status: string | undefined,
  limit: number,
): Promise<TemplateApplyView[]> {
  const { rows } = await client.query<{ view: TemplateApplyView }>(
    `SELECT view FROM template_applies WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
      ORDER BY created_at DESC, rollout_id DESC LIMIT $3`,
    [tenantId, status ?? null, limit],
  );
  return rows.map((r) => r.view);
}

/** Written once per snapshot id: a retried snapshot keeps the first state taken. */
export async function insertSnapshot(
  client: PoolClient,
  s: { tenantId: string; snapshotId: string; rolloutId: string; state: unknown },
): Promise<void> {
  await client.query(
    `INSERT INTO template_snapshots (tenant_id, snapshot_id, rollout_id, state) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tenant_id, snapshot_id) DO NOTHING`,
    [s.tenantId, s.snapshotId, s.rolloutId, JSON.stringify(s.state)],
  );
}

export async function getSnapshotState(client: PoolClient, tenantId: string, snapshotId: string): Promise<unknown> {
  const { rows } = await client.query<{ state: unknown }>(
    'SELECT state FROM template_snapshots WHERE tenant_id = $1 AND snapshot_id = $2',
    [tenantId, snapshotId],
  );
  return rows[0]?.state;
}

/**
 * Records the version applied and verified: the tenant's pin names it exactly. The assignment
 * moves to it too (a rollout of a newer version pins the tenant to it), unless a newer version of
 * the same template was assigned meanwhile: that one still waits for its own apply.
 */
export async function pinApplied(
  client: PoolClient,
  a: { tenantId: string; templateId: string; version: number; parameters: Record<string, string>; by: string },
): Promise<void> {
  await client.query(
    `INSERT INTO template_assignments AS a (tenant_id, template_id, version, parameters, assigned_by, applied_version, applied_at, applied_parameters)
     VALUES ($1, $2, $3, $4, $5, $3, now(), $4)
     ON CONFLICT (tenant_id) DO UPDATE SET
       template_id = EXCLUDED.template_id,
       version = CASE WHEN a.template_id = EXCLUDED.template_id AND a.version > EXCLUDED.version THEN a.version ELSE EXCLUDED.version END,
       parameters = CASE WHEN a.template_id = EXCLUDED.template_id AND a.version > EXCLUDED.version THEN a.parameters ELSE EXCLUDED.parameters END,
       applied_version = EXCLUDED.applied_version, applied_at = now(), applied_parameters = EXCLUDED.applied_parameters`,
    [a.tenantId, a.templateId, a.version, JSON.stringify(a.parameters), a.by],
  );
}

/** The tenant's apply still under way (planning, at its gate or applying), if any; other than `except`'s when given. */
export async function openApplyOf(client: PoolClient, tenantId: string, except?: string): Promise<string | undefined> {
  const { rows } = await client.query<{ rollout_id: string }>(
    `SELECT rollout_id FROM template_applies
      WHERE tenant_id = $1 AND status IN ('planning', 'awaiting_approval', 'applying') AND ($2::uuid IS NULL OR rollout_id <> $2::uuid)
      LIMIT 1`,
    [tenantId, except ?? null],
  );
  return rows[0]?.rollout_id;
}
