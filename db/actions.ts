import type { ActionInput, ActionView } from '../core/actions/contract.js';
import type { PoolClient } from './pool.js';

/** Writes the action's read-model row; the newest version wins, so a replayed older event changes nothing. */
export async function upsertActionRow(
  client: PoolClient,
  view: ActionView,
  extra: { idempotencyKey?: string | null; requestHash?: string | null; input?: ActionInput } = {},
): Promise<void> {
  await client.query(
    `INSERT INTO remote_actions (tenant_id, action_id, workflow_id, action, subject_id, requester_id, status, policy_version,
                                 view, version, idempotency_key, request_hash, request_input)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
     ON CONFLICT (tenant_id, action_id) DO UPDATE SET
       status = EXCLUDED.status, view = EXCLUDED.view, version = EXCLUDED.version, updated_at = now()
     WHERE remote_actions.version < EXCLUDED.version`,
    [
      view.tenantId,
      view.actionId,
      view.workflowId,
      view.action,
      view.subjectId,
      view.requesterId,
      view.status,
      view.policyVersion,
      JSON.stringify(view),
      view.version,
      extra.idempotencyKey ?? null,
      extra.requestHash ?? null,
      extra.input ? JSON.stringify(extra.input) : null,
    ],
  );
}

/** The workflow input a request was stored with, so a retried start starts the same thing. */
export async function actionRequestInput(client: PoolClient, tenantId: string, actionId: string): Promise<ActionInput | undefined> {
  const { rows } = await client.query<{ request_input: ActionInput }>(
    'SELECT request_input FROM remote_actions WHERE tenant_id = $1 AND action_id = $2',
    [tenantId, actionId],
  );
  return rows[0]?.request_input;
}

/** Takes back a request no workflow has written to yet (version 0). */
export async function deleteUnstartedAction(client: PoolClient, tenantId: string, actionId: string): Promise<void> {
  await client.query('DELETE FROM remote_actions WHERE tenant_id = $1 AND action_id = $2 AND version = 0', [tenantId, actionId]);
}

export async function actionByIdempotencyKey(
  client: PoolClient,
  tenantId: string,
  requesterId: string,
  key: string,
): Promise<{ view: ActionView; request_hash: string } | undefined> {
  const { rows } = await client.query<{ view: ActionView; request_hash: string }>(
    'SELECT view, request_hash FROM remote_actions WHERE tenant_id = $1 AND requester_id = $2 AND idempotency_key = $3',
    [tenantId, requesterId, key],
  );
  return rows[0];
}

export async function actionViewOf(client: PoolClient, tenantId: string, actionId: string): Promise<ActionView | undefined> {
  const { rows } = await client.query<{ view: ActionView }>('SELECT view FROM remote_actions WHERE tenant_id = $1 AND action_id = $2', [
    tenantId,
    actionId,
  ]);
  return rows[0]?.view;
}

export interface ActionRowFilter {
  status?: string;
  action?: string;
  subjectId?: string;
  /** Keyset position: rows strictly before it, newest first. */
  after?: { createdAt: string; id: string };
  limit: number;
}

export async function listActionRows(
  client: PoolClient,
  tenantId: string,
  filter: ActionRowFilter,
): Promise<{ view: ActionView; created_at: Date; action_id: string }[]> {
  const { rows } = await client.query<{ view: ActionView; created_at: Date; action_id: string }>(
    `SELECT view, created_at, action_id FROM remote_actions
      WHERE tenant_id = $1
        AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR action = $3) AND ($4::text IS NULL OR subject_id = $4)
        AND ($5::timestamptz IS NULL OR (created_at, action_id) < ($5, $6::uuid))
      ORDER BY created_at DESC, action_id DESC LIMIT $7`,
    [
      tenantId,
      filter.status ?? null,
      filter.action ?? null,
      filter.subjectId ?? null,
      filter.after?.createdAt ?? null,
      filter.after?.id ?? null,
      filter.limit,
    ],
  );
  return rows;
}
