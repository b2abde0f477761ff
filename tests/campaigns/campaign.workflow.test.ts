import { randomUUID } from 'node:crypto';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  CAMPAIGN_RUN_WORKFLOW_TYPE,
  CampaignRunRejection,
  campaignRunQuery,
  cancelCampaignRunUpdate,
  cancelReviewUpdate,
  moveReviewDeadlineUpdate,
  nudgeReviewUpdate,
  reassignReviewUpdate,
  reviewDecisionsSignal,
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
import { eventually, testPayloadCodec } from '../support/stack.js';

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
  /** Notice ids given to the webhook delivery. */
  delivered: string[];
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
  delivered: [],
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
      h.calls.push(`${i.tenantId}:finish${i.cancelled ? ':cancelled' : ''}`);
      return { hash: 'report-hash' };
    },
    cancelReview: async (i) => {
      h.calls.push(`${i.tenantId}:cancel:${i.stage}:${i.actorId}`);
      return { cancelled: true, settled: null };
    },
    sendReviewNotices: async (i) => {
      h.calls.push(`${i.tenantId}:notices:${i.kind}`);
      return { noticeIds: [`${i.kind}-${i.eventId}`], webhook: true };
    },
    escalateReview: async (i) => {
      h.calls.push(`${i.tenantId}:escalate:${i.stage}`);
      return { noticeIds: [`escalation-${i.eventId}`], webhook: true, escalated: 1 };
    },
    reassignReviewItems: async (i) => {
      h.calls.push(`${i.tenantId}:reassign:${i.fromReviewerId}:${i.toReviewerId}`);
      if (i.toReviewerId === 'msp-staff') return { noticeIds: [], webhook: false, moved: 0, skipped: [], refused: 'not tenant staff' };
      return { noticeIds: ['reassigned'], webhook: true, moved: 2, skipped: [] };
    },
    settleDecidedRevocations: async (i) => {
      h.calls.push(`${i.tenantId}:settle:${i.stage}`);
      return { revoke: 1, held: 0 };
    },
    deliverReviewNotices: async (i) => {
      h.delivered.push(...i.noticeIds);
      return { delivered: i.noticeIds.length };
    },
    cancelCampaignRun: async (i) => {
      h.calls.push(`run:cancel:${i.actorId}`);
      return { cancelled: true };
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

function reviewInput(tenantId: string, document = definition): TenantReviewInput {
  return { runId: randomUUID(), tenantId, definitionId: randomUUID(), definitionVersion: 1, definition: document, parentWorkflowId: '' };
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

describe('tenant review workflow: reminders, escalation, MSP actions, reiteration, remediation on decision, cancellation', () => {
  const DAY = 24 * 60;
  const tenant = tenantIds(1)[0]!;
  const mine = (h: Harness) => h.calls.filter((c) => c.startsWith(tenant)).map((c) => c.slice(tenant.length + 1));

  async function runReview(
    h: Harness,
    document: CampaignDefinitionDocument,
    during: (handle: WorkflowHandle<typeof tenantReviewWorkflow>) => Promise<void> = async () => undefined,
  ) {
    const { worker, taskQueue } = await createWorkflowWorker(env, 'review', fakeActivities(h, [tenant]));
    const input = reviewInput(tenant, document);
    return worker.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof tenantReviewWorkflow>(TENANT_REVIEW_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: tenantReviewWorkflowId(tenant, input.runId),
        args: [input],
      });
      await during(handle);
      const result = await handle.result();
      await recordHistory('review', handle);
      return result;
    });
  }

  it('reminds at each offset before the deadline and escalates once after its delay, each notice sent to the webhook', async () => {
    const h = harness();
    const document = CampaignDefinitionDocument.parse({
      stages: [{ durationMinutes: 7 * DAY }],
      reminders: { beforeDeadlineMinutes: [60, 2 * DAY, 10 * DAY] },
      escalation: { afterMinutes: 3 * DAY, chain: ['tenant_approver'] },
    });
    expect(await runReview(h, document)).toMatchObject({ status: 'completed', stage: 1 });
    // Day 3 escalation, day 5 and 1 hour before: reminders; 10 days before a 7-day stage never comes.
    expect(mine(h)).toEqual([
      'materialise',
      'open:1',
      'escalate:1',
      'notices:reminder',
      'notices:reminder',
      'close:1',
      'remediate',
      'finish',
    ]);
    expect(h.delivered).toHaveLength(3);
  });

  it('an extended deadline moves the reminders with it, and sends each offset once', async () => {
    const h = harness();
    const document = CampaignDefinitionDocument.parse({
      stages: [{ durationMinutes: 2 * DAY }],
      reminders: { beforeDeadlineMinutes: [DAY] },
    });
    await runReview(h, document, async (handle) => {
      const open = await until(handle, reviewQuery, (v) => v.status === 'open');
      // The workflow's clock, not the test's: earlier tests in this environment skipped days ahead.
      const later = new Date(Date.parse(open.stageClosesAt!) + 3 * DAY * 60_000).toISOString();
      await handle.executeUpdate(moveReviewDeadlineUpdate, { args: [{ actorId: 'op', closesAt: later, authority: {} }] });
    });
    expect(mine(h).filter((c) => c === 'notices:reminder')).toHaveLength(1);
  });

  it('takes MSP staff’s reassignments and nudges while a stage is open, refuses a reassignment to someone not on the tenant’s staff', async () => {
    const h = harness();
    await runReview(h, definition, async (handle) => {
      await until(handle, reviewQuery, (v) => v.status === 'open');
      const moved = await handle.executeUpdate(reassignReviewUpdate, {
        args: [{ actorId: 'op', authority: {}, fromReviewerId: 'r1', toReviewerId: 'r2' }],
      });
      expect(moved).toEqual({ moved: 2, skipped: [] });
      const refused = await rejectionType(
        handle.executeUpdate(reassignReviewUpdate, {
          args: [{ actorId: 'op', authority: {}, fromReviewerId: 'r1', toReviewerId: 'msp-staff' }],
        }),
      );
      expect(refused).toBe(ReviewRejection.NotTenantReviewer);
      expect(await handle.executeUpdate(nudgeReviewUpdate, { args: [{ actorId: 'op', authority: {} }] })).toEqual({ notices: 1 });
      await handle.executeUpdate(moveReviewDeadlineUpdate, {
        args: [{ actorId: 'op', closesAt: new Date(0).toISOString(), authority: {} }],
      });
      await until(handle, reviewQuery, (v) => v.stage === 2 && v.status === 'open');
      await handle.executeUpdate(moveReviewDeadlineUpdate, {
        args: [{ actorId: 'op', closesAt: new Date(0).toISOString(), authority: {} }],
      });
    });
    expect(mine(h)).toContain('notices:nudge');
    expect(h.delivered).toEqual(['reassigned', expect.stringMatching(/^nudge-/)]);
  });

  it('reiterates the last stage for its non-responders, up to its number of rounds, then closes for good', async () => {
    const h = harness();
    const fake = fakeActivities(h, [tenant]);
    const { worker, taskQueue } = await createWorkflowWorker(env, 'review', {
      ...fake,
      closeReviewStage: async (i) => ({ ...(await fake.closeReviewStage(i)), ...(i.reiterate ? { reiterating: 1 } : {}) }),
      openReviewStage: async (i) => void h.calls.push(`${i.tenantId}:open:${i.stage}${i.round ? `:round${i.round}` : ''}`),
    });
    const input = reviewInput(
      tenant,
      CampaignDefinitionDocument.parse({ stages: [{ durationMinutes: DAY }], reiteration: { times: 2, durationMinutes: 60 } }),
    );
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof tenantReviewWorkflow>(TENANT_REVIEW_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: tenantReviewWorkflowId(tenant, input.runId),
        args: [input],
      });
      expect(await handle.result()).toMatchObject({ status: 'completed', round: 2 });
      await recordHistory('review', handle);
    });
    expect(mine(h)).toEqual([
      'materialise',
      'open:1',
      'close:1',
      'open:1:round1',
      'notices:reiteration',
      'close:1',
      'open:1:round2',
      'notices:reiteration',
      'close:1',
      'remediate',
      'finish',
    ]);
  });

  it('remediating on decision, settles and applies revocations while the stage is still open', async () => {
    const h = harness();
    h.revokes.set(tenant, 1);
    const document = CampaignDefinitionDocument.parse({ stages: [{ durationMinutes: 7 * DAY }], remediation: 'on_decision' });
    await runReview(h, document, async (handle) => {
      await until(handle, reviewQuery, (v) => v.status === 'open');
      await handle.signal(reviewDecisionsSignal);
      await eventually(
        async () => mine(h),
        (calls) => calls.includes('remediate'),
      );
      expect((await handle.query(reviewQuery)).status).toBe('open');
    });
    expect(mine(h)).toEqual(['materialise', 'open:1', 'settle:1', 'remediate', 'close:1', 'remediate', 'finish']);
  });

  it('records a report saying so when MSP staff cancel it while a stage is open: no further stage, settled revocations applied first', async () => {
    const h = harness();
    const result = await runReview(h, definition, async (handle) => {
      await until(handle, reviewQuery, (v) => v.status === 'open' && v.stage === 1);
      const cancelled = await handle.executeUpdate(cancelReviewUpdate, { args: [{ actorId: 'operator-1', authority: {} }] });
      expect(cancelled).toMatchObject({ status: 'cancelled', stageClosesAt: null });
      expect(await rejectionType(handle.executeUpdate(cancelReviewUpdate, { args: [{ actorId: 'operator-1', authority: {} }] }))).toBe(
        ReviewRejection.NotCancellable,
      );
    });
    expect(result).toMatchObject({ status: 'cancelled', stage: 1 });
    expect(mine(h)).toEqual(['materialise', 'open:1', 'cancel:1:operator-1', 'remediate', 'finish:cancelled']);
  });

  it('continues as new past its history limit while a stage is open, keeping its stage and deadline', async () => {
    const h = harness();
    const document = CampaignDefinitionDocument.parse({ stages: [{ durationMinutes: 7 * DAY }] });
    const { worker, taskQueue } = await createWorkflowWorker(env, 'review', fakeActivities(h, [tenant]));
    const input = reviewInput(tenant, document);
    const workflowId = tenantReviewWorkflowId(tenant, input.runId);
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof tenantReviewWorkflow>(TENANT_REVIEW_WORKFLOW_TYPE, {
        taskQueue,
        workflowId,
        args: [input],
      });
      const open = await until(handle, reviewQuery, (v) => v.status === 'open');
      // Each nudge is an Update and an activity: enough of them push the history past REVIEW_HISTORY_LIMIT.
      const current = () => env.client.workflow.getHandle(workflowId);
      while ((await current().describe()).runId === handle.firstExecutionRunId)
        await current().executeUpdate(nudgeReviewUpdate, { args: [{ actorId: 'op', authority: {} }] });
      const resumed = await until(current(), reviewQuery, (v) => v.status === 'open');
      expect(resumed).toMatchObject({ stage: 1, stageClosesAt: open.stageClosesAt, round: 0 });
      expect(await current().executeUpdate(nudgeReviewUpdate, { args: [{ actorId: 'op', authority: {} }] })).toEqual({ notices: 1 });
      // Ended by a cancellation (in real time): the continued run still takes MSP staff's requests.
      await current().executeUpdate(cancelReviewUpdate, { args: [{ actorId: 'op', authority: {} }] });
      expect(await current().result()).toMatchObject({ status: 'cancelled', stage: 1 });
      const first = await env.client.workflow.getHandle(workflowId, handle.firstExecutionRunId).fetchHistory();
      expect(first.events!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    });
    // Opened once: the continued run holds the same stage, it does not open it again.
    expect(mine(h).filter((c) => c.startsWith('open:') || c.startsWith('close:') || c.startsWith('cancel:'))).toEqual([
      'open:1',
      'cancel:1:op',
    ]);
  }, 240_000);

  it('refuses a cancellation once the review applies its settled revocations', async () => {
    const h = harness();
    h.revokes.set(tenant, 2);
    h.unconfirmed.set(tenant, 2);
    await runReview(h, definition, async (handle) => {
      await until(handle, reviewQuery, (v) => v.status === 'open');
      await handle.executeUpdate(moveReviewDeadlineUpdate, {
        args: [{ actorId: 'op', closesAt: new Date(0).toISOString(), authority: {} }],
      });
      await until(handle, reviewQuery, (v) => v.status === 'open' && v.stage === 2);
      await handle.executeUpdate(moveReviewDeadlineUpdate, {
        args: [{ actorId: 'op', closesAt: new Date(0).toISOString(), authority: {} }],
      });
      await until(handle, reviewQuery, (v) => v.status === 'remediating' || v.status === 'completed');
      expect(await rejectionType(handle.executeUpdate(cancelReviewUpdate, { args: [{ actorId: 'op', authority: {} }] }))).toBe(
        ReviewRejection.NotCancellable,
      );
    });
    expect(mine(h).filter((c) => c.startsWith('cancel'))).toEqual([]);
  });
});

describe('campaign run workflow: cancellation', () => {
  it('starts no further review once cancelled, cancels those running, and ends cancelled once they have finished', async () => {
    const h = harness();
    const tenants = tenantIds(4);
    let release = () => undefined as void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const fake = fakeActivities(h, tenants);
    // A window of 2: both reviews are started at once, and both are running when the cancel comes.
    const input = runInput({ window: 2, definition: CampaignDefinitionDocument.parse({ stages: [{ durationMinutes: 60 }] }) });
    const cancelledReviews: string[] = [];
    const { worker, taskQueue } = await createWorkflowWorker(realTime, 'campaign', {
      ...fake,
      materialiseReview: async (i) => gate.then(() => fake.materialiseReview(i)),
      // As the real one does: each review of the run, cancelled through its own Update.
      cancelRunReviews: async (i) => {
        for (const tenantId of tenants) {
          const handle = realTime.client.workflow.getHandle(tenantReviewWorkflowId(tenantId, i.runId));
          const running = await handle.describe().then(
            (d) => d.status.name === 'RUNNING',
            () => false,
          );
          if (!running) continue;
          await handle.executeUpdate(cancelReviewUpdate, { args: [{ actorId: i.actorId, authority: i.authority }] });
          cancelledReviews.push(tenantId);
        }
        return { cancelled: cancelledReviews.length, finishing: 0, notRunning: tenants.length - cancelledReviews.length };
      },
    });
    const result = await worker.runUntil(async () => {
      const handle = await realTime.client.workflow.start<typeof campaignRunWorkflow>(CAMPAIGN_RUN_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: `campaign/${input.definitionId}/1`,
        args: [input],
      });
      await until(handle, campaignRunQuery, (p) => p.started === 2);
      const answered = await handle.executeUpdate(cancelCampaignRunUpdate, { args: [{ actorId: 'operator-1', authority: {} }] });
      expect(answered).toMatchObject({ cancelled: true, started: 2 });
      expect(await rejectionType(handle.executeUpdate(cancelCampaignRunUpdate, { args: [{ actorId: 'operator-1', authority: {} }] }))).toBe(
        CampaignRunRejection.NotCancellable,
      );
      release();
      const progress = await handle.result();
      await recordHistory('campaign', handle);
      return progress;
    });
    expect(result).toMatchObject({ started: 2, finished: 2, cancelled: true });
    expect(cancelledReviews).toEqual([tenants[0], tenants[1]]);
    expect(h.calls).toContain('run:cancel:operator-1');
    // Neither review completed; each recorded its report as cancelled.
    expect(h.calls.filter((c) => c.includes(':finish'))).toEqual([`${tenants[0]}:finish:cancelled`, `${tenants[1]}:finish:cancelled`]);
    expect(h.runProgress.at(-1)).toEqual({ status: 'cancelled', finished: 2, completed: true });
  });
});
