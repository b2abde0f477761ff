import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { createLedgerActivities } from '../../activities/directory/ledger.js';
import type { Principal } from '../../core/tenancy/authz.js';
import { personWorkflowId, type PersonView } from '../../core/lifecycle/contract.js';
import { singleDirectory, type DirectoryConnector } from '../../core/directory/connector.js';
import { AppError } from '../../core/errors.js';
import type { HrEventBody } from '../../core/lifecycle/schemas.js';
import { LifecyclePolicy } from '../../core/lifecycle/policy.js';
import { getPolicy, putPolicy } from '../../usecases/tenancy/policies.js';
import { loadGrantPolicy, requestGrant } from '../../usecases/grants.js';
import { systemContext, type ActionContext } from '../../core/audit/context.js';
import {
  getHrImport,
  getPerson,
  getTimeline,
  previewHrEvent,
  startHrImport,
  submitHrEvent,
  type LifecycleDeps,
} from '../../usecases/lifecycle.js';
import { seedTenancy, type TestTenancy } from '../support/tenancy.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { scrubHrEventProfiles } from '../../db/lifecycle.js';
import { inScope, tenantScope } from '../../db/scope.js';

/**
 * Lifecycles through the use-case layer on the real stack: Temporal dev server, the worker with
 * the person and grant workflows, the built-in directory, the ledger and the audit chain in
 * PostgreSQL. Durations are seconds-short (grace 0.1 minute); days-long timers are covered on
 * the time-skipping server in the workflow tier.
 */
let stack: TestStack;
let id: TestTenancy;
let deps: LifecycleDeps;
let directory: DirectoryConnector;
let ctx: ActionContext;
/** While in the future, every directory call fails as if the directory were unreachable. */
let directoryDownUntil = 0;

const LIFECYCLE = {
  attributes: ['department', 'location', 'employmentType'],
  rules: [
    { id: 'staff', roles: ['Staff'] },
    { id: 'eng', when: { department: 'Engineering' }, roles: ['Developers'], eligibleGrantRoles: ['GlobalAdmin'] },
    { id: 'sales', when: { department: 'Sales' }, roles: ['CRM'] },
  ],
  moverGraceMinutes: 0.1,
  moverReviewsPrivilegedAccess: true,
  leaver: { retentionDays: 30, afterRetention: 'delete' },
};

beforeAll(async () => {
  stack = await startTestStack({
    directory: (real) =>
      Object.fromEntries(
        Object.entries(real).map(([name, value]) => [
          name,
          typeof value === 'function'
            ? (...args: unknown[]) => {
                if (Date.now() < directoryDownUntil) return Promise.reject(new Error('directory unavailable (test outage)'));
                return (value as (...a: unknown[]) => unknown).apply(real, args);
              }
            : value,
        ]),
      ) as unknown as DirectoryConnector,
  });
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  deps = { pool: stack.pool, directory, temporal: stack.temporal };
  ctx = { actor: { id: id.actors.hrA!.id, type: 'service' }, authority: { roles: ['hr_integration'], requestId: 'test' } };
  for (const role of ['Staff', 'Developers', 'CRM', 'Printers']) await directory.upsertRole(id.tenantA, { name: role });
  await directory.upsertRole(id.tenantA, { name: 'GlobalAdmin', privileged: true });
  const current = await getPolicy(stack.pool, id.tenantA);
  await putPolicy({ pool: stack.pool, directory }, systemContext('test'), id.tenantA, current.version, {
    ...current.document,
    lifecycle: LifecyclePolicy.parse(LIFECYCLE),
    grants: {
      ...current.document.grants,
      roles: { GlobalAdmin: { privileged: true, maxDurationMinutes: 60, approvalsRequired: 0, requestableBy: ['operator'] } },
    },
  });
});
afterAll(async () => {
  await stack?.stop();
});

const past = (seconds = 60) => new Date(Date.now() - seconds * 1000).toISOString();
const soon = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();
const newPerson = () => `p-${randomUUID().slice(0, 8)}`;
const joiner = (personId: string, department: string, extra: Partial<HrEventBody> = {}): HrEventBody => ({
  eventId: `${personId}-j-${randomUUID().slice(0, 4)}`,
  personId,
  type: 'joiner',
  effectiveAt: past(),
  attributes: { department, employmentType: 'employee' },
  profile: { username: personId, displayName: `Person ${personId}`, email: `${personId}@example.test` },
  ...extra,
});
const mover = (personId: string, department: string, extra: Partial<HrEventBody> = {}): HrEventBody => ({
  eventId: `${personId}-m-${randomUUID().slice(0, 8)}`,
  personId,
  type: 'mover',
  effectiveAt: past(1),
  attributes: { department },
  ...extra,
});
const leaver = (personId: string, extra: Partial<HrEventBody> = {}): HrEventBody => ({
  eventId: `${personId}-l-${randomUUID().slice(0, 4)}`,
  personId,
  type: 'leaver',
  effectiveAt: past(1),
  ...extra,
});

const person = (personId: string) => getPerson(stack.pool, id.tenantA, personId);
const waitFor = (personId: string, until: (p: PersonView) => boolean, timeoutMs = 30_000) =>
  eventually(
    async () => (await person(personId).catch(() => undefined))?.person,
    (p) => p !== undefined && until(p),
    timeoutMs,
  ) as Promise<PersonView>;
const actions = async (personId: string) => (await getTimeline(stack.pool, id.tenantA, personId)).events.map((e) => e.action);
const appError = async (promise: Promise<unknown>) => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
};

describe('person lifecycle through the use cases', () => {
  it('a joiner dated in the future waits, then gets an account and birthright roles recorded in the ledger and audit', async () => {
    const p = newPerson();
    const event = joiner(p, 'Engineering', { effectiveAt: soon(3) });
    const { receipt, person: before } = await submitHrEvent(deps, ctx, id.tenantA, event);
    expect(receipt).toMatchObject({ disposition: 'accepted', duplicate: false });
    expect(before.status).toBe('pending');
    expect(await directory.getUser(id.tenantA, p)).toBeUndefined();

    const after = await waitFor(p, (v) => v.status === 'active');
    expect(after.matchedRuleIds).toEqual(['staff', 'eng']);
    expect(await directory.listRoles(id.tenantA, p)).toEqual(['Developers', 'Staff']);
    expect((await directory.getUser(id.tenantA, p))?.status).toBe('active');
    const { entitlements } = await person(p);
    expect(entitlements.map((e) => `${e.sourceType}:${e.sourceId}:${e.role}`).sort()).toEqual([
      'birthright:eng:Developers',
      'birthright:staff:Staff',
    ]);

    const timeline = await getTimeline(stack.pool, id.tenantA, p);
    expect(timeline.hrEvents).toEqual([expect.objectContaining({ eventId: event.eventId, status: 'applied' })]);
    const joined = timeline.events.find((e) => e.action === 'person.joined')!;
    expect(joined).toMatchObject({ actor: ctx.actor, workflowId: personWorkflowId(id.tenantA, p) });
    expect(joined.authority).toMatchObject({
      hrEventId: event.eventId,
      policyVersion: 2,
      ruleIds: ['staff', 'eng'],
      roles: ['hr_integration'],
    });
    expect(joined.payload).toMatchObject({
      before: { birthright: [] },
      after: {
        birthright: [
          { role: 'Staff', ruleId: 'staff' },
          { role: 'Developers', ruleId: 'eng' },
        ],
      },
    });
  });

  it('a mover gets new roles at once, keeps old ones through the grace period, and a move-back cancels their removal', async () => {
    const p = newPerson();
    await submitHrEvent(deps, ctx, id.tenantA, joiner(p, 'Engineering'));
    await waitFor(p, (v) => v.status === 'active');

    const m1 = mover(p, 'Sales');
    await submitHrEvent(deps, ctx, id.tenantA, m1);
    const moved = await waitFor(p, (v) => v.lastApplied?.eventId === m1.eventId);
    expect(moved.pendingRemovals.map((r) => r.role)).toEqual(['Developers']);
    expect(await directory.listRoles(id.tenantA, p)).toEqual(['CRM', 'Developers', 'Staff']);

    const m2 = mover(p, 'Engineering');
    await submitHrEvent(deps, ctx, id.tenantA, m2);
    const back = await waitFor(p, (v) => v.lastApplied?.eventId === m2.eventId);
    expect(back.pendingRemovals.map((r) => r.role)).toEqual(['CRM']);

    // After the 6 s grace: CRM (the Sales role) is gone, Developers (birthright again) stays.
    await waitFor(p, (v) => v.pendingRemovals.length === 0, 20_000);
    expect(await directory.listRoles(id.tenantA, p)).toEqual(['Developers', 'Staff']);
    const all = await actions(p);
    expect(all.filter((a) => a === 'person.birthright_removed')).toHaveLength(1);
    expect(all).toContain('person.review_requested');
  });

  it('a leaver disables the account, revokes sessions, ends an active grant and a manual entitlement, and verifies nothing remains', async () => {
    const p = newPerson();
    await submitHrEvent(deps, ctx, id.tenantA, joiner(p, 'Engineering'));
    await waitFor(p, (v) => v.status === 'active');
    const sessionId = await createPostgresDirectory(stack.pool).openSession(id.tenantA, p);
    expect(sessionId).toBeTruthy();
    await createLedgerActivities({ pool: stack.pool, directories: singleDirectory(directory) }).grantAccess({
      tenantId: id.tenantA,
      subjectId: p,
      role: 'Printers',
      sourceType: 'manual',
      sourceId: 'INC-77',
    });
    const operator: Principal = {
      actorId: id.actors.operator!.id,
      kind: 'msp_staff',
      displayName: 'op',
      bindings: [{ id: 'b', role: 'operator', tenantId: null }],
      via: 'api_token',
    };
    const grant = await requestGrant(
      { pool: stack.pool, temporal: stack.temporal, directory },
      operator,
      id.tenantA,
      await loadGrantPolicy(stack.pool, id.tenantA),
      { subjectId: p, role: 'GlobalAdmin', durationMinutes: 30, justification: 'incident', ticket: 'INC-1' },
      { requestId: randomUUID() },
    );
    await eventually(
      () => person(p),
      (d) => d.grants.some((g) => g.grantId === grant.view.grantId && g.status === 'active'),
    );
    expect(await directory.listRoles(id.tenantA, p)).toEqual(['Developers', 'GlobalAdmin', 'Printers', 'Staff']);

    const preview = await previewHrEvent(stack.pool, id.tenantA, leaver(p));
    expect(preview).toMatchObject({ outcome: 'apply', account: 'disable', revokeSessions: true });
    expect(preview.grantsToEnd.map((g) => g.grantId)).toEqual([grant.view.grantId]);
    expect(preview.entitlementsToEnd.map((e) => e.sourceType).sort()).toEqual(['grant', 'manual']);

    const l = leaver(p);
    await submitHrEvent(deps, ctx, id.tenantA, l);
    const left = await waitFor(p, (v) => v.status === 'left');
    expect(left.deletion).toMatchObject({ mode: 'delete', hrEventId: l.eventId });
    expect(await directory.listRoles(id.tenantA, p)).toEqual([]);
    expect((await directory.getUser(id.tenantA, p))?.status).toBe('disabled');
    const details = await person(p);
    expect(details.entitlements).toEqual([]);
    expect(details.grants).toEqual([]);
    const sessions = await stack.db.pool.query(
      'SELECT count(*)::int AS n FROM directory_sessions WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL',
      [id.tenantA, p],
    );
    expect(sessions.rows[0].n).toBe(0);
    const grantRow = await stack.db.pool.query('SELECT status, end_reason FROM grants WHERE grant_id = $1', [grant.view.grantId]);
    expect(grantRow.rows[0]).toEqual({ status: 'ended', end_reason: 'revoked' });
    const leftEvent = (await getTimeline(stack.pool, id.tenantA, p)).events.find((e) => e.action === 'person.left')!;
    expect(leftEvent.authority).toMatchObject({ hrEventId: l.eventId, policyVersion: 2 });
    expect(leftEvent.payload).toMatchObject({ verified: true, sessionsRevoked: 1, after: { entitlements: [], directoryRoles: [] } });

    // Rehired inside the 30-day retention: deletion cancelled, the account comes back as a joiner.
    const rehire = joiner(p, 'Sales', { profile: undefined, effectiveAt: new Date().toISOString() });
    await submitHrEvent(deps, ctx, id.tenantA, rehire);
    const back = await waitFor(p, (v) => v.lastApplied?.eventId === rehire.eventId);
    expect(back).toMatchObject({ status: 'active', deletion: null });
    expect((await directory.getUser(id.tenantA, p))?.status).toBe('active');
    expect(await directory.listRoles(id.tenantA, p)).toEqual(['CRM', 'Staff']);
    expect(await actions(p)).toEqual(expect.arrayContaining(['person.deletion_cancelled', 'person.rehired']));
  });

  it('a leaver during a directory outage finishes once the directory is back, leaving nothing behind', async () => {
    const p = newPerson();
    await submitHrEvent(deps, ctx, id.tenantA, joiner(p, 'Engineering'));
    await waitFor(p, (v) => v.status === 'active');
    directoryDownUntil = Date.now() + 4_000;
    await submitHrEvent(deps, ctx, id.tenantA, leaver(p));
    expect((await person(p)).person.status).not.toBe('left');
    const left = await waitFor(p, (v) => v.status === 'left', 45_000);
    expect(Date.now()).toBeGreaterThanOrEqual(directoryDownUntil);
    expect(left.birthright).toEqual([]);
    expect(await directory.listRoles(id.tenantA, p)).toEqual([]);
    expect((await person(p)).entitlements).toEqual([]);
  });

  it('answers a re-sent event id with the first receipt, refuses it with another body, and supersedes an out-of-order event', async () => {
    const p = newPerson();
    const j = joiner(p, 'Engineering');
    const first = await submitHrEvent(deps, ctx, id.tenantA, j);
    const again = await submitHrEvent(deps, ctx, id.tenantA, j);
    expect(again.receipt).toEqual({ ...first.receipt, duplicate: true });
    expect((await appError(submitHrEvent(deps, ctx, id.tenantA, { ...j, attributes: { department: 'Sales' } }))).status).toBe(409);
    await waitFor(p, (v) => v.status === 'active');

    const m2 = mover(p, 'Sales', { effectiveAt: past(5) });
    await submitHrEvent(deps, ctx, id.tenantA, m2);
    await waitFor(p, (v) => v.lastApplied?.eventId === m2.eventId);
    const stale = await submitHrEvent(deps, ctx, id.tenantA, mover(p, 'Engineering', { effectiveAt: past(30) }));
    expect(stale.receipt.disposition).toBe('superseded');
    const { person: now } = await person(p);
    expect(now.attributes.department).toBe('Sales');
    const statuses = (await getTimeline(stack.pool, id.tenantA, p)).hrEvents.map((e) => e.status);
    expect(statuses).toEqual(['applied', 'applied', 'superseded']);
    // A duplicate after the fact is answered from the register.
    expect((await submitHrEvent(deps, ctx, id.tenantA, j)).receipt).toMatchObject({ eventId: j.eventId, duplicate: true });
  });

  it('refuses bad input with the field or the reason, and changes nothing', async () => {
    const p = newPerson();
    const unknown = await appError(
      submitHrEvent(deps, ctx, id.tenantA, joiner(p, 'Engineering', { attributes: { department: 'Engineering', shoeSize: '44' } })),
    );
    expect(unknown).toMatchObject({ status: 400, issues: [{ path: 'body.attributes.shoeSize', message: expect.any(String) }] });
    expect((await appError(submitHrEvent(deps, ctx, id.tenantA, leaver(p)))).status).toBe(404);
    expect((await appError(submitHrEvent(deps, ctx, id.tenantA, mover(p, 'Sales')))).status).toBe(404);
    expect((await appError(submitHrEvent(deps, ctx, randomUUID(), joiner(p, 'Sales')))).status).toBe(404);
    expect((await appError(person(p))).status).toBe(404);
    expect(await directory.getUser(id.tenantA, p)).toBeUndefined();
  });

  it('imports CSV rows as a job: valid ones processed, bad ones reported by row and field, nothing half-applied', async () => {
    const [a, b, c] = [newPerson(), newPerson(), newPerson()];
    const csv = [
      'eventId,personId,type,effectiveAt,username,displayName,department,location',
      `${a}-j,${a},joiner,${past()},${a},Person A,Sales,London`,
      `${b}-j,${b},joiner,not-a-time,${b},Person B,Sales,London`,
      `${c}-j,${c},joiner,${past()},${c},Person C,Sales`,
      `${a}-l,${a},leaver,${past(1)},,,,`,
      `${c}-m,${c},mover,${past(1)},,,Engineering,`,
    ].join('\n');
    const job = await startHrImport(deps, ctx, id.tenantA, { format: 'csv', text: csv }, { maxRows: 10 });
    expect(job).toMatchObject({ status: 'queued', total: 5, done: 2, failed: 2 });
    const result = await eventually(
      () => getHrImport(stack.pool, id.tenantA, job.importId, { limit: 10 }),
      (p) => p.status === 'completed',
      60_000,
    );
    expect(result).toMatchObject({ total: 5, done: 5, failed: 3, counts: { accepted: 2, invalid: 2, rejected: 1, pending: 0 } });
    expect(result.rows.map((r) => [r.row, r.status])).toEqual([
      [1, 'accepted'],
      [2, 'invalid'],
      [3, 'invalid'],
      [4, 'accepted'],
      [5, 'rejected'],
    ]);
    expect(result.rows[1]!.issues.map((i) => i.path)).toEqual(['effectiveAt']);
    expect(result.rows[2]!.issues.map((i) => i.path)).toEqual(['row']);
    expect(result.rows[4]!.error).toMatchObject({ status: 404 });
    await waitFor(a, (v) => v.status === 'left');
    expect(await directory.getUser(id.tenantA, b)).toBeUndefined();
    expect(await directory.getUser(id.tenantA, c)).toBeUndefined();
  });

  it('continues as new over many events and keeps state, pending work and deduplication', async () => {
    const p = newPerson();
    const small = { ...deps, maxEventsPerRun: 3 };
    await submitHrEvent(small, ctx, id.tenantA, joiner(p, 'Sales'));
    const firstRun = (await stack.temporal.workflow.getHandle(personWorkflowId(id.tenantA, p)).describe()).runId;
    const movers: HrEventBody[] = [];
    for (let i = 0; i < 7; i++) {
      const m = mover(p, i % 2 ? 'Sales' : 'Engineering', { effectiveAt: past(50 - i) });
      movers.push(m);
      await submitHrEvent(small, ctx, id.tenantA, m);
    }
    const last = movers.at(-1)!;
    const view = await waitFor(p, (v) => v.lastApplied?.eventId === last.eventId);
    expect(view.attributes.department).toBe('Engineering');
    const runId = async () => (await stack.temporal.workflow.getHandle(personWorkflowId(id.tenantA, p)).describe()).runId;
    await eventually(runId, (current) => current !== firstRun);
    expect((await submitHrEvent(small, ctx, id.tenantA, movers[1]!)).receipt.duplicate).toBe(true);
    const applied = (await getTimeline(stack.pool, id.tenantA, p)).hrEvents.filter((e) => e.status === 'applied');
    expect(applied).toHaveLength(8);
  });

  it('after the retention period, deleting or anonymising a leaver also scrubs the profile from their stored HR events', async () => {
    // Tenant B keeps nothing past leaving; the policy in force at the leaver decides the mode.
    await directory.upsertRole(id.tenantB, { name: 'Staff' });
    for (const mode of ['delete', 'anonymise'] as const) {
      const current = await getPolicy(stack.pool, id.tenantB);
      await putPolicy({ pool: stack.pool, directory }, systemContext('test'), id.tenantB, current.version, {
        ...current.document,
        lifecycle: LifecyclePolicy.parse({
          attributes: ['department', 'employmentType'],
          rules: [{ id: 'staff', roles: ['Staff'] }],
          leaver: { retentionDays: 0, afterRetention: mode },
        }),
      });
      const p = newPerson();
      const secret = randomUUID().slice(0, 8);
      const profile = { username: `casey-${secret}`, displayName: `Casey ${secret}`, email: `casey.${secret}@example.test` };
      await submitHrEvent(deps, ctx, id.tenantB, { ...joiner(p, 'Sales'), profile });
      const inB = (until: (v: PersonView) => boolean) =>
        eventually(
          async () => (await getPerson(stack.pool, id.tenantB, p).catch(() => undefined))?.person,
          (v) => v !== undefined && until(v),
          30_000,
        );
      await inB((v) => v.status === 'active');
      await submitHrEvent(deps, ctx, id.tenantB, mover(p, 'Support', { profile: { ...profile, displayName: `Casey M ${secret}` } }));
      await inB((v) => v.profile?.displayName === `Casey M ${secret}`);
      const rows = () =>
        stack.db.pool.query<{ row: string; body: Record<string, unknown> }>(
          'SELECT row_to_json(h)::text AS row, body FROM hr_events h WHERE tenant_id = $1 AND person_id = $2',
          [id.tenantB, p],
        );
      expect((await rows()).rows.filter((r) => r.body.profile)).toHaveLength(2);

      await submitHrEvent(deps, ctx, id.tenantB, leaver(p));
      await inB((v) => v.status === (mode === 'delete' ? 'deleted' : 'anonymised'));
      const stored = (await rows()).rows;
      expect(stored).toHaveLength(3);
      for (const { row, body } of stored) {
        expect(body).not.toHaveProperty('profile');
        expect(row).not.toContain(secret);
      }
      // Idempotent: a retried erasure finds nothing left to scrub.
      expect(await inScope(stack.pool, tenantScope(id.tenantB), (client) => scrubHrEventProfiles(client, id.tenantB, p))).toBe(0);
    }
  });
});
