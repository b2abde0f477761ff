import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CAMPAIGN_RUN_WORKFLOW_TYPE,
  SCHEDULED_CAMPAIGN_RUN_WORKFLOW_TYPE,
  TENANT_REVIEW_WORKFLOW_TYPE,
} from '../core/campaigns/contract.js';
import { ACTION_WORKFLOW_TYPE } from '../core/actions/contract.js';
import { SWEEP_WORKFLOW_TYPE } from '../core/directory/sweep.js';
import { GRANT_WORKFLOW_TYPE } from '../core/grants/contract.js';
import { HR_IMPORT_WORKFLOW_TYPE, PERSON_WORKFLOW_TYPE } from '../core/lifecycle/contract.js';
import { POLICY_CHANGE_WORKFLOW_TYPE } from '../core/tenancy/contract.js';
import { installTemporalRuntime } from '../worker/temporal-runtime.js';
import { testDataConverter, testLogger } from './support/stack.js';
import { TEMPLATE_APPLY_WORKFLOW_TYPE } from '../core/templates/contract.js';
import { TEMPLATE_ROLLOUT_WORKFLOW_TYPE } from '../core/templates/rollouts.js';
import { DRIFT_CHECK_WORKFLOW_TYPE, DRIFT_SCAN_WORKFLOW_TYPE } from '../core/templates/drift.js';
import { TENANT_CLONE_WORKFLOW_TYPE } from '../core/templates/clone.js';
import { ROLLOUT_ROLLBACK_WORKFLOW_TYPE, TEMPLATE_ROLLBACK_WORKFLOW_TYPE } from '../core/templates/rollback.js';
import { HISTORIES_DIR, HISTORIES_MANIFEST } from './support/workflow-harness.js';

/**
 * Recorded histories of real runs, replayed against today's workflow code: a change that would
 * break workflows already running in production (non-determinism) fails here. Refresh them with
 * `RECORD_HISTORIES=1 npx vitest run workflow.test` when a change is meant to be incompatible
 * (and version it with patched() for the runs in flight). manifest.json names every fixture per
 * workflow type, so a fixture that goes missing fails the build instead of shrinking the check.
 */
type Manifest = Record<string, string[]>;

let manifest: Manifest;
/** Every fixture name the manifest lists, sorted. */
let expected: string[];
/** The fixture names the folder holds, sorted. */
let present: string[];
let histories: { workflowId: string; workflowType: string; history: temporal.api.history.v1.History }[];

beforeAll(async () => {
  manifest = JSON.parse(await readFile(HISTORIES_MANIFEST, 'utf8')) as Manifest;
  expected = Object.values(manifest).flat().sort();
  present = (await readdir(HISTORIES_DIR))
    .filter((f) => f.endsWith('.json') && path.join(HISTORIES_DIR, f) !== HISTORIES_MANIFEST)
    .map((f) => path.basename(f, '.json'))
    .sort();
  const { History } = temporal.api.history.v1;
  // A listed fixture that is missing is not loaded here: the tests below name it.
  histories = await Promise.all(
    expected
      .filter((name) => present.includes(name))
      .map(async (name) => {
        const history = History.fromObject(JSON.parse(await readFile(path.join(HISTORIES_DIR, `${name}.json`), 'utf8')));
        const workflowType = history.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? '(no start event)';
        return { workflowId: name, workflowType, history };
      }),
  );
});

describe('replay of recorded workflow histories', () => {
  it('the manifest covers the grant, person, HR import, policy-change, campaign (run, review, scheduled run), remote-action, sweep, template-apply, template-rollout, template-drift, template-rollback (tenant and rollout) and tenant-clone workflows, and the fixture folder holds exactly its files', () => {
    expect(Object.keys(manifest).sort()).toEqual(
      [
        GRANT_WORKFLOW_TYPE,
        PERSON_WORKFLOW_TYPE,
        HR_IMPORT_WORKFLOW_TYPE,
        POLICY_CHANGE_WORKFLOW_TYPE,
        CAMPAIGN_RUN_WORKFLOW_TYPE,
        TENANT_REVIEW_WORKFLOW_TYPE,
        SCHEDULED_CAMPAIGN_RUN_WORKFLOW_TYPE,
        ACTION_WORKFLOW_TYPE,
        SWEEP_WORKFLOW_TYPE,
        TEMPLATE_APPLY_WORKFLOW_TYPE,
        TEMPLATE_ROLLOUT_WORKFLOW_TYPE,
        DRIFT_SCAN_WORKFLOW_TYPE,
        DRIFT_CHECK_WORKFLOW_TYPE,
        TENANT_CLONE_WORKFLOW_TYPE,
        TEMPLATE_ROLLBACK_WORKFLOW_TYPE,
        ROLLOUT_ROLLBACK_WORKFLOW_TYPE,
      ].sort(),
    );
    for (const names of Object.values(manifest)) expect(names.length).toBeGreaterThan(0);
    expect(present).toEqual(expected);
  });

  it('each fixture records a run of the workflow type the manifest files it under', () => {
    const filedUnder = new Map(Object.entries(manifest).flatMap(([type, names]) => names.map((name) => [name, type] as const)));
    expect(histories.map((h) => [h.workflowId, h.workflowType])).toEqual(
      histories.map((h) => [h.workflowId, filedUnder.get(h.workflowId)]),
    );
  });

  it('holds fixtures recorded with encrypted payloads and older ones in plaintext, so replay reads both', () => {
    const inputEncoding = (history: temporal.api.history.v1.History) =>
      Buffer.from(history.events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.metadata?.encoding ?? []).toString();
    expect([...new Set(histories.map((h) => inputEncoding(h.history)))].sort()).toEqual(['binary/encrypted', 'json/plain']);
  });

  it('replays every listed fixture against today’s workflow bundle without a determinism error', async () => {
    installTemporalRuntime(testLogger);
    const replayed: string[] = [];
    const failures: string[] = [];
    // The tests' data converter: it reads fixtures recorded with encrypted payloads and passes the
    // older, plaintext ones through, as a production worker does with histories from before encryption.
    const options = { workflowBundle: { codePath: inject('workflowBundlePath') }, dataConverter: testDataConverter };
    for await (const result of Worker.runReplayHistories(options, histories)) {
      replayed.push(result.workflowId);
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed.sort()).toEqual(expected);
  });
});
