import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import { rolloutRollbackWorkflowId, templateRollbackWorkflowId } from '../../core/templates/contract.js';
import {
  ROLLBACK_NOT_VERIFIED,
  ROLLBACK_REFUSED,
  ROLLOUT_ROLLBACK_WORKFLOW_TYPE,
  TEMPLATE_ROLLBACK_WORKFLOW_TYPE,
  type RollbackConflict,
  type RolloutRollbackInput,
  type TemplateRollbackInput,
} from '../../core/templates/rollback.js';
import type { rolloutRollbackWorkflow, templateRollbackWorkflow } from '../../workflows/templates/rollback.js';
import { connectToDevServer, createWorkflowWorker, recordHistory, startTimeSkippingEnvironment } from '../support/workflow-harness.js';

/**
 * Workflow tier: a tenant's rollback and a whole rollout's, with their activities replaced by
 * recorders, on the time-skipping server (the read-back retries back off for seconds).
 */
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await startTimeSkippingEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

interface Harness {
  events: {
    action: string;
    actor: string;
    status: string;
    tenantId: string;
    authority: Record<string, unknown>;
    payload: Record<string, unknown>;
  }[];
  mspEvents: { action: string; actor: string; counts: Record<string, number> }[];
  calls: string[];
  conflicts: RollbackConflict[];
  pinConflict: RollbackConflict | null;
  verified: boolean;
  restoreRefused: boolean;
  /** Tenants of the rollout with a snapshot, and whether each was already requested on its own. */
  candidates: { tenantId: string; requested: boolean }[];
  running: number;
  maxRunning: number;
  pages: (string | null)[];
  notes: number;
}

const harness = (overrides: Partial<Harness> = {}): Harness => ({
  events: [],
  mspEvents: [],
  calls: [],
  conflicts: [],
  pinConflict: null,
  verified: true,
  restoreRefused: false,
  candidates: [],
  running: 0,
  maxRunning: 0,
  pages: [],
  notes: 0,
  ...overrides,
});

const CONFLICT: RollbackConflict = {
  path: 'directory.settings.passwordMinLength',
  snapshot: 8,
  applied: 12,
  current: 14,
  reason: 'setting passwordMinLength changed after the apply; the rollback leaves it as it is now',
};

function fakeActivities(h: Harness) {
  return {
    recordRollbackEvent: async (i) => {
      h.events.push({
        action: i.action,
        actor: i.actor.id,
        status: i.view.status,
        tenantId: i.view.tenantId,
        authority: i.authority,
        payload: i.payload,
      });
      return { seq: h.events.length };
    },
    restoreSnapshot: async (i) => {
      h.calls.push(`restore:${i.tenantId}`);
      h.running++;
      h.maxRunning = Math.max(h.maxRunning, h.running);
      await new Promise((resolve) => setTimeout(resolve, 50));
      h.running--;
      if (h.restoreRefused) throw ApplicationFailure.create({ type: ROLLBACK_REFUSED, message: 'no snapshot', nonRetryable: true });
      return {
        restored: ['directory.roles.Ops', 'directory.settings.mfaRequired', 'policy'],
        unchanged: [],
        conflicts: h.conflicts,
        unsupported: [],
        policyVersion: 5,
      };
    },
    verifyRollback: async (i) => {
      h.calls.push(`verify:${i.conflicts.join(',')}`);
      if (!h.verified) throw ApplicationFailure.create({ type: ROLLBACK_NOT_VERIFIED, message: 'reading back still shows 1 path(s)' });
      return { verified: true as const };
    },
    repinPrevious: async () => {
      h.calls.push('repin');
      return h.pinConflict ? { pin: null, conflict: h.pinConflict } : { pin: { from: 2, to: 1 }, conflict: null };
    },
    recordRolloutRollbackEvent: async (i) => {
      h.mspEvents.push({ action: i.action, actor: i.actor.id, counts: { ...i.view.counts } });
      return { seq: h.mspEvents.length };
    },
    noteRolloutRollback: async () => {
      h.notes++;
    },
    countRollbackCandidates: async () => h.candidates.length,
    listRollbackCandidates: async ({ after, limit }) => {
      h.pages.push(after);
      const rest = h.candidates.filter((c) => after === null || c.tenantId > after).slice(0, limit);
      return rest.map((c) => ({ ...c, snapshotId: randomUUID(), templateId: 'template', version: 2 }));
    },
  } satisfies Partial<Activities>;
}

function rollbackInput(overrides: Partial<TemplateRollbackInput> = {}): TemplateRollbackInput {
  return {
    rolloutId: randomUUID(),
    tenantId: randomUUID(),
    snapshotId: randomUUID(),
    templateId: randomUUID(),
    version: 2,
    requester: { id: 'operator', type: 'user' },
    authority: { roles: ['operator'] },
    parentWorkflowId: null,
    ...overrides,
  };
}

async function runTenant(h: Harness, input: TemplateRollbackInput) {
  const { worker, taskQueue } = await createWorkflowWorker(env, 'template-rollback', fakeActivities(h));
  return worker.runUntil(async () => {
    const handle: WorkflowHandle<typeof templateRollbackWorkflow> = await env.client.workflow.start<typeof templateRollbackWorkflow>(
      TEMPLATE_ROLLBACK_WORKFLOW_TYPE,
      { taskQueue, workflowId: templateRollbackWorkflowId(input.rolloutId, input.tenantId), args: [input] },
    );
    const result = await handle.result();
    await recordHistory('template-rollback', handle, { waitForClose: true });
    return result;
  });
}

describe('template rollback workflow (one tenant)', () => {
  it('restores, verifies by reading back, re-pins the version before: each step audited once with the rollback as authority', async () => {
    const h = harness();
    const input = rollbackInput();
    const result = await runTenant(h, input);
    expect(result).toMatchObject({
      status: 'rolled_back',
      restored: ['directory.roles.Ops', 'directory.settings.mfaRequired', 'policy'],
      conflicts: [],
      policyVersion: 5,
      pin: { from: 2, to: 1 },
      restoredAt: expect.any(String),
      verifiedAt: expect.any(String),
    });
    expect(h.calls).toEqual([`restore:${input.tenantId}`, 'verify:', 'repin']);
    expect(h.events.map((e) => [e.action, e.actor, e.status])).toEqual([
      ['template.rollback.requested', 'operator', 'restoring'],
      ['template.rollback.restored', 'system', 'verifying'],
      ['template.rollback.verified', 'system', 'rolled_back'],
    ]);
    expect(h.events[0]!.authority).toMatchObject({
      roles: ['operator'],
      rolloutId: input.rolloutId,
      snapshotId: input.snapshotId,
      rollback: templateRollbackWorkflowId(input.rolloutId, input.tenantId),
    });
  });

  it('paths the tenant changed after the apply are conflicts: verification accepts exactly those, and the status says so', async () => {
    const pinConflict: RollbackConflict = { path: 'pin', snapshot: null, applied: { version: 2 }, current: null, reason: 'moved on' };
    const h = harness({ conflicts: [CONFLICT], pinConflict });
    const result = await runTenant(h, rollbackInput());
    expect(result.status).toBe('rolled_back_with_conflicts');
    expect(result.conflicts.map((c) => c.path)).toEqual(['directory.settings.passwordMinLength', 'pin']);
    expect(result.pin).toBeNull();
    expect(h.calls).toContain('verify:directory.settings.passwordMinLength');
    expect(h.events.at(-1)).toMatchObject({
      action: 'template.rollback.verified',
      status: 'rolled_back_with_conflicts',
      payload: { conflicts: ['directory.settings.passwordMinLength', 'pin'] },
    });
  });

  it('reading back that never shows the snapshot fails the rollback at verify, after a few attempts, and re-pins nothing', async () => {
    const h = harness({ verified: false });
    const result = await runTenant(h, rollbackInput());
    expect(result).toMatchObject({ status: 'failed', outcome: expect.stringMatching(/^verify: /), verifiedAt: null, pin: null });
    expect(h.calls.filter((c) => c.startsWith('verify'))).toHaveLength(5);
    expect(h.calls).not.toContain('repin');
    expect(h.events.map((e) => e.action)).toEqual([
      'template.rollback.requested',
      'template.rollback.restored',
      'template.rollback.failed',
    ]);
  });

  it('a restore refused for good fails at once at restore: no read back, no pin', async () => {
    const h = harness({ restoreRefused: true });
    const result = await runTenant(h, rollbackInput());
    expect(result).toMatchObject({ status: 'failed', outcome: expect.stringMatching(/^restore: /) });
    expect(h.calls.filter((c) => c.startsWith('restore'))).toHaveLength(1);
    expect(h.events.map((e) => e.action)).toEqual(['template.rollback.requested', 'template.rollback.failed']);
  });
});

describe('rollout rollback workflow (every tenant with a snapshot)', () => {
  // The dev server: the children carry the TenantId search attribute, which it has registered.
  let dev: TestWorkflowEnvironment;
  beforeAll(async () => {
    dev = await connectToDevServer();
  });
  afterAll(async () => {
    await dev?.teardown();
  });

  it('rolls back page by page with continue-as-new, never more than the window at once, skipping tenants requested on their own', async () => {
    const tenants = Array.from({ length: 7 }, () => randomUUID()).sort();
    const h = harness({ candidates: tenants.map((tenantId, i) => ({ tenantId, requested: i === 4 })) });
    const rolloutId = randomUUID();
    const input: RolloutRollbackInput = {
      rolloutId,
      requester: { id: 'operator', type: 'user' },
      authority: { roles: ['operator'] },
      window: 2,
      pageSize: 3,
    };
    const { worker, taskQueue } = await createWorkflowWorker(dev, 'rollout-rollback', fakeActivities(h));
    const result = await worker.runUntil(async () => {
      const handle = await dev.client.workflow.start<typeof rolloutRollbackWorkflow>(ROLLOUT_ROLLBACK_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: rolloutRollbackWorkflowId(rolloutId),
        args: [input],
      });
      const done = await handle.result();
      await recordHistory('rollout-rollback', handle, { waitForClose: true });
      return done;
    });
    expect(result).toMatchObject({
      status: 'completed',
      counts: { total: 7, started: 6, rolledBack: 6, withConflicts: 0, failed: 0, alreadyRequested: 1 },
      running: [],
      completedAt: expect.any(String),
    });
    // Three pages: the cursor moves by tenant id across runs.
    expect(h.pages).toEqual([null, tenants[2], tenants[5]]);
    expect(h.maxRunning).toBeLessThanOrEqual(2);
    expect(h.calls.filter((c) => c.startsWith('restore')).sort()).toEqual(
      tenants
        .filter((_, i) => i !== 4)
        .map((t) => `restore:${t}`)
        .sort(),
    );
    // Each child's events name the parent; the MSP chain has the start and the end, once each.
    const requested = h.events.filter((e) => e.action === 'template.rollback.requested');
    expect(requested).toHaveLength(6);
    expect(requested.every((e) => e.payload.parentWorkflowId === rolloutRollbackWorkflowId(rolloutId))).toBe(true);
    expect(h.mspEvents.map((e) => [e.action, e.actor])).toEqual([
      ['rollout.rollback.requested', 'operator'],
      ['rollout.rollback.completed', 'system'],
    ]);
    expect(h.mspEvents[1]!.counts).toMatchObject({ rolledBack: 6, alreadyRequested: 1 });
    expect(h.notes).toBeGreaterThanOrEqual(6);
  });
});
