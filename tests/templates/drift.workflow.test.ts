import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  DRIFT_CHECK_WORKFLOW_TYPE,
  DRIFT_SCAN_WORKFLOW_TYPE,
  NO_DRIFT_COUNTS,
  driftCheckWorkflowId,
  type DriftScanInput,
} from '../../core/templates/drift.js';
import type { templateDriftCheckWorkflow, templateDriftScanWorkflow } from '../../workflows/templates/drift.js';
import { connectToDevServer, createWorkflowWorker, recordHistory } from '../support/workflow-harness.js';

/**
 * Workflow tier: the drift scan and the one-tenant check with their activities replaced by
 * recorders, on the dev server (no timers). The scan pages, checks in batches, continues as new
 * after its quota with its counts carried, and never fails for one batch's sake.
 */
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await connectToDevServer();
});
afterAll(async () => {
  await env?.teardown();
});

/** Sorted tenant ids, as the pinned-tenant pages list them. */
const tenants = (n: number) => Array.from({ length: n }, () => randomUUID()).sort();

interface Harness {
  all: string[];
  pages: (string | null)[];
  batches: string[][];
  /** A tenant whose batch fails for good. */
  broken?: string;
}

function fakeActivities(h: Harness) {
  return {
    listDriftTenants: async ({ after, limit }) => {
      h.pages.push(after);
      return { tenantIds: h.all.filter((t) => after === null || t > after).slice(0, limit) };
    },
    checkDriftBatch: async ({ tenantIds }) => {
      h.batches.push(tenantIds);
      if (h.broken && tenantIds.includes(h.broken)) {
        throw ApplicationFailure.create({ type: 'Broken', message: 'the database refused', nonRetryable: true });
      }
      return { ...NO_DRIFT_COUNTS, checked: tenantIds.length, drifted: 1, detected: 2 };
    },
    checkTenantDrift: async ({ tenantId }) => ({
      tenantId,
      outcome: 'checked' as const,
      reason: null,
      open: 1,
      detected: 1,
      resolved: 0,
      remediated: 1,
      alerted: 0,
    }),
  } satisfies Partial<Activities>;
}

async function scan(h: Harness, input: DriftScanInput) {
  const { worker, taskQueue } = await createWorkflowWorker(env, 'template-drift', fakeActivities(h));
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof templateDriftScanWorkflow>(DRIFT_SCAN_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: `template-drift-scan-${randomUUID()}`,
      args: [input],
    });
    const result = await handle.result();
    // The first run: the one that continued as new, when it did.
    await recordHistory('template-drift', env.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId));
    return { result };
  });
}

describe('template drift workflows', () => {
  it('a scan checks every pinned tenant in batches and continues as new after its quota, carrying its counts', async () => {
    const h: Harness = { all: tenants(23), pages: [], batches: [] };
    const { result } = await scan(h, { batchSize: 3, tenantsPerRun: 12 });
    expect(result).toMatchObject({ checked: 23, drifted: 8, detected: 16, failed: 0 });
    // Every tenant once; batches run side by side, so they finish in any order.
    expect(h.batches.flat().sort()).toEqual([...h.all].sort());
    expect(Math.max(...h.batches.map((b) => b.length))).toBe(3);
    // One page of 12 (four batches of three) in the first run; the second run starts after its last tenant.
    expect(h.pages).toEqual([null, h.all[11]]);
  });

  it('a batch that fails for good counts its tenants as failed; the scan checks the others and ends', async () => {
    const all = tenants(7);
    const h: Harness = { all, pages: [], batches: [], broken: all[4] };
    const { result } = await scan(h, { batchSize: 3 });
    expect(result).toMatchObject({ checked: 4, failed: 3 });
    expect(h.batches.flat().sort()).toEqual(all);
  });

  it('a check of one tenant answers what its activity did', async () => {
    const h: Harness = { all: [], pages: [], batches: [] };
    const { worker, taskQueue } = await createWorkflowWorker(env, 'template-drift-check', fakeActivities(h));
    const tenantId = randomUUID();
    const result = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof templateDriftCheckWorkflow>(DRIFT_CHECK_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: `${driftCheckWorkflowId(tenantId)}-${randomUUID()}`,
        args: [{ tenantId, requestedBy: 'operator' }],
      });
      const done = await handle.result();
      await recordHistory('template-drift', handle);
      return done;
    });
    expect(result).toEqual({ tenantId, outcome: 'checked', reason: null, open: 1, detected: 1, resolved: 0, remediated: 1, alerted: 0 });
  });
});
