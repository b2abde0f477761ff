import type { HrEvent, HrEventReceipt, PersonView } from '../core/lifecycle/contract.js';
import type { PoolClient } from './pool.js';
import type { Reader } from './scope.js';

/**
 * The person read model and the HR event register. Every function runs in the caller's
 * transaction (and scope), so a step's read-model change and its audit event commit together.
 */

export type HrEventStatus = 'received' | 'accepted' | 'applied' | 'superseded' | 'cancelled' | 'rejected';

export interface HrEventRecord {
  eventId: string;
  personId: string;
  type: HrEvent['type'];
  effectiveAt: string;
  body: HrEvent;
  policyVersion: number;
  status: HrEventStatus;
  statusReason: string | null;
  submittedBy: string;
  /** The workflow's first answer, once it gave one. */
  receipt: HrEventReceipt | null;
  receivedAt: string;
  updatedAt: string;
}

interface HrEventRow {
  event_id: string;
  person_id: string;
  type: HrEvent['type'];
  effective_at: Date;
  body: HrEvent;
  body_hash: string;
  policy_version: number;
  status: HrEventStatus;
  status_reason: string | null;
  submitted_by: string;
  receipt: HrEventReceipt | null;
  received_at: Date;
  updated_at: Date;
}

const HR_COLUMNS =
  'event_id, person_id, type, effective_at, body, body_hash, policy_version, status, status_reason, submitted_by, receipt, received_at, updated_at';

function rowToHrEvent(row: HrEventRow): HrEventRecord {
  return {
    eventId: row.event_id,
    personId: row.person_id,
    type: row.type,
    effectiveAt: row.effective_at.toISOString(),
    body: row.body,
    policyVersion: row.policy_version,
    status: row.status,
    statusReason: row.status_reason,
    submittedBy: row.submitted_by,
    receipt: row.receipt,
    receivedAt: row.received_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/**
 * Registers an HR event by its id. Returns `conflict` when the id is already registered with a
 * different body; `created` false when it is a re-send of the same body.
 */
export async function registerHrEvent(
  client: PoolClient,
  tenantId: string,
  input: { event: HrEvent; bodyHash: string; policyVersion: number; submittedBy: string },
): Promise<{ created: boolean; conflict: boolean; record: HrEventRecord }> {
  const { event } = input;
  const inserted = await client.query<HrEventRow>(
    `INSERT INTO hr_events (tenant_id, event_id, person_id, type, effective_at, body, body_hash, policy_version, submitted_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (tenant_id, event_id) DO NOTHING
     RETURNING ${HR_COLUMNS}`,
    [
      tenantId,
      event.eventId,
      event.personId,
      event.type,
      event.effectiveAt,
      JSON.stringify(event),
      input.bodyHash,
      input.policyVersion,
      input.submittedBy,
    ],
  );
  if (inserted.rows[0]) return { created: true, conflict: false, record: rowToHrEvent(inserted.rows[0]) };
  const { rows } = await client.query<HrEventRow>(`SELECT ${HR_COLUMNS} FROM hr_events WHERE tenant_id = $1 AND event_id = $2`, [
    tenantId,
    event.eventId,
  ]);
  const row = rows[0]!;
  return { created: false, conflict: row.body_hash !== input.bodyHash, record: rowToHrEvent(row) };
}

/**
 * Moves an event's status forward; a final status (applied, superseded, cancelled) is never
 * undone. The workflow's receipt is kept the first time one is given.
 */
export async function setHrEventStatus(
  client: PoolClient,
  tenantId: string,
  eventId: string,
  status: HrEventStatus,
  reason: string | null = null,
  receipt: HrEventReceipt | null = null,
): Promise<void> {
  await client.query(
    `UPDATE hr_events SET status = $3, status_reason = $4, receipt = coalesce(receipt, $5::jsonb), updated_at = now()
      WHERE tenant_id = $1 AND event_id = $2 AND status NOT IN ('applied', 'superseded', 'cancelled')`,
    [tenantId, eventId, status, reason, receipt ? JSON.stringify(receipt) : null],
  );
}

/**
 * Takes back a registration the lifecycle refused, so a refusal changes nothing. Only one the
 * workflow never accepted (no receipt): an accepted event that later failed keeps its row.
 */
export async function withdrawHrEvent(client: PoolClient, tenantId: string, eventId: string): Promise<void> {
  await client.query(
    `DELETE FROM hr_events WHERE tenant_id = $1 AND event_id = $2 AND receipt IS NULL AND status IN ('received', 'rejected')`,
    [tenantId, eventId],
  );
}

/**
 * Drops the profile (username, display name, email) from every stored HR event of a person, once
 * the retention period has ended. Idempotent; `body_hash` stays, so a re-send is still recognised.
 */
export async function scrubHrEventProfiles(client: PoolClient, tenantId: string, personId: string): Promise<number> {
  const { rowCount } = await client.query(
    `UPDATE hr_events SET body = body - 'profile', updated_at = now() WHERE tenant_id = $1 AND person_id = $2 AND body ? 'profile'`,
    [tenantId, personId],
  );
  return rowCount ?? 0;
}

export async function listHrEvents(client: PoolClient, tenantId: string, personId: string, limit = 500): Promise<HrEventRecord[]> {
  const { rows } = await client.query<HrEventRow>(
    `SELECT ${HR_COLUMNS} FROM hr_events WHERE tenant_id = $1 AND person_id = $2 ORDER BY received_at, event_id LIMIT $3`,
    [tenantId, personId, limit],
  );
  return rows.map(rowToHrEvent);
}

/** Writes the person's read-model row; an older version never overwrites a newer one. */
export async function upsertPersonRow(client: PoolClient, view: PersonView): Promise<void> {
  await client.query(
    `INSERT INTO people (tenant_id, person_id, workflow_id, status, view, version)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (tenant_id, person_id) DO UPDATE SET
       workflow_id = EXCLUDED.workflow_id, status = EXCLUDED.status, view = EXCLUDED.view, version = EXCLUDED.version, updated_at = now()
     WHERE people.version < EXCLUDED.version
        -- A new workflow for the same person (a rehire after deletion) starts counting again.
        OR (people.status IN ('deleted', 'anonymised') AND EXCLUDED.status NOT IN ('deleted', 'anonymised'))`,
    [view.tenantId, view.personId, view.workflowId, view.status, JSON.stringify(view), view.version],
  );
}

/**
 * Whether the lifecycle has given this person an account before (created, enabled or adopted it),
 * by the audit events its person workflows record then; they outlive the workflows and the read
 * model. A break-glass account made outside Tenure has none.
 */
export async function lifecycleProvisioned(client: PoolClient, tenantId: string, personId: string): Promise<boolean> {
  const { rows } = await client.query<{ provisioned: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM audit_events
        WHERE tenant_id = $1 AND target_type = 'person' AND target_id = $2
          AND action IN ('person.pre_provisioned', 'person.joined', 'person.rehired', 'person.account_adopted')
     ) AS provisioned`,
    [tenantId, personId],
  );
  return rows[0]!.provisioned;
}

/** When the person's first joiner still registered here arrived, if any. */
export async function firstJoinerReceivedAt(client: PoolClient, tenantId: string, personId: string): Promise<Date | undefined> {
  const { rows } = await client.query<{ at: Date | null }>(
    `SELECT min(received_at) AS at FROM hr_events WHERE tenant_id = $1 AND person_id = $2 AND type = 'joiner'`,
    [tenantId, personId],
  );
  return rows[0]?.at ?? undefined;
}

export async function getPersonRow(client: Reader, tenantId: string, personId: string): Promise<PersonView | undefined> {
  const { rows } = await client.query<{ view: PersonView }>('SELECT view FROM people WHERE tenant_id = $1 AND person_id = $2', [
    tenantId,
    personId,
  ]);
  return rows[0]?.view;
}

export async function listPeopleRows(
  client: PoolClient,
  tenantId: string,
  filter: { status?: string; limit: number; afterPersonId?: string; search?: string },
): Promise<PersonView[]> {
  // A substring match (strpos, not LIKE: the caller's % and _ are text, not wildcards).
  const { rows } = await client.query<{ view: PersonView }>(
    `SELECT view FROM people
      WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR person_id > $3)
        AND ($5::text IS NULL OR strpos(lower(concat_ws(' ', person_id, view->'profile'->>'displayName',
                                                         view->'profile'->>'email')), lower($5)) > 0)
      ORDER BY person_id LIMIT $4`,
    [tenantId, filter.status ?? null, filter.afterPersonId ?? null, filter.limit, filter.search ?? null],
  );
  return rows.map((r) => r.view);
}

export interface PersonGrantRef {
  grantId: string;
  role: string;
  status: string;
  endAt: string;
}

/** The person's grants that are not over yet (waiting, scheduled, active or being revoked). */
export async function openGrantsOf(client: Reader, tenantId: string, subjectId: string): Promise<PersonGrantRef[]> {
  const { rows } = await client.query<{ grant_id: string; role: string; status: string; end_at: Date }>(
    `SELECT grant_id, role, status, end_at FROM grants
      WHERE tenant_id = $1 AND subject_id = $2 AND status IN ('pending_approval', 'scheduled', 'active', 'revoking')
      ORDER BY created_at, grant_id`,
    [tenantId, subjectId],
  );
  return rows.map((r) => ({ grantId: r.grant_id, role: r.role, status: r.status, endAt: r.end_at.toISOString() }));
}
