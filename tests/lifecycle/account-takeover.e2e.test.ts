import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import type { DirectoryConnector } from '../../core/directory/connector.js';
import { apiClient, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, setPolicy, type TestTenancy } from '../support/tenancy.js';

/**
 * The HR feed cannot take over directory accounts the lifecycle did not create (a leaked HR token
 * must not revive a disabled break-glass account): refused at submission, and again where the
 * account is provisioned; taken over only when the tenant's policy says `adoptExistingAccounts`.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: DirectoryConnector;

const call = apiClient(() => stack.baseUrl);

const LIFECYCLE = {
  attributes: ['department'],
  rules: [{ id: 'everyone', roles: ['Staff'] }],
  leaver: { retentionDays: 30, afterRetention: 'delete' },
};

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  directory = createPostgresDirectory(stack.pool);
  await directory.upsertRole(id.tenantA, { name: 'Staff' });
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
    expectedVersion: 1,
    document: { lifecycle: LIFECYCLE },
  });
  expect(approval?.body.status).toBe('applied');
});
afterAll(async () => {
  await stack?.stop();
});

const base = () => `/v1/tenants/${id.tenantA}`;
const hr = () => id.tokens.hrA!;
let seq = 0;
const joiner = (personId: string, effectiveAt = new Date(Date.now() - 60_000).toISOString()) => ({
  eventId: `${personId}-join-${++seq}`,
  personId,
  type: 'joiner',
  effectiveAt,
  attributes: { department: 'IT' },
  profile: { username: personId, displayName: `Person ${personId}`, email: `${personId}@example.test` },
});
const person = async (personId: string) => (await call(hr(), 'GET', `${base()}/people/${personId}`)).body;
const timeline = async (personId: string) => (await call(id.tokens.auditorA, 'GET', `${base()}/people/${personId}/timeline`)).body;
const statusOf = async (personId: string) => (await directory.getUser(id.tenantA, personId))?.status;
/** An account made straight in the directory, as an administrator makes a break-glass account. */
const breakGlass = (personId: string) =>
  directory.upsertUser(id.tenantA, { id: personId, username: personId, displayName: 'Break glass', initialStatus: 'disabled' });

describe('joiners and existing directory accounts', () => {
  it('a joiner for a disabled break-glass account is 409: the account stays disabled and nothing is recorded', async () => {
    await breakGlass('breakglass');
    const sent = await call(hr(), 'POST', `${base()}/hr-events`, joiner('breakglass'));
    expect(sent.status).toBe(409);
    expect(sent.body.error.code).toBe('account_not_managed');
    expect(sent.body.error.message).toContain('adoptExistingAccounts');

    expect(await statusOf('breakglass')).toBe('disabled');
    expect((await call(hr(), 'GET', `${base()}/people/breakglass`)).status).toBe(404);
    expect((await call(id.tokens.auditorA, 'GET', `${base()}/people/breakglass/timeline`)).status).toBe(404);
  });

  it('a normal joiner and a rehire inside the retention period are unaffected', async () => {
    const sent = await call(hr(), 'POST', `${base()}/hr-events`, joiner('normal'));
    expect(sent.status).toBe(202);
    await eventually(
      () => person('normal'),
      (p) => p.person?.status === 'active',
    );
    expect(await statusOf('normal')).toBe('active');

    const leaver = { eventId: 'normal-leave', personId: 'normal', type: 'leaver', effectiveAt: new Date().toISOString() };
    expect((await call(hr(), 'POST', `${base()}/hr-events`, leaver)).status).toBe(202);
    await eventually(
      () => person('normal'),
      (p) => p.person?.status === 'left',
    );
    expect(await statusOf('normal')).toBe('disabled');

    // The account exists (disabled) but is the lifecycle's own: the rehire re-enables it.
    const rehire = await call(hr(), 'POST', `${base()}/hr-events`, joiner('normal', new Date().toISOString()));
    expect(rehire.status).toBe(202);
    await eventually(
      () => person('normal'),
      (p) => p.person?.status === 'active',
    );
    expect(await statusOf('normal')).toBe('active');
    const actions = (await timeline('normal')).events.map((e: Json) => e.action);
    expect(actions).toContain('person.rehired');
    expect(actions).not.toContain('person.account_adopted');
  });

  it('an account made while a joiner waits for its start is not taken over when the joiner applies', async () => {
    const event = joiner('latecomer', new Date(Date.now() + 4_000).toISOString());
    expect((await call(hr(), 'POST', `${base()}/hr-events`, event)).status).toBe(202);
    await breakGlass('latecomer');

    const failed = await eventually(
      () => timeline('latecomer'),
      (t) => t.hrEvents?.[0]?.status === 'rejected',
      30_000,
    );
    expect(failed.hrEvents[0].statusReason).toContain('adoptExistingAccounts');
    const refusal = failed.events.find((e: Json) => e.action === 'person.hr_event_failed');
    expect(refusal.payload.reason).toContain('not created by the lifecycle');
    expect(await statusOf('latecomer')).toBe('disabled');
    expect(await directory.listRoles(id.tenantA, 'latecomer')).toEqual([]);
  });

  it('with adoptExistingAccounts (a loosening, approved) the joiner adopts the account, enables it and audits the adoption', async () => {
    const current = (await call(id.tokens.mspAdmin, 'GET', `${base()}/policy`)).body;
    const { put, approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
      expectedVersion: current.version,
      document: { ...current.document, lifecycle: { ...current.document.lifecycle, adoptExistingAccounts: true } },
    });
    expect(put.status).toBe(202);
    expect(approval?.body.status).toBe('applied');

    const sent = await call(hr(), 'POST', `${base()}/hr-events`, joiner('breakglass'));
    expect(sent.status).toBe(202);
    expect(sent.body.receipt).toMatchObject({ disposition: 'accepted', duplicate: false });
    await eventually(
      () => person('breakglass'),
      (p) => p.person?.status === 'active',
    );
    expect(await statusOf('breakglass')).toBe('active');
    expect(await directory.listRoles(id.tenantA, 'breakglass')).toEqual(['Staff']);

    const events = (await timeline('breakglass')).events as Json[];
    const adopted = events.filter((e) => e.action === 'person.account_adopted');
    expect(adopted).toHaveLength(1);
    expect(adopted[0]!.payload.account).toMatchObject({ id: 'breakglass', previousStatus: 'disabled' });
    expect(adopted[0]!.authority).toMatchObject({ adoptExistingAccounts: true });
    const order = events.map((e) => e.action);
    expect(order.indexOf('person.account_adopted')).toBeLessThan(order.indexOf('person.joined'));
  });
});
