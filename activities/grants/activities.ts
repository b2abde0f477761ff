import type { GrantView } from '../../core/grants/contract.js';
import type { DirectoryResolver } from '../../core/directory/connector.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { upsertGrantRow } from '../../db/grants.js';
import { countingApprovers } from '../../db/tenancy.js';
import { actorHoldsRole, currentPolicy, currentWebhookUrl, getTenantRow } from '../../db/tenancy.js';
import type { Pool } from '../../db/pool.js';
import { AuditGroupCommit } from '../../db/audit-group.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent, type WorkflowEvent } from '../audit/record.js';
import { directoryCall } from '../directory/ledger.js';
import { withPermanentDataFailures } from '../failures.js';
import { deliverTenantWebhook } from '../tenancy/webhooks.js';
import type { WebhookTransport } from '../tenancy/webhook-http.js';

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
  directories: DirectoryResolver,
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
  const user = await directoryCall(async () => (await directories.directoryFor(input.tenantId)).getUser(input.tenantId, input.subjectId));
  if (user?.status !== 'active') return { eligible: false, reason: 'the subject is not an active user in the tenant directory' };
  const rule = tenantPart.rule;
  if (!rule) return { eligible: false, reason: `the role ${input.role} is no longer grantable under the tenant policy` };
  const holds = await inScope(pool, mspScope, (client) => actorHoldsRole(client, input.requesterId, rule.requestableBy, input.tenantId));
  if (!holds) return { eligible: false, reason: 'the requester no longer holds a role that may request this grant' };
  return { eligible: true, reason: null };
}

export function createGrantActivities({
  pool,
  directories,
  clock,
  webhooks,
}: {
  pool: Pool;
  directories: DirectoryResolver;
  clock: Clock;
  webhooks: WebhookTransport;
}) {
  // Grant events of one tenant arriving together (a burst of requests or expiries) commit as one group.
  const audited = new AuditGroupCommit(pool);
  // Data the database refuses for good (a NUL byte in a comment) fails at once, never retried forever.
  return withPermanentDataFailures({
    /**
     * Records one grant event; `notify` says whether the tenant has a webhook to tell, so the
     * workflow schedules a delivery only when there is somewhere to deliver.
     */
    async recordGrantEvent(input: RecordGrantEventInput): Promise<{ seq: number; notify: boolean }> {
      return audited.inTenantScope(input.view.tenantId, async (client) => {
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
      return grantEligibility(pool, directories, input);
    },

    /** Which approvers still count at activation: an approver disabled or unbound since no longer does. */
    async checkGrantApprovers(input: { tenantId: string; approverIds: string[] }): Promise<{ counting: string[] }> {
      // Approvers are identity data that RLS may hide from a tenant scope, as in grantEligibility.
      return { counting: await inScope(pool, mspScope, (client) => countingApprovers(client, input.approverIds, input.tenantId)) };
    },

    /**
     * Sends the tenant's webhook for one grant event, signed with HMAC-SHA256 over
     * `<timestamp>.<body>`. Once delivered it is never sent again for that event; a failure is
     * retried by Temporal and never fails the grant.
     */
    async notifyGrant(input: { eventId: string; action: string; view: GrantView }): Promise<{ delivered: boolean; reason?: string }> {
      return deliverTenantWebhook(
        { pool, clock, transport: webhooks },
        { tenantId: input.view.tenantId, eventId: input.eventId, action: input.action, subject: { grant: input.view } },
      );
    },
  });
}
