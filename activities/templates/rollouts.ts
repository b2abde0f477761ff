import { MSP_CHAIN } from '../../core/audit/chain.js';
import type { RolloutTenantStart, TemplateRolloutView } from '../../core/templates/rollouts.js';
import type { Pool } from '../../db/pool.js';
import { markNotStarted, rolloutTenantsPage, updateRolloutView } from '../../db/rollouts.js';
import { inScope, mspScope } from '../../db/scope.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent, type WorkflowEvent } from '../audit/record.js';

export interface RecordRolloutInput {
  view: TemplateRolloutView;
  /** The step's event on the MSP chain, written once by the id the workflow made. */
  event?: WorkflowEvent;
  /** Tenants that will not start: the rest of `wave` after position `after` (and later waves too). */
  notStarted?: { wave: number; after: number; laterWaves: boolean; state: 'passed_over' | 'cancelled' };
}

/** The rollout's read model and its events on the MSP chain; the tenants' own events are their applies'. */
export function createRolloutActivities({ pool, clock }: { pool: Pool; clock: Clock }) {
  return {
    /** Writes the view (newest revision wins) and, in the same transaction, the step's event. */
    async recordRollout(input: RecordRolloutInput): Promise<{ notStarted: Record<number, number> }> {
      return inScope(pool, mspScope, async (client) => {
        const notStarted = input.notStarted ? await markNotStarted(client, input.view.rolloutId, input.notStarted) : {};
        await updateRolloutView(client, input.view);
        if (input.event) {
          await appendWorkflowEvent(client, clock, MSP_CHAIN, { type: 'template_rollout', id: input.view.rolloutId }, input.event);
        }
        return { notStarted };
      });
    },

    /** The next tenants of a wave still to start, in order. */
    async rolloutTenants(input: { rolloutId: string; wave: number; after: number; limit: number }): Promise<RolloutTenantStart[]> {
      return inScope(pool, mspScope, (client) => rolloutTenantsPage(client, input.rolloutId, input.wave, input.after, input.limit));
    },
  };
}
