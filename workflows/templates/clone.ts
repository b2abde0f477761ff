import { ActivityFailure, ApplicationFailure, proxyActivities, uuid4 } from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import type { Authority } from '../../core/audit/chain.js';
import { DIRECTORY_TARGET_REJECTED } from '../../core/directory/connector.js';
import { boundedTargetRetry } from '../../core/temporal.js';
import {
  CLONE_CONFLICT,
  CLONE_REFUSED,
  type CloneCopied,
  type CloneFailure,
  type TenantCloneInput,
  type TenantCloneResult,
} from '../../core/templates/clone.js';

// PostgreSQL steps retry until they succeed; a refusal (the slug taken meanwhile) is for good.
const { createClonedTenant, finishClone } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '500 ms',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    nonRetryableErrorTypes: [CLONE_CONFLICT, CLONE_REFUSED],
  },
});
// The source's and the new tenant's targets: bounded, so a target that stays down fails the clone visibly.
const { captureCloneSource, copyClonedDirectory, verifyClonedPin } = proxyActivities<Activities>({
  startToCloseTimeout: '60 seconds',
  retry: boundedTargetRetry([DIRECTORY_TARGET_REJECTED, CLONE_REFUSED]),
});

/** The failure's field, when the activity named one (a taken slug or name). */
function fieldOf(error: ActivityFailure): string | null {
  const cause = error.cause;
  if (!(cause instanceof ApplicationFailure)) return null;
  const [details] = cause.details ?? [];
  return typeof (details as { field?: unknown } | undefined)?.field === 'string' ? (details as { field: string }).field : null;
}

/**
 * Clones a tenant for onboarding, `clone/<sourceId>/<idempotencyKey>`: read the source once
 * (roles, settings, policy, pin), create the new tenant with its policy and pin, copy the roles
 * and settings into its directory, then record the outcome. Every audit event is written once
 * by the id made here; what was read lives with the clone's row, not in this history.
 */
export async function tenantCloneWorkflow(input: TenantCloneInput): Promise<TenantCloneResult> {
  const who = {
    actor: input.requester,
    authority: { ...input.authority, cloneId: input.cloneId, sourceTenantId: input.sourceTenantId } satisfies Authority,
  };
  let copied: CloneCopied | null = null;
  let notes: string[] = [];

  const result = (failure: CloneFailure | null): TenantCloneResult => ({
    cloneId: input.cloneId,
    sourceTenantId: input.sourceTenantId,
    tenantId: input.newTenantId,
    status: failure ? 'failed' : 'completed',
    copied: failure ? null : copied,
    notes,
    failure,
  });
  async function finish(failure: CloneFailure | null): Promise<TenantCloneResult> {
    const outcome = result(failure);
    // The new tenant's chain has an event only when the tenant exists.
    await finishClone({ ...who, result: outcome, events: { msp: uuid4(), source: uuid4(), tenant: uuid4() } });
    return outcome;
  }

  try {
    const read = await captureCloneSource({ cloneId: input.cloneId, sourceTenantId: input.sourceTenantId });
    const { notes: found, ...counts } = read;
    copied = counts;
    notes = found;
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    return finish({
      code: 'source_unreadable',
      field: null,
      message: `the source tenant could not be read: ${error.cause?.message ?? error.message}`,
    });
  }

  try {
    await createClonedTenant({ ...who, cloneId: input.cloneId, tags: input.tags, events: { msp: uuid4(), tenant: uuid4(), pin: uuid4() } });
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    const field = fieldOf(error);
    const message = error.cause?.message ?? error.message;
    if (field === 'body.slug') return finish({ code: 'slug_taken', field, message });
    if (field === 'body.name') return finish({ code: 'name_taken', field, message });
    return finish({ code: 'refused', field: null, message });
  }

  try {
    const written = await copyClonedDirectory({ ...who, cloneId: input.cloneId, eventId: uuid4() });
    copied = { ...copied, roles: written.roles, settings: written.settings };
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    // The tenant exists with its policy and pin; its directory does not hold the source's roles and settings.
    return finish({
      code: 'directory_unwritable',
      field: null,
      message: `the new tenant's directory could not be written: ${error.cause?.message ?? error.message}`,
    });
  }
  // Reading back is a check, not a step that can fail the clone: unverified, the pin stays unapplied.
  const pin = copied.pin;
  if (pin) {
    try {
      const verified = await verifyClonedPin({ ...who, cloneId: input.cloneId, eventId: uuid4() });
      copied = { ...copied, pin: { ...pin, appliedVersion: verified.appliedVersion } };
      if (verified.differences.length) {
        notes = [
          ...notes,
          `pin: the clone differs from version ${pin.version} at ${verified.differences.join(', ')} (as the source did); an apply brings it there`,
        ];
      }
    } catch (error) {
      if (!(error instanceof ActivityFailure)) throw error;
      notes = [...notes, `pin: reading the clone back failed (${error.cause?.message ?? error.message}); the version is not applied`];
    }
  }
  return finish(null);
}
