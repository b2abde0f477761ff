import { recordPingRow } from '../../db/diagnostics.js';
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
      const recordedAt = await recordPingRow(pool, { ...input, recordedAt: clock.now() });
      if (!recordedAt) throw new Error(`ping ${input.pingId} was neither inserted nor found`);
      return { recordedAt: recordedAt.toISOString() };
    },
  };
}
