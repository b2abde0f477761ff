import type { PolicyChangeView, PolicyDiffItem } from '../../core/tenancy/contract.js';
import { insertApprovedPolicyVersion, policyVersionWrittenBy, upsertPolicyChangeRow } from '../../db/policy-changes.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { countingApprovers, currentPolicy, currentWebhookUrl, getTenantRow, policyVersion } from '../../db/tenancy.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent, type WorkflowEvent } from '../audit/record.js';
import { deliverTenantWebhook } from './webhooks.js';
import type { WebhookTransport } from './webhook-http.js';

export interface RecordPolicyChangeEventInput extends WorkflowEvent {
  view: PolicyChangeView;
  /** Adds the base version's document as `before` (the proposal), read here to keep it out of the history. */
  includeBase?: boolean;
}

export interface ApplyPolicyChangeInput extends Omit<WorkflowEvent, 'action' | 'payload'> {
  /** The change as it stands, pending, with the version and decision time of the outcome to write. */
  view: PolicyChangeView;
  /** The proposed whole document. */
  document: Record<string, unknown>;
  diff: PolicyDiffItem[];
}

/** What applying came to; the workflow adopts it as its own state. */
export interface ApplyPolicyChangeResult {
  status: 'applied' | 'conflicted';
  appliedVersion: number | null;
  reason: string | null;
  /** Whether the tenant has a webhook to tell. */
  notify: boolean;
}

const target = (view: PolicyChangeView) => ({ type: 'policy_change', id: view.changeId });

export function createTenancyActivities({ pool, clock, webhooks }: { pool: Pool; clock: Clock; webhooks: WebhookTransport }) {
  return {
    /**
     * Records one policy-change event and the read-model row in one transaction; `notify` says
     * whether the tenant has a webhook, so the workflow schedules a delivery only when it does.
     */
    async recordPolicyChangeEvent(input: RecordPolicyChangeEventInput): Promise<{ seq: number; notify: boolean }> {
      const { tenantId } = input.view;
      return inScope(pool, tenantScope(tenantId), async (client) => {
        await upsertPolicyChangeRow(client, input.view);
        const notify = Boolean(await currentWebhookUrl(client, tenantId));
        const base = input.includeBase ? await policyVersion(client, tenantId, input.view.baseVersion) : undefined;
        const recorded = await appendWorkflowEvent(client, clock, tenantId, target(input.view), {
          ...input,
          payload: {
            ...(base ? { before: { version: base.version, document: base.document } } : {}),
            ...input.payload,
            status: input.view.status,
            baseVersion: input.view.baseVersion,
          },
        });
        return { seq: recorded.seq, notify };
      });
    },

    /**
     * Whether `actorId` is one of the tenant's own approvers now (active, not MSP staff, bound as
     * tenant_approver in the tenant), the rule the API's route applies. The change's workflow asks
     * before it takes an approval or a denial: one sent straight to Temporal in anyone else's name
     * is refused and nothing is recorded.
     */
    async confirmPolicyDecider(input: { tenantId: string; actorId: string }): Promise<{ counts: boolean }> {
      const counting = await inScope(pool, mspScope, (client) => countingApprovers(client, [input.actorId], input.tenantId));
      return { counts: counting.includes(input.actorId) };
    },

    /**
     * Writes an approved change as the tenant's next policy version, only if the policy is still
     * at the version the change was based on; otherwise writes nothing and records the conflict.
     * One transaction under the tenant row lock (the same one a direct policy write takes), so a
     * concurrent write is either seen here or waits for this one. A retry after a commit whose
     * answer was lost finds the version this change wrote and reports it again.
     */
    async applyPolicyChange(input: ApplyPolicyChangeInput): Promise<ApplyPolicyChangeResult> {
      const { tenantId, changeId, baseVersion, proposerId } = input.view;
      return inScope(pool, tenantScope(tenantId), async (client) => {
        await getTenantRow(client, tenantId, true);
        const notify = Boolean(await currentWebhookUrl(client, tenantId));
        const written = await policyVersionWrittenBy(client, tenantId, changeId);
        if (written !== undefined) return { status: 'applied', appliedVersion: written, reason: null, notify };

        const current = await currentPolicy(client, tenantId);
        const approvers = input.view.approvals.map((a) => a.approverId);
        const event = { eventId: input.eventId, actor: input.actor, authority: input.authority };
        if (current && current.version === baseVersion) {
          const next = await insertApprovedPolicyVersion(client, {
            tenantId,
            version: current.version + 1,
            document: input.document,
            proposerId,
            changeId,
            approvedBy: approvers,
          });
          const view: PolicyChangeView = { ...input.view, status: 'applied', appliedVersion: next.version };
          await upsertPolicyChangeRow(client, view);
          // Notify is read before the write: the proposal's own webhook hears of it, not a new one it sets.
          await appendWorkflowEvent(client, clock, tenantId, target(view), {
            ...event,
            action: 'policy_change.applied',
            payload: {
              status: view.status,
              baseVersion,
              newVersion: next.version,
              proposerId,
              approvers,
              before: { version: current.version, document: current.document },
              after: { version: next.version, document: input.document },
              diff: input.diff,
            },
          });
          return { status: 'applied', appliedVersion: next.version, reason: null, notify };
        }

        const currentVersion = current?.version ?? 0;
        const reason =
          `The policy moved from version ${baseVersion} to version ${currentVersion} while the change waited for approval; ` +
          `nothing was written. Propose the change again against version ${currentVersion}.`;
        const view: PolicyChangeView = { ...input.view, status: 'conflicted', reason };
        await upsertPolicyChangeRow(client, view);
        await appendWorkflowEvent(client, clock, tenantId, target(view), {
          ...event,
          action: 'policy_change.conflicted',
          payload: { status: view.status, baseVersion, currentVersion, proposerId, approvers, reason, diff: input.diff },
        });
        return { status: 'conflicted', appliedVersion: null, reason, notify };
      });
    },

    /** Tells the tenant's webhook of one policy-change event (see deliverTenantWebhook); never fails the change. */
    notifyPolicyChange(input: {
      eventId: string;
      action: string;
      view: PolicyChangeView;
    }): Promise<{ delivered: boolean; reason?: string }> {
      return deliverTenantWebhook(
        { pool, clock, transport: webhooks },
        { tenantId: input.view.tenantId, eventId: input.eventId, action: input.action, subject: { policyChange: input.view } },
      );
    },
  };
}
