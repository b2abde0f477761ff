import { reportHash, type ReviewReport } from '../../core/campaigns/report.js';
import type { Pool } from '../../db/pool.js';
import { REVIEWED_ROLE, type CampaignTenant } from '../../bench/campaigns/setup.js';
import { verifyChains } from '../support/chains.js';

/** Results that end a revocation: at most one of these per item, written once. */
const FINAL_RESULTS = ['applied_verified', 'already_absent', 'needs_rule_change'];

/**
 * The promises a campaign run makes under faults, read from the database once the system is
 * quiet. Each count must be 0. `revoked` holds the subjects the reviewers decided to revoke, per
 * tenant; every other seeded subject was decided keep.
 */
export async function checkCampaignInvariants(
  owner: Pool,
  runId: string,
  tenants: readonly CampaignTenant[],
  revoked: ReadonlyMap<string, ReadonlySet<string>>,
) {
  const tenantIds = tenants.map((t) => t.tenantId);
  const { rows: items } = await owner.query<{
    tenant_id: string;
    id: string;
    subject_id: string;
    role: string;
    outcome: string | null;
    result: string | null;
    assignments: number;
  }>(
    `SELECT i.tenant_id, i.id, i.subject_id, i.role, i.outcome, i.result,
            (SELECT count(*)::int FROM review_assignments a WHERE a.tenant_id = i.tenant_id AND a.item_id = i.id AND a.stage = 1) AS assignments
       FROM review_items i WHERE i.run_id = $1`,
    [runId],
  );
  // Access now: the target's memberships and the ledger's open entitlements of the reviewed role.
  const { rows: access } = await owner.query<{
    tenant_id: string;
    subject_id: string;
    member: boolean;
    open: boolean;
    ended_reason: string | null;
  }>(
    `SELECT e.tenant_id, e.subject_id,
            EXISTS (SELECT 1 FROM directory_memberships m WHERE m.tenant_id = e.tenant_id AND m.user_id = e.subject_id AND m.role = e.role) AS member,
            e.ended_at IS NULL AS open, e.end_reason AS ended_reason
       FROM entitlements e WHERE e.tenant_id = ANY($1::uuid[]) AND e.role = $2 AND e.source_type = 'manual'`,
    [tenantIds, REVIEWED_ROLE],
  );
  const { rows: events } = await owner.query<{
    tenant_id: string;
    target_type: string;
    target_id: string;
    action: string;
    hash: string | null;
  }>(
    `SELECT tenant_id, target_type, target_id, action, payload->>'hash' AS hash FROM audit_events
      WHERE tenant_id = ANY($1::text[]) AND ((target_type = 'review' AND target_id = $2) OR target_type = 'review_item')`,
    [tenantIds, runId],
  );
  const { rows: reports } = await owner.query<{ tenant_id: string; report: ReviewReport; hash: string }>(
    'SELECT tenant_id, report, hash FROM review_reports WHERE run_id = $1',
    [runId],
  );

  const key = (tenantId: string, subjectId: string) => `${tenantId}/${subjectId}`;
  const itemOf = new Map(items.filter((i) => i.role === REVIEWED_ROLE).map((i) => [key(i.tenant_id, i.subject_id), i]));
  const accessOf = new Map(access.map((a) => [key(a.tenant_id, a.subject_id), a]));
  const expected = tenants.flatMap((t) =>
    t.subjects.map((s) => ({ tenantId: t.tenantId, subjectId: s, revoke: revoked.get(t.tenantId)?.has(s) ?? false })),
  );
  const expectedKeys = new Set(expected.map((e) => key(e.tenantId, e.subjectId)));
  const count = (list: string[]) => list.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<string, number>());
  const itemEvents = count(
    events
      .filter((e) => e.target_type === 'review_item' && FINAL_RESULTS.some((r) => e.action === `review.item_${r}`))
      // An item's id is derived from (run, subject, role): unique within its tenant, not across tenants.
      .map((e) => key(e.tenant_id, e.target_id)),
  );
  const reviewEvents = count(events.filter((e) => e.target_type === 'review').map((e) => `${e.tenant_id} ${e.action}`));

  let revokesNotApplied = 0;
  let revokesMisreported = 0;
  let keepsRemoved = 0;
  for (const e of expected) {
    const item = itemOf.get(key(e.tenantId, e.subjectId));
    const held = accessOf.get(key(e.tenantId, e.subjectId));
    const stillHeld = held === undefined || held.open || held.member;
    if (e.revoke) {
      if (!item || item.outcome !== 'revoke' || !FINAL_RESULTS.includes(item.result ?? '') || stillHeld) revokesNotApplied++;
      // The seed gave this access and the campaign ended it: "already absent" would be false evidence.
      else if (item.result !== 'applied_verified' && held.ended_reason === 'review_revoked') revokesMisreported++;
    } else if (!held || !held.open || !held.member || item?.outcome !== 'keep') keepsRemoved++;
  }

  let reportMismatches = 0;
  for (const tenantId of tenantIds) {
    const report = reports.find((r) => r.tenant_id === tenantId);
    const recorded = events.filter((e) => e.tenant_id === tenantId && e.action === 'review.report_recorded');
    const mine = items.filter((i) => i.tenant_id === tenantId);
    const byId = new Map(mine.map((i) => [i.id, i]));
    const itemsMatch =
      report !== undefined &&
      report.report.items.length === mine.length &&
      report.report.items.every((r) => byId.get(r.itemId)?.outcome === r.outcome && byId.get(r.itemId)?.result === r.result);
    if (!report || reportHash(report.report) !== report.hash || recorded.length !== 1 || recorded[0]!.hash !== report.hash || !itemsMatch)
      reportMismatches++;
  }

  const chains = await verifyChains(owner);
  return {
    items: items.length,
    itemsLost: expected.filter((e) => (itemOf.get(key(e.tenantId, e.subjectId))?.assignments ?? 0) === 0).length,
    /** Items nobody seeded, items with more than one assignment, or a review that recorded its items more than once. */
    itemsDoubled:
      items.filter((i) => !expectedKeys.has(key(i.tenant_id, i.subject_id)) || i.role !== REVIEWED_ROLE).length +
      items.filter((i) => i.assignments > 1).length +
      [...reviewEvents].filter(([k, n]) => k.endsWith(' review.items_materialised') && n > 1).length,
    revokesNotApplied,
    revokesAppliedTwice: [...itemEvents.values()].filter((n) => n > 1).length,
    revokesMisreported,
    keepsRemoved,
    reportMismatches,
    /** Review events that must be written once per review (materialised, stage closed, report, completed) written more than once. */
    reviewEventsDoubled: [...reviewEvents].filter(([k, n]) => !k.endsWith(' review.deadline_moved') && n > 1).length,
    chainsFailingVerification: chains.filter((c) => !c.intact).length,
    results: Object.fromEntries([...count(items.map((i) => i.result ?? 'pending'))].sort()),
  };
}
