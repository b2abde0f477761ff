import type { GrantInput, GrantView } from '../core/grants/contract.js';
import type { PoolClient } from './pool.js';
import type { Reader } from './scope.js';

/** Writes the grant's read-model row; the newest version wins, so a replayed older event changes nothing. */
export async function upsertGrantRow(
  client: PoolClient,
  view: GrantView,
  extra: { idempotencyKey?: string | null; requestHash?: string | null; requestInput?: GrantInput } = {},
): Promise<void> {
  // A new request stores its workflow input in the same statement (a row inserted by a workflow has none).
  await client.query(
    `INSERT INTO grants (tenant_id, grant_id, workflow_id, subject_id, role, requester_id, status, end_reason, start_at, end_at,
                         activated_at, ended_at, revocation_verified_at, policy_version, view, version, idempotency_key, request_hash,
                         request_input)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
     ON CONFLICT (tenant_id, grant_id) DO UPDATE SET
       status = EXCLUDED.status, end_reason = EXCLUDED.end_reason, start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at,
       activated_at = EXCLUDED.activated_at, ended_at = EXCLUDED.ended_at, revocation_verified_at = EXCLUDED.revocation_verified_at,
       view = EXCLUDED.view, version = EXCLUDED.version, updated_at = now()
     WHERE grants.version < EXCLUDED.version`,
    [
      view.tenantId,
      view.grantId,
      view.workflowId,
      view.subjectId,
      view.role,
      view.requesterId,
      view.status,
      view.endReason,
      view.startAt,
      view.endAt,
      view.activatedAt,
      view.endedAt,
      view.revocationVerifiedAt,
      view.policyVersion,
      JSON.stringify(view),
      view.version,
      extra.idempotencyKey ?? null,
      extra.requestHash ?? null,
      extra.requestInput ? JSON.stringify(extra.requestInput) : null,
    ],
  );
}

/** The workflow input a request was stored with, so a retried start starts the same thing. */
export async function requestInputOf(client: PoolClient, tenantId: string, grantId: string): Promise<GrantInput | undefined> {
  const { rows } = await client.query<{ request_input: GrantInput }>(
    'SELECT request_input FROM grants WHERE tenant_id = $1 AND grant_id = $2',
    [tenantId, grantId],
  );
  return rows[0]?.request_input;
}

/** Takes back a request no workflow has written to yet (version 0). */
export async function deleteUnstartedGrant(client: PoolClient, tenantId: string, grantId: string): Promise<void> {
  await client.query('DELETE FROM grants WHERE tenant_id = $1 AND grant_id = $2 AND version = 0', [tenantId, grantId]);
}

export async function grantByIdempotencyKey(
  client: PoolClient,
  tenantId: string,
  requesterId: string,
  key: string,
): Promise<{ view: GrantView; request_hash: string } | undefined> {
  const { rows } = await client.query<{ view: GrantView; request_hash: string }>(
    'SELECT view, request_hash FROM grants WHERE tenant_id = $1 AND requester_id = $2 AND idempotency_key = $3',
    [tenantId, requesterId, key],
  );
  return rows[0];
}

export async function grantViewOf(client: Reader, tenantId: string, grantId: string): Promise<GrantView | undefined> {
  const { rows } = await client.query<{ view: GrantView }>('SELECT view FROM grants WHERE tenant_id = $1 AND grant_id = $2', [
    tenantId,
    grantId,
  ]);
  return rows[0]?.view;
}

export interface GrantRowFilter {
  status?: string;
  subjectId?: string;
  role?: string;
  requesterId?: string;
  expiringBefore?: string;
  /** Keyset position: rows strictly before it, newest first. */
  after?: { createdAt: string; grantId: string };
  limit: number;
}

export async function listGrantRows(
  client: Reader,
  tenantId: string,
  filter: GrantRowFilter,
): Promise<{ view: GrantView; created_at: Date; grant_id: string }[]> {
  const { rows } = await client.query<{ view: GrantView; created_at: Date; grant_id: string }>(
    `SELECT view, created_at, grant_id FROM grants
      WHERE tenant_id = $1
        AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR subject_id = $3) AND ($4::text IS NULL OR role = $4)
        AND ($5::timestamptz IS NULL OR (end_at < $5 AND status IN ('scheduled', 'active')))
        AND ($6::timestamptz IS NULL OR (created_at, grant_id) < ($6, $7::uuid))
        AND ($9::uuid IS NULL OR requester_id = $9)
      ORDER BY created_at DESC, grant_id DESC LIMIT $8`,
    [
      tenantId,
      filter.status ?? null,
      filter.subjectId ?? null,
      filter.role ?? null,
      filter.expiringBefore ?? null,
      filter.after?.createdAt ?? null,
      filter.after?.grantId ?? null,
      filter.limit,
      filter.requesterId ?? null,
    ],
  );
  return rows;
}

// ---------------------------------------------------------------- webhook deliveries

/** Registers the delivery of one event (once); says whether it was already delivered. */
export async function claimWebhookDelivery(
  client: PoolClient,
  tenantId: string,
  eventId: string,
  url: string,
): Promise<{ delivered: boolean }> {
  const { rows } = await client.query<{ status: string }>(
    `INSERT INTO webhook_deliveries (tenant_id, event_id, url, status) VALUES ($1, $2, $3, 'pending')
     ON CONFLICT (tenant_id, event_id) DO UPDATE SET attempts = webhook_deliveries.attempts RETURNING status`,
    [tenantId, eventId, url],
  );
  return { delivered: rows[0]!.status === 'delivered' };
}

/** Counts an attempt; no error means delivered. */
export async function recordWebhookAttempt(client: PoolClient, tenantId: string, eventId: string, error: string | null): Promise<void> {
  await client.query(
    `UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $3,
       status = CASE WHEN $3::text IS NULL THEN 'delivered' ELSE 'pending' END,
       delivered_at = CASE WHEN $3::text IS NULL THEN now() ELSE NULL END
     WHERE tenant_id = $1 AND event_id = $2`,
    [tenantId, eventId, error],
  );
}
