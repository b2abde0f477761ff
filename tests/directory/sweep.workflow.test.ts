import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import { DIRECTORY_TARGET_REJECTED } from '../../core/directory/connector.js';
import { SWEEP_WORKFLOW_TYPE, sweepWorkflowId, type SweepCandidate, type SweepResult } from '../../core/directory/sweep.js';
import type { sweepWorkflow } from '../../workflows/directory/sweep.js';
import { connectToDevServer, createWorkflowWorker, recordHistory } from '../support/workflow-harness.js';

/**
 * Workflow tier: the real sweep workflow with its activities faked by an in-memory target and
 * ledger. It has no timers, so it runs on the shared dev server in real time.
 */
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await connectToDevServer();
});
afterAll(async () => {
  await env?.teardown();
});

interface Target {
  /** `role/subject` memberships the target holds. */
  memberships: Set<string>;
  /** Memberships some open entitlement explains right now. */
  explained: Set<string>;
  /** Memberships the target refuses to remove, for good. */
  refuses: Set<string>;
  /** Which target it is; `postgres` ends memberships by itself. */
  kind: string;
  plans: { after: unknown; limit: number }[];
  swept: { key: string; eventId: string }[];
  failures: { key: string; eventId: string; reason: string }[];
}

const key = (c: { role: string; subjectId: string }) => `${c.role}/${c.subjectId}`;

function fakeActivities(t: Target) {
  return {
    planSweep: async (input) => {
      t.plans.push({ after: input.after, limit: input.limit });
      if (t.kind === 'postgres')
        return { skipped: 'the postgres target ends memberships by itself', target: t.kind, candidates: [], next: null };
      const sorted = [...t.memberships].sort();
      const start = input.after ? sorted.indexOf(key(input.after)) + 1 : 0;
      const candidates: SweepCandidate[] = [];
      for (const k of sorted.slice(start)) {
        if (t.explained.has(k)) continue;
        const [role, subjectId] = k.split('/') as [string, string];
        candidates.push({ role, subjectId, reason: 'unexplained', pastEnd: [] });
        if (candidates.length === input.limit) return { skipped: null, target: t.kind, candidates, next: { role, subjectId } };
      }
      return { skipped: null, target: t.kind, candidates, next: null };
    },
    sweepMembership: async (input) => {
      const k = key(input);
      if (t.refuses.has(k)) {
        throw ApplicationFailure.create({
          type: DIRECTORY_TARGET_REJECTED,
          message: `the target refused to remove ${k}`,
          nonRetryable: true,
        });
      }
      t.memberships.delete(k);
      t.swept.push({ key: k, eventId: input.eventId });
      return { outcome: 'removed' as const };
    },
    recordSweepFailure: async (input) => {
      t.failures.push({ key: key(input), eventId: input.eventId, reason: input.reason });
      return { seq: t.failures.length };
    },
  } satisfies Partial<Activities>;
}

const target = (over: Partial<Target> = {}): Target => ({
  memberships: new Set(),
  explained: new Set(),
  refuses: new Set(),
  kind: 'ldap',
  plans: [],
  swept: [],
  failures: [],
  ...over,
});

async function sweep(t: Target, removalsPerRun?: number): Promise<SweepResult> {
  const tenantId = randomUUID();
  const { worker, taskQueue } = await createWorkflowWorker(env, 'sweep', fakeActivities(t));
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof sweepWorkflow>(SWEEP_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: `${sweepWorkflowId(tenantId)}-${randomUUID()}`,
      args: [{ tenantId, ...(removalsPerRun ? { removalsPerRun } : {}) }],
    });
    const result = await handle.result();
    await recordHistory('sweep', handle, { waitForClose: true });
    return result;
  });
}

describe('sweep workflow', () => {
  it('removes every unexplained membership page by page, records a refusal and leaves explained ones alone', async () => {
    const memberships = Array.from({ length: 130 }, (_, i) => `Admins/u${String(i).padStart(3, '0')}`);
    const t = target({
      memberships: new Set([...memberships, 'Staff/ana', 'Staff/bo']),
      explained: new Set(['Staff/ana', 'Admins/u007']),
      refuses: new Set(['Staff/bo']),
    });
    const result = await sweep(t);
    expect(result).toMatchObject({ removed: 129, failed: 1, skipped: null });
    expect([...t.memberships].sort()).toEqual(['Admins/u007', 'Staff/ana', 'Staff/bo']);
    expect(t.failures).toEqual([{ key: 'Staff/bo', eventId: expect.any(String), reason: 'the target refused to remove Staff/bo' }]);
    // A page of 100, then the rest after its last membership.
    expect(t.plans.map((p) => p.after)).toEqual([null, { role: 'Admins', subjectId: 'u100' }]);
    // Each removal carries an event id of its own, made in the workflow.
    const ids = [...t.swept.map((s) => s.eventId), ...t.failures.map((f) => f.eventId)];
    expect(new Set(ids).size).toBe(130);
  });

  it('continues as new after the configured number of memberships, carrying its counts and place', async () => {
    const t = target({ memberships: new Set(Array.from({ length: 250 }, (_, i) => `R/s${String(i).padStart(3, '0')}`)) });
    const result = await sweep(t, 100);
    expect(result).toMatchObject({ removed: 250, failed: 0, skipped: null });
    expect(t.memberships.size).toBe(0);
    expect(t.plans.map((p) => p.after)).toEqual([null, { role: 'R', subjectId: 's099' }, { role: 'R', subjectId: 's199' }]);
  });

  it('sweeps nothing on a target that ends memberships by itself', async () => {
    const t = target({ kind: 'postgres', memberships: new Set(['Admins/ana']) });
    expect(await sweep(t)).toMatchObject({ removed: 0, failed: 0, skipped: 'the postgres target ends memberships by itself' });
    expect(t.memberships.size).toBe(1);
  });
});
