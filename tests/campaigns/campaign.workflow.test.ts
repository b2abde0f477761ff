import { randomUUID } from 'node:crypto';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  CAMPAIGN_RUN_WORKFLOW_TYPE,
  moveReviewDeadlineUpdate,
  REMEDIATION_BATCH,
  reviewQuery,
  ReviewRejection,
  TENANT_REVIEW_WORKFLOW_TYPE,
  tenantReviewWorkflowId,
  type CampaignRunInput,
  type TenantReviewInput,
} from '../../core/campaigns/contract.js';
import { CampaignDefinitionDocument } from '../../core/campaigns/schemas.js';
import type { campaignRunWorkflow } from '../../workflows/campaigns/run.js';
import type { tenantReviewWorkflow } from '../../workflows/campaigns/review.js';
import {
  connectToDevServer,
  createWorkflowWorker,
  recordHistory,
  rejectionType,
  startTimeSkippingEnvironment,
  until,
} from '../support/workflow-harness.js';
import { testPayloadCodec } from '../support/stack.js';

/**
 * Workflow tier: the real campaign run and tenant review workflows with activities replaced by
 * recorders. Reviews run on the time-skipping server (stages last days); runs start children with
 * the TenantId search attribute, which only the dev server knows, so they run there with stages
 * a second long.
 */
let env: TestWorkflowEnvironment;
let realTime: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await startTimeSkippingEnvironment();
  realTime = await connectToDevServer();
});
afterAll(async () => {
  await env?.teardown();
  await realTime?.teardown();
});

const definition = CampaignDefinitionDocument.parse({
  stages: [{ durationMinutes: 7 * 24 * 60 }, { durationMinutes: 3 * 24 * 60, strategy: 'any_deny' }],
});

interface Harness {
  calls: string[];
  /** Revocations still to apply, per tenant; each remediation call takes up to its limit. */
  revokes: Map<string, number>;
  /** Remediation calls that find nothing confirmed yet (a grant still revoking), per tenant. */
  unconfirmed: Map<string, number>;
  materialising: number;
  maxMaterialising: number;
  runProgress: { status: string; finished: number; completed: boolean }[];
  /** Tenants told of items that need a rule change. */
  notices: string[];
  /** The scope each tenant's review was given, by tenant. */
  scopes: Map<string, string[]>;
}

const harness = (): Harness => ({
  calls: [],
  revokes: new Map(),
  unconfirmed: new Map(),
  materialising: 0,
  maxMaterialising: 0,
  runProgress: [],
  notices: [],
  scopes: new Map(),
});

function fakeActivities(h: Harness, tenants: string[], items = 3) {
  return {
    startCampaignRun: async () => ({ total: tenants.length }),
    campaignRunTenants: async ({ after, limit }) => tenants.filter((t) => after === null || t > after).slice(0, limit),
    recordCampaignRunProgress: async (i) => {
      h.runProgress.push({ status: i.status, finished: i.finished, completed: Boolean(i.completedEventId) });
    },
    materialiseReview: async (i) => {
      h.materialising++;
      h.maxMaterialising = Math.max(h.maxMaterialising, h.materialising);
      await new Promise((r) => setTimeout(r, 20));
      h.materialising--;
      h.calls.push(`${i.tenantId}:materialise`);
      h.scopes.set(i.tenantId, i.definition.scope.tenantIds);
      return { items, unassigned: 0 };
    },
    openReviewStage: async (i) => void h.calls.push(`${i.tenantId}:open:${i.stage}`),
    moveReviewDeadline: async (i) => {
      h.calls.push(`${i.tenantId}:deadline:${i.stage}`);
      return { moved: true };
    },
    closeReviewStage: async (i) => {
      h.calls.push(`${i.tenantId}:close:${i.stage}`);
      return { stage: i.stage, decidedKeep: 0, decidedRevoke: 0, advanced: 0, nonResponses: items, held: {} };
    },
    remediateReviewItems: async (i) => {
      h.calls.push(`${i.tenantId}:remediate`);
      const waiting = h.unconfirmed.get(i.tenantId) ?? 0;
      if (waiting > 0) {
        h.unconfirmed.set(i.tenantId, waiting - 1);
        const remaining = h.revokes.get(i.tenantId) ?? 0;
        return { processed: Math.min(remaining, i.limit), remaining, retrying: Math.min(remaining, i.limit) };
      }
      const remaining = h.revokes.get(i.tenantId) ?? 0;
      const processed = Math.min(remaining, i.limit);
      h.revokes.set(i.tenantId, remaining - processed);
      return { processed, remaining: remaining - processed, retrying: 0 };
    },
    finishReview: async (i) => {
      h.calls.push(`${i.tenantId}:finish`);
      return { hash: 'report-hash' };
    },
    notifyRuleChanges: async (i) => {
      h.notices.push(i.tenantId);
      return { notified: 1 };
    },
  } satisfies Partial<Activities>;
}

const shortStages = CampaignDefinitionDocument.parse({ stages: [{ durationMinutes: 0.01 }, { durationMinutes: 0.01 }] });

function runInput(overrides: Partial<CampaignRunInput> = {}): CampaignRunInput {
  return {
    runId: randomUUID(),
    definitionId: randomUUID(),
    runNo: 1,
    definitionVersion: 1,
    definition: shortStages,
    window: 2,
    childrenPerRun: 500,
    ...overrides,
  };
}

function reviewInput(tenantId: string): TenantReviewInput {
  return { runId: randomUUID(), tenantId, definitionId: randomUUID(), definitionVersion: 1, definition, parentWorkflowId: '' };
}

/** Runs one review to completion on the time-skipping server with these activities; `then` sees its handle. */
async function runReview(
  tenant: string,
  activities: Partial<Activities>,
  then: (handle: WorkflowHandle) => Promise<void> = async () => undefined,
): Promise<void> {
  const { worker, taskQueue } = await createWorkflowWorker(env, 'review', activities);
  const input = reviewInput(tenant);
  await worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof tenantReviewWorkflow>(TENANT_REVIEW_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: tenantReviewWorkflowId(tenant, input.runId),
      args: [input],
    });
    expect(await handle.result()).toMatchObject({ status: 'completed' });
    await then(handle);
  });
}

const tenantIds = (n: number) => Array.from({ length: n }, (_, i) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`);

/**
 * Runs a campaign run on the dev server to its end, following continue-as-new; answers its result
 * and the first execution's history (recorded as a fixture when `record`).
 */
async function runChain(h: Harness, tenants: string[], input: CampaignRunInput, { record = false } = {}) {
  const { worker, taskQueue } = await createWorkflowWorker(realTime, 'campaign', fakeActivities(h, tenants));
  const workflowId = `campaign/${input.definitionId}/1`;
  return worker.runUntil(async () => {
    const handle = await realTime.client.workflow.start<typeof campaignRunWorkflow>(CAMPAIGN_RUN_WORKFLOW_TYPE, {
      taskQueue,
      workflowId,
      args: [input],
    });
    const result = await handle.result(); // follows the chain of runs
    const firstRun = realTime.client.workflow.getHandle(workflowId, handle.firstExecutionRunId);
    if (record) await recordHistory('campaign', firstRun);
    return { result, first: await firstRun.fetchHistory() };
  });
}

describe('campaign run workflow', () => {
  it('starts one review per tenant within the window, and completes when every review has finished', async () => {
    const h = harness();
    const tenants = tenantIds(5);
    const { worker, taskQueue } = await createWorkflowWorker(realTime, 'campaign', fakeActivities(h, tenants));
    const input = runInput({ window: 2 });
    const result = await worker.runUntil(async () => {
      const handle = await realTime.client.workflow.start<typeof campaignRunWorkflow>(CAMPAIGN_RUN_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: `campaign/${input.definitionId}/1`,
        args: [input],
      });
      const progress = await handle.result();
      await recordHistory('campaign', handle);
      return progress;
    });
    expect(result).toEqual({ runId: input.runId, total: 5, started: 5, materialised: 5, finished: 5 });
    expect(h.maxMaterialising).toBeLessThanOrEqual(2);
    // Each review runs with its own tenant as its scope: it never sees (nor reports) the others.
    expect(Object.fromEntries(h.scopes)).toEqual(Object.fromEntries(tenants.map((t) => [t, [t]])));
    for (const tenant of tenants) {
      expect(h.calls.filter((c) => c.startsWith(tenant))).toEqual([
        `${tenant}:materialise`,
        `${tenant}:open:1`,
        `${tenant}:close:1`,
        `${tenant}:open:2`,
        `${tenant}:close:2`,
        `${tenant}:remediate`,
        `${tenant}:finish`,
      ]);
    }
    expect(h.runProgress.at(-1)).toEqual({ status: 'completed', finished: 5, completed: true });
  });

  it('continues as new after its share of starts, carrying its cursor and counters, and still sees every review finish', async () => {
    const h = harness();
    const tenants = tenantIds(5);
    const { result, first } = await runChain(h, tenants, runInput({ window: 1, childrenPerRun: 2 }));
    expect(result).toMatchObject({ total: 5, started: 5, materialised: 5, finished: 5 });
    expect(h.maxMaterialising).toBe(1);
    expect(h.calls.filter((c) => c.endsWith(':materialise')).sort()).toEqual(tenants.map((t) => `${t}:materialise`));
    const continued = first.events!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes;
    expect(continued).toBeTruthy();
    // Payloads reach Temporal encrypted: open them with the test key, then read the JSON.
    const [opened] = await testPayloadCodec.decode([continued!.input!.payloads![0]!]);
    const carried = defaultPayloadConverter.fromPayload<CampaignRunInput>(opened!);
    expect(carried.carried).toMatchObject({
      afterTenantId: tenants[1],
      started: 2,
    });
  });

  it('continues as new while it waits for its reviews once its history passes the limit, and completes when the last one finishes', async () => {
    const h = harness();
    const tenants = tenantIds(4);
    const input = runInput({ window: 4, historyLimit: 20 });
    const { result, first } = await runChain(h, tenants, input, { record: true });
    expect(result).toEqual({ runId: input.runId, total: 4, started: 4, materialised: 4, finished: 4 });
    // Every tenant was started once, by the first execution, which then continued as new to wait.
    expect(h.calls.filter((c) => c.endsWith(':materialise')).sort()).toEqual(tenants.map((t) => `${t}:materialise`));
    expect(first.events!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    expect(h.runProgress.at(-1)).toEqual({ status: 'completed', finished: 4, completed: true });
  });
});

describe('tenant review workflow', () => {
  it('keeps its history bounded with 10,000 items: no item in history, one activity per remediation batch', async () => {
    const h = harness();
    const tenant = tenantIds(1)[0]!;
    h.revokes.set(tenant, 3_000);
    let events: unknown[] = [];
    await runReview(tenant, fakeActivities(h, [tenant], 10_000), async (handle) => {
      expect(await handle.query(reviewQuery)).toMatchObject({ status: 'completed', stage: 2 });
      await recordHistory('review', handle);
      events = (await handle.fetchHistory()).events ?? [];
    });
    const batches = Math.ceil(3_000 / REMEDIATION_BATCH);
    expect(h.calls.filter((c) => c.endsWith(':remediate'))).toHaveLength(batches);
    // Start, materialise, two stages (open, timer, close), the batches, the rule-change notice, finish: ~6 events each,
    // whatever the item count.
    expect(events.length).toBeLessThan(6 * (1 + 1 + 2 * 3 + batches + 1 + 1));
    expect(events.length).toBeLessThan(160);
  });

  it('waits between rounds when revocations are not yet confirmed, and retries until they are', async () => {
    const h = harness();
    const tenant = tenantIds(1)[0]!;
    h.revokes.set(tenant, 5);
    h.unconfirmed.set(tenant, 3);
    await runReview(tenant, fakeActivities(h, [tenant]), async (handle) => {
      const history = (await handle.fetchHistory()).events ?? [];
      expect(history.filter((e) => e.timerStartedEventAttributes).length).toBeGreaterThanOrEqual(2 + 3);
    });
    expect(h.calls.filter((c) => c.endsWith(':remediate'))).toHaveLength(4);
    expect(h.revokes.get(tenant)).toBe(0);
  });

  it('lets an operator bring a deadline forward, which closes the stage at once', async () => {
    const h = harness();
    const tenant = tenantIds(1)[0]!;
    const { worker, taskQueue } = await createWorkflowWorker(env, 'review', fakeActivities(h, [tenant]));
    const input = reviewInput(tenant);
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof tenantReviewWorkflow>(TENANT_REVIEW_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: tenantReviewWorkflowId(tenant, input.runId),
        args: [input],
      });
      await until(handle, reviewQuery, (v) => v.status === 'open' && v.stage === 1);
      const moved = await handle.executeUpdate(moveReviewDeadlineUpdate, {
        args: [{ actorId: 'operator-1', closesAt: new Date(0).toISOString(), authority: { roles: ['operator'] } }],
      });
      expect(moved.stage).toBe(1);
      await until(handle, reviewQuery, (v) => v.stage === 2);
      expect(h.calls).toContain(`${tenant}:close:1`);
      await handle.result();
      await recordHistory('review', handle);
    });
    expect(h.calls.filter((c) => c.includes(':deadline:'))).toEqual([`${tenant}:deadline:1`]);
  });

  it('tells the tenant of items that need a rule change once remediation is over, beside the report', async () => {
    const h = harness();
    const tenant = tenantIds(1)[0]!;
    h.revokes.set(tenant, 2);
    await runReview(tenant, fakeActivities(h, [tenant]), (handle) => recordHistory('review', handle));
    expect(h.notices).toEqual([tenant]);
    expect(h.calls.at(-1)).toBe(`${tenant}:finish`);
  });

  it('completes with its report even when the tenant’s webhook cannot be told', async () => {
    const h = harness();
    const tenant = tenantIds(1)[0]!;
    const fake = fakeActivities(h, [tenant]);
    const failing = {
      ...fake,
      notifyRuleChanges: async () => {
        throw ApplicationFailure.nonRetryable('the webhook answered 503', 'WebhookDeliveryFailed');
      },
    };
    await runReview(tenant, failing);
    expect(h.calls.at(-1)).toBe(`${tenant}:finish`);
  });

  it('refuses a deadline move while the items are still being stored', async () => {
    const h = harness();
    const tenant = tenantIds(1)[0]!;
    let release = () => undefined as void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const fake = fakeActivities(h, [tenant]);
    const slow = {
      ...fake,
      materialiseReview: async (i: Parameters<typeof fake.materialiseReview>[0]) => gate.then(() => fake.materialiseReview(i)),
    };
    const { worker, taskQueue } = await createWorkflowWorker(env, 'review', slow);
    const input = reviewInput(tenant);
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof tenantReviewWorkflow>(TENANT_REVIEW_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: tenantReviewWorkflowId(tenant, input.runId),
        args: [input],
      });
      await until(handle, reviewQuery, (v) => v.status === 'materialising');
      const type = await rejectionType(
        handle.executeUpdate(moveReviewDeadlineUpdate, { args: [{ actorId: 'op', closesAt: new Date().toISOString(), authority: {} }] }),
      );
      expect(type).toBe(ReviewRejection.NotOpen);
      release();
      expect(await handle.result()).toMatchObject({ status: 'completed' });
      expect(h.calls.filter((c) => c.includes(':deadline:'))).toEqual([]);
    });
  });
});
