import { createHmac } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import { systemContext } from '../../core/audit/context.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { claimWebhookDelivery, recordWebhookAttempt } from '../../db/grants.js';
import type { Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { currentPolicy, webhookSecretOf } from '../../db/tenancy.js';
import type { Clock } from '../index.js';
import { postWebhook, WebhookDestinationRefused, type WebhookTransport } from './webhook-http.js';

export interface TenantWebhookEvent {
  tenantId: string;
  eventId: string;
  /** The event type the receiver sees, e.g. `grant.activated`. */
  action: string;
  /** What the event is about, spread into the body beside the event fields (e.g. `{ grant: view }`). */
  subject: Record<string, unknown>;
}

/**
 * Sends one event to the tenant's webhook (its current policy's URL), signed with HMAC-SHA256
 * over `<timestamp>.<body>` with the tenant's secret. Once delivered it is never sent again for
 * that event; a failure throws a retryable WebhookDeliveryFailed for Temporal to retry, and the
 * caller's workflow treats it as never fatal. A destination that is not public (unless the
 * deployment allows it) and a redirect count as failures; neither is followed.
 */
export async function deliverTenantWebhook(
  { pool, clock, transport }: { pool: Pool; clock: Clock; transport: WebhookTransport },
  input: TenantWebhookEvent,
): Promise<{ delivered: boolean; reason?: string }> {
  const { tenantId } = input;
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
  const body = JSON.stringify({ eventId: input.eventId, type: input.action, tenantId, ...input.subject });
  const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  let error: string | undefined;
  try {
    const { status } = await postWebhook(transport, {
      url: target.url,
      headers: {
        'content-type': 'application/json',
        'x-tenure-event-id': input.eventId,
        'x-tenure-timestamp': timestamp,
        'x-tenure-signature': `sha256=${signature}`,
      },
      body,
      timeoutMs: 10_000,
    });
    if (status >= 300 && status < 400) error = `the webhook answered ${status}; redirects are not followed`;
    else if (status < 200 || status >= 300) error = `the webhook answered ${status}`;
  } catch (cause) {
    error =
      cause instanceof WebhookDestinationRefused
        ? `the webhook was not sent: ${cause.message}`
        : `the webhook could not be reached: ${(cause as Error).message}`;
  }
  await inScope(pool, tenantScope(tenantId), (client) => recordWebhookAttempt(client, tenantId, input.eventId, error ?? null));
  if (error) throw ApplicationFailure.retryable(error, 'WebhookDeliveryFailed');
  return { delivered: true };
}
