import { randomUUID } from 'node:crypto';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  APPLY_REFUSED,
  applyQuery,
  approveApplyUpdate,
  rolloutWorkflowId,
  templateApplyWorkflowId,
} from '../../core/templates/contract.js';
import {
  approveRolloutWaveUpdate,
  cancelRolloutUpdate,
  pendingWave,
  pauseRolloutUpdate,
  resumeRolloutUpdate,
  RolloutRejection,
  rolloutQuery,
  skipRolloutWaveUpdate,
  TEMPLATE_ROLLOUT_WORKFLOW_TYPE,
  type RolloutActorInput,
  type TemplateRolloutInput,
  type TemplateRolloutView,
} from '../../core/templates/rollouts.js';
import type { templateRolloutWorkflow } from '../../workflows/templates/rollout.js';
import { eventually } from '../support/stack.js';
import { connectToDevServer, createWorkflowWorker, recordHistory, rejectionType, until } from '../support/workflow-harness.js';

/**
 * Workflow tier: the rollout with its children (the real apply workflow), every activity replaced
 * by recorders over an in-memory list of the rollout's tenants. Children carry the TenantId search
 * attribute, which only the dev server knows, so this runs there in real time with short gates.
 */
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await connectToDevServer();
});
afterAll(async () => {
  await env?.teardown();
});

interface Harness {
  tenants: { tenantId: string; wave: number; position: number; state: string; timeout: number }[];
  needsApproval: Set<string>;
  failing: Set<string>;
  /** Applies that wait for the test to let them go. */
  held: Map<string, { release: () => void; promise: Promise<void>; reached: boolean }>;
  rolloutEvents: { action: string; actor: string; payload: Record<string, unknown> }[];
  /** Tenants in the order their applies began (`template.apply.requested`). */
  starts: string[];
  applyEvents: { tenantId: string; action: string; status: string }[];
  applied: string[];
  /** The view the read model holds: the last one recorded. */
  recorded?: TemplateRolloutView;
}

function harness(
  waves: string[][],
  overrides: Partial<Pick<Harness, 'needsApproval' | 'failing'>> = {},
  timeouts: Record<string, number> = {},
): Harness {
  return {
    tenants: waves.flatMap((tenants, wave) =>
      tenants.map((tenantId, i) => ({ tenantId, wave, position: i + 1, state: 'pending', timeout: timeouts[tenantId] ?? 3600 })),
    ),
    needsApproval: new Set(),
    failing: new Set(),
    held: new Map(),
    rolloutEvents: [],
    starts: [],
    applyEvents: [],
    applied: [],
    ...overrides,
  };
}

function hold(h: Harness, tenantId: string) {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  h.held.set(tenantId, { release, promise, reached: false });
}

function fakeActivities(h: Harness) {
  return {
    recordRollout: async (i) => {
      const notStarted: Record<number, number> = {};
      if (i.notStarted) {
        const m = i.notStarted;
        for (const t of h.tenants) {
          if (t.state === 'pending' && ((t.wave === m.wave && t.position > m.after) || (m.laterWaves && t.wave > m.wave))) {
            t.state = m.state;
            notStarted[t.wave] = (notStarted[t.wave] ?? 0) + 1;
          }
        }
      }
      if (i.event) h.rolloutEvents.push({ action: i.event.action, actor: i.event.actor.id, payload: i.event.payload });
      h.recorded = i.view;
      return { notStarted };
    },
    rolloutTenants: async ({ wave, after, limit }) =>
      h.tenants
        .filter((t) => t.wave === wave && t.position > after && t.state === 'pending')
        .slice(0, limit)
        .map((t) => ({ tenantId: t.tenantId, position: t.position, parameters: {}, approvalTimeoutSeconds: t.timeout })),
    // The tenants' approvers, as PostgreSQL would answer for them.
    confirmApplyDecider: async ({ actorId }) => ({ counts: actorId.startsWith('approver-') }),
    recordApplyEvent: async (i) => {
      if (i.action === 'template.apply.requested' && !h.starts.includes(i.view.tenantId)) h.starts.push(i.view.tenantId);
      h.applyEvents.push({ tenantId: i.view.tenantId, action: i.action, status: i.view.status });
      return { seq: h.applyEvents.length };
    },
    planApply: async (i) => ({
      summary: { changes: 1, loosens: h.needsApproval.has(i.tenantId) ? 1 : 0, privileged: 0, unsupported: 0 },
      needsApproval: h.needsApproval.has(i.tenantId),
      approvalsRequired: 1,
    }),
    snapshotTenant: async (i) => ({ snapshotId: i.snapshotId }),
    applyVersion: async (i) => {
      const held = h.held.get(i.tenantId);
      if (held) {
        held.reached = true;
        await held.promise;
      }
      if (h.failing.has(i.tenantId)) {
        throw ApplicationFailure.create({ type: APPLY_REFUSED, message: 'the target refused the write', nonRetryable: true });
      }
      h.applied.push(i.tenantId);
      return { roles: 1, settings: 1, policyVersion: null, unsupported: [] };
    },
    verifyApply: async () => ({ remaining: 0 }),
    pinApplied: async () => undefined,
  } satisfies Partial<Activities>;
}

function rolloutInput(
  waves: string[][],
  options: Partial<TemplateRolloutInput['options']> = {},
  extra: Partial<TemplateRolloutInput> = {},
): TemplateRolloutInput {
  return {
    rolloutId: randomUUID(),
    templateId: randomUUID(),
    version: 2,
    requester: { id: 'operator', type: 'user' },
    authority: { roles: ['operator'] },
    waves: waves.map((t, i) => ({ name: i === 0 ? 'canary' : `wave ${i}`, size: t.length })),
    options: {
      window: 2,
      bakeSeconds: 0,
      approveBetweenWaves: false,
      errorBudget: { maxFailures: 0, maxFailurePercent: null },
      approvalTimeoutMinutes: null,
      ...options,
    },
    ...extra,
  };
}

const tenantIds = (n: number) => Array.from({ length: n }, () => randomUUID());

/** `n` tenants in one wave, one at a time, the first holding in its apply until `release`d. */
function firstHeld(n: number) {
  const tenants = tenantIds(n);
  const h = harness([tenants]);
  hold(h, tenants[0]!);
  return {
    tenants,
    h,
    input: rolloutInput([tenants], { window: 1 }),
    applying: () => eventually(async () => h.held.get(tenants[0]!)!.reached, Boolean),
    release: () => h.held.get(tenants[0]!)!.release(),
  };
}

async function run<T>(
  h: Harness,
  input: TemplateRolloutInput,
  body: (handle: WorkflowHandleWithFirstExecutionRunId<typeof templateRolloutWorkflow>) => Promise<T>,
) {
  const { worker, taskQueue } = await createWorkflowWorker(env, 'template-rollout', fakeActivities(h));
  return worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof templateRolloutWorkflow>(TEMPLATE_ROLLOUT_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: rolloutWorkflowId(input.rolloutId),
      args: [input],
    });
    return body(handle);
  });
}

const operator = (actorId = 'operator-2'): { args: [RolloutActorInput] } => ({ args: [{ actorId, authority: { roles: ['operator'] } }] });
const at = (handle: WorkflowHandle, accept: (view: TemplateRolloutView) => boolean) => until(handle, rolloutQuery, accept, 20_000);
const child = (input: TemplateRolloutInput, tenantId: string) =>
  env.client.workflow.getHandle(templateApplyWorkflowId(input.rolloutId, tenantId));
/** Waits for a tenant's apply to reach its gate (it may not have been started yet). */
const atTenantGate = (input: TemplateRolloutInput, tenantId: string) =>
  eventually(
    () =>
      child(input, tenantId)
        .query(applyQuery)
        .catch(() => undefined),
    (v) => v?.status === 'awaiting_approval',
  );
const pick = (view: TemplateRolloutView) => view.waves.map(({ startedAt: _s, completedAt: _c, approvedBy: _a, index: _i, ...w }) => w);
/** A completed wave whose tenants all started, with these outcomes. */
const wave = (name: string, size: number, counts: Partial<TemplateRolloutView['waves'][number]> = {}) => {
  const { index: _i, startedAt: _s, completedAt: _c, approvedBy: _a, ...w } = pendingWave(0, name, size);
  return { ...w, status: 'completed', started: size, ...counts };
};

describe('template rollout workflow', () => {
  it('a canary then two waves over five tenants, each approved by an operator after a bake: one tenant approves at its gate, one times out and is skipped', async () => {
    const [t1, t2, t3, t4, t5] = tenantIds(5) as [string, string, string, string, string];
    const waves = [[t1], [t2, t3], [t4, t5]];
    const h = harness(waves, { needsApproval: new Set([t3, t5]) }, { [t5]: 2 });
    const input = rolloutInput(waves, { bakeSeconds: 1, approveBetweenWaves: true });
    const result = await run(h, input, async (handle) => {
      const afterCanary = await at(handle, (v) => v.status === 'awaiting_wave_approval' && v.currentWave === 0);
      expect(pick(afterCanary)[0]).toEqual(wave('canary', 1, { applied: 1 }));
      expect(h.starts).toEqual([t1]);
      // Nothing of the next wave starts before an operator approves it; a halted-only step is refused.
      expect(await rejectionType(handle.executeUpdate(skipRolloutWaveUpdate, operator()))).toBe(RolloutRejection.WrongState);
      expect(await rejectionType(handle.executeUpdate(pauseRolloutUpdate, operator()))).toBe(RolloutRejection.WrongState);
      expect(await handle.executeUpdate(approveRolloutWaveUpdate, operator())).toMatchObject({ status: 'running' });
      // t3's plan loosens its control: its own approver decides, at its child's gate.
      await atTenantGate(input, t3);
      await child(input, t3).executeUpdate(approveApplyUpdate, { args: [{ actorId: 'approver-a' }] });
      await at(handle, (v) => v.status === 'awaiting_wave_approval' && v.currentWave === 1);
      expect(await rejectionType(handle.executeUpdate(approveRolloutWaveUpdate, { args: [{ actorId: '' }] }))).toBe(
        RolloutRejection.InvalidInput,
      );
      await handle.executeUpdate(approveRolloutWaveUpdate, operator('operator-3'));
      const done = await handle.result();
      await recordHistory('template-rollout', handle);
      // A child that reports to its rollout, for the apply workflow's replay.
      await recordHistory('template-apply', child(input, t3));
      return done;
    });
    expect(result.status).toBe('completed');
    expect(pick(result)).toEqual([
      wave('canary', 1, { applied: 1 }),
      wave('wave 1', 2, { applied: 2 }),
      wave('wave 2', 2, { applied: 1, skipped: 1 }),
    ]);
    expect(result.waves.map((w) => w.approvedBy)).toEqual([null, 'operator-2', 'operator-3']);
    expect(h.applied.sort()).toEqual([t1, t2, t3, t4].sort());
    expect(h.applyEvents.filter((e) => e.tenantId === t5).map((e) => e.action)).toEqual([
      'template.apply.requested',
      'template.apply.planned',
      'template.apply.skipped',
    ]);
    expect(h.rolloutEvents.map((e) => [e.action, e.actor])).toEqual([
      ['template.rollout.started', 'operator'],
      ['template.rollout.wave_started', 'system'],
      ['template.rollout.wave_completed', 'system'],
      ['template.rollout.wave_approved', 'operator-2'],
      ['template.rollout.wave_started', 'system'],
      ['template.rollout.wave_completed', 'system'],
      ['template.rollout.wave_approved', 'operator-3'],
      ['template.rollout.wave_started', 'system'],
      ['template.rollout.wave_completed', 'system'],
      ['template.rollout.completed', 'system'],
    ]);
    expect(h.rolloutEvents.at(-1)!.payload).toMatchObject({ tenants: 5, applied: 4, skipped: 1, failed: 0 });
  });

  it('halts once a wave’s failures pass its budget: no tenant starts after the halt; skipping passes over the rest of the wave and the next wave runs', async () => {
    const tenants = tenantIds(6);
    const waves = [tenants.slice(0, 5), tenants.slice(5)];
    const h = harness(waves, { failing: new Set(tenants.slice(0, 2)) });
    const input = rolloutInput(waves, { window: 2, errorBudget: { maxFailures: 1, maxFailurePercent: null } });
    const result = await run(h, input, async (handle) => {
      // A start is in flight from the moment it is decided, so halted with none in flight means every
      // start decided before the halt has begun and ended: the tenants begun so far are all there will be.
      const halted = await at(handle, (v) => v.status === 'halted' && v.inFlight === 0);
      const startedAtHalt = [...h.starts];
      expect(halted.halt).toMatchObject({ wave: 0, failures: 2, budget: 'more than 1 failure' });
      expect(halted.waves[0]!.started).toBe(startedAtHalt.length);
      expect(startedAtHalt.slice(0, 2).sort()).toEqual(tenants.slice(0, 2).sort());
      // Halted, the rollout starts nobody, however long it waits.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(h.starts).toEqual(startedAtHalt);
      expect(await rejectionType(handle.executeUpdate(pauseRolloutUpdate, operator()))).toBe(RolloutRejection.WrongState);
      expect(await rejectionType(handle.executeUpdate(approveRolloutWaveUpdate, operator()))).toBe(RolloutRejection.WrongState);
      const skipped = await handle.executeUpdate(skipRolloutWaveUpdate, operator());
      expect(skipped.waves[0]!.passedOver).toBe(5 - startedAtHalt.length);
      const done = await handle.result();
      await recordHistory('template-rollout', handle);
      return { done, startedAtHalt };
    });
    expect(result.done.status).toBe('completed');
    expect(result.done.waves[0]).toMatchObject({ failed: 2, passedOver: 5 - result.startedAtHalt.length, status: 'completed' });
    expect(result.done.waves[1]).toMatchObject({ applied: 1, status: 'completed' });
    expect(h.starts).toEqual([...result.startedAtHalt, tenants[5]]);
    expect(h.tenants.filter((t) => t.state === 'passed_over')).toHaveLength(5 - result.startedAtHalt.length);
    const actions = h.rolloutEvents.map((e) => e.action);
    expect(actions.filter((a) => a === 'template.rollout.halted')).toHaveLength(1);
    expect(actions).toContain('template.rollout.wave_skipped');
    expect(h.rolloutEvents.find((e) => e.action === 'template.rollout.wave_skipped')).toMatchObject({
      actor: 'operator-2',
      payload: { wave: 0, passedOver: 5 - result.startedAtHalt.length },
    });
  });

  it('halted, the read model still hears of the applies in flight that end: their counts and inFlight, not those from the halt', async () => {
    const tenants = tenantIds(4);
    const h = harness([tenants], { failing: new Set([tenants[0]!]) });
    hold(h, tenants[1]!);
    const input = rolloutInput([tenants], { window: 2 });
    await run(h, input, async (handle) => {
      await at(handle, (v) => v.status === 'halted');
      await eventually(
        async () => h.recorded,
        (v) => v?.status === 'halted',
      );
      expect(h.recorded).toMatchObject({ inFlight: 1, waves: [{ started: 2, failed: 1, applied: 0 }] });
      h.held.get(tenants[1]!)!.release();
      await at(handle, (v) => v.status === 'halted' && v.inFlight === 0);
      // What GET /v1/rollouts/{id} answers from, with nothing else happening to record it.
      await eventually(
        async () => h.recorded,
        (v) => v?.inFlight === 0,
      );
      expect(h.recorded).toMatchObject({ status: 'halted', inFlight: 0, waves: [{ started: 2, failed: 1, applied: 1 }] });
      expect([...h.starts].sort()).toEqual(tenants.slice(0, 2).sort());
      await handle.executeUpdate(cancelRolloutUpdate, operator());
      expect((await handle.result()).status).toBe('cancelled');
      await recordHistory('template-rollout', handle);
    });
  });

  it('a resumed rollout counts failures afresh and starts the rest of the halted wave', async () => {
    const tenants = tenantIds(4);
    const h = harness([tenants], { failing: new Set([tenants[0]!]) });
    const input = rolloutInput([tenants], { window: 1 });
    const result = await run(h, input, async (handle) => {
      await at(handle, (v) => v.status === 'halted' && v.inFlight === 0);
      expect(h.starts).toEqual([tenants[0]]);
      expect(await rejectionType(handle.executeUpdate(resumeRolloutUpdate, { args: [{ actorId: '' }] }))).toBe(
        RolloutRejection.InvalidInput,
      );
      expect(await handle.executeUpdate(resumeRolloutUpdate, operator())).toMatchObject({ status: 'running' });
      const done = await handle.result();
      await recordHistory('template-rollout', handle);
      return done;
    });
    expect(result.waves[0]).toMatchObject({ started: 4, applied: 3, failed: 1 });
    expect(h.starts).toEqual(tenants);
    expect(h.rolloutEvents.map((e) => e.action)).toEqual([
      'template.rollout.started',
      'template.rollout.wave_started',
      'template.rollout.halted',
      'template.rollout.resumed',
      'template.rollout.wave_completed',
      'template.rollout.completed',
    ]);
  });

  it('paused, it starts nobody while children in flight finish; resumed, it goes on', async () => {
    const { tenants, h, input, applying, release } = firstHeld(3);
    const result = await run(h, input, async (handle) => {
      await applying();
      await handle.executeUpdate(pauseRolloutUpdate, operator());
      expect(await rejectionType(handle.executeUpdate(pauseRolloutUpdate, operator()))).toBe(RolloutRejection.WrongState);
      release();
      await at(handle, (v) => v.status === 'paused' && v.inFlight === 0 && v.waves[0]!.applied === 1);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(h.starts).toEqual([tenants[0]]);
      await handle.executeUpdate(resumeRolloutUpdate, operator());
      return handle.result();
    });
    expect(result).toMatchObject({ status: 'completed' });
    expect(result.waves[0]).toMatchObject({ applied: 3 });
    expect(h.rolloutEvents.map((e) => e.action)).toContain('template.rollout.paused');
  });

  it('cancelled, it starts nobody; a child at the tenant’s gate ends skipped with nothing changed, a child applying finishes', async () => {
    const tenants = tenantIds(4);
    const [gated, applying] = tenants as [string, string];
    const h = harness([tenants], { needsApproval: new Set([gated]) });
    hold(h, applying);
    const input = rolloutInput([tenants], { window: 2 });
    const result = await run(h, input, async (handle) => {
      await atTenantGate(input, gated);
      await eventually(async () => h.held.get(applying)!.reached, Boolean);
      const cancelling = await handle.executeUpdate(cancelRolloutUpdate, operator());
      expect(cancelling).toMatchObject({ status: 'cancelling', waves: [{ cancelled: 2 }] });
      expect(await rejectionType(handle.executeUpdate(cancelRolloutUpdate, operator()))).toBe(RolloutRejection.WrongState);
      h.held.get(applying)!.release();
      const done = await handle.result();
      await recordHistory('template-rollout', handle);
      await recordHistory('template-apply', child(input, gated));
      return done;
    });
    expect(result).toMatchObject({ status: 'cancelled', completedAt: expect.any(String) });
    expect(result.waves[0]).toMatchObject({ started: 2, applied: 1, skipped: 1, cancelled: 2 });
    expect([...h.starts].sort()).toEqual([gated, applying].sort());
    expect(h.applied).toEqual([applying]);
    expect(h.applyEvents.filter((e) => e.tenantId === gated).map((e) => [e.action, e.status])).toEqual([
      ['template.apply.requested', 'planning'],
      ['template.apply.planned', 'awaiting_approval'],
      ['template.apply.cancelled', 'skipped'],
    ]);
    expect(h.tenants.filter((t) => t.state === 'cancelled').map((t) => t.tenantId)).toEqual(tenants.slice(2));
    expect(h.rolloutEvents.map((e) => e.action)).toEqual([
      'template.rollout.started',
      'template.rollout.wave_started',
      'template.rollout.cancelled',
    ]);
    expect(h.rolloutEvents.at(-1)).toMatchObject({ actor: 'operator-2', payload: { notStarted: 2, inFlight: 2 } });
  });

  it('a child that ends without its report (terminated) counts as failed, so the wave’s budget halts the rollout instead of waiting forever', async () => {
    const { tenants, h, input, applying, release } = firstHeld(3);
    const result = await run(h, input, async (handle) => {
      await applying();
      await child(input, tenants[0]!).terminate('stopped by hand');
      const halted = await at(handle, (v) => v.status === 'halted');
      expect(halted.waves[0]).toMatchObject({ started: 1, failed: 1 });
      expect(halted.halt).toMatchObject({ failures: 1, budget: 'more than 0 failures' });
      release();
      await handle.executeUpdate(cancelRolloutUpdate, operator());
      const done = await handle.result();
      await recordHistory('template-rollout', handle);
      return done;
    });
    expect(result).toMatchObject({ status: 'cancelled', waves: [{ started: 1, failed: 1, cancelled: 2 }] });
    expect(h.starts).toEqual([tenants[0]]);
  });

  it('once its history passes the limit it starts no more children in that run, even while children end as fast as the window refills', async () => {
    const tenants = tenantIds(60);
    const h = harness([tenants]);
    const historyLimit = 60;
    const input = rolloutInput([tenants], { window: 5 }, { historyLimit });
    const runs = await run(h, input, async (handle) => {
      await handle.result(); // follows the chain of runs
      const histories: { last: number; starts: number[] }[] = [];
      let runId: string | undefined = handle.firstExecutionRunId;
      while (runId) {
        const { events } = await env.client.workflow.getHandle(rolloutWorkflowId(input.rolloutId), runId).fetchHistory();
        histories.push({
          last: events!.length,
          starts: events!.filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes).map((e) => Number(e.eventId)),
        });
        runId = events!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
      }
      await recordHistory(
        'template-rollout',
        env.client.workflow.getHandle(rolloutWorkflowId(input.rolloutId), handle.firstExecutionRunId),
      );
      return histories;
    });
    expect(runs.length).toBeGreaterThan(1);
    // A start already decided when the limit passed (its page being read) may still land; then the
    // run continues as new instead of starting more each time a child's end frees a slot.
    for (const r of runs.slice(0, -1)) expect(Math.max(...r.starts)).toBeLessThan(historyLimit + 40);
    expect([...h.starts].sort()).toEqual([...tenants].sort());
  }, 180_000); // 60 tenants as child workflows: about 30 s on a busy 2-core machine, more while other files run

  it('continues as new with its counters and children in flight once its history passes the limit, each tenant started once', async () => {
    const tenants = tenantIds(12);
    const h = harness([tenants.slice(0, 2), tenants.slice(2)]);
    const input = rolloutInput([tenants.slice(0, 2), tenants.slice(2)], { window: 3 }, { historyLimit: 40 });
    const { result, first } = await run(h, input, async (handle) => {
      const done = await handle.result(); // follows the chain of runs
      const firstRun = env.client.workflow.getHandle(rolloutWorkflowId(input.rolloutId), handle.firstExecutionRunId);
      await recordHistory('template-rollout', firstRun);
      return { result: done, first: await firstRun.fetchHistory() };
    });
    expect(first.events!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    expect(pick(result)).toEqual([wave('canary', 2, { applied: 2 }), wave('wave 1', 10, { applied: 10 })]);
    expect([...h.starts].sort()).toEqual([...tenants].sort());
    expect(h.rolloutEvents.filter((e) => e.action === 'template.rollout.started')).toHaveLength(1);
    expect(h.rolloutEvents.filter((e) => e.action === 'template.rollout.wave_started')).toHaveLength(2);
  });
});
