import type { DirectoryConnector } from '../../core/directory/connector.js';
import { templateApplyWorkflowId, templateRollbackWorkflowId } from '../../core/templates/contract.js';
import type { Pool } from '../../db/pool.js';
import { dryRun } from '../../usecases/templates.js';
import { verifyChains } from '../support/chains.js';
import { differences, readTenantState, type TenantState } from './state.js';

/** How often each tenant's apply (or rollback) wrote what must be written once, from its chain and tables. */
async function writesPerTenant(owner: Pool, rolloutId: string, tenantIds: readonly string[]) {
  const { rows } = await owner.query<{
    tenant_id: string;
    applied: number;
    pinned: number;
    apply_policy: number;
    snapshots: number;
    restored: number;
    rollback_policy: number;
  }>(
    `SELECT t.id::text AS tenant_id,
            (SELECT count(*)::int FROM audit_events e WHERE e.tenant_id = t.id::text AND e.action = 'template.apply.applied'
               AND e.workflow_id = 'rollout/' || $1 || '/' || t.id) AS applied,
            (SELECT count(*)::int FROM audit_events e WHERE e.tenant_id = t.id::text AND e.action = 'template.applied'
               AND e.workflow_id = 'rollout/' || $1 || '/' || t.id) AS pinned,
            (SELECT count(*)::int FROM audit_events e WHERE e.tenant_id = t.id::text AND e.action = 'policy.updated'
               AND e.workflow_id = 'rollout/' || $1 || '/' || t.id) AS apply_policy,
            (SELECT count(*)::int FROM template_snapshots s WHERE s.tenant_id = t.id AND s.rollout_id = $1::uuid) AS snapshots,
            (SELECT count(*)::int FROM audit_events e WHERE e.tenant_id = t.id::text AND e.action = 'template.rollback.restored'
               AND e.workflow_id = 'rollout/' || $1 || '/' || t.id || '/rollback') AS restored,
            (SELECT count(*)::int FROM audit_events e WHERE e.tenant_id = t.id::text AND e.action = 'policy.updated'
               AND e.workflow_id = 'rollout/' || $1 || '/' || t.id || '/rollback') AS rollback_policy
       FROM tenants t WHERE t.id = ANY($2::uuid[])`,
    [rolloutId, tenantIds],
  );
  return new Map(rows.map((r) => [r.tenant_id, r]));
}

/**
 * After the apply phase, quiet: each tenant's apply ended; an applied tenant is fully at the
 * version (a dry-run of it is empty, the pin records it); a tenant that did not apply holds
 * either nothing of it (as before) or all of it. Nothing was applied twice.
 */
export async function checkApplyPhase(
  owner: Pool,
  directory: DirectoryConnector,
  rollout: { rolloutId: string; templateId: string },
  before: ReadonlyMap<string, TenantState>,
) {
  const tenantIds = [...before.keys()];
  const { rows } = await owner.query<{ tenant_id: string; status: string }>(
    'SELECT tenant_id::text, status FROM template_applies WHERE rollout_id = $1',
    [rollout.rolloutId],
  );
  const statusOf = new Map(rows.map((r) => [r.tenant_id, r.status]));
  const writes = await writesPerTenant(owner, rollout.rolloutId, tenantIds);
  const statuses: Record<string, number> = {};
  const halfApplied: string[] = [];
  const appliedTwice: string[] = [];
  for (const tenantId of tenantIds) {
    const status = statusOf.get(tenantId) ?? 'not started';
    statuses[status] = (statuses[status] ?? 0) + 1;
    const plan = await dryRun({ pool: owner, directory }, tenantId, { templateId: rollout.templateId, version: 1 });
    const now = await readTenantState(owner, directory, tenantId);
    const atVersion = plan.items.length === 0;
    const untouched = differences(before.get(tenantId)!, now).length === 0;
    if (status === 'applied' ? !(atVersion && now.appliedVersion === 1) : !(atVersion || untouched)) halfApplied.push(tenantId);
    const w = writes.get(tenantId);
    if (w && (w.applied > 1 || w.pinned > 1 || w.apply_policy > 1 || w.snapshots > 1)) appliedTwice.push(tenantId);
  }
  return {
    statuses,
    policyVersionsWritten: [...writes.values()].reduce((sum, w) => sum + w.apply_policy, 0),
    tenantsAppliedTwice: appliedTwice.length,
    tenantsLeftHalfApplied: halfApplied.length,
    examples: { halfApplied: halfApplied.slice(0, 5), appliedTwice: appliedTwice.slice(0, 5) },
  };
}

/**
 * After the rollback, quiet: every tenant whose apply took a snapshot is rolled back exactly
 * (roles, settings, policy content and the pin's applied version as before the rollout), once;
 * every chain verifies.
 */
export async function checkRollbackPhase(
  owner: Pool,
  directory: DirectoryConnector,
  rolloutId: string,
  before: ReadonlyMap<string, TenantState>,
) {
  const tenantIds = [...before.keys()];
  const { rows } = await owner.query<{ tenant_id: string; status: string }>(
    'SELECT tenant_id::text, status FROM template_rollbacks WHERE rollout_id = $1',
    [rolloutId],
  );
  const statusOf = new Map(rows.map((r) => [r.tenant_id, r.status]));
  const writes = await writesPerTenant(owner, rolloutId, tenantIds);
  const statuses: Record<string, number> = {};
  const notExact: { tenantId: string; status: string; differ: string[] }[] = [];
  const twice: string[] = [];
  for (const tenantId of tenantIds) {
    const status = statusOf.get(tenantId) ?? 'none';
    statuses[status] = (statuses[status] ?? 0) + 1;
    const differ = differences(before.get(tenantId)!, await readTenantState(owner, directory, tenantId));
    // A tenant without a rollback is one whose apply changed nothing: it must be as before too.
    if (differ.length || (status !== 'rolled_back' && status !== 'none')) notExact.push({ tenantId, status, differ });
    const w = writes.get(tenantId);
    if (w && (w.restored > 1 || w.rollback_policy > 1)) twice.push(tenantId);
  }
  const chains = await verifyChains(owner);
  return {
    statuses,
    policyVersionsRestored: [...writes.values()].reduce((sum, w) => sum + w.rollback_policy, 0),
    rollbacksNotExact: notExact.length,
    tenantsRolledBackTwice: twice.length,
    chains: chains.length,
    chainsFailingVerification: chains.filter((c) => !c.intact).length,
    examples: { notExact: notExact.slice(0, 5), rolledBackTwice: twice.slice(0, 5) },
  };
}

export const applyWorkflowIds = (rolloutId: string, tenantIds: readonly string[]) =>
  tenantIds.map((t) => templateApplyWorkflowId(rolloutId, t));
export const rollbackWorkflowIds = (rolloutId: string, tenantIds: readonly string[]) =>
  tenantIds.map((t) => templateRollbackWorkflowId(rolloutId, t));
