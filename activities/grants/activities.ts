import { createHmac } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import type { GrantView } from '../../core/grants/contract.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { currentPolicy } from '../../db/tenancy.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { systemContext } from '../../usecases/context.js';
import { webhookSecret } from '../../usecases/tenancy.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent, type WorkflowEvent } from '../audit/record.js';

export interface RecordGrantEventInput extends WorkflowEvent {
  view: GrantView;
}

/** Writes the grant's read-model row (newest version wins) and its audit event, in one transaction. */
export async function upsertGrantRow(
  client: PoolClient,
  view: GrantView,
  extra: { idempotencyKey?: string | null; requestHash?: string | null } = {},
) {
  await client.query(
    `INSERT INTO grants (tenant_id, grant_id, workflow_id, subject_id, role, requester_id, status, end_reason, start_at, end_at,
                         activated_at, ended_at, revocation_verified_at, policy_version, view, version, idempotency_key, request_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
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
    ],
  );
}

export interface EligibilityInput {
  tenantId: string;
  subjectId: string;
  role: string;
  requesterId: string;
}

/**
 * Whether a grant may start now: the tenant is active, the subject is an active directory user,
 * the role is still grantable under the tenant's current policy, and the requester is still an
 * active actor holding a role that may request it. The requester is MSP-level identity data
 * (RLS hides MSP staff from a tenant scope), so that part is read in the MSP scope.
 */
export async function grantEligibility(pool: Pool, input: EligibilityInput): Promise<{ eligible: boolean; reason: string | null }> {
  const tenantPart = await inScope(pool, tenantScope(input.tenantId), async (client) => {
    const tenant = await client.query<{ status: string }>('SELECT status FROM tenants WHERE id = $1', [input.tenantId]);
    if (tenant.rows[0]?.status !== 'active') return { reason: 'the tenant is not active' };
    const user = await client.query<{ status: string }>('SELECT status FROM directory_users WHERE tenant_id = $1 AND id = $2', [
      input.tenantId,
      input.subjectId,
    ]);
    if (user.rows[0]?.status !== 'active') return { reason: 'the subject is not an active user in the tenant directory' };
    const policy = await currentPolicy(client, input.tenantId);
    const rule = policy ? TenantPolicyDocument.parse(policy.document).grants.roles[input.role] : undefined;
    if (!rule) return { reason: `the role ${input.role} is no longer grantable under the tenant policy` };
    return { requestableBy: rule.requestableBy };
  });
  if (!('requestableBy' in tenantPart)) return { eligible: false, reason: tenantPart.reason };
  const requester = await inScope(pool, mspScope, (client) =>
    client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM actors a JOIN role_bindings b ON b.actor_id = a.id
        WHERE a.id = $1 AND a.status = 'active' AND b.role = ANY($2) AND (b.tenant_id IS NULL OR b.tenant_id = $3)`,
      [input.requesterId, tenantPart.requestableBy, input.tenantId],
    ),
  );
  if (!requester.rows[0]?.n) return { eligible: false, reason: 'the requester no longer holds a role that may request this grant' };
  return { eligible: true, reason: null };
}

export function createGrantActivities({ pool, clock, fetch: send = fetch }: { pool: Pool; clock: Clock; fetch?: typeof fetch }) {
  return {
    /**
     * Records one grant event; `notify` says whether the tenant has a webhook to tell, so the
     * workflow schedules a delivery only when there is somewhere to deliver.
     */
    async recordGrantEvent(input: RecordGrantEventInput): Promise<{ seq: number; notify: boolean }> {
      return inScope(pool, tenantScope(input.view.tenantId), async (client) => {
        await upsertGrantRow(client, input.view);
        const hook = await client.query<{ url: string | null }>(
          `SELECT document->>'notificationWebhookUrl' AS url FROM tenant_policies WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1`,
          [input.view.tenantId],
        );
        const notify = Boolean(hook.rows[0]?.url);
        const event = await appendWorkflowEvent(
          client,
          clock,
          input.view.tenantId,
          { type: 'grant', id: input.view.grantId },
          {
            ...input,
            payload: { ...input.payload, status: input.view.status, subjectId: input.view.subjectId, role: input.view.role },
          },
        );
        return { seq: event.seq, notify };
      });
    },

    checkGrantEligibility(input: EligibilityInput) {
      return grantEligibility(pool, input);
    },

    /**
     * Sends the tenant's webhook for one grant event, signed with HMAC-SHA256 over
     * `<timestamp>.<body>`. Once delivered it is never sent again for that event; a failure is
     * retried by Temporal and never fails the grant.
     */
    async notifyGrant(input: { eventId: string; action: string; view: GrantView }): Promise<{ delivered: boolean; reason?: string }> {
      const tenantId = input.view.tenantId;
      const target = await inScope(pool, tenantScope(tenantId), async (client) => {
        const policy = await currentPolicy(client, tenantId);
        const url = policy ? TenantPolicyDocument.parse(policy.document).notificationWebhookUrl : null;
        if (!url) return undefined;
        const delivery = await client.query<{ status: string }>(
          `INSERT INTO webhook_deliveries (tenant_id, event_id, url, status) VALUES ($1, $2, $3, 'pending')
           ON CONFLICT (tenant_id, event_id) DO UPDATE SET attempts = webhook_deliveries.attempts RETURNING status`,
          [tenantId, input.eventId, url],
        );
        return { url, delivered: delivery.rows[0]!.status === 'delivered' };
      });
      if (!target) return { delivered: false, reason: 'the tenant has no webhook' };
      if (target.delivered) return { delivered: true };
      // Created (and audited) on first use when no admin has read it yet.
      const { secret } = await webhookSecret(pool, systemContext('webhook delivery'), tenantId, false);

      const timestamp = String(Math.floor(clock.now().getTime() / 1000));
      const body = JSON.stringify({ eventId: input.eventId, type: input.action, tenantId, grant: input.view });
      const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
      let error: string | undefined;
      try {
        const response = await send(target.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-tenure-event-id': input.eventId,
            'x-tenure-timestamp': timestamp,
            'x-tenure-signature': `sha256=${signature}`,
          },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        if (!response.ok) error = `the webhook answered ${response.status}`;
      } catch (cause) {
        error = `the webhook could not be reached: ${(cause as Error).message}`;
      }
      await inScope(pool, tenantScope(tenantId), (client) =>
        client.query(
          `UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $3,
             status = CASE WHEN $3::text IS NULL THEN 'delivered' ELSE 'pending' END,
             delivered_at = CASE WHEN $3::text IS NULL THEN now() ELSE NULL END
           WHERE tenant_id = $1 AND event_id = $2`,
          [tenantId, input.eventId, error ?? null],
        ),
      );
      if (error) throw ApplicationFailure.retryable(error, 'WebhookDeliveryFailed');
      return { delivered: true };
    },
  };
}
