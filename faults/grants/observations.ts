import type { GrantView } from '../../core/grants/contract.js';
import type { Pool } from '../../db/pool.js';
import { orphanMemberships, type AccessSample, type AccessSource } from '../support/access-sampler.js';
import { verifyChains, type ChainVerification } from '../support/chains.js';
import type { Tracked } from './plan.js';

interface GrantRow {
  tenant_id: string;
  grant_id: string;
  status: string;
  end_at: Date;
  activated_at: Date | null;
  revocation_verified_at: Date | null;
  view: GrantView;
}

export interface EventRow {
  tenant_id: string;
  target_id: string;
  action: string;
  seq: string;
  occurred_at: Date;
  payload: { step?: string };
}

interface EntitlementRow {
  source_id: string;
  granted_at: Date;
  ended_at: Date | null;
  /** `window_passed` / `target_rejected` / `end_requested`: the activation was refused and the ledger took the role back itself. */
  end_reason: string | null;
  expires_at: Date | null;
}

/** One grant as the run left it: its read-model row, audit trail, ledger entitlement and what the driver did. */
export interface ObservedGrant extends GrantRow {
  /** Its audit events in chain order. */
  events: EventRow[];
  entitlement: EntitlementRow | undefined;
  /** When the driver sent the early revoke, if it did. */
  revokeSentAt: number | undefined;
}

/** Everything the invariants are computed from, read once the system is quiet. */
export interface Observations {
  checkedAt: number;
  grants: ObservedGrant[];
  /** Memberships left that no open entitlement explains. */
  orphans: { tenant_id: string; user_id: string; role: string }[];
  /** What the directory gave during the run. */
  samples: AccessSample[];
  /**
   * Whether the target ends a membership by itself at the end it was told (the built-in
   * directory); without that (LDAP, SCIM), a membership lasts until something removes it.
   */
  targetEndsMemberships: boolean;
  /** `access.swept` events of the run's tenants, by reason (`past_end`, `unexplained`), and `access.sweep_failed`. */
  sweeps: Record<string, number>;
  chains: ChainVerification[];
}

export async function observe(
  owner: Pool,
  tracked: Tracked[],
  tenantIds: string[],
  source: AccessSource,
  samples: AccessSample[],
): Promise<Observations> {
  const checkedAt = Date.now();
  const byGrant = new Map(tracked.filter((t) => t.grantId).map((t) => [t.grantId!, t]));
  const { rows: grants } = await owner.query<GrantRow>(
    `SELECT tenant_id, grant_id, status, end_at, activated_at, revocation_verified_at, view FROM grants WHERE tenant_id = ANY($1)`,
    [tenantIds],
  );
  const { rows: events } = await owner.query<EventRow>(
    `SELECT tenant_id, target_id, action, seq, occurred_at, payload FROM audit_events
      WHERE tenant_id = ANY($1) AND target_type = 'grant' ORDER BY tenant_id, seq`,
    [tenantIds],
  );
  const eventsOf = new Map<string, EventRow[]>();
  for (const e of events) eventsOf.set(e.target_id, [...(eventsOf.get(e.target_id) ?? []), e]);
  const { rows: entitlements } = await owner.query<EntitlementRow>(
    `SELECT source_id, granted_at, ended_at, end_reason, expires_at FROM entitlements WHERE tenant_id = ANY($1) AND source_type = 'grant'`,
    [tenantIds],
  );
  const entitlementOf = new Map(entitlements.map((e) => [e.source_id, e]));
  const orphans = await orphanMemberships(owner, source);
  const { rows: swept } = await owner.query<{ kind: string; n: number }>(
    `SELECT CASE WHEN action = 'access.swept' THEN payload->>'reason' ELSE 'failed' END AS kind, count(*)::int AS n
       FROM audit_events WHERE tenant_id = ANY($1) AND action IN ('access.swept', 'access.sweep_failed') GROUP BY 1`,
    [tenantIds],
  );
  return {
    checkedAt,
    grants: grants.map((g) => ({
      ...g,
      events: eventsOf.get(g.grant_id) ?? [],
      entitlement: entitlementOf.get(g.grant_id),
      revokeSentAt: byGrant.get(g.grant_id)?.revokeSentAt,
    })),
    orphans,
    samples,
    targetEndsMemberships: source.kind === 'builtin',
    sweeps: Object.fromEntries(swept.map((r) => [r.kind, r.n])),
    chains: await verifyChains(owner),
  };
}
