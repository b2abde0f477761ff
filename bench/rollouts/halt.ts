import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { MSP_CHAIN } from '../../core/audit/chain.js';
import { rolloutWorkflowId } from '../../core/templates/contract.js';
import { ROLLOUT_ACTIONS, type TemplateRolloutView } from '../../core/templates/rollouts.js';
import type { Pool } from '../../db/pool.js';
import { DirectoryRejectedError, type DirectoryConnector, type DirectoryResolver } from '../../core/directory/connector.js';
import { childrenStarted } from './setup.js';

/**
 * The halt check: a rollout over tenants whose target refuses (the connector's permanent
 * rejection), with a small error budget, must start nobody once the budget is passed.
 */

/** Every tenant in `failing` gets a target that refuses to read or write its security settings; the rest get `directory`. */
export function refusingFor(directory: DirectoryConnector, failing: ReadonlySet<string>): DirectoryResolver {
  const refuse = (tenantId: string) =>
    Promise.reject(new DirectoryRejectedError('the benchmark’s target refuses this tenant’s settings', tenantId, 'benchmark'));
  const refusing: DirectoryConnector = {
    ...directory,
    getSecuritySettings: refuse,
    applySecuritySettings: (tenantId: string) => refuse(tenantId),
  };
  return { directoryFor: (tenantId) => Promise.resolve(failing.has(tenantId) ? refusing : directory) };
}

export interface HaltCount {
  /** Children the rollout had started when the halt was decided (from the halt event's payload). */
  startedAtHalt: number;
  /** Children Temporal started under the rollout's id, read once it was quiet. */
  startedInTemporal: number;
  tenantsStartedAfterHalt: number;
  failures: number;
  budget: string;
}

/** The halt event on the MSP chain: the rollout's `template.rollout.halted` payload. */
async function haltEvent(owner: Pool, rolloutId: string) {
  const { rows } = await owner.query<{ payload: { wave: number; failures: number; budget: string; inFlight: number; notStarted: number } }>(
    `SELECT payload FROM audit_events WHERE tenant_id = $1 AND target_type = 'template_rollout' AND target_id = $2 AND action = $3 ORDER BY seq`,
    [MSP_CHAIN, rolloutId, ROLLOUT_ACTIONS.halted],
  );
  return rows.map((r) => r.payload);
}

/**
 * Once the rollout is halted with nothing in flight: Temporal's own count of the children it
 * started (listed until two reads a few seconds apart agree, as visibility trails), against those
 * started when the halt was decided.
 */
export async function countAfterHalt(owner: Pool, client: Client, view: TemplateRolloutView): Promise<HaltCount> {
  const halts = await haltEvent(owner, view.rolloutId);
  if (halts.length !== 1) throw new Error(`rollout ${view.rolloutId}: ${halts.length} halt events, expected 1`);
  const halt = halts[0]!;
  const before = view.waves.slice(0, halt.wave).reduce((sum, w) => sum + w.size, 0);
  const startedAtHalt = before + view.waves[halt.wave]!.size - halt.notStarted;
  let seen = -1;
  let startedInTemporal = (await childrenStarted(client, rolloutWorkflowId(view.rolloutId))).length;
  while (startedInTemporal !== seen) {
    seen = startedInTemporal;
    await delay(3000);
    startedInTemporal = (await childrenStarted(client, rolloutWorkflowId(view.rolloutId))).length;
  }
  return {
    startedAtHalt,
    startedInTemporal,
    tenantsStartedAfterHalt: startedInTemporal - startedAtHalt,
    failures: halt.failures,
    budget: halt.budget,
  };
}
