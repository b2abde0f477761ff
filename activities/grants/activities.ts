import type { GrantView } from '../../core/grants/contract.js';
import type { DirectoryResolver } from '../../core/directory/connector.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { upsertGrantRow } from '../../db/grants.js';
import { countingApprovers } from '../../db/tenancy.js';
import { actorHoldsRole, currentPolicy, currentWebhookUrl, getTenantRow } from '../../db/tenancy.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { AuditGroupCommit } from '../../db/audit-group.js';
import { recordedEventTime } from '../../db/audit.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent, type WorkflowEvent } from '../audit/record.js';
import { createLedgerActivities, directoryCall, type EndAccessInput, type EndAccessResult } from '../directory/ledger.js';
import { withPermanentDataFailures } from '../failures.js';
import { deliverTenantWebhook } from '../tenancy/webhooks.js';
import type { WebhookTransport } from '../tenancy/webhook-http.js';

export interface RecordGrantEventInput extends WorkflowEvent {
  view: GrantView;
}

/**
 * An expiry in one activity: the `expiring` event, the removal read back (endAccess), and, when
 * the read-back confirms the access gone, the `ended` event. `ended.view` comes without its end
 * times: the activity dates them by the final event's own timestamp, so a retry after that event
 * committed (its answer lost) reports the same moment the trail and the read model hold.
 */
export interface EndGrantAccessInput {
  access: EndAccessInput;
  expiring: RecordGrantEventInput;
  ended: RecordGrantEventInput;
}

export interface EndGrantAccessResult {
  removal: EndAccessResult;
  /** Whether the tenant had a webhook when the events were recorded. */
  notify: boolean;
  /** When the access was confirmed gone and the grant ended, as recorded; null when the read-back did not confirm (nothing recorded after `expiring`). */
  endedAt: string | null;
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
  const { eligible, reason } = await checkActivation(pool, directories, input, []);
  return { eligible, reason };
}

/**
 * grantEligibility, and which of `approverIds` still count (countingApprovers), read in the same
 * MSP-scope transaction as the requester's roles.
 */
async function checkActivation(
  pool: Pool,
  directories: DirectoryResolver,
  input: EligibilityInput,
  approverIds: string[],
): Promise<{ eligible: boolean; reason: string | null; counting: string[] }> {
  const tenantPart = await inScope(pool, tenantScope(input.tenantId), async (client) => {
    const tenant = await getTenantRow(client, input.tenantId);
    const policy = await currentPolicy(client, input.tenantId);
    return {
      active: tenant?.status === 'active',
      rule: policy ? TenantPolicyDocument.parse(policy.document).grants.roles[input.role] : undefined,
    };
  });
  const refused = (reason: string) => ({ eligible: false, reason, counting: [] });
  if (!tenantPart.active) return refused('the tenant is not active');
  const user = await directoryCall(async () => (await directories.directoryFor(input.tenantId)).getUser(input.tenantId, input.subjectId));
  if (user?.status !== 'active') return refused('the subject is not an active user in the tenant directory');
  const rule = tenantPart.rule;
  if (!rule) return refused(`the role ${input.role} is no longer grantable under the tenant policy`);
  const { holds, counting } = await inScope(pool, mspScope, async (client) => ({
    holds: await actorHoldsRole(client, input.requesterId, rule.requestableBy, input.tenantId),
    counting: approverIds.length > 0 ? await countingApprovers(client, approverIds, input.tenantId) : [],
  }));
  if (!holds) return refused('the requester no longer holds a role that may request this grant');
  return { eligible: true, reason: null, counting };
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
  const ledger = createLedgerActivities({ pool, directories });
  const appendGrantEvent = (client: PoolClient, input: RecordGrantEventInput) =>
    appendWorkflowEvent(
      client,
      clock,
      input.view.tenantId,
      { type: 'grant', id: input.view.grantId },
      { ...input, payload: { ...input.payload, status: input.view.status, subjectId: input.view.subjectId, role: input.view.role } },
    );
  const recordGrantEvent = (input: RecordGrantEventInput): Promise<{ seq: number; notify: boolean }> =>
    audited.inTenantScope(input.view.tenantId, async (client) => {
      await upsertGrantRow(client, input.view);
      const notify = Boolean(await currentWebhookUrl(client, input.view.tenantId));
      const event = await appendGrantEvent(client, input);
      return { seq: event.seq, notify };
    });
  // Data the database refuses for good (a NUL byte in a comment) fails at once, never retried forever.
  return withPermanentDataFailures({
    /**
     * Records one grant event; `notify` says whether the tenant has a webhook to tell, so the
     * workflow schedules a delivery only when there is somewhere to deliver.
     */
    recordGrantEvent,

    /**
     * An expiry's record, removal, read-back and final record in one activity (see
     * EndGrantAccessInput). Each step is idempotent on a retry: events by their ids, the removal
     * by the ledger. The final event is recorded only after the read-back under the ledger's lock
     * confirmed the access gone, as the workflow's separate steps do.
     */
    async endGrantAccess(input: EndGrantAccessInput): Promise<EndGrantAccessResult> {
      const { notify } = await recordGrantEvent(input.expiring);
      const removal = await ledger.endAccess(input.access);
      if (!removal.verification.gone) return { removal, notify, endedAt: null };
      const { tenantId } = input.ended.view;
      return audited.inTenantScope(tenantId, async (client) => {
        const now = clock.now();
        const lateByMs = Math.max(0, now.getTime() - Date.parse(input.ended.view.endAt));
        const payload = { ...input.ended.payload, stillHeldBy: removal.verification.heldBy, lateByMs };
        // Stored first: on a retry it is the event already recorded, whose time dates the end.
        const event = await appendGrantEvent(client, {
          ...input.ended,
          payload,
          view: { ...input.ended.view, endedAt: now.toISOString(), revocationVerifiedAt: now.toISOString() },
        });
        const endedAt = event.occurredAt;
        await upsertGrantRow(client, { ...input.ended.view, endedAt, revocationVerifiedAt: endedAt });
        return { removal, notify: Boolean(await currentWebhookUrl(client, tenantId)), endedAt };
      });
    },

    /**
     * When the grant's event `eventId` is on the tenant's chain (its time), or null. An expiry whose
     * endGrantAccess lost every answer asks for its end: an attempt may have confirmed the access gone
     * and recorded it before the answer was lost.
     */
    async grantEventRecorded(input: { tenantId: string; eventId: string }): Promise<{ occurredAt: string | null }> {
      return {
        occurredAt: await inScope(pool, tenantScope(input.tenantId), (client) => recordedEventTime(client, input.tenantId, input.eventId)),
      };
    },

    checkGrantEligibility(input: EligibilityInput): Promise<{ eligible: boolean; reason: string | null }> {
      return grantEligibility(pool, directories, input);
    },

    /**
     * Activation's checks in one activity: eligibility (as checkGrantEligibility) and which
     * approvers still count (as checkGrantApprovers; skipped when the grant needed none).
     */
    checkGrantActivation(input: EligibilityInput & { approverIds: string[] }) {
      return checkActivation(pool, directories, input, input.approverIds);
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
