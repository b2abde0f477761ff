import { getPerson, listPeople } from '../../usecases/lifecycle.js';
import { runConcurrently } from '../support.js';
import { ascending, byTenant, type LifecycleBench } from './context.js';
import type { Person } from './people.js';

const cohortIds = (cohort: Person[]) => cohort.map((p) => p.personId);

/** Per person: the step's audit event minus the row's registration, and the time of the last step (epoch ms). */
export async function stepTimes(
  bench: LifecycleBench,
  type: 'joiner' | 'leaver',
  cohort: Person[],
): Promise<{ latenciesMs: number[]; lastAt: number }> {
  const action = type === 'joiner' ? 'person.joined' : 'person.left';
  const { rows } = await bench.owner.query<{ latency_ms: number; at_ms: number }>(
    `SELECT (extract(epoch FROM a.occurred_at - h.received_at) * 1000)::float8 AS latency_ms,
            (extract(epoch FROM a.occurred_at) * 1000)::float8 AS at_ms
       FROM hr_events h
       JOIN audit_events a ON a.tenant_id = h.tenant_id::text AND a.target_type = 'person' AND a.target_id = h.person_id
                          AND a.action = $2 AND a.authority->>'hrEventId' = h.event_id
      WHERE h.tenant_id = ANY($1::uuid[]) AND h.type = $3 AND h.person_id = ANY($4)`,
    [bench.tenantIds, action, type, cohortIds(cohort)],
  );
  if (rows.length !== cohort.length) throw new Error(`${rows.length} ${action} audit events for ${cohort.length} people`);
  return { latenciesMs: ascending(rows.map((r) => Math.round(r.latency_ms))), lastAt: Math.max(...rows.map((r) => r.at_ms)) };
}

/** People of the cohort `active` in the read model, counted only once every birthright entitlement is open too. */
export const joinedCount = (bench: LifecycleBench, cohort: Person[]) => {
  const expected = cohort.reduce((sum, p) => sum + p.roles.length, 0);
  return async () => {
    const { rows } = await bench.owner.query<{ active: number; open: number }>(
      `SELECT (SELECT count(*)::int FROM people WHERE tenant_id = ANY($1::uuid[]) AND person_id = ANY($2) AND status = 'active') AS active,
              (SELECT count(*)::int FROM entitlements WHERE tenant_id = ANY($1::uuid[]) AND subject_id = ANY($2) AND ended_at IS NULL) AS open`,
      [bench.tenantIds, cohortIds(cohort)],
    );
    // Done only when every birthright entitlement is open too (the joined step records after granting).
    return rows[0]!.open >= expected ? rows[0]!.active : Math.min(rows[0]!.active, cohort.length - 1);
  };
};

/** People of the cohort `left` in the read model. */
export const leftCount = (bench: LifecycleBench, cohort: Person[]) => async () => {
  const { rows } = await bench.owner.query<{ left: number }>(
    `SELECT count(*)::int AS left FROM people WHERE tenant_id = ANY($1::uuid[]) AND person_id = ANY($2) AND status = 'left'`,
    [bench.tenantIds, cohortIds(cohort)],
  );
  return rows[0]!.left;
};

/** What the use cases answer after the joiners: each person active with exactly their birthright roles. */
export async function checkJoined(bench: LifecycleBench, cohort: Person[]): Promise<void> {
  await runConcurrently(cohort.length, 4, bench.abort.signal, async (i) => {
    const p = cohort[i]!;
    const { person, entitlements } = await getPerson(bench.apiPool, bench.tenantIds[p.tenant]!, p.personId);
    const roles = entitlements
      .filter((e) => e.sourceType === 'birthright')
      .map((e) => e.role)
      .sort();
    if (person.status !== 'active' || roles.join() !== p.roles.join() || entitlements.length !== p.roles.length) {
      throw new Error(
        `after the joiners, ${p.personId} is ${person.status} with ${JSON.stringify(roles)}, expected active with ${JSON.stringify(p.roles)}`,
      );
    }
  });
}

/** What the use cases answer after the leavers: every person of each tenant listed as left. */
export async function checkLeft(bench: LifecycleBench, cohort: Person[]): Promise<void> {
  for (const [t, list] of byTenant(bench, cohort).entries()) {
    const ids = new Set(list.map((p) => p.personId));
    const left = (await listPeople(bench.apiPool, bench.tenantIds[t]!, { status: 'left', limit: 100_000 })).filter((v) =>
      ids.has(v.personId),
    );
    if (left.length !== list.length)
      throw new Error(`after the leavers, tenant ${t} lists ${left.length} of ${list.length} people as left`);
  }
}

/** Open ledger entitlements and directory memberships these people still have. */
export async function residual(bench: LifecycleBench, cohort: Person[]): Promise<{ open: number; memberships: number }> {
  const { rows } = await bench.owner.query<{ open: number; memberships: number }>(
    `SELECT (SELECT count(*)::int FROM entitlements WHERE tenant_id = ANY($1::uuid[]) AND subject_id = ANY($2) AND ended_at IS NULL) AS open,
            (SELECT count(*)::int FROM directory_memberships WHERE tenant_id = ANY($1::uuid[]) AND user_id = ANY($2)) AS memberships`,
    [bench.tenantIds, cohortIds(cohort)],
  );
  return rows[0]!;
}
