import { setTimeout as delay } from 'node:timers/promises';
import type { Pool } from '../../db/pool.js';

/**
 * One look at the built-in directory during a run: the memberships that gave access at that
 * moment (the database's own clock, the one the directory decides by).
 */
export interface AccessSample {
  at: number;
  live: { tenant_id: string; user_id: string; role: string }[];
}

/** Samples effective access every `everyMs` until stopped; a sample that fails (PostgreSQL down) is a gap. */
export function sampleAccess(owner: Pool, tenantIds: string[], everyMs: number) {
  const samples: AccessSample[] = [];
  let failed = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const { rows } = await owner.query<{ at: Date; tenant_id: string; user_id: string; role: string }>(
          `SELECT now() AS at, m.tenant_id, m.user_id, m.role FROM (SELECT now()) AS t
             LEFT JOIN directory_memberships m ON m.tenant_id = ANY($1) AND (m.expires_at IS NULL OR m.expires_at > now())`,
          [tenantIds],
        );
        samples.push({ at: rows[0]!.at.getTime(), live: rows.filter((r) => r.tenant_id !== null) });
      } catch {
        failed++;
      }
      await delay(everyMs);
    }
  })();
  return {
    samples,
    get failed() {
      return failed;
    },
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** Memberships of these tenants that no open entitlement explains: access nobody is accountable for. */
export async function orphanMemberships(owner: Pool, tenantIds: string[]) {
  const { rows } = await owner.query<{ tenant_id: string; user_id: string; role: string }>(
    `SELECT m.tenant_id, m.user_id, m.role FROM directory_memberships m
      WHERE m.tenant_id = ANY($1) AND NOT EXISTS (
        SELECT 1 FROM entitlements e WHERE e.tenant_id = m.tenant_id AND e.subject_id = m.user_id AND e.role = m.role AND e.ended_at IS NULL)`,
    [tenantIds],
  );
  return rows;
}
