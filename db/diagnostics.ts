import type { Pool } from './pool.js';

/** Idempotent by ping id: a second call returns the first recording's time. */
export async function recordPingRow(
  pool: Pool,
  ping: { pingId: string; message: string; workflowId: string; runId: string; recordedAt: Date },
): Promise<Date | undefined> {
  const { rows } = await pool.query<{ recorded_at: Date }>(
    `WITH ins AS (
       INSERT INTO diagnostic_pings (id, message, workflow_id, run_id, recorded_at)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO NOTHING
       RETURNING recorded_at)
     SELECT recorded_at FROM ins
     UNION ALL
     SELECT recorded_at FROM diagnostic_pings WHERE id = $1
     LIMIT 1`,
    [ping.pingId, ping.message, ping.workflowId, ping.runId, ping.recordedAt],
  );
  return rows[0]?.recorded_at;
}
