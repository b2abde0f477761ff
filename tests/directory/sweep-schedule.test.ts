import { randomUUID } from 'node:crypto';
import { Client, Connection, ScheduleNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sweepScheduleHook } from '../../activities/directory/sweep-schedule.js';
import type { DirectoryConnector } from '../../core/directory/connector.js';
import { sweepScheduleId } from '../../core/directory/sweep.js';

/**
 * The registry's hook that keeps a tenant's sweep schedule in step with its target, against the
 * shared Temporal dev server, used as the API and worker processes use it: without a callback.
 */
let client: Client;

beforeAll(async () => {
  client = new Client({
    connection: await Connection.connect({ address: inject('temporalAddress') }),
    namespace: inject('temporalNamespace'),
  });
});
afterAll(async () => {
  await client?.connection.close();
});

const target = (membershipEnd: boolean) => ({ capabilities: { membershipEnd } }) as Pick<DirectoryConnector, 'capabilities'>;
const describeSchedule = (tenantId: string) => client.schedule.getHandle(sweepScheduleId(tenantId)).describe();

describe('sweep schedule hook', () => {
  it('without a callback still creates the schedule before a tenant first uses a target that cannot end memberships, and deletes it when the tenant moves to one that can', async () => {
    const hook = sweepScheduleHook({ temporal: client, taskQueuePrefix: `test-${randomUUID()}-`, intervalSeconds: 2 });
    const tenantId = randomUUID();
    await hook(tenantId, { type: 'ldap' }, target(false), null);
    const described = await describeSchedule(tenantId);
    expect(described.spec.intervals).toEqual([{ every: 2000, offset: undefined }]);
    await client.schedule.getHandle(sweepScheduleId(tenantId)).pause('paused by the test: nothing polls its queue');

    await hook(tenantId, { type: 'builtin' }, target(true), target(false));
    await expect(describeSchedule(tenantId)).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });

  it('costs no schedule for a tenant that was always on a target ending memberships by itself', async () => {
    const hook = sweepScheduleHook({ temporal: client, taskQueuePrefix: `test-${randomUUID()}-`, intervalSeconds: 2 });
    const tenantId = randomUUID();
    await hook(tenantId, { type: 'builtin' }, target(true), null);
    await expect(describeSchedule(tenantId)).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });
});
