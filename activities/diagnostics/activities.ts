import type { Pool } from '../../db/pool.js';
import type { Clock } from '../index.js';

export interface RecordPingInput {
  pingId: string;
  message: string;
  workflowId: string;
  runId: string;
}

export function createDiagnosticsActivities({ pool, clock }: { pool: Pool; clock: Clock }) {
  return {
    /** Idempotent by ping id: a retried activity returns the first recording's time. */
    async recordPing(input: RecordPingInput): Promise<{ recordedAt: string }> {
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
        [input.pingId, input.message, input.workflowId, input.runId, clock.now()],
      );
      const row = rows[0];
      if (!row) throw new Error(`ping ${input.pingId} was neither inserted nor found`);
      return { recordedAt: row.recorded_at.toISOString() };
    },
  };
}
