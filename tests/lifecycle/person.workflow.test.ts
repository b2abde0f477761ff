import { randomUUID } from 'node:crypto';
import { WithStartWorkflowOperation, WorkflowIdConflictPolicy, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { personWorkflow } from '../../workflows/lifecycle/workflow.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import {
  PERSON_WORKFLOW_TYPE,
  personQuery,
  PersonRejection,
  personWorkflowId,
  submitHrEventUpdate,
  type HrEvent,
  type HrEventReceipt,
  type PersonView,
  type PersonWorkflowInput,
} from '../../core/lifecycle/contract.js';
import { LifecyclePolicy } from '../../core/lifecycle/policy.js';
import { eventually } from '../support/stack.js';
import { createWorkflowWorker, recordHistory, rejectionType, startTimeSkippingEnvironment, until } from '../support/workflow-harness.js';

/**
 * Workflow tier: the real person workflow with activities replaced by an in-memory directory and
 * ledger, on the time-skipping server so start dates, grace periods and retention pass at once.
 */
let env: TestWorkflowEnvironment;

// A server of its own for each test: on a loaded machine one test's leftovers could stop a shared
// server from skipping time, and every later test's env.sleep then waited in real time (CI: two
// tests timed out at 60 s, each right after one that passed; alone, each takes seconds).
beforeEach(async () => {
  env = await startTimeSkippingEnvironment();
});
afterEach(async () => {
  await env?.teardown();
});

const DAY = 86_400_000;
const MINUTE = 60_000;

const basePolicy = LifecyclePolicy.parse({
  attributes: ['department', 'location'],
  rules: [
    { id: 'staff', roles: ['Staff'] },
    { id: 'eng', when: { department: 'Engineering' }, roles: ['Developers'], eligibleGrantRoles: ['GlobalAdmin'] },
    { id: 'sales', when: { department: 'Sales' }, roles: ['CRM'] },
  ],
  moverGraceMinutes: 60,
  preProvisionDays: 3,
  leaver: { retentionDays: 30, afterRetention: 'delete' },
});

type Entry = Pick<Parameters<Activities['grantAccess']>[0], 'role' | 'sourceType' | 'sourceId'>;

interface Harness {
  events: { action: string; authority: Record<string, unknown>; payload: Record<string, unknown> }[];
  account: { status: string; username: string } | undefined;
  ledger: Entry[];
  grants: Awaited<ReturnType<Activities['listPersonAccess']>>['grants'];
  /** Live sessions; null: the target keeps none (no sessions capability). */
  sessions: number | null;
  /** The target cannot say which roles are privileged (no roleLookup capability). */
  noRoleLookup?: boolean;
  /** Directory calls fail (transiently) while this is above 0, counting down. */
  outage: number;
  /** Directory roles no entitlement explains (assigned outside Tenure). */
  unmanaged: string[];
  /** Every activity call, by name, in order. */
  calls: string[];
}

const harness = (): Harness => ({
  events: [],
  account: undefined,
  ledger: [],
  grants: [],
  sessions: 2,
  outage: 0,
  unmanaged: [],
  calls: [],
});
const gap = (capability: 'sessions' | 'roleLookup') => ({ capability, target: 'ldap', note: `${capability}: not supported by target` });

function fakeActivities(h: Harness) {
  const directory = () => {
    if (h.outage > 0) {
      h.outage--;
      throw new Error('directory unavailable (test outage)');
    }
  };
  const roles = () => [...new Set([...h.ledger.map((e) => e.role), ...h.unmanaged])].sort();
  const fakes = {
    recordPersonEvent: async (i) => {
      h.events.push({ action: i.action, authority: i.authority, payload: i.payload });
      return { seq: h.events.length };
    },
    provisionPersonAccount: async (i) => {
      directory();
      const created = !h.account;
      h.account = { status: i.status ?? h.account?.status ?? 'active', username: i.profile?.username ?? h.account!.username };
      return { created };
    },
    setPersonAccountStatus: async (i) => {
      directory();
      if (!h.account) return { changed: false };
      h.account.status = i.status;
      return { changed: true };
    },
    revokePersonSessions: async () => {
      directory();
      const n = h.sessions ?? 0;
      h.sessions = 0;
      return n;
    },
    endPersonSessions: async () => {
      directory();
      if (h.sessions === null) return { supported: false as const, gap: gap('sessions') };
      const revoked = h.sessions;
      h.sessions = 0;
      return { supported: true as const, revoked };
    },
    grantAccess: async (i) => {
      directory();
      if (!h.ledger.some((e) => e.role === i.role && e.sourceType === i.sourceType && e.sourceId === i.sourceId))
        h.ledger.push({ role: i.role, sourceType: i.sourceType, sourceId: i.sourceId });
      return { entitlementId: 'e', assigned: true, alreadyEnded: false };
    },
    endAccess: async (i) => {
      directory();
      h.ledger = h.ledger.filter((e) => !(e.role === i.role && e.sourceType === i.sourceType && e.sourceId === i.sourceId));
      const heldBy = h.ledger.filter((e) => e.role === i.role).map((e) => `${e.sourceType}:${e.sourceId}`);
      return {
        closed: true,
        removedFromTarget: heldBy.length === 0,
        remainingOpen: heldBy.length,
        verification: { gone: true, presentOnTarget: heldBy.length > 0, heldBy },
      };
    },
    listPersonAccess: async () => {
      directory();
      return {
        entitlements: h.ledger.map((e) => ({ ...e, privileged: h.noRoleLookup ? null : e.role === 'GlobalAdmin' })),
        grants: h.grants.filter((g) => g.status === 'active'),
        directoryRoles: roles(),
        ...(h.noRoleLookup && h.ledger.length ? { notSupported: [gap('roleLookup')] } : {}),
      };
    },
    endPersonGrants: async (i) => {
      for (const g of h.grants) {
        if (i.grantIds.includes(g.grantId)) {
          g.status = 'ended';
          h.ledger = h.ledger.filter((e) => !(e.sourceType === 'grant' && e.sourceId === g.grantId));
        }
      }
      return { requested: i.grantIds, alreadyEnding: [] };
    },
    awaitGrantsEnded: async (i) => ({ ended: i.grantIds }),
    removeUnmanagedRoles: async () => {
      directory();
      return { removed: h.unmanaged.splice(0) };
    },
    // As the real one: a removal of unmanaged roles leaves the read-back to verifyPersonAccessGone.
    endPersonAccess: async (i) => {
      directory();
      const given = (e: Entry) =>
        i.entitlements.some((g) => g.role === e.role && g.sourceType === e.sourceType && g.sourceId === e.sourceId);
      const closed = h.ledger.filter(given).length;
      h.ledger = h.ledger.filter((e) => !given(e));
      const removed = h.unmanaged.splice(0);
      return { closed, unmanagedRolesRemoved: removed, verified: removed.length === 0 && h.ledger.length === 0 };
    },
    verifyPersonAccessGone: async () => {
      directory();
      if (h.ledger.length || h.unmanaged.length) throw new Error('access remains');
      return { verified: true };
    },
    erasePerson: async () => {
      directory();
      if (h.account) h.account.status = 'deleted';
      return { existed: true };
    },
  } satisfies Partial<Activities>;
  // Each call noted by name, so a test can say which steps a leaver took.
  return Object.fromEntries(
    Object.entries(fakes).map(([name, fn]) => [
      name,
      (...args: unknown[]) => {
        h.calls.push(name);
        return (fn as (...a: unknown[]) => unknown)(...args);
      },
    ]),
  ) as typeof fakes;
}

interface Run {
  handle: WorkflowHandle;
  /** Sends an HR event the way the use case does: update-with-start for a joiner. */
  send: (event: Omit<HrEvent, 'personId'>, policy?: LifecyclePolicy) => Promise<HrEventReceipt>;
  view: () => Promise<PersonView>;
  /** Skipped-clock time plus `ms`, as ISO. */
  at: (ms: number) => Promise<string>;
}

async function run<T>(h: Harness, body: (r: Run) => Promise<T>, options: { maxEventsPerRun?: number } = {}): Promise<T> {
  const tenantId = randomUUID();
  const personId = `p-${randomUUID().slice(0, 8)}`;
  const workflowId = personWorkflowId(tenantId, personId);
  const { worker, taskQueue } = await createWorkflowWorker(env, 'person', fakeActivities(h));
  const handle = env.client.workflow.getHandle(workflowId);
  const input: PersonWorkflowInput = { tenantId, personId, ...options };
  const send: Run['send'] = (event, policy = basePolicy) => {
    const submitted = {
      event: { ...event, personId },
      policyVersion: 7,
      policy,
      actor: { id: 'hr-feed', type: 'service' as const },
      authority: { roles: ['hr_integration'] },
    };
    if (event.type !== 'joiner') return handle.executeUpdate(submitHrEventUpdate, { args: [submitted] });
    const start = new WithStartWorkflowOperation<typeof personWorkflow>(PERSON_WORKFLOW_TYPE, {
      taskQueue,
      workflowId,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      args: [input],
    });
    return env.client.workflow.executeUpdateWithStart(submitHrEventUpdate, { args: [submitted], startWorkflowOperation: start });
  };
  const at = async (ms: number) => new Date((await env.currentTimeMs()) + ms).toISOString();
  return worker.runUntil(async () => {
    try {
      const outcome = await body({ handle, send, view: () => handle.query(personQuery), at });
      await recordHistory('person', handle);
      return outcome;
    } finally {
      // A workflow left with tasks and no worker would stop the shared server skipping time.
      await handle.terminate('test over').catch(() => undefined);
    }
  });
}

const profile = { username: 'casey', displayName: 'Casey Jones' };
const roles = (h: Harness) => h.ledger.map((e) => `${e.sourceType}:${e.sourceId}:${e.role}`).sort();
const actions = (h: Harness) => h.events.map((e) => e.action);

describe('person workflow', () => {
  it('pre-provisions a future joiner as a disabled account, then enables it on the start date', async () => {
    const h = harness();
    await run(h, async (r) => {
      const receipt = await r.send({
        eventId: 'j1',
        type: 'joiner',
        effectiveAt: await r.at(10 * DAY),
        attributes: { department: 'Engineering' },
        profile,
      });
      expect(receipt).toMatchObject({ disposition: 'accepted', duplicate: false });
      expect((await r.view()).status).toBe('pending');
      expect(h.account).toBeUndefined();

      await env.sleep(7 * DAY + MINUTE);
      const early = await until(r.handle, personQuery, (v) => v.status === 'pre_provisioned');
      expect(early.pendingEvents).toEqual([expect.objectContaining({ eventId: 'j1', phase: 'pre_provisioned' })]);
      expect(h.account).toMatchObject({ status: 'disabled' });
      expect(roles(h)).toEqual(['birthright:eng:Developers', 'birthright:staff:Staff']);

      await env.sleep(3 * DAY);
      const started = await until(r.handle, personQuery, (v) => v.status === 'active');
      expect(started.matchedRuleIds).toEqual(['staff', 'eng']);
      expect(h.account).toMatchObject({ status: 'active' });
      expect(actions(h)).toEqual(['person.hr_event_accepted', 'person.pre_provisioned', 'person.joined']);
      expect(h.events.at(-1)!.authority).toMatchObject({
        hrEventId: 'j1',
        policyVersion: 7,
        ruleIds: ['staff', 'eng'],
        roles: ['hr_integration'],
      });
    });
  });

  it('moves: new roles at once, old ones after the grace period, and a move-back cancels the removal', async () => {
    const h = harness();
    await run(h, async (r) => {
      await r.send({ eventId: 'j1', type: 'joiner', effectiveAt: await r.at(0), attributes: { department: 'Engineering' }, profile });
      await until(r.handle, personQuery, (v) => v.status === 'active');
      h.grants.push({ grantId: 'g-admin', role: 'GlobalAdmin', status: 'active', endAt: await r.at(DAY) });
      h.ledger.push({ role: 'GlobalAdmin', sourceType: 'grant', sourceId: 'g-admin' });

      await r.send({ eventId: 'm1', type: 'mover', effectiveAt: await r.at(0), attributes: { department: 'Sales' } });
      await until(r.handle, personQuery, (v) => v.lastApplied?.eventId === 'm1');
      await eventually(
        async () => actions(h),
        (done) => done.includes('person.grants_end_requested'),
      );
      const moved = await r.view();
      expect(moved.pendingRemovals).toEqual([expect.objectContaining({ role: 'Developers', ruleId: 'eng', hrEventId: 'm1' })]);
      expect(roles(h)).toEqual(['birthright:eng:Developers', 'birthright:sales:CRM', 'birthright:staff:Staff']);
      // The grant the Engineering position made eligible ends with the move.
      expect(h.grants[0]!.status).toBe('ended');

      await env.sleep(30 * MINUTE);
      await r.send({ eventId: 'm2', type: 'mover', effectiveAt: await r.at(0), attributes: { department: 'Engineering' } });
      const back = await until(r.handle, personQuery, (v) => v.lastApplied?.eventId === 'm2');
      expect(back.pendingRemovals).toEqual([expect.objectContaining({ role: 'CRM', ruleId: 'sales', hrEventId: 'm2' })]);
      expect(h.events.find((e) => e.action === 'person.moved' && e.authority.hrEventId === 'm2')!.payload.removalsCancelled).toEqual([
        { role: 'Developers', ruleId: 'eng' },
      ]);

      await env.sleep(61 * MINUTE);
      const settled = await until(r.handle, personQuery, (v) => v.pendingRemovals.length === 0);
      expect(settled.birthright).toEqual([
        { role: 'Staff', ruleId: 'staff' },
        { role: 'Developers', ruleId: 'eng' },
      ]);
      expect(roles(h)).toEqual(['birthright:eng:Developers', 'birthright:staff:Staff']);
      const removal = h.events.find((e) => e.action === 'person.birthright_removed')!;
      expect(removal.authority).toMatchObject({ hrEventId: 'm2', ruleIds: ['sales'] });
    });
  });

  it('leaves: disables, revokes sessions, ends grants and every entitlement, then deletes after retention unless rehired', async () => {
    const h = harness();
    await run(h, async (r) => {
      await r.send({ eventId: 'j1', type: 'joiner', effectiveAt: await r.at(0), attributes: { department: 'Engineering' }, profile });
      await until(r.handle, personQuery, (v) => v.status === 'active');
      h.grants.push({ grantId: 'g1', role: 'GlobalAdmin', status: 'active', endAt: await r.at(DAY) });
      h.ledger.push(
        { role: 'GlobalAdmin', sourceType: 'grant', sourceId: 'g1' },
        { role: 'Printers', sourceType: 'manual', sourceId: 'INC-7' },
      );

      h.outage = 3; // the directory is down when the leaver starts; it finishes once it is back
      await r.send({ eventId: 'l1', type: 'leaver', effectiveAt: await r.at(0) });
      const left = await until(r.handle, personQuery, (v) => v.status === 'left');
      expect(h.ledger).toEqual([]);
      expect(h.account).toMatchObject({ status: 'disabled' });
      expect(h.sessions).toBe(0);
      expect(left.deletion).toMatchObject({ mode: 'delete', hrEventId: 'l1' });
      const leftEvent = h.events.find((e) => e.action === 'person.left')!;
      expect(leftEvent.payload).toMatchObject({ verified: true, sessionsRevoked: 2, after: { entitlements: [] } });

      // Rehire 10 days later: inside the 30-day retention, so the deletion is cancelled.
      await env.sleep(10 * DAY);
      await r.send({ eventId: 'j2', type: 'joiner', effectiveAt: await r.at(0), attributes: { department: 'Sales' } });
      const rehired = await until(r.handle, personQuery, (v) => v.lastApplied?.eventId === 'j2');
      expect(rehired).toMatchObject({ status: 'active', deletion: null, profile: { username: 'casey' } });
      expect(actions(h)).toEqual(expect.arrayContaining(['person.deletion_cancelled', 'person.rehired']));
      expect(roles(h)).toEqual(['birthright:sales:CRM', 'birthright:staff:Staff']);

      // Leaves again and stays gone: deleted after retention, and the workflow completes.
      await r.send({ eventId: 'l2', type: 'leaver', effectiveAt: await r.at(0) });
      await until(r.handle, personQuery, (v) => v.status === 'left');
      await env.sleep(31 * DAY);
      const final = (await r.handle.result()) as PersonView;
      expect(final).toMatchObject({ status: 'deleted', profile: null });
      expect(h.account!.status).toBe('deleted');
    });
  });

  it('leaves in one access step: one listing without grants, every entitlement and unmanaged role ended together, read back', async () => {
    const h = harness();
    await run(h, async (r) => {
      await r.send({ eventId: 'j1', type: 'joiner', effectiveAt: await r.at(0), attributes: { department: 'Engineering' }, profile });
      await until(r.handle, personQuery, (v) => v.status === 'active');
      h.ledger.push({ role: 'Printers', sourceType: 'manual', sourceId: 'INC-7' });
      h.unmanaged.push('Legacy');

      // A role assigned outside Tenure was removed: the read-back is its own step, and the removal is evidence.
      let from = h.calls.length;
      await r.send({ eventId: 'l1', type: 'leaver', effectiveAt: await r.at(0) });
      await until(r.handle, personQuery, (v) => v.status === 'left');
      const leaverSteps = (since: number) => h.calls.slice(since).filter((c) => c !== 'recordPersonEvent');
      expect(leaverSteps(from)).toEqual([
        'setPersonAccountStatus',
        'endPersonSessions',
        'listPersonAccess',
        'endPersonAccess',
        'verifyPersonAccessGone',
      ]);
      expect(h.ledger).toEqual([]);
      expect(h.unmanaged).toEqual([]);
      const first = h.events.filter((e) => e.action === 'person.left').at(-1)!;
      expect(first.payload).toMatchObject({
        verified: true,
        unmanagedRolesRemoved: ['Legacy'],
        before: { directoryRoles: ['Developers', 'Legacy', 'Printers', 'Staff'] },
        after: { entitlements: [], directoryRoles: [] },
      });
      expect((first.payload.entitlementsEnded as Entry[]).map((e) => `${e.sourceType}:${e.sourceId}:${e.role}`).sort()).toEqual([
        'birthright:eng:Developers',
        'birthright:staff:Staff',
        'manual:INC-7:Printers',
      ]);

      // Rehired, then leaves again with nothing unmanaged: the step's own read-back is the proof.
      await r.send({ eventId: 'j2', type: 'joiner', effectiveAt: await r.at(0), attributes: { department: 'Sales' } });
      await until(r.handle, personQuery, (v) => v.lastApplied?.eventId === 'j2');
      from = h.calls.length;
      await r.send({ eventId: 'l2', type: 'leaver', effectiveAt: await r.at(0) });
      await until(r.handle, personQuery, (v) => v.lastApplied?.eventId === 'l2');
      expect(leaverSteps(from)).toEqual(['setPersonAccountStatus', 'endPersonSessions', 'listPersonAccess', 'endPersonAccess']);
      expect(h.ledger).toEqual([]);
      const second = h.events.filter((e) => e.action === 'person.left').at(-1)!;
      expect(second.payload).toMatchObject({ verified: true, unmanagedRolesRemoved: [] });
      expect((second.payload.entitlementsEnded as Entry[]).map((e) => `${e.sourceType}:${e.sourceId}:${e.role}`).sort()).toEqual([
        'birthright:sales:CRM',
        'birthright:staff:Staff',
      ]);
    });
  });

  it('leaves on a target without sessions or role lookup: records both as not supported by target and still completes', async () => {
    const h: Harness = { ...harness(), sessions: null, noRoleLookup: true };
    await run(h, async (r) => {
      const reviewing = { ...basePolicy, moverReviewsPrivilegedAccess: true };
      await r.send(
        { eventId: 'j1', type: 'joiner', effectiveAt: await r.at(0), attributes: { department: 'Engineering' }, profile },
        reviewing,
      );
      await until(r.handle, personQuery, (v) => v.status === 'active');
      // A mover's review cannot tell privileged roles apart: every entitlement is put up for review.
      await r.send({ eventId: 'm1', type: 'mover', effectiveAt: await r.at(0), attributes: { department: 'Sales' } }, reviewing);
      await until(r.handle, personQuery, (v) => v.lastApplied?.eventId === 'm1');
      const review = await eventually(
        async () => h.events.find((e) => e.action === 'person.review_requested'),
        (e) => e !== undefined,
      );
      expect(review!.payload.notSupported).toEqual([gap('roleLookup')]);
      expect((review!.payload.privilegedEntitlements as { privileged: boolean | null }[]).map((e) => e.privileged)).toEqual(
        h.ledger.map(() => null),
      );
      expect((review!.payload.privilegedEntitlements as unknown[]).length).toBeGreaterThan(0);

      await r.send({ eventId: 'l1', type: 'leaver', effectiveAt: await r.at(0) });
      await until(r.handle, personQuery, (v) => v.status === 'left');
      expect(h.ledger).toEqual([]);
      expect(h.account).toMatchObject({ status: 'disabled' });
      const leftEvent = h.events.find((e) => e.action === 'person.left')!;
      expect(leftEvent.payload).toMatchObject({ verified: true, sessionsRevoked: null });
      expect(leftEvent.payload.notSupported).toEqual([gap('sessions'), gap('roleLookup')]);
      expect(actions(h)).not.toContain('person.hr_event_failed');
    });
  });

  it('lets a leaver cancel a joiner still waiting for its start, and refuses events that do not fit', async () => {
    const h = harness();
    await run(h, async (r) => {
      await r.send(
        { eventId: 'j1', type: 'joiner', effectiveAt: await r.at(20 * DAY), attributes: { department: 'Sales' }, profile },
        { ...basePolicy, preProvisionDays: 0 },
      );
      expect(
        await rejectionType(
          r.send({ eventId: 'm1', type: 'mover', effectiveAt: await r.at(DAY), attributes: { department: 'Engineering' } }),
        ),
      ).toBe(PersonRejection.Conflict);
      const receipt = await r.send({ eventId: 'l1', type: 'leaver', effectiveAt: await r.at(DAY) });
      expect(receipt.cancelled).toEqual(['j1']);
      expect((await r.view()).pendingEvents.map((e) => e.eventId)).toEqual(['l1']);
      await env.sleep(DAY + MINUTE);
      await until(r.handle, personQuery, (v) => v.status === 'left');
      expect(h.account).toBeUndefined();
      expect(await rejectionType(r.send({ eventId: 'l2', type: 'leaver', effectiveAt: await r.at(0) }))).toBe(PersonRejection.Conflict);
    });
  });

  it('answers a duplicate with the first receipt and supersedes an event older than the last applied', async () => {
    const h = harness();
    await run(h, async (r) => {
      const effectiveAt = await r.at(0);
      const first = await r.send({ eventId: 'j1', type: 'joiner', effectiveAt, attributes: { department: 'Sales' }, profile });
      const again = await r.send({ eventId: 'j1', type: 'joiner', effectiveAt, attributes: { department: 'Sales' }, profile });
      expect(again).toEqual({ ...first, duplicate: true });
      await until(r.handle, personQuery, (v) => v.status === 'active');
      await r.send({ eventId: 'm2', type: 'mover', effectiveAt: await r.at(0), attributes: { department: 'Engineering' } });
      await until(r.handle, personQuery, (v) => v.lastApplied?.eventId === 'm2');
      const late = await r.send({
        eventId: 'm1',
        type: 'mover',
        effectiveAt: new Date(Date.parse(effectiveAt) - DAY).toISOString(),
        attributes: { department: 'Sales' },
      });
      expect(late.disposition).toBe('superseded');
      const view = await r.view();
      expect(view.attributes).toEqual({ department: 'Engineering' });
      expect(actions(h).filter((a) => a === 'person.hr_event_accepted')).toHaveLength(2);
      expect(actions(h)).toContain('person.hr_event_superseded');
    });
  });

  it('continues as new after the configured number of events, carrying state, queue and recent event ids', async () => {
    const h = harness();
    await run(
      h,
      async (r) => {
        await r.send(
          { eventId: 'j1', type: 'joiner', effectiveAt: await r.at(0), attributes: { department: 'Sales' }, profile },
          { ...basePolicy, moverGraceMinutes: 0 },
        );
        const firstRun = (await r.handle.describe()).runId;
        for (let i = 1; i <= 12; i++) {
          const department = i % 2 ? 'Engineering' : 'Sales';
          await r.send(
            { eventId: `m${i}`, type: 'mover', effectiveAt: await r.at(0), attributes: { department } },
            { ...basePolicy, moverGraceMinutes: 0 },
          );
          await until(r.handle, personQuery, (v) => v.lastApplied?.eventId === `m${i}`);
        }
        // A future leaver waits in the queue across the next continue-as-new.
        await r.send({ eventId: 'l1', type: 'leaver', effectiveAt: await r.at(5 * DAY) });
        const dup = await r.send({ eventId: 'm3', type: 'mover', effectiveAt: await r.at(0), attributes: { department: 'Engineering' } });
        expect(dup).toMatchObject({ duplicate: true, eventId: 'm3' });
        const description = await r.handle.describe();
        expect(description.runId).not.toBe(firstRun);
        const view = await r.view();
        expect(view).toMatchObject({ status: 'active', attributes: { department: 'Sales' }, lastApplied: { eventId: 'm12' } });
        expect(view.pendingEvents.map((e) => e.eventId)).toEqual(['l1']);
        expect(roles(h)).toEqual(['birthright:sales:CRM', 'birthright:staff:Staff']);
        await env.sleep(5 * DAY + MINUTE);
        await until(r.handle, personQuery, (v) => v.status === 'left');
      },
      { maxEventsPerRun: 4 },
    );
  });
});
