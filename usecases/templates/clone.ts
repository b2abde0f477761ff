import { createHash, randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import canonicalize from 'canonicalize';
import type { ActionContext } from '../../core/audit/context.js';
import { AppError, notFound } from '../../core/errors.js';
import {
  NOT_CLONED,
  TENANT_CLONE_WORKFLOW_TYPE,
  tenantCloneSearchAttributes,
  tenantCloneWorkflowId,
  type TenantCloneInput,
} from '../../core/templates/clone.js';
import type { CloneTenantRequest, TenantCloneView } from '../../core/templates/clone-schemas.js';
import { TEMPLATES_TASK_QUEUE } from '../../core/templates/contract.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope } from '../../db/scope.js';
import { cloneByKey, insertClone, tenantNameTaken, type CloneRow } from '../../db/templates/clone.js';
import { getTenantRow } from '../../db/tenancy.js';
import type { tenantCloneWorkflow } from '../../workflows/templates/clone.js';
import { policyVersionOf, tenantView } from '../tenancy/views.js';

export interface CloneDeps {
  pool: Pool;
  temporal: Client;
}

/** How long the request waits for the clone to finish before answering 202 (a retry with the same key asks again). */
export const CLONE_WAIT_MS = 20_000;

const taken = (field: 'slug' | 'name', value: string) =>
  new AppError(409, 'conflict', `A tenant with ${field === 'slug' ? 'slug' : 'name'} "${value}" already exists.`, [
    { path: `body.${field}`, message: `${field} already in use` },
  ]);

/** The clone's answer: its row, with the new tenant once it exists. */
async function viewOf(pool: Pool, row: CloneRow): Promise<TenantCloneView> {
  const tenant = await inScope(pool, mspScope, async (client) => {
    const found = await getTenantRow(client, row.new_tenant_id);
    return found ? tenantView(found, await policyVersionOf(client, found.id)) : null;
  });
  return {
    cloneId: row.clone_id,
    sourceTenantId: row.source_tenant_id,
    workflowId: row.workflow_id,
    status: row.status,
    tenantId: row.new_tenant_id,
    tenant: row.status === 'completed' ? tenant : null,
    copied: row.result?.copied ?? null,
    notCopied: [...NOT_CLONED],
    notes: row.result?.notes ?? row.source_state?.notes ?? [],
    requestedBy: row.requested_by,
    requestedAt: row.created_at.toISOString(),
  };
}

/** A failed clone answers the same refusal on every retry with its key. */
function refusalOf(row: CloneRow): AppError | undefined {
  const failure = row.status === 'failed' ? row.result?.failure : undefined;
  if (!failure) return undefined;
  if (failure.code === 'slug_taken' || failure.code === 'name_taken') {
    return new AppError(409, 'conflict', failure.message, [{ path: failure.field ?? 'body', message: 'already in use' }]);
  }
  return new AppError(409, 'clone_failed', `The clone failed: ${failure.message} Send a new Idempotency-Key to try again.`);
}

async function settled(pool: Pool, sourceTenantId: string, key: string): Promise<CloneRow> {
  return (await inScope(pool, mspScope, (client) => cloneByKey(client, sourceTenantId, key)))!;
}

/**
 * Clones `sourceTenantId` into a new tenant, as one workflow per source and idempotency key. The
 * request is stored (with the new tenant's id) before the workflow starts, so a retry with the
 * same key and body answers the same tenant, and one with another body is refused (409), whether
 * the run is still going, finished, or long gone from Temporal. Waits for the clone up to
 * `waitMs`; still running then: 202, and a retry with the key answers the outcome.
 */
export async function cloneTenant(
  deps: CloneDeps,
  ctx: ActionContext,
  sourceTenantId: string,
  body: CloneTenantRequest,
  idempotencyKey: string,
  waitMs = CLONE_WAIT_MS,
): Promise<{ status: 201 | 202; view: TenantCloneView; replayed: boolean }> {
  const request = { sourceTenantId, slug: body.slug, name: body.name.trim(), tags: [...(body.tags ?? [])].sort() };
  const requestHash = createHash('sha256').update(canonicalize(request)!).digest('hex');
  const workflowId = tenantCloneWorkflowId(sourceTenantId, idempotencyKey);

  const stored = await inScope(deps.pool, mspScope, async (client) => {
    if (!(await getTenantRow(client, sourceTenantId))) throw notFound('tenant');
    const earlier = await cloneByKey(client, sourceTenantId, idempotencyKey);
    if (earlier) return { row: earlier, replayed: true };
    const conflicts = await tenantNameTaken(client, { slug: request.slug, name: request.name });
    if (conflicts.slug) throw taken('slug', request.slug);
    if (conflicts.name) throw taken('name', request.name);
    const row = await insertClone(client, {
      clone_id: randomUUID(),
      source_tenant_id: sourceTenantId,
      idempotency_key: idempotencyKey,
      request_hash: requestHash,
      new_tenant_id: randomUUID(),
      workflow_id: workflowId,
      slug: request.slug,
      name: request.name,
      requested_by: ctx.actor.id,
    });
    return { row, replayed: false };
  }).catch(async (error: { code?: string }) => {
    // A concurrent request with the same key stored its row first: this one is its retry.
    if (error.code === '23505') return { row: await settled(deps.pool, sourceTenantId, idempotencyKey), replayed: true };
    throw error;
  });
  let { row } = stored;
  if (row.request_hash !== requestHash) {
    throw new AppError(409, 'idempotency_key_reused', 'This Idempotency-Key was already used to clone this tenant with another body.', [
      { path: 'headers.idempotency-key', message: 'already used with another body' },
    ]);
  }

  if (row.status === 'running') {
    const input: TenantCloneInput = {
      cloneId: row.clone_id,
      sourceTenantId,
      newTenantId: row.new_tenant_id,
      slug: row.slug,
      name: row.name,
      tags: request.tags,
      requester: ctx.actor,
      authority: ctx.authority,
    };
    const start = () =>
      deps.temporal.workflow.start<typeof tenantCloneWorkflow>(TENANT_CLONE_WORKFLOW_TYPE, {
        taskQueue: TEMPLATES_TASK_QUEUE,
        workflowId,
        // A running clone is joined; a closed one is not run again (its row says how it ended).
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        args: [input],
        typedSearchAttributes: tenantCloneSearchAttributes(row.new_tenant_id),
      });
    const handle = await start().catch((error: unknown) => {
      if (error instanceof WorkflowExecutionAlreadyStartedError) return deps.temporal.workflow.getHandle(workflowId);
      throw error;
    });
    // Only a wait: the clone's row, written by its last step, says how it ended. A run that ended
    // without writing it (terminated by an operator) leaves the row running, answered as 202.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([handle.result().catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]).finally(
      () => clearTimeout(timer),
    );
    row = await settled(deps.pool, sourceTenantId, idempotencyKey);
  }

  const refusal = refusalOf(row);
  if (refusal) throw refusal;
  return { status: row.status === 'completed' ? 201 : 202, view: await viewOf(deps.pool, row), replayed: stored.replayed };
}
