import type { RolloutTenantStart, TemplateRolloutInput, TemplateRolloutView } from '../core/templates/rollouts.js';
import type { ApplyStatus } from '../core/templates/contract.js';
import type { PoolClient } from './pool.js';

/** Rollouts (MSP scope) and their tenants by wave. */

export interface RolloutRow {
  id: string;
  view: TemplateRolloutView;
  input: TemplateRolloutInput;
  request_hash: string;
}

export interface RolloutTenantRow {
  tenant_id: string;
  tenant_name: string;
  wave: number;
  position: number;
  state: 'pending' | 'passed_over' | 'cancelled';
  apply_status: ApplyStatus | null;
  outcome: string | null;
}

/** False when this caller's idempotency key is taken (a concurrent request won). */
export async function insertRollout(
  client: PoolClient,
  r: { view: TemplateRolloutView; input: TemplateRolloutInput; createdBy: string; idempotencyKey: string | null; requestHash: string },
): Promise<boolean> {
  const { rowCount } = await client.query(
    `INSERT INTO template_rollouts (id, workflow_id, template_id, version, status, view, input, revision, created_by, idempotency_key, request_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (created_by, idempotency_key) DO NOTHING`,
    [
      r.view.rolloutId,
      r.view.workflowId,
      r.view.templateId,
      r.view.version,
      r.view.status,
      JSON.stringify(r.view),
      JSON.stringify(r.input),
      r.view.revision,
      r.createdBy,
      r.idempotencyKey,
      r.requestHash,
    ],
  );
  return rowCount === 1;
}

export async function insertRolloutTenants(
  client: PoolClient,
  rolloutId: string,
  tenants: (RolloutTenantStart & { wave: number })[],
): Promise<void> {
  for (let i = 0; i < tenants.length; i += 500) {
    const chunk = tenants.slice(i, i + 500);
    await client.query(
      `INSERT INTO template_rollout_tenants (rollout_id, tenant_id, wave, position, parameters, approval_timeout_seconds)
       SELECT $1, t.tenant_id, t.wave, t.position, t.parameters, t.timeout
         FROM jsonb_to_recordset($2::jsonb) AS t(tenant_id uuid, wave int, position int, parameters jsonb, timeout int)`,
      [
        rolloutId,
        JSON.stringify(
          chunk.map((t) => ({
            tenant_id: t.tenantId,
            wave: t.wave,
            position: t.position,
            parameters: t.parameters,
            timeout: t.approvalTimeoutSeconds,
          })),
        ),
      ],
    );
  }
}

export async function rolloutByKey(client: PoolClient, createdBy: string, key: string): Promise<RolloutRow | undefined> {
  const { rows } = await client.query<RolloutRow>(
    'SELECT id, view, input, request_hash FROM template_rollouts WHERE created_by = $1 AND idempotency_key = $2',
    [createdBy, key],
  );
  return rows[0];
}

export async function getRolloutRow(client: PoolClient, rolloutId: string): Promise<RolloutRow | undefined> {
  const { rows } = await client.query<RolloutRow>('SELECT id, view, input, request_hash FROM template_rollouts WHERE id = $1', [rolloutId]);
  return rows[0];
}

export async function listRolloutViews(
  client: PoolClient,
  filter: { status?: string; templateId?: string; limit: number },
): Promise<TemplateRolloutView[]> {
  const { rows } = await client.query<{ view: TemplateRolloutView }>(
    `SELECT view FROM template_rollouts
      WHERE ($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR template_id = $2)
      ORDER BY created_at DESC, id LIMIT $3`,
    [filter.status ?? null, filter.templateId ?? null, filter.limit],
  );
  return rows.map((r) => r.view);
}

/** The newest revision of a rollout's view wins; an older write (a retried activity) changes nothing. */
export async function updateRolloutView(client: PoolClient, view: TemplateRolloutView): Promise<void> {
  await client.query(
    `UPDATE template_rollouts SET status = $2, view = $3, revision = $4, updated_at = now() WHERE id = $1 AND revision < $4`,
    [view.rolloutId, view.status, JSON.stringify(view), view.revision],
  );
}

/** The wave's tenants after `after` (by position), with what each apply starts from. */
export async function rolloutTenantsPage(
  client: PoolClient,
  rolloutId: string,
  wave: number,
  after: number,
  limit: number,
): Promise<RolloutTenantStart[]> {
  const { rows } = await client.query<{ tenant_id: string; position: number; parameters: Record<string, string>; timeout: number }>(
    `SELECT tenant_id, position, parameters, approval_timeout_seconds AS timeout FROM template_rollout_tenants
      WHERE rollout_id = $1 AND wave = $2 AND position > $3 AND state = 'pending' ORDER BY position LIMIT $4`,
    [rolloutId, wave, after, limit],
  );
  return rows.map((r) => ({ tenantId: r.tenant_id, position: r.position, parameters: r.parameters, approvalTimeoutSeconds: r.timeout }));
}

/**
 * Marks the tenants not started (the rest of `wave` after position `after`, and with `laterWaves`
 * every later wave) as passed over or cancelled; returns how many per wave.
 */
export async function markNotStarted(
  client: PoolClient,
  rolloutId: string,
  m: { wave: number; after: number; laterWaves: boolean; state: 'passed_over' | 'cancelled' },
): Promise<Record<number, number>> {
  const { rows } = await client.query<{ wave: number; n: number }>(
    `WITH marked AS (
       UPDATE template_rollout_tenants SET state = $5
        WHERE rollout_id = $1 AND state = 'pending' AND ((wave = $2 AND position > $3) OR ($4 AND wave > $2))
        RETURNING wave)
     SELECT wave, count(*)::int AS n FROM marked GROUP BY wave`,
    [rolloutId, m.wave, m.after, m.laterWaves, m.state],
  );
  return Object.fromEntries(rows.map((r) => [r.wave, r.n]));
}

/** Every tenant of the rollout with its apply's status when it has started. */
export async function listRolloutTenants(
  client: PoolClient,
  rolloutId: string,
  page: { after?: { wave: number; position: number }; limit: number },
): Promise<RolloutTenantRow[]> {
  const { rows } = await client.query<RolloutTenantRow>(
    `SELECT rt.tenant_id, t.name AS tenant_name, rt.wave, rt.position, rt.state,
            a.status AS apply_status, a.view->>'outcome' AS outcome
       FROM template_rollout_tenants rt
       JOIN tenants t ON t.id = rt.tenant_id
       LEFT JOIN template_applies a ON a.tenant_id = rt.tenant_id AND a.rollout_id = rt.rollout_id
      WHERE rt.rollout_id = $1 AND (rt.wave, rt.position) > ($2::int, $3::int)
      ORDER BY rt.wave, rt.position LIMIT $4`,
    [rolloutId, page.after?.wave ?? -1, page.after?.position ?? -1, page.limit],
  );
  return rows;
}

/** Of `tenantIds`, those in a rollout still open (another rollout would interleave with it). */
export async function tenantsInOpenRollouts(client: PoolClient, tenantIds: string[]): Promise<{ tenantId: string; rolloutId: string }[]> {
  const { rows } = await client.query<{ tenant_id: string; rollout_id: string }>(
    `SELECT rt.tenant_id, rt.rollout_id FROM template_rollout_tenants rt JOIN template_rollouts r ON r.id = rt.rollout_id
      WHERE rt.tenant_id = ANY ($1::uuid[]) AND r.status NOT IN ('completed', 'cancelled') AND rt.state = 'pending'`,
    [tenantIds],
  );
  return rows.map((r) => ({ tenantId: r.tenant_id, rolloutId: r.rollout_id }));
}

/** A rollout whose workflow never started (the start failed and nobody will retry it). */
export async function deleteUnstartedRollout(client: PoolClient, rolloutId: string): Promise<void> {
  await client.query(
    'DELETE FROM template_rollout_tenants WHERE rollout_id = $1 AND EXISTS (SELECT 1 FROM template_rollouts WHERE id = $1 AND revision = 0)',
    [rolloutId],
  );
  await client.query('DELETE FROM template_rollouts WHERE id = $1 AND revision = 0', [rolloutId]);
}
