import { createHmac } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import type { GrantView } from '../../core/grants/contract.js';
import { systemContext } from '../../core/audit/context.js';
import type { DirectoryConnector } from '../../core/directory/connector.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { claimWebhookDelivery, recordWebhookAttempt, upsertGrantRow } from '../../db/grants.js';
import { actorHoldsRole, currentPolicy, currentWebhookUrl, getTenantRow, webhookSecretOf } from '../../db/tenancy.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent, type WorkflowEvent } from '../audit/record.js';
import { directoryCall } from '../directory/ledger.js';

export interface RecordGrantEventInput extends WorkflowEvent {
  view: GrantView;
}

export interface EligibilityInput {
  tenantId: string;
  subjectId: string;
  role: string;
  requesterId: string;
}

/**
 * Whether a grant may start now: the tenant is active, the subject is an active user in the
 * tenant's directory (asked through its connector), the role is still grantable under the
 * tenant's current policy, and the requester is still an active actor holding a role that may
 * request it. The requester is MSP-level identity data (RLS hides MSP staff from a tenant scope),
 * so that part is read in the MSP scope.
 */
export async function grantEligibility(
  pool: Pool,
  directory: DirectoryConnector,
  input: EligibilityInput,
): Promise<{ eligible: boolean; reason: string | null }> {
  const tenantPart = await inScope(pool, tenantScope(input.tenantId), async (client) => {
    const tenant = await getTenantRow(client, input.tenantId);
    const policy = await currentPolicy(client, input.tenantId);
    return {
      active: tenant?.status === 'active',
      rule: policy ? TenantPolicyDocument.parse(policy.document).grants.roles[input.role] : undefined,
    };
  });
  if (!tenantPart.active) return { eligible: false, reason: 'the tenant is not active' };
  const user = await directoryCall(() => directory.getUser(input.tenantId, input.subjectId));
  if (user?.status !== 'active') return { eligible: false, reason: 'the subject is not an active user in the tenant directory' };
  const rule = tenantPart.rule;
  if (!rule) return { eligible: false, reason: `the role ${input.role} is no longer grantable under the tenant policy` };
  const holds = await inScope(pool, mspScope, (client) => actorHoldsRole(client, input.requesterId, rule.requestableBy, input.tenantId));
  if (!holds) return { eligible: false, reason: 'the requester no longer holds a role that may request this grant' };
  return { eligible: true, reason: null };
}

export function createGrantActivities({
  pool,
  directory,
  clock,
  fetch: send = fetch,
}: {
  pool: Pool;
  directory: DirectoryConnector;
  clock: Clock;
  fetch?: typeof fetch;
}) {
  return {
    /**
     * Records one grant event; `notify` says whether the tenant has a webhook to tell, so the
     * workflow schedules a delivery only when there is somewhere to deliver.
     */
    async recordGrantEvent(input: RecordGrantEventInput): Promise<{ seq: number; notify: boolean }> {
      return inScope(pool, tenantScope(input.view.tenantId), async (client) => {
        await upsertGrantRow(client, input.view);
        const notify = Boolean(await currentWebhookUrl(client, input.view.tenantId));
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
      return grantEligibility(pool, directory, input);
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
        return { url, ...(await claimWebhookDelivery(client, tenantId, input.eventId, url)) };
      });
      if (!target) return { delivered: false, reason: 'the tenant has no webhook' };
      if (target.delivered) return { delivered: true };
      // Created (and audited) on first use when no admin has read it yet.
      const { secret } = await inScope(pool, tenantScope(tenantId), (client) =>
        webhookSecretOf(client, systemContext('webhook delivery'), tenantId, false),
      );

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
      await inScope(pool, tenantScope(tenantId), (client) => recordWebhookAttempt(client, tenantId, input.eventId, error ?? null));
      if (error) throw ApplicationFailure.retryable(error, 'WebhookDeliveryFailed');
      return { delivered: true };
    },
  };
}
