import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { approveGrantUpdate, type GrantView } from '../../core/grants/contract.js';
import type { Pool } from '../../db/pool.js';
import { requestGrant } from '../../usecases/grants.js';
import type { grantWorkflow } from '../../workflows/grants/workflow.js';
import { abortable, runConcurrently } from '../support.js';
import { ROLE, type GrantsBenchSetup } from './setup.js';

/** When one grant's access starts and ends (epoch ms); a whole number of seconds apart. */
export interface Window {
  startAt: number;
  endAt: number;
}

/** Starts one grant workflow; the real side goes through the API's use case, the floor straight to Temporal. */
export type Requester = (i: number, window: Window) => Promise<string>;

/** The real side's requests: through the API's use case (read-model row, then the workflow start). */
export function realRequester(deps: { apiPool: Pool; client: Client }, setup: GrantsBenchSetup): Requester {
  return async (i, window) => {
    const { tenantId, subjectId, policy } = setup.target(i);
    const { view } = await requestGrant(
      {
        pool: deps.apiPool,
        temporal: deps.client,
        directory: setup.directory,
        ...(setup.directories ? { directories: setup.directories } : {}),
      },
      setup.principal,
      tenantId,
      policy,
      {
        subjectId,
        role: ROLE,
        startAt: new Date(window.startAt).toISOString(),
        endAt: new Date(window.endAt).toISOString(),
        justification: 'grants benchmark',
      },
      { requestId: randomUUID() },
    );
    return view.workflowId;
  };
}

/** Each grant lasts `durationSeconds` from its own request. */
export const throughputWindow = (durationSeconds: number) => (): Window => {
  const now = Date.now();
  return { startAt: now, endAt: now + durationSeconds * 1000 };
};

/**
 * `size` grants ending evenly over `spreadSeconds` from `firstEnd`; each starts now-ish, a whole
 * number of seconds before its end.
 */
export const burstWindow = (firstEnd: number, size: number, spreadSeconds: number) => {
  let k = 0;
  return (): Window => {
    const endAt = firstEnd + Math.floor(((k++ % size) * spreadSeconds * 1000) / size);
    return { startAt: endAt - Math.ceil((endAt - Date.now()) / 1000) * 1000, endAt };
  };
};

/**
 * Requests `count` grants `concurrency` at a time, approves each as soon as it is requested
 * (a tenant approver, never the requester), and returns every lifecycle's final view.
 */
export async function requestAndApprove(
  run: { client: Client; abort: AbortController; concurrency: number; setup: GrantsBenchSetup },
  count: number,
  request: Requester,
  windowFor: () => Window,
): Promise<GrantView[]> {
  const { client, abort } = run;
  const results: Promise<GrantView>[] = [];
  // Every Temporal call is cancelled on Ctrl-C, so none is left retrying once the client closes.
  await client.withAbortSignal(abort.signal, () =>
    runConcurrently(count, run.concurrency, abort.signal, async (i) => {
      const workflowId = await request(i, windowFor());
      const handle = client.workflow.getHandle<typeof grantWorkflow>(workflowId);
      await handle.executeUpdate(approveGrantUpdate, { args: [{ actorId: run.setup.target(i).approverId, comment: null }] });
      const result = handle.result();
      result.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
      results.push(result);
    }),
  );
  return abortable(Promise.all(results), abort.signal);
}
