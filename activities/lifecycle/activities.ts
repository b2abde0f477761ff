import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Authority } from '../../core/audit/chain.js';
import { grantWorkflowId, revokeGrantUpdate } from '../../core/grants/contract.js';
import {
  LIFECYCLE_MISCONFIGURED,
  LIFECYCLE_SYSTEM_ACTOR,
  type HrEventReceipt,
  type PersonProfile,
  type PersonView,
} from '../../core/lifecycle/contract.js';
import {
  capabilityGap,
  DIRECTORY_TARGET_REJECTED,
  DirectoryNotFoundError,
  requireCapability,
  type CapabilityGap,
  type DirectoryConnector,
  type DirectoryResolver,
  type DirectoryUser,
  type EntitlementSourceType,
} from '../../core/directory/connector.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { currentPolicy } from '../../db/tenancy.js';
import { closeEntitlements, lockSubjectRole, lockSubjectRoles, openEntitlements } from '../../db/directory/ledger.js';
import { resetEnd } from '../../connectors/directory/ledger-steps.js';
import {
  lifecycleProvisioned,
  openGrantsOf,
  scrubHrEventProfiles,
  setHrEventStatus,
  upsertPersonRow,
  type HrEventStatus,
  type PersonGrantRef,
} from '../../db/lifecycle.js';
import { AuditGroupCommit } from '../../db/audit-group.js';
import type { Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import type { Clock } from '../index.js';
import { directoryCall } from '../directory/ledger.js';
import { appendWorkflowEvent, type WorkflowEvent } from '../audit/record.js';

/** Beats for a long step (endPersonAccess); called outside an activity, as a test does, it has no one to tell. */
function beat(): void {
  try {
    Context.current().heartbeat();
  } catch {
    // Not inside an activity.
  }
}

/** How far the directory's clock may trail Temporal's when telling our own new account apart. */
const CLOCK_SKEW_MS = 1_000;

export interface RecordPersonEventInput extends WorkflowEvent {
  view: PersonView;
  /** HR event register changes that commit with this step. */
  hrEvents?: { eventId: string; status: HrEventStatus; reason?: string | null; receipt?: HrEventReceipt | null }[];
}

export interface PersonAccess {
  /** `privileged` is null when the target cannot say which roles are (no roleLookup; see `notSupported`). */
  entitlements: { role: string; sourceType: EntitlementSourceType; sourceId: string; privileged: boolean | null }[];
  grants: PersonGrantRef[];
  /** What the directory shows the person holding. */
  directoryRoles: string[];
  /** What the target could not answer (e.g. `roleLookup: not supported by target`); absent when nothing. */
  notSupported?: CapabilityGap[];
}

/** A leaver's sessions: ended (how many), or not supported by the target, which is recorded as such. */
export type PersonSessionsResult = { supported: true; revoked: number } | { supported: false; gap: CapabilityGap };

/**
 * Person lifecycle activities. Each is safe to retry: directory calls are idempotent, the read
 * model keeps its newest version, and audit events are written once by the id the workflow made.
 * `temporal` reaches grant workflows (revoke Updates); without it, ending grants fails loudly.
 */
export function createLifecycleActivities({
  pool,
  directories,
  clock,
  temporal,
}: {
  pool: Pool;
  directories: DirectoryResolver;
  clock: Clock;
  temporal?: Client;
}) {
  /** The tenant's connector for this call. */
  const directoryOf = (tenantId: string) => directories.directoryFor(tenantId);
  // Lifecycle events of one tenant arriving together (an HR import's joiners) commit as one group.
  const audited = new AuditGroupCommit(pool);

  /**
   * An existing account the lifecycle did not create is taken over only when the tenant's current
   * policy says `adoptExistingAccounts` (audited first, with the account's prior status, under an
   * id fixed per activity so a retry does not record it twice); otherwise the joiner fails for
   * good with its reason and the account is left as it is.
   */
  async function guardTakeover(tenantId: string, personId: string, account: DirectoryUser): Promise<void> {
    const adopted = await inScope(pool, tenantScope(tenantId), async (client) => {
      const info = Context.current().info;
      if (await lifecycleProvisioned(client, tenantId, personId)) return true;
      // Made by an earlier attempt of this very step (the retry of a crash after the create).
      if (Date.parse(account.createdAt) >= info.scheduledTimestampMs - CLOCK_SKEW_MS) return true;
      const row = await currentPolicy(client, tenantId);
      if (!row || !TenantPolicyDocument.parse(row.document).lifecycle.adoptExistingAccounts) return false;
      const id = createHash('sha256')
        .update(`${info.workflowExecution?.runId ?? tenantId}/${info.activityId}/account_adopted`)
        .digest('hex');
      await appendWorkflowEvent(
        client,
        clock,
        tenantId,
        { type: 'person', id: personId },
        {
          eventId: `${id.slice(0, 8)}-${id.slice(8, 12)}-4${id.slice(13, 16)}-8${id.slice(17, 20)}-${id.slice(20, 32)}`,
          action: 'person.account_adopted',
          actor: LIFECYCLE_SYSTEM_ACTOR,
          authority: { policyVersion: row.version, adoptExistingAccounts: true },
          payload: {
            account: { id: account.id, username: account.username, previousStatus: account.status, createdAt: account.createdAt },
          },
        },
      );
      return true;
    });
    if (!adopted) {
      throw ApplicationFailure.create({
        type: DIRECTORY_TARGET_REJECTED,
        message: `directory account ${personId} exists and was not created by the lifecycle; it is left ${account.status} (the lifecycle policy does not set adoptExistingAccounts)`,
        nonRetryable: true,
      });
    }
  }

  /** Of `roles` (the directory's listing), removes each no open entitlement explains, under its subject-role lock. */
  async function removeUnmanaged(directory: DirectoryConnector, tenantId: string, personId: string, roles: string[]): Promise<string[]> {
    const removed: string[] = [];
    for (const role of roles) {
      const gone = await inScope(pool, tenantScope(tenantId), async (client) => {
        await lockSubjectRole(client, tenantId, personId, role);
        if ((await openEntitlements(client, tenantId, personId, role)).length > 0) return false;
        await directoryCall(() => directory.removeRole(tenantId, personId, role));
        return true;
      });
      if (gone) removed.push(role);
      beat();
    }
    return removed;
  }

  return {
    /** The person's read-model row, HR event statuses and one audit event, in one transaction. */
    async recordPersonEvent(input: RecordPersonEventInput): Promise<{ seq: number }> {
      const tenantId = input.view.tenantId;
      return audited.inTenantScope(tenantId, async (client) => {
        await upsertPersonRow(client, input.view);
        for (const hr of input.hrEvents ?? [])
          await setHrEventStatus(client, tenantId, hr.eventId, hr.status, hr.reason ?? null, hr.receipt ?? null);
        const event = await appendWorkflowEvent(
          client,
          clock,
          tenantId,
          { type: 'person', id: input.view.personId },
          { ...input, payload: { ...input.payload, status: input.view.status } },
        );
        return { seq: event.seq };
      });
    },

    /**
     * Creates or updates the person's directory account and sets its status. A rehire without
     * a profile keeps the stored one. An account the lifecycle did not create is adopted only as
     * the policy allows (guardTakeover).
     */
    async provisionPersonAccount(input: {
      tenantId: string;
      personId: string;
      profile: PersonProfile | null;
      attributes: Record<string, string>;
      status?: 'active' | 'disabled';
    }): Promise<{ created: boolean }> {
      return directoryCall(async () => {
        const directory = await directoryOf(input.tenantId);
        const existing = await directory.getUser(input.tenantId, input.personId);
        if (existing) await guardTakeover(input.tenantId, input.personId, existing);
        const profile =
          input.profile ?? (existing ? { username: existing.username, displayName: existing.displayName, email: existing.email } : null);
        if (!profile) {
          throw ApplicationFailure.create({
            type: DIRECTORY_TARGET_REJECTED,
            message: `no profile for ${input.personId}: a joiner must carry one`,
            nonRetryable: true,
          });
        }
        await directory.upsertUser(input.tenantId, {
          id: input.personId,
          username: profile.username,
          displayName: profile.displayName,
          email: profile.email ?? null,
          attributes: input.attributes,
          ...(input.status ? { initialStatus: input.status } : {}),
        });
        if (input.status) await directory.setUserStatus(input.tenantId, input.personId, input.status);
        return { created: existing === undefined };
      });
    },

    /** Disables (or re-enables) the account; nothing to do for a person who has none. */
    async setPersonAccountStatus(input: {
      tenantId: string;
      personId: string;
      status: 'active' | 'disabled';
    }): Promise<{ changed: boolean }> {
      return directoryCall(async () => {
        const directory = await directoryOf(input.tenantId);
        try {
          await directory.setUserStatus(input.tenantId, input.personId, input.status);
          return { changed: true };
        } catch (error) {
          if (error instanceof DirectoryNotFoundError && input.status === 'disabled') return { changed: false };
          throw error;
        }
      });
    },

    /**
     * A target without sessions fails this step (non-retryable) instead of reporting none ended.
     * Kept for leavers recorded before endPersonSessions (see the person workflow's patch).
     */
    revokePersonSessions(input: { tenantId: string; personId: string }): Promise<number> {
      return directoryCall(async () => {
        const directory = await directoryOf(input.tenantId);
        requireCapability(directory, 'sessions', input.tenantId);
        return directory.revokeSessions(input.tenantId, input.personId);
      });
    },

    /** Ends the person's sessions; a target without sessions answers so, for the leaver's evidence, instead of failing. */
    endPersonSessions(input: { tenantId: string; personId: string }): Promise<PersonSessionsResult> {
      return directoryCall(async () => {
        const directory = await directoryOf(input.tenantId);
        if (!directory.capabilities.sessions) return { supported: false, gap: capabilityGap(directory, 'sessions') };
        return { supported: true, revoked: await directory.revokeSessions(input.tenantId, input.personId) };
      });
    },

    /** Open entitlements (ledger), open grants (read model) and what the directory shows. */
    async listPersonAccess(input: { tenantId: string; personId: string }): Promise<PersonAccess> {
      const { open, grants } = await inScope(pool, tenantScope(input.tenantId), async (client) => ({
        open: await openEntitlements(client, input.tenantId, input.personId),
        grants: await openGrantsOf(client, input.tenantId, input.personId),
      }));
      const directory = await directoryCall(() => directoryOf(input.tenantId));
      // Which roles are privileged is the directory's to say; a target that cannot leaves it
      // unknown (null) and says so, rather than reporting nothing as privileged.
      const roles = [...new Set(open.map((e) => e.role))];
      const lookup = roles.length > 0 && !directory.capabilities.roleLookup ? capabilityGap(directory, 'roleLookup') : null;
      const privileged =
        roles.length === 0 || lookup
          ? new Set<string>()
          : new Set((await directoryCall(() => directory.getRoles(input.tenantId, roles))).filter((r) => r.privileged).map((r) => r.name));
      return {
        entitlements: open.map((e) => ({
          role: e.role,
          sourceType: e.sourceType,
          sourceId: e.sourceId,
          privileged: lookup ? null : privileged.has(e.role),
        })),
        grants,
        directoryRoles: await directoryCall(() => directory.listRoles(input.tenantId, input.personId)),
        ...(lookup ? { notSupported: [lookup] } : {}),
      };
    },

    /**
     * Asks each grant workflow to revoke (a waiting or scheduled grant is cancelled). A grant
     * already ending or over is fine: what counts is that it ends, which awaitGrantsEnded checks.
     */
    async endPersonGrants(input: {
      tenantId: string;
      grantIds: string[];
      actorId: string;
      comment: string;
      authority: Authority;
    }): Promise<{ requested: string[]; alreadyEnding: string[] }> {
      if (!temporal)
        throw ApplicationFailure.create({
          type: LIFECYCLE_MISCONFIGURED,
          message: 'no Temporal client was given to the lifecycle activities',
          nonRetryable: true,
        });
      const requested: string[] = [];
      const alreadyEnding: string[] = [];
      for (const grantId of input.grantIds) {
        try {
          await temporal.workflow.getHandle(grantWorkflowId(input.tenantId, grantId)).executeUpdate(revokeGrantUpdate, {
            args: [{ actorId: input.actorId, comment: input.comment, authority: input.authority }],
          });
          requested.push(grantId);
        } catch (error) {
          if (error instanceof WorkflowUpdateFailedError || error instanceof WorkflowNotFoundError) alreadyEnding.push(grantId);
          else throw error;
        }
      }
      return { requested, alreadyEnding };
    },

    /** Succeeds once none of the grants is open any more, in the read model and in the ledger; else retryable. */
    async awaitGrantsEnded(input: { tenantId: string; personId: string; grantIds: string[] }): Promise<{ ended: string[] }> {
      const stillOpen = await inScope(pool, tenantScope(input.tenantId), async (client) => {
        const open = new Set((await openGrantsOf(client, input.tenantId, input.personId)).map((g) => g.grantId));
        const ledger = new Set(
          (await openEntitlements(client, input.tenantId, input.personId)).filter((e) => e.sourceType === 'grant').map((e) => e.sourceId),
        );
        return input.grantIds.filter((id) => open.has(id) || ledger.has(id));
      });
      if (stillOpen.length) throw ApplicationFailure.retryable(`grants not ended yet: ${stillOpen.join(', ')}`, 'GrantsStillOpen');
      return { ended: input.grantIds };
    },

    /**
     * Removes directory roles no open entitlement explains (assigned outside Tenure), under the
     * same subject-role lock the ledger uses, so it never races a legitimate assignment.
     * Kept for leavers recorded before endPersonAccess (see the person workflow's patch).
     */
    async removeUnmanagedRoles(input: { tenantId: string; personId: string }): Promise<{ removed: string[] }> {
      const directory = await directoryCall(() => directoryOf(input.tenantId));
      const roles = await directoryCall(() => directory.listRoles(input.tenantId, input.personId));
      return { removed: await removeUnmanaged(directory, input.tenantId, input.personId, roles) };
    },

    /**
     * A leaver's access ends in one step: the given entitlements (the leaver's listing) closed and
     * their roles removed from the target where no other source holds them, as endAccess does for
     * each, in one transaction holding every one of their subject-role locks (the target changes
     * before the closes commit, so a crash leaves the ledger explaining more than the target holds,
     * never less); then the roles no open entitlement explains removed, as removeUnmanagedRoles
     * does. Idempotent per entitlement and per role: a retry closes nothing twice and removing an
     * absent role is a no-op.
     *
     * `verified` is true only when, after the last change, the ledger and then the directory were
     * read back empty (verifyPersonAccessGone's two reads). When an unmanaged role was removed the
     * read-back is left to verifyPersonAccessGone, so that a failure of it never retries this step
     * and loses the list of what was removed from the evidence.
     */
    async endPersonAccess(input: {
      tenantId: string;
      personId: string;
      entitlements: { role: string; sourceType: EntitlementSourceType; sourceId: string }[];
      reason: string;
    }): Promise<{ closed: number; unmanagedRolesRemoved: string[]; verified: boolean }> {
      const { tenantId, personId } = input;
      const directory = await directoryCall(() => directoryOf(tenantId));
      let closed = 0;
      if (input.entitlements.length > 0) {
        closed = await inScope(pool, tenantScope(tenantId), async (client) => {
          const roles = [...new Set(input.entitlements.map((e) => e.role))].sort();
          await lockSubjectRoles(client, tenantId, personId, roles);
          const result = await closeEntitlements(client, {
            tenantId,
            subjectId: personId,
            reason: input.reason,
            sources: input.entitlements,
          });
          for (const role of roles) {
            // Also on a retry (nothing closed): an earlier attempt may have committed without the removal reported.
            if ((result.remainingOpen.get(role) ?? 0) === 0) await directoryCall(() => directory.removeRole(tenantId, personId, role));
            else await resetEnd(directory, client, { tenantId, subjectId: personId, role }); // the others keep it: its end follows theirs
            beat();
          }
          return result.closed;
        });
      }
      const open = await inScope(pool, tenantScope(tenantId), (client) => openEntitlements(client, tenantId, personId));
      const roles = await directoryCall(() => directory.listRoles(tenantId, personId));
      if (roles.length === 0) return { closed, unmanagedRolesRemoved: [], verified: open.length === 0 };
      return { closed, unmanagedRolesRemoved: await removeUnmanaged(directory, tenantId, personId, roles), verified: false };
    },

    /** Reads the target back: no role in the directory and no open entitlement, else retryable. */
    async verifyPersonAccessGone(input: { tenantId: string; personId: string }): Promise<{ verified: true }> {
      const directory = await directoryCall(() => directoryOf(input.tenantId));
      const open = await inScope(pool, tenantScope(input.tenantId), (client) => openEntitlements(client, input.tenantId, input.personId));
      const roles = await directoryCall(() => directory.listRoles(input.tenantId, input.personId));
      if (open.length || roles.length) {
        throw ApplicationFailure.retryable(
          `access remains: ${[...open.map((e) => `${e.sourceType}:${e.sourceId}:${e.role}`), ...roles.map((r) => `directory:${r}`)].join(', ')}`,
          'AccessRemains',
        );
      }
      return { verified: true };
    },

    /**
     * After retention: marks the account deleted, or scrubs its personal data (anonymise). Either
     * way the profile leaves the stored HR event bodies too. Both steps are idempotent, so a retry
     * after a failure halfway finishes the job.
     */
    async erasePerson(input: { tenantId: string; personId: string; mode: 'delete' | 'anonymise' }): Promise<{ existed: boolean }> {
      await inScope(pool, tenantScope(input.tenantId), (client) => scrubHrEventProfiles(client, input.tenantId, input.personId));
      return directoryCall(async () => {
        const directory = await directoryOf(input.tenantId);
        const user = await directory.getUser(input.tenantId, input.personId);
        if (!user) return { existed: false };
        if (input.mode === 'anonymise') {
          const alias = `anon-${createHash('sha256').update(`${input.tenantId}/${input.personId}`).digest('hex').slice(0, 16)}`;
          await directory.upsertUser(input.tenantId, {
            id: input.personId,
            username: alias,
            displayName: 'Anonymised person',
            email: null,
            attributes: {},
          });
          await directory.setUserStatus(input.tenantId, input.personId, 'disabled');
        } else {
          await directory.setUserStatus(input.tenantId, input.personId, 'deleted');
        }
        return { existed: true };
      });
    },
  };
}

export type LifecycleActivities = ReturnType<typeof createLifecycleActivities>;
