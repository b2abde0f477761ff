import type {
  CampaignRunStatus,
  ItemOutcome,
  ItemResult,
  ReviewDecision,
  ReviewNoticeKind,
  ReviewStatus,
} from '../core/campaigns/contract.js';
import type { CampaignDefinitionDocument } from '../core/campaigns/schemas.js';
import type { EntitlementSourceType } from '../core/directory/connector.js';
import { MSP_CHAIN } from '../core/audit/chain.js';
import type { ActionContext } from '../core/audit/context.js';
import { appendActionEvent } from './audit.js';
import type { PoolClient } from './pool.js';

/**
 * Campaign definitions and runs (MSP scope) and each tenant's review, items, assignments and
 * decisions (tenant scope). Batches go through jsonb_to_recordset, one statement per batch.
 */

// ---------------------------------------------------------------- definitions

export interface DefinitionRow {
  id: string;
  name: string;
  current_version: number;
  last_run_no: number;
  created_at: Date;
  created_by: string;
  updated_at: Date;
  document: CampaignDefinitionDocument;
  version_created_at: Date;
}

const DEFINITION_SELECT = `SELECT d.id, d.name, d.current_version, d.last_run_no, d.created_at, d.created_by, d.updated_at,
    v.document, v.created_at AS version_created_at
  FROM campaign_definitions d JOIN campaign_definition_versions v ON v.definition_id = d.id AND v.version = d.current_version`;

export async function insertDefinition(
  client: PoolClient,
  d: { id: string; name: string; document: CampaignDefinitionDocument; createdBy: string },
): Promise<void> {
  await client.query('INSERT INTO campaign_definitions (id, name, current_version, created_by) VALUES ($1, $2, 1, $3)', [
    d.id,
    d.name,
    d.createdBy,
  ]);
  await insertDefinitionVersion(client, { definitionId: d.id, version: 1, document: d.document, createdBy: d.createdBy });
}

export async function insertDefinitionVersion(
  client: PoolClient,
  v: { definitionId: string; version: number; document: CampaignDefinitionDocument; createdBy: string },
): Promise<void> {
  await client.query('INSERT INTO campaign_definition_versions (definition_id, version, document, created_by) VALUES ($1, $2, $3, $4)', [
    v.definitionId,
    v.version,
    JSON.stringify(v.document),
    v.createdBy,
  ]);
}

/** The definition at its current version; a deleted one is no more (its versions and runs stay readable). */
export async function getDefinitionRow(client: PoolClient, id: string, forUpdate = false): Promise<DefinitionRow | undefined> {
  const { rows } = await client.query<DefinitionRow>(
    `${DEFINITION_SELECT} WHERE d.id = $1 AND d.deleted_at IS NULL${forUpdate ? ' FOR UPDATE OF d' : ''}`,
    [id],
  );
  return rows[0];
}

export async function listDefinitionRows(client: PoolClient): Promise<DefinitionRow[]> {
  const { rows } = await client.query<DefinitionRow>(`${DEFINITION_SELECT} WHERE d.deleted_at IS NULL ORDER BY d.created_at DESC, d.id`);
  return rows;
}

/** Marks the definition deleted by `actorId`. */
export async function markDefinitionDeleted(client: PoolClient, id: string, actorId: string): Promise<void> {
  await client.query('UPDATE campaign_definitions SET deleted_at = now(), deleted_by = $2, updated_at = now() WHERE id = $1', [
    id,
    actorId,
  ]);
}

/** The runs of a definition not yet over (starting or running). */
export async function unfinishedRunRows(client: PoolClient, definitionId: string): Promise<RunRow[]> {
  const { rows } = await client.query<RunRow>(
    "SELECT * FROM campaign_runs WHERE definition_id = $1 AND status IN ('starting', 'running') ORDER BY run_no",
    [definitionId],
  );
  return rows;
}

/** Moves the definition to `version` (already inserted) and renames it when `name` is given. */
export async function setDefinitionVersion(client: PoolClient, id: string, version: number, name: string | undefined): Promise<void> {
  await client.query('UPDATE campaign_definitions SET current_version = $2, name = coalesce($3, name), updated_at = now() WHERE id = $1', [
    id,
    version,
    name ?? null,
  ]);
}

export interface DefinitionVersionRow {
  definition_id: string;
  version: number;
  document: CampaignDefinitionDocument;
  created_at: Date;
  created_by: string;
}

export async function listDefinitionVersionRows(client: PoolClient, id: string): Promise<DefinitionVersionRow[]> {
  const { rows } = await client.query<DefinitionVersionRow>(
    'SELECT * FROM campaign_definition_versions WHERE definition_id = $1 ORDER BY version DESC',
    [id],
  );
  return rows;
}

export async function definitionVersionRow(client: PoolClient, id: string, version: number): Promise<DefinitionVersionRow | undefined> {
  const { rows } = await client.query<DefinitionVersionRow>(
    'SELECT * FROM campaign_definition_versions WHERE definition_id = $1 AND version = $2',
    [id, version],
  );
  return rows[0];
}

/** Hands out the definition's next run number (the row lock orders concurrent starts). */
export async function nextRunNo(client: PoolClient, id: string): Promise<number> {
  const { rows } = await client.query<{ last_run_no: number }>(
    'UPDATE campaign_definitions SET last_run_no = last_run_no + 1 WHERE id = $1 RETURNING last_run_no',
    [id],
  );
  return rows[0]!.last_run_no;
}

// ---------------------------------------------------------------- runs

export interface RunRow {
  id: string;
  definition_id: string;
  run_no: number;
  definition_version: number;
  workflow_id: string;
  status: CampaignRunStatus;
  started_by: string;
  trigger: 'api' | 'schedule';
  tenant_count: number | null;
  materialised_count: number;
  completed_count: number;
  created_at: Date;
  updated_at: Date;
}

export async function insertRun(
  client: PoolClient,
  r: {
    id: string;
    definitionId: string;
    runNo: number;
    definitionVersion: number;
    workflowId: string;
    startedBy: string;
    trigger: 'api' | 'schedule';
  },
): Promise<RunRow> {
  const { rows } = await client.query<RunRow>(
    `INSERT INTO campaign_runs (id, definition_id, run_no, definition_version, workflow_id, status, started_by, trigger)
     VALUES ($1, $2, $3, $4, $5, 'starting', $6, $7) RETURNING *`,
    [r.id, r.definitionId, r.runNo, r.definitionVersion, r.workflowId, r.startedBy, r.trigger],
  );
  return rows[0]!;
}

/**
 * Numbers and records a new run of the definition's current version, with its audit event on
 * the MSP chain; undefined when there is no such definition. The API and a Schedule both start
 * runs through here. Idempotent by run id.
 */
export async function allocateRun(
  client: PoolClient,
  ctx: ActionContext,
  r: { id: string; definitionId: string; trigger: 'api' | 'schedule'; workflowIdOf: (runNo: number) => string },
): Promise<{ run: RunRow; document: CampaignDefinitionDocument } | undefined> {
  const definition = await getDefinitionRow(client, r.definitionId, true);
  if (!definition) return undefined;
  // A retry with the same run id (an activity) finds the run it recorded.
  const existing = await getRunRow(client, r.id);
  if (existing)
    return { run: existing, document: (await definitionVersionRow(client, r.definitionId, existing.definition_version))!.document };
  const runNo = await nextRunNo(client, r.definitionId);
  const run = await insertRun(client, {
    id: r.id,
    definitionId: r.definitionId,
    runNo,
    definitionVersion: definition.current_version,
    workflowId: r.workflowIdOf(runNo),
    startedBy: ctx.actor.id,
    trigger: r.trigger,
  });
  await appendActionEvent(client, ctx, {
    tenantId: MSP_CHAIN,
    action: 'campaign.run_requested',
    target: { type: 'campaign_run', id: r.id },
    payload: { definitionId: r.definitionId, runNo, definitionVersion: definition.current_version, trigger: r.trigger },
  });
  return { run, document: definition.document };
}

export async function getRunRow(client: PoolClient, runId: string): Promise<RunRow | undefined> {
  const { rows } = await client.query<RunRow>('SELECT * FROM campaign_runs WHERE id = $1', [runId]);
  return rows[0];
}

export async function runRowByNo(client: PoolClient, definitionId: string, runNo: number): Promise<RunRow | undefined> {
  const { rows } = await client.query<RunRow>('SELECT * FROM campaign_runs WHERE definition_id = $1 AND run_no = $2', [
    definitionId,
    runNo,
  ]);
  return rows[0];
}

export async function listRunRows(client: PoolClient, definitionId: string): Promise<RunRow[]> {
  const { rows } = await client.query<RunRow>('SELECT * FROM campaign_runs WHERE definition_id = $1 ORDER BY run_no DESC', [definitionId]);
  return rows;
}

/** The run's status and counters as its workflow reports them; counters never move back. */
export async function updateRunProgress(
  client: PoolClient,
  runId: string,
  p: { status: CampaignRunStatus; total: number | null; materialised: number; finished: number },
): Promise<void> {
  await client.query(
    `UPDATE campaign_runs SET status = CASE WHEN status IN ('completed', 'cancelled') THEN status ELSE $2 END,
       tenant_count = coalesce($3, tenant_count), materialised_count = greatest(materialised_count, $4),
       completed_count = greatest(completed_count, $5), updated_at = now()
     WHERE id = $1`,
    [runId, p.status, p.total, p.materialised, p.finished],
  );
}

/**
 * Fixes the run's tenants from the scope, once: a retry finds them already there. Active tenants
 * only: the listed ones and those with any of the tags (every one when neither is given), less
 * the excluded ids and tags; with includeLaterTenants off, tenants chosen by tag or as "every
 * tenant" count only if they existed when the version was written. Versions written before tags
 * existed have none.
 */
export async function fixRunTenants(
  client: PoolClient,
  runId: string,
  scope: CampaignDefinitionDocument['scope'],
  versionCreatedAt: string,
): Promise<number> {
  const existing = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM campaign_run_tenants WHERE run_id = $1', [runId]);
  if (existing.rows[0]!.n > 0) return existing.rows[0]!.n;
  const { rowCount } = await client.query(
    `INSERT INTO campaign_run_tenants (run_id, tenant_id)
     SELECT $1::uuid, t.id FROM tenants t
      WHERE t.status = 'active'
        AND ((cardinality($2::uuid[]) = 0 AND cardinality($6::text[]) = 0) OR t.id = ANY($2::uuid[])
             OR (t.tags && $6::text[] AND ($4 OR t.created_at <= $5::timestamptz)))
        AND NOT (t.id = ANY($3::uuid[])) AND NOT (t.tags && $7::text[])
        AND ($4 OR cardinality($2::uuid[]) > 0 OR cardinality($6::text[]) > 0 OR t.created_at <= $5::timestamptz)
     ON CONFLICT DO NOTHING`,
    [runId, scope.tenantIds, scope.exclude, scope.includeLaterTenants, versionCreatedAt, scope.tags ?? [], scope.excludeTags ?? []],
  );
  return rowCount ?? 0;
}

/** Marks the run cancelled by `actorId`; false when it had completed or was cancelled already. */
export async function markRunCancelled(client: PoolClient, runId: string, actorId: string): Promise<RunRow | undefined> {
  const { rows } = await client.query<RunRow>(
    `UPDATE campaign_runs SET status = 'cancelled', cancelled_at = now(), cancelled_by = $2, updated_at = now()
      WHERE id = $1 AND status IN ('starting', 'running') RETURNING *`,
    [runId, actorId],
  );
  return rows[0];
}

export async function runTenantsPage(client: PoolClient, runId: string, after: string | null, limit: number): Promise<string[]> {
  const { rows } = await client.query<{ tenant_id: string }>(
    `SELECT tenant_id FROM campaign_run_tenants WHERE run_id = $1 AND ($2::uuid IS NULL OR tenant_id > $2::uuid)
      ORDER BY tenant_id LIMIT $3`,
    [runId, after, limit],
  );
  return rows.map((r) => r.tenant_id);
}

// ---------------------------------------------------------------- reviews

export interface ReviewRow {
  tenant_id: string;
  run_id: string;
  definition_id: string;
  workflow_id: string;
  status: ReviewStatus;
  stage: number;
  stage_count: number;
  stage_closes_at: Date | null;
  round: number;
  item_count: number;
  settings: CampaignDefinitionDocument;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
}

/** Creates the review once; a retry leaves it as it is. */
export async function insertReview(
  client: PoolClient,
  r: {
    tenantId: string;
    runId: string;
    definitionId: string;
    workflowId: string;
    stageCount: number;
    settings: CampaignDefinitionDocument;
  },
): Promise<void> {
  await client.query(
    `INSERT INTO reviews (tenant_id, run_id, definition_id, workflow_id, status, stage_count, settings)
     VALUES ($1, $2, $3, $4, 'materialising', $5, $6) ON CONFLICT DO NOTHING`,
    [r.tenantId, r.runId, r.definitionId, r.workflowId, r.stageCount, JSON.stringify(r.settings)],
  );
}

export async function getReviewRow(
  client: PoolClient,
  tenantId: string,
  runId: string,
  lock?: 'share' | 'update',
): Promise<ReviewRow | undefined> {
  const { rows } = await client.query<ReviewRow>(
    `SELECT * FROM reviews WHERE tenant_id = $1 AND run_id = $2${lock === 'share' ? ' FOR SHARE' : lock === 'update' ? ' FOR UPDATE' : ''}`,
    [tenantId, runId],
  );
  return rows[0];
}

export async function listReviewRows(client: PoolClient, filter: { tenantId?: string; runId?: string }): Promise<ReviewRow[]> {
  const { rows } = await client.query<ReviewRow>(
    `SELECT * FROM reviews WHERE ($1::uuid IS NULL OR tenant_id = $1) AND ($2::uuid IS NULL OR run_id = $2)
      ORDER BY created_at DESC, tenant_id`,
    [filter.tenantId ?? null, filter.runId ?? null],
  );
  return rows;
}

/**
 * Moves the review to a new state. `from` guards the transition, so a retried activity changes
 * nothing the second time; returns whether it moved.
 */
export async function setReviewState(
  client: PoolClient,
  tenantId: string,
  runId: string,
  from: readonly ReviewStatus[],
  to: { status: ReviewStatus; stage?: number; closesAt?: string | null; itemCount?: number; round?: number },
): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE reviews SET status = $4, stage = coalesce($5, stage),
       stage_closes_at = CASE WHEN $6 THEN $7::timestamptz ELSE stage_closes_at END,
       item_count = coalesce($8, item_count), round = coalesce($9, round), updated_at = now(),
       completed_at = CASE WHEN $4 = 'completed' THEN now() ELSE completed_at END,
       cancelled_at = CASE WHEN $4 = 'cancelled' THEN now() ELSE cancelled_at END
     WHERE tenant_id = $1 AND run_id = $2 AND status = ANY($3::text[])`,
    [
      tenantId,
      runId,
      from,
      to.status,
      to.stage ?? null,
      to.closesAt !== undefined,
      to.closesAt ?? null,
      to.itemCount ?? null,
      to.round ?? null,
    ],
  );
  return rowCount === 1;
}

/** Moves an open stage's deadline; false when the review is not open at that stage. */
export async function setReviewDeadline(
  client: PoolClient,
  tenantId: string,
  runId: string,
  stage: number,
  closesAt: string,
): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE reviews SET stage_closes_at = $4, updated_at = now() WHERE tenant_id = $1 AND run_id = $2 AND status = 'open' AND stage = $3`,
    [tenantId, runId, stage, closesAt],
  );
  return rowCount === 1;
}

/** Items of a review by outcome (null as `pending`) and by result. */
export async function reviewCounts(
  client: PoolClient,
  tenantId: string,
  runId: string,
): Promise<{ outcomes: Record<string, number>; results: Record<string, number> }> {
  const { rows } = await client.query<{ outcome: string | null; result: string | null; n: number }>(
    `SELECT outcome, result, count(*)::int AS n FROM review_items WHERE tenant_id = $1 AND run_id = $2 GROUP BY outcome, result`,
    [tenantId, runId],
  );
  const outcomes: Record<string, number> = {};
  const results: Record<string, number> = {};
  for (const r of rows) {
    outcomes[r.outcome ?? 'pending'] = (outcomes[r.outcome ?? 'pending'] ?? 0) + r.n;
    if (r.result) results[r.result] = (results[r.result] ?? 0) + r.n;
  }
  return { outcomes, results };
}

// ---------------------------------------------------------------- items

export interface ItemSource {
  type: EntitlementSourceType;
  id: string;
}

export interface NewItem {
  id: string;
  subject_id: string;
  subject_status: string;
  role: string;
  privileged: boolean;
  sources: ItemSource[];
  last_activity_at: string | null;
  break_glass: boolean;
  service_account: boolean;
  recommendation: ReviewDecision;
  recommendation_reason: string;
}

/** Stores a batch of items; ids are derived from (run, subject, role), so a retried batch inserts nothing new. */
export async function insertItems(client: PoolClient, tenantId: string, runId: string, items: readonly NewItem[]): Promise<number> {
  const { rowCount } = await client.query(
    `INSERT INTO review_items (tenant_id, id, run_id, subject_id, subject_status, role, privileged, sources, last_activity_at,
                               break_glass, service_account, recommendation, recommendation_reason)
     SELECT $1, x.id, $2, x.subject_id, x.subject_status, x.role, x.privileged, x.sources, x.last_activity_at, x.break_glass,
            coalesce(x.service_account, false), x.recommendation, x.recommendation_reason
       FROM jsonb_to_recordset($3::jsonb) AS x(id uuid, subject_id text, subject_status text, role text, privileged boolean,
            sources jsonb, last_activity_at timestamptz, break_glass boolean, service_account boolean, recommendation text,
            recommendation_reason text)
     ON CONFLICT DO NOTHING`,
    [tenantId, runId, JSON.stringify(items)],
  );
  return rowCount ?? 0;
}

export interface NewAssignment {
  item_id: string;
  stage: number;
  reviewer_id: string;
  via: string;
}

export async function insertAssignments(client: PoolClient, tenantId: string, assignments: readonly NewAssignment[]): Promise<void> {
  if (assignments.length === 0) return;
  await client.query(
    `INSERT INTO review_assignments (tenant_id, item_id, stage, reviewer_id, via)
     SELECT $1, x.item_id, x.stage, x.reviewer_id, x.via
       FROM jsonb_to_recordset($2::jsonb) AS x(item_id uuid, stage int, reviewer_id uuid, via text)
     ON CONFLICT DO NOTHING`,
    [tenantId, JSON.stringify(assignments)],
  );
}

export async function countItems(client: PoolClient, tenantId: string, runId: string): Promise<number> {
  const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM review_items WHERE tenant_id = $1 AND run_id = $2', [
    tenantId,
    runId,
  ]);
  return rows[0]!.n;
}

export interface ItemRow {
  tenant_id: string;
  id: string;
  run_id: string;
  subject_id: string;
  subject_status: string;
  role: string;
  privileged: boolean;
  sources: ItemSource[];
  last_activity_at: Date | null;
  break_glass: boolean;
  service_account: boolean;
  recommendation: ReviewDecision;
  recommendation_reason: string;
  stage: number;
  outcome: ItemOutcome | null;
  outcome_by: 'decision' | 'non_response' | null;
  outcome_reason: string | null;
  result: ItemResult | null;
  result_detail: Record<string, unknown> | null;
  result_at: Date | null;
  /** What a remediation attempt set out to do, written before it touched anything (see setRemediationAttempt). */
  remediation_attempt: RemediationAttempt | null;
  created_at: Date;
}

/** A grant's revoke or the removal of unrecorded access an attempt was about to make, and when. */
export interface RemediationAttempt {
  at: string;
  /** The sources it revoked, as its result's `ended` names them (`grant:<id>`). */
  ended: string[];
  /** It removed access no source explained from the target. */
  removedFromTarget: boolean;
}

export interface ItemListFilter {
  /** Only items waiting for this reviewer at their current stage, in an open review. */
  assignedTo?: string;
  /** The caller whose own decision is shown with each item. */
  viewer: string;
  runId?: string;
  role?: string;
  subjectId?: string;
  recommendation?: ReviewDecision;
  decided?: boolean;
  afterId?: string;
  limit: number;
}

export async function listItemRows(
  client: PoolClient,
  tenantId: string,
  f: ItemListFilter,
): Promise<(ItemRow & { my_decision: ReviewDecision | null })[]> {
  const { rows } = await client.query<ItemRow & { my_decision: ReviewDecision | null }>(
    `SELECT i.*, d.decision AS my_decision FROM review_items i
       LEFT JOIN review_decisions d ON d.tenant_id = i.tenant_id AND d.item_id = i.id AND d.stage = i.stage AND d.reviewer_id::text = $2
      WHERE i.tenant_id = $1
        AND ($3::text IS NULL OR (i.outcome IS NULL
             AND EXISTS (SELECT 1 FROM review_assignments a WHERE a.tenant_id = i.tenant_id AND a.item_id = i.id AND a.stage = i.stage
                                                           AND a.reviewer_id::text = $3 AND a.removed_at IS NULL)
             AND EXISTS (SELECT 1 FROM reviews r WHERE r.tenant_id = i.tenant_id AND r.run_id = i.run_id AND r.status = 'open'
                                                AND r.stage = i.stage)))
        AND ($4::uuid IS NULL OR i.run_id = $4) AND ($5::text IS NULL OR i.role = $5) AND ($6::text IS NULL OR i.subject_id = $6)
        AND ($7::text IS NULL OR i.recommendation = $7)
        AND ($8::boolean IS NULL OR (d.decision IS NOT NULL) = $8)
        AND ($9::uuid IS NULL OR i.id > $9)
      ORDER BY i.id LIMIT $10`,
    [
      tenantId,
      f.viewer,
      f.assignedTo ?? null,
      f.runId ?? null,
      f.role ?? null,
      f.subjectId ?? null,
      f.recommendation ?? null,
      f.decided ?? null,
      f.afterId ?? null,
      f.limit,
    ],
  );
  return rows;
}

/** The named items with whether `reviewerId` is assigned at their current stage; locks nothing. */
export async function itemsForDecision(
  client: PoolClient,
  tenantId: string,
  itemIds: readonly string[],
  reviewerId: string,
): Promise<(Pick<ItemRow, 'id' | 'run_id' | 'stage' | 'outcome' | 'recommendation'> & { assigned: boolean })[]> {
  const { rows } = await client.query<Pick<ItemRow, 'id' | 'run_id' | 'stage' | 'outcome' | 'recommendation'> & { assigned: boolean }>(
    `SELECT i.id, i.run_id, i.stage, i.outcome, i.recommendation,
            EXISTS (SELECT 1 FROM review_assignments a WHERE a.tenant_id = i.tenant_id AND a.item_id = i.id AND a.stage = i.stage
                                                      AND a.reviewer_id = $3::uuid AND a.removed_at IS NULL) AS assigned
       FROM review_items i WHERE i.tenant_id = $1 AND i.id = ANY($2::uuid[])`,
    [tenantId, itemIds, reviewerId],
  );
  return rows;
}

// First key of the two-key advisory lock form, so these locks never meet single-key ones or another
// feature's (the ledger's 'TNLG', template starts' 'TNTS'): 'TNRD' as int4.
const DECISIONS_LOCK_NAMESPACE = 0x544e5244;

/**
 * Serialises one reviewer's decision calls in a tenant until the transaction ends: each then reads
 * what the one before it wrote, so every audited change names the decision it really replaced, and
 * two overlapping bulk calls cannot deadlock on each other's rows. Different reviewers never wait
 * (their decisions are different rows). A hash collision only makes two reviewers wait.
 */
export async function lockReviewerDecisions(client: PoolClient, tenantId: string, reviewerId: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [DECISIONS_LOCK_NAMESPACE, JSON.stringify([tenantId, reviewerId])]);
}

export interface DecisionWrite {
  item_id: string;
  stage: number;
  decision: ReviewDecision;
  justification: string | null;
}

/**
 * Records each decision as the reviewer's current one; the last wins. Returns the ones that
 * changed something (new, or another decision or justification), with what they replaced.
 */
export async function upsertDecisions(
  client: PoolClient,
  tenantId: string,
  reviewerId: string,
  decisions: readonly DecisionWrite[],
): Promise<{ item_id: string; previous: ReviewDecision | null }[]> {
  const { rows } = await client.query<{ item_id: string; previous: ReviewDecision | null }>(
    `WITH input AS (
       SELECT x.* FROM jsonb_to_recordset($3::jsonb) AS x(item_id uuid, stage int, decision text, justification text)),
     before AS (
       SELECT d.item_id, d.decision FROM review_decisions d JOIN input i ON i.item_id = d.item_id AND i.stage = d.stage
        WHERE d.tenant_id = $1 AND d.reviewer_id = $2::uuid),
     written AS (
       INSERT INTO review_decisions AS d (tenant_id, item_id, stage, reviewer_id, decision, justification)
       SELECT $1, i.item_id, i.stage, $2::uuid, i.decision, i.justification FROM input i ORDER BY i.item_id
       ON CONFLICT (tenant_id, item_id, stage, reviewer_id) DO UPDATE
         SET decision = EXCLUDED.decision, justification = EXCLUDED.justification, decided_at = now(), changes = d.changes + 1
         WHERE (d.decision, d.justification) IS DISTINCT FROM (EXCLUDED.decision, EXCLUDED.justification)
       RETURNING d.item_id)
     SELECT w.item_id, b.decision AS previous FROM written w LEFT JOIN before b ON b.item_id = w.item_id`,
    [tenantId, reviewerId, JSON.stringify(decisions)],
  );
  return rows;
}

export interface StageItem {
  id: string;
  subject_id: string;
  role: string;
  privileged: boolean;
  subject_status: string;
  break_glass: boolean;
  recommendation: ReviewDecision;
  recommendation_reason: string;
  sources: ItemSource[];
  /** Assigned reviewers at the stage. */
  reviewers: string[];
  /** Current decisions at the stage, first decided first. */
  decisions: { reviewer_id: string; decision: ReviewDecision; first_at: Date }[];
}

/** Items still undecided at `stage`, with their reviewers and decisions there. */
export async function stageItems(client: PoolClient, tenantId: string, runId: string, stage: number): Promise<StageItem[]> {
  const { rows } = await client.query<StageItem>(
    `SELECT i.id, i.subject_id, i.role, i.privileged, i.subject_status, i.break_glass, i.recommendation, i.recommendation_reason, i.sources,
            coalesce((SELECT array_agg(a.reviewer_id::text) FROM review_assignments a
                       WHERE a.tenant_id = i.tenant_id AND a.item_id = i.id AND a.stage = $3 AND a.removed_at IS NULL), '{}') AS reviewers,
            coalesce((SELECT jsonb_agg(jsonb_build_object('reviewer_id', d.reviewer_id, 'decision', d.decision, 'first_at', d.first_at)
                                       ORDER BY d.first_at, d.reviewer_id)
                        FROM review_decisions d WHERE d.tenant_id = i.tenant_id AND d.item_id = i.id AND d.stage = $3), '[]') AS decisions
       FROM review_items i WHERE i.tenant_id = $1 AND i.run_id = $2 AND i.stage = $3 AND i.outcome IS NULL ORDER BY i.id`,
    [tenantId, runId, stage],
  );
  return rows;
}

export interface OutcomeWrite {
  id: string;
  outcome: ItemOutcome;
  outcome_by: 'decision' | 'non_response';
  outcome_reason: string;
  /** kept or held: final at once; null for a revoke still to apply. */
  result: ItemResult | null;
  result_detail: Record<string, unknown> | null;
}

/** Sets outcomes on items still without one (a retried close changes nothing twice). */
export async function setOutcomes(client: PoolClient, tenantId: string, outcomes: readonly OutcomeWrite[]): Promise<number> {
  if (outcomes.length === 0) return 0;
  const { rowCount } = await client.query(
    `UPDATE review_items i SET outcome = x.outcome, outcome_by = x.outcome_by, outcome_reason = x.outcome_reason,
       result = x.result, result_detail = x.result_detail, result_at = CASE WHEN x.result IS NULL THEN NULL ELSE now() END
       FROM jsonb_to_recordset($2::jsonb) AS x(id uuid, outcome text, outcome_by text, outcome_reason text, result text, result_detail jsonb)
      WHERE i.tenant_id = $1 AND i.id = x.id AND i.outcome IS NULL`,
    [tenantId, JSON.stringify(outcomes)],
  );
  return rowCount ?? 0;
}

/** Moves undecided items of `stage` on to the next one. */
export async function advanceItems(client: PoolClient, tenantId: string, itemIds: readonly string[], stage: number): Promise<void> {
  if (itemIds.length === 0) return;
  await client.query(
    'UPDATE review_items SET stage = $3 + 1 WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND stage = $3 AND outcome IS NULL',
    [tenantId, itemIds, stage],
  );
}

/** Items of a run whose revocation waits for a birthright rule to change (the rule is in result_detail.rules). */
export async function ruleChangeItems(client: PoolClient, tenantId: string, runId: string): Promise<ItemRow[]> {
  const { rows } = await client.query<ItemRow>(
    `SELECT * FROM review_items WHERE tenant_id = $1 AND run_id = $2 AND result = 'needs_rule_change' ORDER BY id`,
    [tenantId, runId],
  );
  return rows;
}

/** Revocations still to apply or confirm, oldest first. */
export async function pendingRevocations(client: PoolClient, tenantId: string, runId: string, limit: number): Promise<ItemRow[]> {
  const { rows } = await client.query<ItemRow>(
    `SELECT * FROM review_items WHERE tenant_id = $1 AND run_id = $2 AND outcome = 'revoke' AND (result IS NULL OR result = 'retrying')
      ORDER BY id LIMIT $3`,
    [tenantId, runId, limit],
  );
  return rows;
}

export async function countPendingRevocations(client: PoolClient, tenantId: string, runId: string): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM review_items
      WHERE tenant_id = $1 AND run_id = $2 AND outcome = 'revoke' AND (result IS NULL OR result = 'retrying')`,
    [tenantId, runId],
  );
  return rows[0]!.n;
}

/**
 * Records, in a transaction of its own and before the target is touched, what a remediation
 * attempt is about to do that leaves no trace of this review in the ledger (a grant's revoke, the
 * removal of unrecorded access): a retry after it did so but died before writing the result then
 * knows the access is gone by its own hand. Only while the item awaits its result.
 */
export async function setRemediationAttempt(
  client: PoolClient,
  tenantId: string,
  itemId: string,
  attempt: RemediationAttempt,
): Promise<void> {
  await client.query(
    `UPDATE review_items SET remediation_attempt = $3
      WHERE tenant_id = $1 AND id = $2 AND outcome = 'revoke' AND (result IS NULL OR result = 'retrying')`,
    [tenantId, itemId, JSON.stringify(attempt)],
  );
}

/** Records an item's applied result; false (nothing written) when it already had this one. */
export async function setItemResult(
  client: PoolClient,
  tenantId: string,
  itemId: string,
  result: ItemResult,
  detail: Record<string, unknown>,
): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE review_items SET result = $3, result_detail = $4, result_at = now()
      WHERE tenant_id = $1 AND id = $2 AND outcome = 'revoke' AND result IS DISTINCT FROM $3
        AND (result IS NULL OR result = 'retrying')`,
    [tenantId, itemId, result, JSON.stringify(detail)],
  );
  return rowCount === 1;
}

// ---------------------------------------------------------------- assignments and notices

/** Adds assignments, or gives a removed one back (a reassignment returning to a reviewer). */
export async function restoreAssignments(client: PoolClient, tenantId: string, assignments: readonly NewAssignment[]): Promise<void> {
  if (assignments.length === 0) return;
  await client.query(
    `INSERT INTO review_assignments AS a (tenant_id, item_id, stage, reviewer_id, via)
     SELECT $1, x.item_id, x.stage, x.reviewer_id, x.via
       FROM jsonb_to_recordset($2::jsonb) AS x(item_id uuid, stage int, reviewer_id uuid, via text)
     ON CONFLICT (tenant_id, item_id, stage, reviewer_id) DO UPDATE
       SET removed_at = NULL, removed_by = NULL, via = EXCLUDED.via, assigned_at = now()
       WHERE a.removed_at IS NOT NULL`,
    [tenantId, JSON.stringify(assignments)],
  );
}

/** Ends the active assignments of `reviewerIds` (every reviewer when null) on the items at `stage`. */
export async function removeAssignments(
  client: PoolClient,
  tenantId: string,
  stage: number,
  itemIds: readonly string[],
  reviewerIds: readonly string[] | null,
  removedBy: string,
): Promise<number> {
  if (itemIds.length === 0) return 0;
  const { rowCount } = await client.query(
    `UPDATE review_assignments SET removed_at = now(), removed_by = $5
      WHERE tenant_id = $1 AND stage = $2 AND item_id = ANY($3::uuid[]) AND removed_at IS NULL
        AND ($4::uuid[] IS NULL OR reviewer_id = ANY($4::uuid[]))`,
    [tenantId, stage, itemIds, reviewerIds, removedBy],
  );
  return rowCount ?? 0;
}

/** Undecided items at the open `stage` assigned to `reviewerId`, with whether that reviewer has decided them. */
export async function assignedItems(
  client: PoolClient,
  tenantId: string,
  runId: string,
  stage: number,
  reviewerId: string,
  itemIds: readonly string[] | null,
): Promise<{ id: string; subject_id: string; decided: boolean }[]> {
  const { rows } = await client.query<{ id: string; subject_id: string; decided: boolean }>(
    `SELECT i.id, i.subject_id,
            EXISTS (SELECT 1 FROM review_decisions d WHERE d.tenant_id = i.tenant_id AND d.item_id = i.id AND d.stage = i.stage
                                                     AND d.reviewer_id = $4::uuid) AS decided
       FROM review_items i JOIN review_assignments a ON a.tenant_id = i.tenant_id AND a.item_id = i.id AND a.stage = i.stage
      WHERE i.tenant_id = $1 AND i.run_id = $2 AND i.stage = $3 AND i.outcome IS NULL AND a.reviewer_id = $4::uuid
        AND a.removed_at IS NULL AND ($5::uuid[] IS NULL OR i.id = ANY($5::uuid[]))
      ORDER BY i.id`,
    [tenantId, runId, stage, reviewerId, itemIds],
  );
  return rows;
}

/** Items at `stage` nobody has answered yet, with their active reviewers: what an escalation looks at. */
export async function unansweredItems(
  client: PoolClient,
  tenantId: string,
  runId: string,
  stage: number,
): Promise<{ id: string; subject_id: string; reviewers: string[] }[]> {
  const { rows } = await client.query<{ id: string; subject_id: string; reviewers: string[] }>(
    `SELECT i.id, i.subject_id,
            coalesce((SELECT array_agg(a.reviewer_id::text ORDER BY a.reviewer_id) FROM review_assignments a
                       WHERE a.tenant_id = i.tenant_id AND a.item_id = i.id AND a.stage = i.stage AND a.removed_at IS NULL), '{}') AS reviewers
       FROM review_items i
      WHERE i.tenant_id = $1 AND i.run_id = $2 AND i.stage = $3 AND i.outcome IS NULL
        AND NOT EXISTS (SELECT 1 FROM review_decisions d WHERE d.tenant_id = i.tenant_id AND d.item_id = i.id AND d.stage = i.stage)
      ORDER BY i.id`,
    [tenantId, runId, stage],
  );
  return rows;
}

/** Per reviewer, the items at `stage` still waiting for their own decision (only `reviewerIds` when given). */
export async function waitingReviewers(
  client: PoolClient,
  tenantId: string,
  runId: string,
  stage: number,
  reviewerIds: readonly string[] | null,
): Promise<{ reviewer_id: string; items: number }[]> {
  const { rows } = await client.query<{ reviewer_id: string; items: number }>(
    `SELECT a.reviewer_id::text AS reviewer_id, count(*)::int AS items
       FROM review_assignments a JOIN review_items i ON i.tenant_id = a.tenant_id AND i.id = a.item_id AND i.stage = a.stage
      WHERE a.tenant_id = $1 AND i.run_id = $2 AND a.stage = $3 AND a.removed_at IS NULL AND i.outcome IS NULL
        AND ($4::uuid[] IS NULL OR a.reviewer_id = ANY($4::uuid[]))
        AND NOT EXISTS (SELECT 1 FROM review_decisions d WHERE d.tenant_id = a.tenant_id AND d.item_id = a.item_id AND d.stage = a.stage
                                                         AND d.reviewer_id = a.reviewer_id)
      GROUP BY a.reviewer_id ORDER BY a.reviewer_id`,
    [tenantId, runId, stage, reviewerIds],
  );
  return rows;
}

export interface NoticeRow {
  tenant_id: string;
  id: string;
  event_id: string;
  run_id: string;
  stage: number;
  reviewer_id: string;
  kind: ReviewNoticeKind;
  items: number;
  closes_at: Date | null;
  actor_id: string;
  created_at: Date;
}

/** Stores notices once (their ids are derived from the event that wrote them); answers those new. */
export async function insertNotices(
  client: PoolClient,
  tenantId: string,
  notices: readonly Omit<NoticeRow, 'tenant_id' | 'created_at' | 'closes_at'>[],
  closesAt: string | null,
): Promise<string[]> {
  if (notices.length === 0) return [];
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO review_notices (tenant_id, id, event_id, run_id, stage, reviewer_id, kind, items, closes_at, actor_id)
     SELECT $1, x.id, x.event_id, x.run_id, x.stage, x.reviewer_id, x.kind, x.items, $3::timestamptz, x.actor_id
       FROM jsonb_to_recordset($2::jsonb)
         AS x(id uuid, event_id uuid, run_id uuid, stage int, reviewer_id uuid, kind text, items int, actor_id text)
     ON CONFLICT DO NOTHING RETURNING id`,
    [tenantId, JSON.stringify(notices), closesAt],
  );
  return rows.map((r) => r.id);
}

/** The notices one workflow event wrote (a retried activity answers them again). */
export async function noticesOfEvent(client: PoolClient, tenantId: string, eventId: string): Promise<NoticeRow[]> {
  const { rows } = await client.query<NoticeRow>('SELECT * FROM review_notices WHERE tenant_id = $1 AND event_id = $2 ORDER BY id', [
    tenantId,
    eventId,
  ]);
  return rows;
}

export async function noticesById(client: PoolClient, tenantId: string, ids: readonly string[]): Promise<NoticeRow[]> {
  const { rows } = await client.query<NoticeRow>('SELECT * FROM review_notices WHERE tenant_id = $1 AND id = ANY($2::uuid[]) ORDER BY id', [
    tenantId,
    ids,
  ]);
  return rows;
}

/** A reviewer's newest notices of reviews still open (the inbox shows them beside the items). */
export async function inboxNotices(client: PoolClient, tenantId: string, reviewerId: string, runId: string | null): Promise<NoticeRow[]> {
  const { rows } = await client.query<NoticeRow>(
    `SELECT n.* FROM review_notices n JOIN reviews r ON r.tenant_id = n.tenant_id AND r.run_id = n.run_id AND r.status = 'open'
      WHERE n.tenant_id = $1 AND n.reviewer_id::text = $2 AND ($3::uuid IS NULL OR n.run_id = $3)
      ORDER BY n.created_at DESC, n.id LIMIT 50`,
    [tenantId, reviewerId, runId],
  );
  return rows;
}

// ---------------------------------------------------------------- reviewers

export interface ReviewerCandidate {
  id: string;
  email: string | null;
  role: 'tenant_reviewer' | 'tenant_approver';
}

/**
 * Active members of the tenant's own staff (never MSP staff) bound in that tenant as reviewer
 * or approver. Actors are identity data: read in the MSP scope.
 */
export async function actorEmails(client: PoolClient, actorIds: readonly string[]): Promise<Map<string, string | null>> {
  const { rows } = await client.query<{ id: string; email: string | null }>(
    'SELECT id::text AS id, email FROM actors WHERE id::text = ANY($1::text[])',
    [actorIds],
  );
  return new Map(rows.map((r) => [r.id, r.email]));
}

export async function reviewerCandidates(client: PoolClient, tenantId: string): Promise<ReviewerCandidate[]> {
  const { rows } = await client.query<ReviewerCandidate>(
    `SELECT a.id::text AS id, a.email, b.role FROM actors a JOIN role_bindings b ON b.actor_id = a.id
      WHERE a.status = 'active' AND a.kind <> 'msp_staff' AND b.tenant_id = $1 AND b.role IN ('tenant_reviewer', 'tenant_approver')
      ORDER BY a.id, b.role`,
    [tenantId],
  );
  return rows;
}

// ---------------------------------------------------------------- reports

export interface ReportSource {
  items: ItemRow[];
  decisions: {
    item_id: string;
    stage: number;
    reviewer_id: string;
    decision: string;
    justification: string | null;
    decided_at: Date;
    changes: number;
  }[];
  assignments: { reviewer_id: string; stage: number; via: string; items: number }[];
}

/** Everything a review's report is made of, in a stable order. */
export async function reportSource(client: PoolClient, tenantId: string, runId: string): Promise<ReportSource> {
  const items = await client.query<ItemRow>('SELECT * FROM review_items WHERE tenant_id = $1 AND run_id = $2 ORDER BY id', [
    tenantId,
    runId,
  ]);
  const decisions = await client.query<ReportSource['decisions'][number]>(
    `SELECT d.item_id, d.stage, d.reviewer_id::text AS reviewer_id, d.decision, d.justification, d.decided_at, d.changes
       FROM review_decisions d JOIN review_items i ON i.tenant_id = d.tenant_id AND i.id = d.item_id
      WHERE d.tenant_id = $1 AND i.run_id = $2 ORDER BY d.item_id, d.stage, d.first_at, d.reviewer_id`,
    [tenantId, runId],
  );
  const assignments = await client.query<ReportSource['assignments'][number]>(
    `SELECT a.reviewer_id::text AS reviewer_id, a.stage, a.via, count(*)::int AS items
       FROM review_assignments a JOIN review_items i ON i.tenant_id = a.tenant_id AND i.id = a.item_id
      WHERE a.tenant_id = $1 AND i.run_id = $2 GROUP BY a.reviewer_id, a.stage, a.via ORDER BY a.stage, a.reviewer_id, a.via`,
    [tenantId, runId],
  );
  return { items: items.rows, decisions: decisions.rows, assignments: assignments.rows };
}

/** The `review.cancelled` event of a review in the tenant's chain: who cancelled it, on what authority, when, what was settled. */
export async function reviewCancelledEvent(
  client: PoolClient,
  tenantId: string,
  runId: string,
): Promise<{ actor_id: string; authority: Record<string, unknown>; payload: Record<string, unknown>; occurred_at: Date } | undefined> {
  const { rows } = await client.query<{
    actor_id: string;
    authority: Record<string, unknown>;
    payload: Record<string, unknown>;
    occurred_at: Date;
  }>(
    `SELECT actor_id, authority, payload, occurred_at FROM audit_events
      WHERE tenant_id = $1 AND target_type = 'review' AND target_id = $2 AND action = 'review.cancelled' ORDER BY seq LIMIT 1`,
    [tenantId, runId],
  );
  return rows[0];
}

/** The `review.report_recorded` event of a review in the tenant's chain (the hash it carries is the report's). */
export async function reportRecordedEvent(
  client: PoolClient,
  tenantId: string,
  runId: string,
): Promise<{ seq: number; occurred_at: Date; hash: string; report_hash: string } | undefined> {
  const { rows } = await client.query<{ seq: number; occurred_at: Date; hash: string; report_hash: string }>(
    `SELECT seq::int AS seq, occurred_at, hash, payload->>'hash' AS report_hash FROM audit_events
      WHERE tenant_id = $1 AND target_id = $2 AND action = 'review.report_recorded' ORDER BY seq LIMIT 1`,
    [tenantId, runId],
  );
  return rows[0];
}

/** Display names of actors (identity data: read in the MSP scope). */
export async function actorDisplayNames(client: PoolClient, actorIds: readonly string[]): Promise<Record<string, string>> {
  const { rows } = await client.query<{ id: string; display_name: string }>(
    'SELECT id::text AS id, display_name FROM actors WHERE id::text = ANY($1::text[])',
    [actorIds],
  );
  return Object.fromEntries(rows.map((r) => [r.id, r.display_name]));
}

/** Stores the report once; a retry keeps the first. */
export async function insertReport(client: PoolClient, tenantId: string, runId: string, report: unknown, hash: string): Promise<void> {
  await client.query('INSERT INTO review_reports (tenant_id, run_id, report, hash) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [
    tenantId,
    runId,
    JSON.stringify(report),
    hash,
  ]);
}

export async function getReport(
  client: PoolClient,
  tenantId: string,
  runId: string,
): Promise<{ report: unknown; hash: string } | undefined> {
  const { rows } = await client.query<{ report: unknown; hash: string }>(
    'SELECT report, hash FROM review_reports WHERE tenant_id = $1 AND run_id = $2',
    [tenantId, runId],
  );
  return rows[0];
}
