import { DirectoryError, type DirectoryConnector } from '../../core/directory/connector.js';
import {
  heldUntil,
  lockSubjectRole,
  othersHoldNow,
  requestEntitlementEnd,
  type EntitlementKey,
  type EndRequest,
} from '../../db/directory/ledger.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';

/**
 * Ledger steps that change the target, shared by the access activities (a workflow's steps) and
 * the use cases that must act before a workflow can (an early end). Each runs holding the
 * (tenant, subject, role) lock, so ledger and target change in step.
 */

interface SubjectRole {
  tenantId: string;
  subjectId: string;
  role: string;
}

/** Assigns the role until the latest end among the open sources (heldUntil); call it holding the lock. */
export async function assignHeld(directory: DirectoryConnector, client: PoolClient, input: SubjectRole): Promise<void> {
  await directory.assignRole(
    input.tenantId,
    input.subjectId,
    input.role,
    await heldUntil(client, input.tenantId, input.subjectId, input.role),
  );
}

/** Tells the target when the remaining hold ends; a user or role gone meanwhile has nothing to end. */
export async function resetEnd(directory: DirectoryConnector, client: PoolClient, input: SubjectRole): Promise<void> {
  try {
    await assignHeld(directory, client, input);
  } catch (error) {
    if (error instanceof DirectoryError && !error.retryable) return;
    throw error;
  }
}

export interface EarlyEnd extends EndRequest {
  /** True when no other source gives the role now, so the target no longer holds it. */
  removedFromTarget: boolean;
}

/**
 * Closes a source's access at the target now, ahead of its own end step (a revoke the grant's
 * workflow has not taken up yet): the entitlement's end becomes now and stays there
 * (requestEntitlementEnd), `record` writes the evidence in the same transaction, and the target
 * drops the role, or keeps it only until the other sources' end. The entitlement stays open for
 * the end step to close and verify. Null, with nothing changed, when the source holds nothing
 * open or its end was already requested (a retried request).
 *
 * The transaction commits only after the target took the change; when the target fails, nothing
 * is recorded and the error is thrown (the end step retries it).
 */
export function endAccessEarly(
  pool: Pool,
  directory: DirectoryConnector,
  key: EntitlementKey,
  record: (client: PoolClient, request: EndRequest & { removedFromTarget: boolean }) => Promise<void>,
): Promise<EarlyEnd | null> {
  return inScope(pool, tenantScope(key.tenantId), async (client) => {
    await lockSubjectRole(client, key.tenantId, key.subjectId, key.role);
    const request = await requestEntitlementEnd(client, key);
    if (!request) return null;
    const removedFromTarget = !(await othersHoldNow(client, key.tenantId, key.subjectId, key.role, request.entitlementId));
    await record(client, { ...request, removedFromTarget });
    if (removedFromTarget) await directory.removeRole(key.tenantId, key.subjectId, key.role);
    else await resetEnd(directory, client, key);
    return { ...request, removedFromTarget };
  });
}
