import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { pingWorkflow } from '../../workflows/diagnostics/workflow.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../activities/index.js';
import { PING_WORKFLOW_TYPE, pingStateQuery, pingWorkflowId, type PingInput } from '../../core/diagnostics/contract.js';
import { createWorkflowWorker, startTimeSkippingEnvironment } from '../support/workflow-harness.js';

let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await startTimeSkippingEnvironment();
});
afterAll(async () => {
  await env?.teardown();
});

describe('ping workflow (time-skipping server, activities mocked)', () => {
  it('waits out a 30-day durable timer in moments, then records the ping once', async () => {
    const recorded: string[] = [];
    const { worker, taskQueue } = await createWorkflowWorker(env, 'ping', {
      recordPing: (input) => {
        recorded.push(input.pingId);
        return Promise.resolve({ recordedAt: new Date(0).toISOString() });
      },
    } satisfies Partial<Activities>);
    const input: PingInput = { pingId: randomUUID(), message: 'later', delaySeconds: 30 * 24 * 3600 };

    const result = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof pingWorkflow>(PING_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: pingWorkflowId(input.pingId),
        args: [input],
      });
      const before = Date.now();
      const outcome = await handle.result();
      expect(Date.now() - before).toBeLessThan(20_000);
      expect(await handle.query(pingStateQuery)).toMatchObject({ status: 'done', message: 'later' });
      return outcome;
    });

    expect(result).toEqual({ pingId: input.pingId, message: 'later', recordedAt: new Date(0).toISOString() });
    expect(recorded).toEqual([input.pingId]);
  });
});
