import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import { DIRECTORY_TARGET_REJECTED } from '../../core/directory/connector.js';
import {
  CLONE_CONFLICT,
  TENANT_CLONE_WORKFLOW_TYPE,
  tenantCloneWorkflowId,
  type TenantCloneInput,
  type TenantCloneResult,
} from '../../core/templates/clone.js';
import type { tenantCloneWorkflow } from '../../workflows/templates/clone.js';
import { createWorkflowWorker, recordHistory, startTimeSkippingEnvironment } from '../support/workflow-harness.js';

/**
 * Workflow tier: the clone with its activities replaced by recorders. What each step writes is
 * keyed by ids the workflow makes, so a retried step hands the same ids again (written once).
 */
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await startTimeSkippingEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

const TEMPLATE_ID = randomUUID();
const COPIED = {
  roles: 3,
  privilegedRoles: 1,
  settings: ['lockoutThreshold', 'mfaRequired'],
  policyVersion: 1,
  pin: { templateId: TEMPLATE_ID, version: 2, appliedVersion: null },
};

interface Harness {
  calls: { step: string; input: Record<string, unknown> }[];
  finished: TenantCloneResult[];
  /** What a step throws, by step: once (then it succeeds) or always. */
  failures: Partial<Record<'capture' | 'create' | 'copy' | 'verify', { error: () => Error; times: number }>>;
  /** What reading the clone back against its pin finds still different. */
  differences: string[];
}

function fakeActivities(h: Harness) {
  const attempt = (step: keyof Harness['failures'], input: object) => {
    h.calls.push({ step, input: input as Record<string, unknown> });
    const failure = h.failures[step];
    if (failure && failure.times > 0) {
      failure.times--;
      throw failure.error();
    }
  };
  return {
    captureCloneSource: async (i) => {
      attempt('capture', i);
      return { ...COPIED, notes: ['settings sessionLifetimeMinutes: not held by the source’s ldap target; defaults kept'] };
    },
    createClonedTenant: async (i) => {
      attempt('create', i);
      return { created: true };
    },
    copyClonedDirectory: async (i) => {
      attempt('copy', i);
      return { roles: 3, settings: ['lockoutThreshold', 'mfaRequired'] };
    },
    verifyClonedPin: async (i) => {
      attempt('verify', i);
      return { appliedVersion: h.differences.length ? null : 2, differences: h.differences };
    },
    finishClone: async (i) => {
      h.finished.push(i.result);
    },
  } satisfies Partial<Activities>;
}

function cloneInput(): TenantCloneInput {
  return {
    cloneId: randomUUID(),
    sourceTenantId: randomUUID(),
    newTenantId: randomUUID(),
    slug: 'fabrikam',
    name: 'Fabrikam',
    tags: [],
    requester: { id: 'msp-admin', type: 'user' },
    authority: { roles: ['msp_admin'] },
  };
}

async function run(
  failures: Harness['failures'] = {},
  differences: string[] = [],
): Promise<{ h: Harness; result: TenantCloneResult; input: TenantCloneInput }> {
  const h: Harness = { calls: [], finished: [], failures, differences };
  const input = cloneInput();
  const { worker, taskQueue } = await createWorkflowWorker(env, 'tenant-clone', fakeActivities(h));
  const result = await worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof tenantCloneWorkflow>(TENANT_CLONE_WORKFLOW_TYPE, {
      taskQueue,
      workflowId: tenantCloneWorkflowId(input.sourceTenantId, `key-${randomUUID()}`),
      args: [input],
    });
    await recordHistory('tenant-clone', handle, { waitForClose: true });
    return handle.result();
  });
  return { h, result, input };
}

const steps = (h: Harness) => h.calls.map((c) => c.step);

describe('tenant clone workflow', () => {
  it('reads the source, creates the tenant, copies its directory, reads it back against the pin and records the outcome once, each step by the ids made here', async () => {
    const { h, result, input } = await run();
    expect(steps(h)).toEqual(['capture', 'create', 'copy', 'verify']);
    expect(result).toEqual({
      cloneId: input.cloneId,
      sourceTenantId: input.sourceTenantId,
      tenantId: input.newTenantId,
      status: 'completed',
      copied: { ...COPIED, pin: { templateId: TEMPLATE_ID, version: 2, appliedVersion: 2 } },
      notes: [expect.stringContaining('sessionLifetimeMinutes')],
      failure: null,
    });
    expect(h.finished).toEqual([result]);
    const create = h.calls[1]!.input as { events: Record<string, string>; authority: Record<string, unknown>; actor: { id: string } };
    expect(create.actor.id).toBe('msp-admin');
    expect(create.authority).toMatchObject({ roles: ['msp_admin'], cloneId: input.cloneId, sourceTenantId: input.sourceTenantId });
    expect(new Set(Object.values(create.events)).size).toBe(3);
  });

  it('a step retried after a crash gets the same event ids again, so what it already wrote is not written twice', async () => {
    const crash = () => ApplicationFailure.create({ type: 'WorkerLost', message: 'the worker died after the commit' });
    const { h, result } = await run({ create: { error: crash, times: 1 }, copy: { error: crash, times: 1 } });
    expect(result.status).toBe('completed');
    expect(steps(h)).toEqual(['capture', 'create', 'create', 'copy', 'copy', 'verify']);
    const [first, retry] = h.calls.filter((c) => c.step === 'create').map((c) => c.input.events);
    expect(retry).toEqual(first);
    const [copy1, copy2] = h.calls.filter((c) => c.step === 'copy').map((c) => c.input.eventId);
    expect(copy2).toBe(copy1);
    expect(h.finished).toHaveLength(1);
  });

  it('a clone that reads back different from its pinned version keeps it unapplied and says where; one that cannot be read back still completes', async () => {
    const drifted = await run({}, ['directory.settings.lockoutThreshold']);
    expect(drifted.result).toMatchObject({ status: 'completed', copied: { pin: { version: 2, appliedVersion: null } } });
    expect(drifted.result.notes.at(-1)).toMatch(/differs from version 2 at directory\.settings\.lockoutThreshold/);

    const refused = () => ApplicationFailure.create({ type: DIRECTORY_TARGET_REJECTED, message: 'read refused', nonRetryable: true });
    const unread = await run({ verify: { error: refused, times: 99 } });
    expect(unread.result).toMatchObject({ status: 'completed', copied: { pin: { appliedVersion: null } } });
    expect(unread.result.notes.at(-1)).toMatch(/reading the clone back failed \(read refused\)/);
  });

  it('a slug taken since the request fails the clone naming the field: nothing is copied', async () => {
    const taken = () =>
      ApplicationFailure.create({
        type: CLONE_CONFLICT,
        message: 'A tenant with slug "fabrikam" already exists.',
        nonRetryable: true,
        details: [{ field: 'body.slug' }],
      });
    const { h, result } = await run({ create: { error: taken, times: 99 } });
    expect(steps(h)).toEqual(['capture', 'create']);
    expect(result).toMatchObject({ status: 'failed', copied: null, failure: { code: 'slug_taken', field: 'body.slug' } });
    expect(h.finished).toEqual([result]);
  });

  it('a source whose target refuses fails the clone before any tenant is created', async () => {
    const refused = () => ApplicationFailure.create({ type: DIRECTORY_TARGET_REJECTED, message: 'bind refused', nonRetryable: true });
    const { h, result } = await run({ capture: { error: refused, times: 99 } });
    expect(steps(h)).toEqual(['capture']);
    expect(result).toMatchObject({
      status: 'failed',
      failure: { code: 'source_unreadable', field: null, message: expect.stringContaining('bind refused') },
    });
  });
});
