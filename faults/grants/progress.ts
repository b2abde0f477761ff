import { setTimeout as delay } from 'node:timers/promises';
import type { Pool } from '../../db/pool.js';
import type { Progress } from '../support/run.js';
import { FINAL_STATUSES } from './invariants.js';

/** Every 5 s until stopped: how many grants are in each status (or that the database is down), and the faults so far. */
export function reportStatusEvery5s(owner: Pool, tenantIds: string[], since: number, faults: () => string, progress: Progress) {
  const report = async () => {
    const counts = await owner
      .query<{ status: string; n: number }>(
        'SELECT status, count(*)::int AS n FROM grants WHERE tenant_id = ANY($1) GROUP BY status ORDER BY status',
        [tenantIds],
      )
      .then(
        ({ rows }) => rows.map((r) => `${r.status} ${r.n}`).join(', '),
        () => '(database unavailable)',
      );
    progress(`+${Math.round((Date.now() - since) / 1000)} s: ${counts}; ${faults()}`);
  };
  const timer = setInterval(() => void report(), 5000);
  return () => clearInterval(timer);
}

/** Waits until every grant of these tenants is in a final state, or `deadline` (epoch ms), or `stop()`. */
export async function waitGrantsFinal(owner: Pool, tenantIds: string[], deadline: number, stop: () => boolean, progress: Progress) {
  for (;;) {
    const notFinal = await owner
      .query<{ n: number }>('SELECT count(*)::int AS n FROM grants WHERE tenant_id = ANY($1) AND status <> ALL($2)', [
        tenantIds,
        FINAL_STATUSES,
      ])
      .then(
        (r) => r.rows[0]!.n,
        () => Number.NaN,
      );
    if (notFinal === 0 || stop() || Date.now() > deadline) {
      if (notFinal !== 0) progress(`${notFinal} grants still not final at the drain deadline`);
      return;
    }
    await delay(1000);
  }
}
