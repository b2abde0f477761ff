import { randomUUID } from 'node:crypto';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Activities } from '../../activities/index.js';
import { DIRECTORY_TARGET_REJECTED } from '../../core/directory/connector.js';
import { PERMANENT_DATA_ERROR } from '../../core/errors.js';
import { scrubUnstorable } from '../../core/unstorable.js';
import {
  approveGrantUpdate,
  GRANT_WORKFLOW_TYPE,
  grantQuery,
  grantWorkflowId,
  type GrantInput,
  type GrantView,
} from '../../core/grants/contract.js';
import type { grantWorkflow } from '../../workflows/grants/workflow.js';
import { connectToDevServer, createWorkflowWorker, recordHistory, startTimeSkippingEnvironment, until } from './workflow-harness.js';

/**
 * The grant workflow's tests (tests/grants/grant*.workflow.test.ts): the real grant workflow with
 * activities replaced by recorders. Long timers run on the time-skipping server; cases that
 * interact with an active grant run on the dev server in real time (the skipping clock would race
 * them to expiry).
 */

export interface Harness {
  events: { action: string; actor: string; status: string; payload: Record<string, unknown>; view: GrantView }[];
  directory: Set<string>;
  /** The end each held access has at the target (its backstop), by subject:role. */
  ends: Map<string, string>;
  /** Every access activity and event recording, in the order they ran (`<activity>` or `record:<action>`). */
  calls: string[];
  removeFailures: number;
  /** endGrantAccess attempts that record both events and remove the access, then fail: their answer lost (PostgreSQL restarting). */
  expiryAnswersLost: number;
  /** Extension writes (extendAccess) that fail, after their delay, before one succeeds. */
  extendFailures: number;
  /** The target refuses the activation for good (no such role). */
  rejectActivation: boolean;
  /** When the target took the access, as grantAccess reported it (the database's clock in production). */
  assignedAt?: string;
  eligible: boolean;
  /** Extension requesters who may no longer request the role. */
  ineligible: Set<string>;
  /** Approvers disabled or unbound since they approved. */
  lapsed: Set<string>;
  /** Milliseconds an activity (or an event's recording, by action) takes, to hold a race open. */
  delays: Record<string, number>;
}

export const pause = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the database does with text it cannot store: refuse it for good (activities/failures.ts). */
const refusedForGood = (what: unknown) =>
  JSON.stringify(scrubUnstorable(what)) !== JSON.stringify(what)
    ? ApplicationFailure.create({
        type: PERMANENT_DATA_ERROR,
        message: 'invalid byte sequence for encoding "UTF8": 0x00',
        nonRetryable: true,
      })
    : undefined;

function fakeActivities(h: Harness) {
  const key = (i: { subjectId: string; role: string }) => `${i.subjectId}:${i.role}`;
  const held = (i: { subjectId: string; role: string }) => h.directory.has(key(i));
  // Event id → its time on the chain (an end's time is the end it records).
  const recordedIds = new Map<string, string>();
  const activities: Pick<Activities, 'recordGrantEvent' | 'checkGrantEligibility' | 'checkGrantApprovers' | 'endAccess'> &
    Partial<Activities> = {
    recordGrantEvent: async (i) => {
      await pause(h.delays[i.action]);
      const refusal = refusedForGood(i);
      if (refusal) throw refusal;
      h.calls.push(`record:${i.action}`);
      // As the audit chain does: an event id already stored (a retry) is not stored again.
      if (!recordedIds.has(i.eventId)) {
        recordedIds.set(i.eventId, i.view.endedAt ?? new Date().toISOString());
        h.events.push({ action: i.action, actor: i.actor.id, status: i.view.status, payload: i.payload, view: i.view });
      }
      return { seq: h.events.length, notify: false };
    },
    // As the real activity: the time the chain holds the event at, or null.
    grantEventRecorded: async (i) => {
      h.calls.push('grantEventRecorded');
      return { occurredAt: recordedIds.get(i.eventId) ?? null };
    },
    checkGrantEligibility: async (i) => {
      await pause(h.delays.checkGrantEligibility);
      return h.eligible && !h.ineligible.has(i.requesterId)
        ? { eligible: true, reason: null }
        : { eligible: false, reason: 'left the company' };
    },
    checkGrantApprovers: async (i) => ({ counting: i.approverIds.filter((id) => !h.lapsed.has(id)) }),
    // As the real activity: both checks, the approvers only for an eligible grant that needed some.
    checkGrantActivation: async (i) => {
      h.calls.push('checkGrantActivation');
      const eligibility = await activities.checkGrantEligibility(i);
      return { ...eligibility, counting: eligibility.eligible ? (await activities.checkGrantApprovers(i)).counting : [] };
    },
    grantAccess: async (i) => {
      h.calls.push('grantAccess');
      await pause(h.delays.grantAccess);
      if (h.rejectActivation)
        throw ApplicationFailure.create({
          type: DIRECTORY_TARGET_REJECTED,
          message: `directory role ${i.role} not found`,
          nonRetryable: true,
        });
      h.directory.add(key(i));
      h.ends.set(key(i), i.expiresAt!);
      h.assignedAt = new Date().toISOString();
      return { entitlementId: 'e1', assigned: true, alreadyEnded: false, assignedAt: h.assignedAt };
    },
    endAccess: async (i) => {
      h.calls.push('endAccess');
      if (h.removeFailures > 0) {
        h.removeFailures--;
        throw new Error('directory unavailable');
      }
      h.directory.delete(key(i));
      h.ends.delete(key(i));
      return {
        closed: true,
        removedFromTarget: true,
        remainingOpen: 0,
        verification: { gone: !held(i), presentOnTarget: held(i), heldBy: [] },
      };
    },
    extendAccess: async (i) => {
      h.calls.push('extendAccess');
      await pause(h.delays.extendAccess);
      if (h.extendFailures > 0) {
        h.extendFailures--;
        throw new Error('directory busy');
      }
      // As the ledger does: an access already ended is not extended (nor re-opened).
      if (!held(i)) return { extended: false };
      h.ends.set(key(i), i.expiresAt);
      h.calls.push(`extended:${i.expiresAt}`);
      return { extended: true };
    },
    verifyAccessGone: async (i) => ({ gone: !held(i), presentOnTarget: held(i), heldBy: [] }),
    // As the real activity: the expiring event, the removal read back, the expired event once confirmed.
    endGrantAccess: async (i) => {
      h.calls.push('endGrantAccess');
      const { notify } = await activities.recordGrantEvent(i.expiring);
      const removal = await activities.endAccess(i.access);
      if (!removal.verification.gone) return { removal, notify, endedAt: null };
      const endedAt = new Date().toISOString();
      await activities.recordGrantEvent({
        ...i.ended,
        payload: {
          ...i.ended.payload,
          stillHeldBy: removal.verification.heldBy,
          lateByMs: Math.max(0, Date.parse(endedAt) - Date.parse(i.ended.view.endAt)),
        },
        view: { ...i.ended.view, endedAt, revocationVerifiedAt: endedAt },
      });
      if (h.expiryAnswersLost > 0) {
        h.expiryAnswersLost--;
        throw new Error('connection terminated');
      }
      return { removal, notify, endedAt };
    },
    notifyGrant: async () => ({ delivered: false, reason: 'no webhook in this test' }),
  };
  return activities;
}

export function grantInput(overrides: Partial<GrantInput> = {}, policy: Partial<GrantInput['policy']> = {}): GrantInput {
  return {
    grantId: randomUUID(),
    tenantId: randomUUID(),
    subjectId: 'u-1',
    role: 'GlobalAdmin',
    requesterId: 'requester',
    justification: 'incident 42',
    ticket: 'INC-42',
    startAt: new Date(Date.now()).toISOString(),
    durationSeconds: 8 * 3600,
    requestId: null,
    policy: {
      policyVersion: 1,
      privileged: true,
      approvalsRequired: 2,
      approvalTimeoutSeconds: 3600,
      maxDurationSeconds: 8 * 3600,
      extensionRequiresApproval: true,
      maxTotalSeconds: 12 * 3600,
      ...policy,
    },
    ...overrides,
  };
}

/** Waits for the grant to reach `status`. */
export const reach = (handle: WorkflowHandle, status: GrantView['status']) => until(handle, grantQuery, (view) => view.status === status);

export const harness = (): Harness => ({
  events: [],
  directory: new Set(),
  ends: new Map(),
  calls: [],
  removeFailures: 0,
  expiryAnswersLost: 0,
  extendFailures: 0,
  rejectActivation: false,
  eligible: true,
  ineligible: new Set(),
  lapsed: new Set(),
  delays: {},
});

async function workflowTaskFailures(handle: WorkflowHandle): Promise<number> {
  const { events } = await handle.fetchHistory();
  return (events ?? []).filter((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED).length;
}

export const count = (h: Harness, action: string) => h.events.filter((e) => e.action === action).length;
export const approve = (handle: WorkflowHandle, actorId: string) => handle.executeUpdate(approveGrantUpdate, { args: [{ actorId }] });
export const actions = (h: Harness) => h.events.map((e) => e.action);
export const recorded = (h: Harness, action: string) => h.events.find((e) => e.action === action)!;
/** The calls the grant made from the first one after `marker` on. */
export const callsAfter = (h: Harness, marker: string) => h.calls.slice(h.calls.indexOf(marker) + 1);

export interface GrantWorkflowEnvironments {
  /** This file's own time-skipping server. */
  env: TestWorkflowEnvironment;
  /** The run's shared dev server, in real time. */
  realTime: TestWorkflowEnvironment;
  /**
   * Runs the grant workflow on `input` with `h`'s recorders as its activities, on `on` (the
   * time-skipping server unless told), and hands `body` its handle; then checks that no workflow
   * task ever failed.
   */
  run: <T>(
    h: Harness,
    input: GrantInput,
    body: (handle: WorkflowHandleWithFirstExecutionRunId) => Promise<T>,
    on?: TestWorkflowEnvironment,
  ) => Promise<T>;
}

/** Starts the environments before the file's tests and tears them down after them. */
export function grantWorkflowEnvironments(): GrantWorkflowEnvironments {
  const envs = { run } as GrantWorkflowEnvironments;
  beforeAll(async () => {
    envs.env = await startTimeSkippingEnvironment();
    envs.realTime = await connectToDevServer();
  });
  afterAll(async () => {
    await envs.env?.teardown();
    await envs.realTime?.teardown();
  });

  async function run<T>(
    h: Harness,
    input: GrantInput,
    body: (handle: WorkflowHandleWithFirstExecutionRunId) => Promise<T>,
    on: TestWorkflowEnvironment = envs.env,
  ): Promise<T> {
    // The skipping server's clock runs ahead of ours after earlier tests; start windows on its time.
    const drift = (await on.currentTimeMs()) - Date.now();
    input = { ...input, startAt: new Date(Date.parse(input.startAt) + drift).toISOString() };
    const { worker, taskQueue } = await createWorkflowWorker(on, 'grant', fakeActivities(h));
    return worker.runUntil(async () => {
      const handle = await on.client.workflow.start<typeof grantWorkflow>(GRANT_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: grantWorkflowId(input.tenantId, input.grantId),
        args: [input],
      });
      const outcome = await body(handle);
      await recordHistory('grant', handle, { waitForClose: true });
      // However decisions interleave, no workflow task ever fails (a failed task is replayed forever).
      await handle.result().catch(() => undefined);
      expect(await workflowTaskFailures(handle)).toBe(0);
      return outcome;
    });
  }
  return envs;
}
