import type { ActionContext } from '../core/audit/context.js';
import type {
  HrEventDisposition,
  HrImportFormat,
  HrImportRowResult,
  HrImportRowStatus,
  HrImportStatus,
  HrImportView,
} from '../core/lifecycle/contract.js';
import type { HrEventBody } from '../core/lifecycle/schemas.js';
import type { PoolClient } from './pool.js';

/**
 * Bulk HR event imports (jobs) and their rows. Every function runs in the caller's transaction
 * and scope; a row's result and the job's counters change in one statement, so progress read
 * back after a crash is exactly the rows that have their result.
 */

/** The column counting each final row status (pending is the rest of rows_total). */
const COUNTERS: Record<Exclude<HrImportRowStatus, 'pending'>, string> = {
  accepted: 'rows_accepted',
  superseded: 'rows_superseded',
  duplicate: 'rows_duplicate',
  invalid: 'rows_invalid',
  rejected: 'rows_rejected',
};

interface ImportRow {
  tenant_id: string;
  import_id: string;
  workflow_id: string;
  format: HrImportFormat;
  status: HrImportStatus;
  policy_version: number;
  submitted_by: string;
  actor: ActionContext['actor'];
  authority: ActionContext['authority'];
  rows_total: number;
  rows_accepted: number;
  rows_superseded: number;
  rows_duplicate: number;
  rows_invalid: number;
  rows_rejected: number;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
}

export interface HrImportRecord extends HrImportView {
  /** Who uploaded it and on what authority: the rows are submitted, and the job audited, as them. */
  context: ActionContext;
}

function rowToImport(row: ImportRow): HrImportRecord {
  const counts = {
    accepted: row.rows_accepted,
    superseded: row.rows_superseded,
    duplicate: row.rows_duplicate,
    invalid: row.rows_invalid,
    rejected: row.rows_rejected,
  };
  const done = Object.values(counts).reduce((sum, n) => sum + n, 0);
  return {
    importId: row.import_id,
    tenantId: row.tenant_id,
    workflowId: row.workflow_id,
    status: row.status,
    format: row.format,
    policyVersion: row.policy_version,
    submittedBy: row.submitted_by,
    total: row.rows_total,
    done,
    failed: counts.invalid + counts.rejected,
    counts: { pending: row.rows_total - done, ...counts },
    createdAt: row.created_at.toISOString(),
    startedAt: row.started_at?.toISOString() ?? null,
    completedAt: row.completed_at?.toISOString() ?? null,
    context: { actor: row.actor, authority: row.authority },
  };
}

const IMPORT_COLUMNS =
  'tenant_id, import_id, workflow_id, format, status, policy_version, submitted_by, actor, authority, rows_total, rows_accepted, ' +
  'rows_superseded, rows_duplicate, rows_invalid, rows_rejected, created_at, started_at, completed_at';

/** A row as stored at upload: pending with its validated event, or invalid with its issues. */
export type NewHrImportRow =
  | { row: number; eventId: string; personId: string; status: 'pending'; body: HrEventBody }
  | { row: number; eventId: string | null; personId: string | null; status: 'invalid'; issues: HrImportRowResult['issues'] };

/** Rows per INSERT statement: keeps each statement's parameters a few megabytes at most. */
const INSERT_CHUNK = 2_000;

/** Stores a new import (queued) and every one of its rows; the invalid ones are counted at once. */
export async function insertHrImport(
  client: PoolClient,
  job: {
    tenantId: string;
    importId: string;
    workflowId: string;
    format: HrImportFormat;
    policyVersion: number;
    context: ActionContext;
    rows: NewHrImportRow[];
    /** The caller's Idempotency-Key and the body's hash, when a key was sent. */
    idempotency?: { key: string; requestHash: string };
  },
): Promise<HrImportRecord> {
  const invalid = job.rows.filter((r) => r.status === 'invalid').length;
  const { rows } = await client.query<ImportRow>(
    `INSERT INTO hr_imports (tenant_id, import_id, workflow_id, format, policy_version, submitted_by, actor, authority, rows_total, rows_invalid,
                             idempotency_key, request_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     RETURNING ${IMPORT_COLUMNS}`,
    [
      job.tenantId,
      job.importId,
      job.workflowId,
      job.format,
      job.policyVersion,
      job.context.actor.id,
      JSON.stringify(job.context.actor),
      JSON.stringify(job.context.authority),
      job.rows.length,
      invalid,
      job.idempotency?.key ?? null,
      job.idempotency?.requestHash ?? null,
    ],
  );
  for (let start = 0; start < job.rows.length; start += INSERT_CHUNK) {
    const chunk = job.rows.slice(start, start + INSERT_CHUNK);
    await client.query(
      `INSERT INTO hr_import_rows (tenant_id, import_id, row_number, event_id, person_id, status, body, issues)
       SELECT $1, $2, r.n, r.event_id, r.person_id, r.status, r.body::jsonb, r.issues::jsonb
         FROM unnest($3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS r(n, event_id, person_id, status, body, issues)`,
      [
        job.tenantId,
        job.importId,
        chunk.map((r) => r.row),
        chunk.map((r) => r.eventId),
        chunk.map((r) => r.personId),
        chunk.map((r) => r.status),
        chunk.map((r) => (r.status === 'pending' ? JSON.stringify(r.body) : null)),
        chunk.map((r) => JSON.stringify(r.status === 'invalid' ? r.issues : [])),
      ],
    );
  }
  return rowToImport(rows[0]!);
}

/** The caller's import made with this Idempotency-Key, with the hash of the body it was made from. */
export async function hrImportByIdempotencyKey(
  client: PoolClient,
  tenantId: string,
  submittedBy: string,
  key: string,
): Promise<{ job: HrImportRecord; requestHash: string } | undefined> {
  const { rows } = await client.query<ImportRow & { request_hash: string }>(
    `SELECT ${IMPORT_COLUMNS}, request_hash FROM hr_imports WHERE tenant_id = $1 AND submitted_by = $2 AND idempotency_key = $3`,
    [tenantId, submittedBy, key],
  );
  return rows[0] && { job: rowToImport(rows[0]), requestHash: rows[0].request_hash };
}

/** Takes back an upload whose workflow could not be started (its rows go with it). */
export async function deleteHrImport(client: PoolClient, tenantId: string, importId: string): Promise<void> {
  await client.query('DELETE FROM hr_imports WHERE tenant_id = $1 AND import_id = $2', [tenantId, importId]);
}

export async function getHrImport(client: PoolClient, tenantId: string, importId: string): Promise<HrImportRecord | undefined> {
  const { rows } = await client.query<ImportRow>(`SELECT ${IMPORT_COLUMNS} FROM hr_imports WHERE tenant_id = $1 AND import_id = $2`, [
    tenantId,
    importId,
  ]);
  return rows[0] && rowToImport(rows[0]);
}

/** The tenant's imports, newest first; `afterImportId` is the last one of the previous page. */
export async function listHrImports(
  client: PoolClient,
  tenantId: string,
  page: { limit: number; afterImportId?: string },
): Promise<HrImportRecord[]> {
  const { rows } = await client.query<ImportRow>(
    `SELECT ${IMPORT_COLUMNS} FROM hr_imports
      WHERE tenant_id = $1
        AND ($2::uuid IS NULL OR (created_at, import_id) < (SELECT created_at, import_id FROM hr_imports WHERE tenant_id = $1 AND import_id = $2))
      ORDER BY created_at DESC, import_id DESC LIMIT $3`,
    [tenantId, page.afterImportId ?? null, page.limit],
  );
  return rows.map(rowToImport);
}

interface ResultRow {
  row_number: number;
  event_id: string | null;
  person_id: string | null;
  status: HrImportRowStatus;
  issues: HrImportRowResult['issues'];
  error: HrImportRowResult['error'];
}

/** Row results in row order after `afterRow`, optionally only those with one of `statuses`. */
export async function listHrImportRows(
  client: PoolClient,
  tenantId: string,
  importId: string,
  page: { limit: number; afterRow?: number; statuses?: readonly HrImportRowStatus[] },
): Promise<HrImportRowResult[]> {
  const { rows } = await client.query<ResultRow>(
    `SELECT row_number, event_id, person_id, status, issues, error FROM hr_import_rows
      WHERE tenant_id = $1 AND import_id = $2 AND row_number > $3 AND ($4::text[] IS NULL OR status = ANY ($4))
      ORDER BY row_number LIMIT $5`,
    [tenantId, importId, page.afterRow ?? 0, page.statuses ?? null, page.limit],
  );
  return rows.map((r) => ({
    row: r.row_number,
    eventId: r.event_id,
    personId: r.person_id,
    status: r.status,
    issues: r.issues,
    error: r.error,
  }));
}

/** The next rows still pending, in row order, with their events. */
export async function pendingHrImportRows(
  client: PoolClient,
  tenantId: string,
  importId: string,
  limit: number,
): Promise<{ row: number; body: HrEventBody }[]> {
  const { rows } = await client.query<{ row_number: number; body: HrEventBody }>(
    `SELECT row_number, body FROM hr_import_rows
      WHERE tenant_id = $1 AND import_id = $2 AND status = 'pending'
      ORDER BY row_number LIMIT $3`,
    [tenantId, importId, limit],
  );
  return rows.map((r) => ({ row: r.row_number, body: r.body }));
}

/** Counts a submission attempt of a pending row; undefined when the row has its result already. */
export async function startHrImportRowAttempt(
  client: PoolClient,
  tenantId: string,
  importId: string,
  row: number,
): Promise<number | undefined> {
  const { rows } = await client.query<{ attempts: number }>(
    `UPDATE hr_import_rows SET attempts = attempts + 1, updated_at = now()
      WHERE tenant_id = $1 AND import_id = $2 AND row_number = $3 AND status = 'pending'
      RETURNING attempts`,
    [tenantId, importId, row],
  );
  return rows[0]?.attempts;
}

/**
 * Writes a pending row's result and counts it on its import, once: a row that has its result
 * already (written by an earlier attempt) is left as it is. A `duplicate` answer to a row that
 * was attempted before is the echo of that earlier attempt, so the row gets `disposition`, what
 * the first attempt was answered. Returns whether this call wrote the result.
 */
export async function recordHrImportRowResult(
  client: PoolClient,
  tenantId: string,
  importId: string,
  result: HrImportRowResult & { status: Exclude<HrImportRowStatus, 'pending'>; disposition?: HrEventDisposition },
): Promise<boolean> {
  const { rows } = await client.query<{ status: Exclude<HrImportRowStatus, 'pending'> }>(
    `UPDATE hr_import_rows
        SET status = CASE WHEN $4 = 'duplicate' AND attempts > 1 AND $5::text IS NOT NULL THEN $5 ELSE $4 END,
            event_id = coalesce($6, event_id), person_id = coalesce($7, person_id),
            issues = $8, error = $9, body = NULL, updated_at = now()
      WHERE tenant_id = $1 AND import_id = $2 AND row_number = $3 AND status = 'pending'
      RETURNING status`,
    [
      tenantId,
      importId,
      result.row,
      result.status,
      result.disposition ?? null,
      result.eventId,
      result.personId,
      JSON.stringify(result.issues),
      result.error ? JSON.stringify(result.error) : null,
    ],
  );
  const written = rows[0]?.status;
  if (!written) return false;
  const column = COUNTERS[written];
  await client.query(`UPDATE hr_imports SET ${column} = ${column} + 1, updated_at = now() WHERE tenant_id = $1 AND import_id = $2`, [
    tenantId,
    importId,
  ]);
  return true;
}

/** Marks a queued import running; false when it was under way already. */
export async function markHrImportRunning(client: PoolClient, tenantId: string, importId: string): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE hr_imports SET status = 'running', started_at = now(), updated_at = now()
      WHERE tenant_id = $1 AND import_id = $2 AND status = 'queued'`,
    [tenantId, importId],
  );
  return rowCount === 1;
}

/** Marks an import completed; false when it was completed already. */
export async function markHrImportCompleted(client: PoolClient, tenantId: string, importId: string): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE hr_imports SET status = 'completed', completed_at = now(), updated_at = now()
      WHERE tenant_id = $1 AND import_id = $2 AND status <> 'completed'`,
    [tenantId, importId],
  );
  return rowCount === 1;
}
