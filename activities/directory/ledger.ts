import { ApplicationFailure } from '@temporalio/common';
import {
  DIRECTORY_TARGET_REJECTED,
  DirectoryConflictError,
  DirectoryError,
  type DirectoryConnector,
  type DirectoryResolver,
  type EntitlementSourceType,
} from '../../core/directory/connector.js';
import { assignHeld, resetEnd } from '../../connectors/directory/ledger-steps.js';
import {
  closeEntitlement,
  databaseClock,
  entitlementState,
  lockSubjectRole,
  openEntitlement,
  openEntitlements,
  setEntitlementExpiry,
} from '../../db/directory/ledger.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';

export interface AccessInput {
  tenantId: string;
  /** The directory user who holds (or held) the role. */
  subjectId: string;
  role: string;
  sourceType: EntitlementSourceType;
  /** The grant id, birthright rule id, template id… that gives the access. */
  sourceId: string;
}

export interface GrantAccessInput extends AccessInput {
  /**
   * When this source's access ends (a grant's window). The target is told to end the membership
   * by itself at the latest end among the open sources, as a backstop to the removal.
   */
  expiresAt?: string | null;
}

export interface ExtendAccessInput extends AccessInput {
  expiresAt: string;
}

export interface GrantAccessResult {
  entitlementId: string;
  /** True when the target now holds the role for this entitlement. */
  assigned: boolean;
  /** True when this source had already ended (revoked before activation): nothing was assigned. */
  alreadyEnded: boolean;
  /**
   * When the target held the assignment, by the database's clock (read right after it): the
   * moment access was given, which a workflow resuming later should record rather than its own
   * clock. Absent when nothing was assigned, and from results recorded before it existed.
   */
  assignedAt?: string;
}

export interface EndAccessInput extends AccessInput {
  /** Why the access ends (expired, revoked, relinquished, leaver, …); kept on the entitlement. */
  reason: string;
}

export interface EndAccessResult {
  /** False on a retry after the first attempt committed, or when the source never opened. */
  closed: boolean;
  /** True when no other source holds the role, so it was removed from the target (or already absent). */
  removedFromTarget: boolean;
  /** Other sources still holding the role. */
  remainingOpen: number;
  /** The target read back after the change, under the same lock: whether the access is gone. */
  verification: VerifyAccessResult;
}

export interface VerifyAccessInput {
  tenantId: string;
  subjectId: string;
  role: string;
  /** When given, this source's own entitlement must be closed too, or the access is not gone. */
  sourceType?: EntitlementSourceType;
  sourceId?: string;
}

export interface VerifyAccessResult {
  /** The role is absent from the target, or present only because other open sources hold it. */
  gone: boolean;
  /** What the target shows right now. */
  presentOnTarget: boolean;
  /** Open sources that legitimately keep the role, as `<sourceType>:<sourceId>`. */
  heldBy: string[];
}

/**
 * A permanent target refusal (no such user or role, a conflicting username) as a non-retryable
 * failure of a type workflows can name; transient ones (DirectoryUnavailableError) and anything
 * else pass through unchanged and stay retryable. Every activity that calls a connector uses it.
 */
export function directoryFailure(error: unknown): unknown {
  if (error instanceof DirectoryError && !error.retryable) {
    return ApplicationFailure.create({ type: DIRECTORY_TARGET_REJECTED, message: error.message, nonRetryable: true, cause: error });
  }
  return error;
}

/** Runs a connector call, reporting a permanent refusal as directoryFailure does. */
export async function directoryCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw directoryFailure(error);
  }
}

/**
 * Access activities: the entitlement ledger and the directory change it implies, kept in step.
 * They write no audit events (the calling workflow records its own, with its own event ids).
 *
 * Every ledger step holds the (tenant, subject, role) advisory lock while it calls the target,
 * so a removal decided on "no other source is open" cannot overtake an assignment for a newer
 * source. The ledger is written so that it always explains at least what the target holds:
 * a grant commits its entitlement before assigning, and an end removes from the target before
 * its close commits. A crash in between leaves the ledger claiming access the target lacks,
 * never the reverse, and the retried activity completes the step.
 *
 * Each step asks `directories` for the tenant's connector first, before it takes a ledger
 * connection; the connector must not draw on `pool` (see createPostgresDirectory): the lock
 * holder keeps its ledger connection while the directory takes another.
 */
export function createLedgerActivities({ pool, directories }: { pool: Pool; directories: DirectoryResolver }) {
  /** The tenant's connector, resolved for this call; a target it cannot build (its secret missing) fails like a refusal. */
  const directoryOf = (tenantId: string) => directoryCall(() => directories.directoryFor(tenantId));

  /** Reads ledger and target for one subject and role; call it holding the lock. */
  async function readBack(directory: DirectoryConnector, client: PoolClient, input: VerifyAccessInput): Promise<VerifyAccessResult> {
    const open = await openEntitlements(client, input.tenantId, input.subjectId, input.role);
    const own = open.filter((e) => e.sourceType === input.sourceType && e.sourceId === input.sourceId);
    const others = open.filter((e) => !own.includes(e));
    const presentOnTarget = await directory.hasRole(input.tenantId, input.subjectId, input.role);
    return {
      gone: own.length === 0 && (!presentOnTarget || others.length > 0),
      presentOnTarget,
      heldBy: others.map((e) => `${e.sourceType}:${e.sourceId}`),
    };
  }

  return {
    /**
     * Opens the source's entitlement, then makes sure the target has the role. Idempotent:
     * a retry finds the same entitlement and assigning again is a no-op.
     */
    async grantAccess(input: GrantAccessInput): Promise<GrantAccessResult> {
      const directory = await directoryOf(input.tenantId);
      const scope = tenantScope(input.tenantId);
      // Step 1, committed on its own: from here on the ledger explains the access.
      const opened = await inScope(pool, scope, async (client) => {
        await lockSubjectRole(client, input.tenantId, input.subjectId, input.role);
        return openEntitlement(client, input);
      });
      if (!opened.open) return { entitlementId: opened.entitlementId, assigned: false, alreadyEnded: true };

      // Step 2, under the lock again: the source may have ended in between (a revocation that
      // raced the activation), and then the role must not be assigned for it. Nor when its own
      // window has closed by now (a late or retried activation), even if another source keeps
      // the role live and the target alone would take it.
      const outcome = await inScope(pool, scope, async (client) => {
        await lockSubjectRole(client, input.tenantId, input.subjectId, input.role);
        const state = await entitlementState(client, input.tenantId, opened.entitlementId);
        if (state === 'ended') return 'ended' as const;
        let refusal: DirectoryError;
        if (state === 'end_requested') {
          refusal = new DirectoryConflictError(
            `an early end of ${input.sourceType} ${input.sourceId} was requested: no access is given`,
            input.tenantId,
          );
        } else if (state === 'past_end') {
          refusal = new DirectoryConflictError(
            `the window of ${input.sourceType} ${input.sourceId} ended at ${input.expiresAt ?? '?'}: no access is given`,
            input.tenantId,
          );
        } else {
          try {
            await assignHeld(directory, client, input);
            return { assignedAt: await databaseClock(client) };
          } catch (error) {
            if (!(error instanceof DirectoryError) || error.retryable) throw error;
            refusal = error;
          }
        }
        // The target will never take this assignment: end the entitlement so the ledger does
        // not claim access that does not exist, leave the target holding only what the other
        // sources explain (an earlier attempt, its answer lost, may have assigned for this one),
        // then fail without retries.
        const { remainingOpen } = await closeEntitlement(client, {
          ...input,
          reason: state === 'past_end' ? 'window_passed' : state === 'end_requested' ? 'end_requested' : 'target_rejected',
        });
        if (remainingOpen === 0) await directory.removeRole(input.tenantId, input.subjectId, input.role);
        else await resetEnd(directory, client, input);
        return refusal;
      });
      if (outcome instanceof DirectoryError) throw directoryFailure(outcome);
      if (outcome === 'ended') return { entitlementId: opened.entitlementId, assigned: false, alreadyEnded: true };
      return { entitlementId: opened.entitlementId, assigned: true, alreadyEnded: false, assignedAt: outcome.assignedAt };
    },

    /**
     * Closes the source's entitlement; when no other source holds the role, removes it from the
     * target in the same locked transaction, which commits only after the target confirmed.
     * Idempotent: a retry closes nothing and removing an absent role is a no-op.
     */
    async endAccess(input: EndAccessInput): Promise<EndAccessResult> {
      const directory = await directoryOf(input.tenantId);
      return inScope(pool, tenantScope(input.tenantId), async (client) => {
        await lockSubjectRole(client, input.tenantId, input.subjectId, input.role);
        const { closed, remainingOpen } = await closeEntitlement(client, input);
        // Also on a retry (closed = false): an earlier attempt may have committed the close but
        // not have been reported, or removed nothing; removing again is harmless.
        if (remainingOpen === 0) {
          await directoryCall(() => directory.removeRole(input.tenantId, input.subjectId, input.role));
        } else {
          // The others keep the role; its end on the target now follows theirs.
          await resetEnd(directory, client, input);
        }
        const verification = await readBack(directory, client, input);
        return { closed, removedFromTarget: remainingOpen === 0, remainingOpen, verification };
      });
    },

    /**
     * Moves the end of the source's access (an extension): the ledger first, then the target's
     * own end. Idempotent. False when the source is no longer open (nothing to extend).
     */
    async extendAccess(input: ExtendAccessInput): Promise<{ extended: boolean }> {
      const directory = await directoryOf(input.tenantId);
      return inScope(pool, tenantScope(input.tenantId), async (client) => {
        await lockSubjectRole(client, input.tenantId, input.subjectId, input.role);
        if (!(await setEntitlementExpiry(client, input, input.expiresAt))) return { extended: false };
        await resetEnd(directory, client, input);
        return { extended: true };
      });
    },

    /** Reads the target back, under the lock so ledger and target are seen at one moment. */
    async verifyAccessGone(input: VerifyAccessInput): Promise<VerifyAccessResult> {
      const directory = await directoryOf(input.tenantId);
      return inScope(pool, tenantScope(input.tenantId), async (client) => {
        await lockSubjectRole(client, input.tenantId, input.subjectId, input.role);
        return readBack(directory, client, input);
      });
    },
  };
}

export type LedgerActivities = ReturnType<typeof createLedgerActivities>;
