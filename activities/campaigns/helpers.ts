import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Authority } from '../../core/audit/chain.js';
import { CAMPAIGN_ACTOR } from '../../core/campaigns/contract.js';
import { reviewersFor, type Candidate } from '../../core/campaigns/review.js';
import type { CampaignDefinitionDocument, ReviewerSource } from '../../core/campaigns/schemas.js';
import type { DirectoryResolver, DirectoryUser } from '../../core/directory/connector.js';
import { reviewerCandidates } from '../../db/campaigns.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { inScope, mspScope } from '../../db/scope.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent } from '../audit/record.js';
import { directoryCall } from '../directory/ledger.js';
import type { WebhookTransport } from '../tenancy/webhook-http.js';

/** Subjects read from the directory per call. */
export const USER_BATCH = 500;

/** A UUID (v5 layout) derived from `parts`: the same parts give the same id, so a retried write finds its row. */
export function derivedUuid(parts: readonly unknown[]): string {
  const hex = createHash('sha256').update(JSON.stringify(parts)).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 3) | 8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

export const heartbeat = (details?: unknown) => {
  if (Context.current) {
    try {
      Context.current().heartbeat(details);
    } catch {
      // Outside an activity (a direct call in a test): nothing to beat for.
    }
  }
};

export interface ReviewEventInput {
  tenantId: string;
  runId: string;
  /** Made in the workflow, so a retried activity writes its event once. */
  eventId: string;
}

/** What the review activities share: the tenant's target, its reviewers, and the review's events. */
/** What the campaign activities (review and flow) are built from. */
export interface CampaignActivityDeps {
  pool: Pool;
  /** Each tenant's own target, asked on every call. */
  directories: DirectoryResolver;
  clock: Clock;
  temporal?: Client;
  /** How tenants' webhooks are reached (notices, access that needs a rule change). */
  webhooks: WebhookTransport;
  /** Revocations applied to targets at once by these activities, whatever the reviews (DEFAULT_REMEDIATION_CONCURRENCY when absent). */
  remediationConcurrency?: number;
}

export function reviewHelpers({ pool, directories, clock }: { pool: Pool; directories: DirectoryResolver; clock: Clock }) {
  /** The tenant's connector for this call. */
  const directoryOf = (tenantId: string) => directoryCall(() => directories.directoryFor(tenantId));

  return {
    directoryOf,

    reviewEvent: (
      client: PoolClient,
      input: ReviewEventInput,
      action: string,
      payload: Record<string, unknown>,
      actor: { id: string; type: 'user' | 'system' } = CAMPAIGN_ACTOR,
      authority: Authority = {},
    ) =>
      appendWorkflowEvent(
        client,
        clock,
        input.tenantId,
        { type: 'review', id: input.runId },
        { eventId: input.eventId, action, actor, authority: { campaignRunId: input.runId, ...authority }, payload },
      ),

    /** Holders of each privileged role among `roles` who are active users now, read from the target. */
    activeHolders: async (tenantId: string, roles: readonly string[]): Promise<Map<string, Set<string>>> => {
      const holders = new Map<string, Set<string>>();
      if (roles.length === 0) return holders;
      const directory = await directoryOf(tenantId);
      for (const role of new Set(roles)) {
        const members = await directoryCall(() => directory.listMembers(tenantId, role));
        const active = new Set<string>();
        for (const batch of chunks(members, USER_BATCH)) {
          for (const user of await directoryCall(() => directory.getUsers(tenantId, batch)))
            if (user.status === 'active') active.add(user.id);
        }
        holders.set(role, active);
      }
      return holders;
    },

    /** The tenant's own staff who may review: its reviewers and approvers (never MSP staff). */
    candidatesOf: async (tenantId: string) => {
      const rows = await inScope(pool, mspScope, (client) => reviewerCandidates(client, tenantId));
      const pick = (role: string): Candidate[] => rows.filter((r) => r.role === role).map((r) => ({ id: r.id, email: r.email }));
      return { tenant_reviewer: pick('tenant_reviewer'), tenant_approver: pick('tenant_approver') };
    },

    /** The directory users behind `subjectIds`, read in batches. */
    usersOf: async (tenantId: string, subjectIds: readonly string[]): Promise<Map<string, DirectoryUser>> => {
      const directory = await directoryOf(tenantId);
      const users = new Map<string, DirectoryUser>();
      for (const batch of chunks([...new Set(subjectIds)], USER_BATCH))
        for (const user of await directoryCall(() => directory.getUsers(tenantId, batch))) users.set(user.id, user);
      return users;
    },
  };
}

/** The reviewers `chain` gives for a subject, from the tenant's own staff. */
export function reviewersOfSubject(
  chain: readonly ReviewerSource[],
  user: DirectoryUser | undefined,
  candidates: Parameters<typeof reviewersFor>[2],
  definition: Pick<CampaignDefinitionDocument, 'reviewers'>,
) {
  return reviewersFor(
    chain,
    { email: user?.email ?? null, attributes: user?.attributes ?? {} },
    candidates,
    definition.reviewers.managerAttribute,
  );
}
