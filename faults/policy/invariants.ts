import type { PolicyChangeView } from '../../core/tenancy/contract.js';
import type { Pool } from '../../db/pool.js';
import { verifyChains } from '../support/chains.js';
import type { TrackedChange } from './driver.js';

/** The events a change's trail must hold exactly once each (approvals once per recorded approval), by final status. */
function expectedTrail(view: PolicyChangeView): Map<string, number> {
  const expected = new Map<string, number>([['policy_change.proposed', 1]]);
  if (view.approvals.length) expected.set('policy_change.approval_recorded', view.approvals.length);
  if (view.status !== 'pending') expected.set(`policy_change.${view.status}`, 1);
  return expected;
}

/** Missing and doubled events: each expected action counted against the trail, extras counted as doubled. */
function compareTrail(expected: Map<string, number>, actions: string[]): { missing: number; doubled: number } {
  const actual = new Map<string, number>();
  for (const a of actions) actual.set(a, (actual.get(a) ?? 0) + 1);
  let missing = 0;
  let doubled = 0;
  for (const [action, n] of expected) missing += Math.max(0, n - (actual.get(action) ?? 0));
  for (const [action, n] of actual) doubled += Math.max(0, n - (expected.get(action) ?? 0));
  return { missing, doubled };
}

/**
 * The promises a policy change makes under faults, read from the database once the system is
 * quiet. Each count must be 0.
 */
export async function checkPolicyInvariants(
  owner: Pool,
  tracked: TrackedChange[],
  tenantIds: string[],
  directWrites: Set<string>,
  seedVersions: Set<string>,
) {
  const { rows: changes } = await owner.query<{ change_id: string; status: string; view: PolicyChangeView }>(
    'SELECT change_id, status, view FROM policy_changes WHERE tenant_id = ANY($1)',
    [tenantIds],
  );
  const { rows: versions } = await owner.query<{
    tenant_id: string;
    version: number;
    change_id: string | null;
    approved_by: string[] | null;
  }>('SELECT tenant_id, version, change_id, approved_by FROM tenant_policies WHERE tenant_id = ANY($1)', [tenantIds]);
  const { rows: events } = await owner.query<{ target_type: string; target_id: string; action: string }>(
    `SELECT target_type, target_id, action FROM audit_events
      WHERE tenant_id = ANY($1) AND target_type IN ('policy_change', 'tenant_policy') ORDER BY tenant_id, seq`,
    [tenantIds],
  );
  const actionsOf = new Map<string, string[]>();
  for (const e of events)
    actionsOf.set(`${e.target_type}:${e.target_id}`, [...(actionsOf.get(`${e.target_type}:${e.target_id}`) ?? []), e.action]);

  const ours = new Set(tracked.flatMap((t) => (t.changeId ? [t.changeId] : [])));
  const viewOf = new Map(changes.map((c) => [c.change_id, c.view]));
  const versionsOf = new Map<string, typeof versions>();
  for (const v of versions) if (v.change_id) versionsOf.set(v.change_id, [...(versionsOf.get(v.change_id) ?? []), v]);

  let auditMissing = 0;
  let auditDoubled = 0;
  for (const view of viewOf.values()) {
    const { missing, doubled } = compareTrail(expectedTrail(view), actionsOf.get(`policy_change:${view.changeId}`) ?? []);
    auditMissing += missing;
    auditDoubled += doubled;
  }
  // A direct write is one version with one tenant_policy.updated event.
  for (const key of directWrites) {
    const { missing, doubled } = compareTrail(new Map([['tenant_policy.updated', 1]]), actionsOf.get(`tenant_policy:${key}`) ?? []);
    auditMissing += missing;
    auditDoubled += doubled;
  }

  const quorumReached = (t: TrackedChange) => {
    const view = t.changeId ? viewOf.get(t.changeId) : undefined;
    return view !== undefined && (view.approvals.length >= view.approvalsRequired || t.approvalsAnswered >= t.tenant.quorum);
  };
  const chains = await verifyChains(owner);
  return {
    byStatus: Object.fromEntries(
      [...new Set(changes.map((c) => c.status))].sort().map((s) => [s, changes.filter((c) => c.status === s).length]),
    ),
    changesAppliedTwice: [...versionsOf.values()].filter((vs) => vs.length > 1).length,
    changesLost: tracked.filter((t) => quorumReached(t) && !['applied', 'conflicted'].includes(viewOf.get(t.changeId!)!.status)).length,
    appliedWithoutQuorum: changes.filter((c) => {
      if (c.status !== 'applied') return false;
      const written = versionsOf.get(c.change_id)?.[0];
      const approvers = new Set(written?.approved_by ?? c.view.approvals.map((a) => a.approverId));
      return approvers.size < c.view.approvalsRequired || approvers.has(c.view.proposerId);
    }).length,
    versionsWithoutChange: versions.filter((v) => {
      const key = `${v.tenant_id}/${v.version}`;
      return v.change_id ? !ours.has(v.change_id) : !(directWrites.has(key) || seedVersions.has(key));
    }).length,
    auditMissing,
    auditDoubled,
    chainsFailingVerification: chains.filter((c) => !c.intact).length,
    /** Planned changes never proposed, still pending, or with no row. */
    unfinished: tracked.filter((t) => !t.changeId || (viewOf.get(t.changeId)?.status ?? 'pending') === 'pending').length,
  };
}
