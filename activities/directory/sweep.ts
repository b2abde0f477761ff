import { ApplicationFailure, Context } from '@temporalio/activity';
import type { DirectoryResolver } from '../../core/directory/connector.js';
import { sweepScheduleId, SWEEPER_ACTOR, type SweepCandidate, type SweepCursor, type SweepReason } from '../../core/directory/sweep.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { ledgerRoles, lockSubjectRole, roleHolds } from '../../db/directory/ledger.js';
import type { Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { currentPolicy } from '../../db/tenancy.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent } from '../audit/record.js';
import { directoryCall } from './ledger.js';

export interface PlanSweepInput {
  tenantId: string;
  /** Visit memberships after this one (role, then subject, in code-unit order). */
  after: SweepCursor | null;
  /** At most this many candidates. */
  limit: number;
}

export interface PlanSweepResult {
  /** Why nothing is to be swept (the target ends memberships by itself); null when planned. */
  skipped: string | null;
  /** The connector kind. */
  target: string;
  candidates: SweepCandidate[];
  /** Where the next page starts; null when every managed role was visited. */
  next: SweepCursor | null;
}

export interface SweepMembershipInput {
  tenantId: string;
  subjectId: string;
  role: string;
  /** Made by the workflow, so a retry records the removal once. */
  eventId: string;
}

export interface SweepMembershipResult {
  /**
   * `removed`: taken off the target and verified gone now; `confirmed_absent`: gone when a retry
   * looked (an earlier attempt may have removed it), verified and recorded as well; `explained`:
   * an open entitlement gives it now (a grant started meanwhile), left alone; `gone`: already
   * absent on the first look (the workflow that owns it removed it first), nothing recorded.
   */
  outcome: 'removed' | 'confirmed_absent' | 'explained' | 'gone';
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Roles the tenant's policy names (grantable and birthright) besides those the ledger recorded. */
function policyRoles(document: unknown): string[] {
  const parsed = TenantPolicyDocument.safeParse(document);
  if (!parsed.success) return [];
  return [...Object.keys(parsed.data.grants.roles), ...parsed.data.lifecycle.rules.flatMap((rule) => rule.roles)];
}

/**
 * The expiry sweeper's steps (see core/directory/sweep.ts). Only roles Tenure manages are
 * visited: those the tenant's ledger has ever recorded and those its policy names. Every removal
 * holds the same subject-role lock the ledger's own steps hold, so it never races a grant.
 */
export function createSweepActivities({ pool, directories, clock }: { pool: Pool; directories: DirectoryResolver; clock: Clock }) {
  return {
    async planSweep(input: PlanSweepInput): Promise<PlanSweepResult> {
      const { tenantId, after, limit } = input;
      const directory = await directoryCall(() => directories.directoryFor(tenantId));
      if (directory.capabilities.membershipEnd) {
        return { skipped: `the ${directory.kind} target ends memberships by itself`, target: directory.kind, candidates: [], next: null };
      }
      const roles = await inScope(pool, tenantScope(tenantId), async (client) => {
        const policy = await currentPolicy(client, tenantId);
        return [...new Set([...(await ledgerRoles(client, tenantId)), ...policyRoles(policy?.document)])].sort(byCodeUnit);
      });
      const candidates: SweepCandidate[] = [];
      for (const role of roles) {
        if (after && role < after.role) continue;
        const members = (await directoryCall(() => directory.listMembers(tenantId, role)))
          .filter((subjectId) => !after || role > after.role || subjectId > after.subjectId)
          .sort(byCodeUnit);
        if (members.length === 0) continue;
        const holds = new Map(
          (await inScope(pool, tenantScope(tenantId), (client) => roleHolds(client, tenantId, role, members))).map((h) => [h.subjectId, h]),
        );
        for (const subjectId of members) {
          const hold = holds.get(subjectId);
          if (hold?.live) continue;
          const reason: SweepReason = hold ? 'past_end' : 'unexplained';
          candidates.push({ role, subjectId, reason, pastEnd: hold?.pastEnd ?? [] });
          if (candidates.length >= limit) return { skipped: null, target: directory.kind, candidates, next: { role, subjectId } };
        }
      }
      return { skipped: null, target: directory.kind, candidates, next: null };
    },

    /**
     * Removes one membership the plan found, if nothing explains it by now: under the
     * subject-role lock, reads the ledger again, removes, reads the target back and records
     * `access.swept` in the same transaction. Retryable until the target confirms.
     */
    async sweepMembership(input: SweepMembershipInput): Promise<SweepMembershipResult> {
      const { tenantId, subjectId, role } = input;
      const directory = await directoryCall(() => directories.directoryFor(tenantId));
      return inScope(pool, tenantScope(tenantId), async (client) => {
        await lockSubjectRole(client, tenantId, subjectId, role);
        const [hold] = await roleHolds(client, tenantId, role, [subjectId]);
        if (hold?.live) return { outcome: 'explained' };
        const present = await directoryCall(() => directory.hasRole(tenantId, subjectId, role));
        // Absent at first sight: someone else removed it (the grant's own end), nothing of ours to record.
        if (!present && Context.current().info.attempt === 1) return { outcome: 'gone' };
        if (present) await directoryCall(() => directory.removeRole(tenantId, subjectId, role));
        if (await directoryCall(() => directory.hasRole(tenantId, subjectId, role))) {
          throw ApplicationFailure.retryable(
            `${subjectId} still holds ${role} on the ${directory.kind} target after its removal`,
            'AccessRemains',
          );
        }
        const policy = await currentPolicy(client, tenantId);
        const reason: SweepReason = hold ? 'past_end' : 'unexplained';
        await appendWorkflowEvent(
          client,
          clock,
          tenantId,
          { type: 'person', id: subjectId },
          {
            eventId: input.eventId,
            action: 'access.swept',
            actor: SWEEPER_ACTOR,
            authority: {
              reason: 'expiry sweep: the target cannot end a membership by itself',
              schedule: sweepScheduleId(tenantId),
              ...(policy ? { policyVersion: policy.version } : {}),
            },
            payload: {
              subjectId,
              role,
              reason,
              pastEnd: hold?.pastEnd ?? [],
              target: directory.kind,
              removedNow: present,
              verified: true,
            },
          },
        );
        return { outcome: present ? 'removed' : 'confirmed_absent' };
      });
    },

    /** The target refused a removal for good: recorded, so the leftover access is not silently kept. */
    async recordSweepFailure(input: SweepMembershipInput & { reason: string }): Promise<{ seq: number }> {
      return inScope(pool, tenantScope(input.tenantId), async (client) => {
        const event = await appendWorkflowEvent(
          client,
          clock,
          input.tenantId,
          { type: 'person', id: input.subjectId },
          {
            eventId: input.eventId,
            action: 'access.sweep_failed',
            actor: SWEEPER_ACTOR,
            authority: { reason: 'expiry sweep', schedule: sweepScheduleId(input.tenantId) },
            payload: { subjectId: input.subjectId, role: input.role, reason: input.reason },
          },
        );
        return { seq: event.seq };
      });
    },
  };
}

export type SweepActivities = ReturnType<typeof createSweepActivities>;
