import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { installTemporalRuntime } from '../worker/temporal-runtime.js';
import { testLogger } from './support/stack.js';

/**
 * Recorded histories of real runs, replayed against today's workflow code: a change that would
 * break grants already running in production (non-determinism) fails here. Refresh them with
 * `RECORD_HISTORIES=1 npx vitest run workflow.test` when a change is meant to be incompatible
 * (and version it with patched() for the runs in flight).
 */
const DIR = 'tests/fixtures/histories';

describe('replay of recorded workflow histories', () => {
  it('replays every recorded grant history without a determinism error', async () => {
    installTemporalRuntime(testLogger);
    const files = (await readdir(DIR)).filter((f) => f.endsWith('.json')).sort();
    expect(files.length).toBeGreaterThanOrEqual(8);
    const histories = await Promise.all(
      files.map(async (file) => ({
        workflowId: path.basename(file, '.json'),
        history: temporal.api.history.v1.History.fromObject(JSON.parse(await readFile(path.join(DIR, file), 'utf8'))),
      })),
    );
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') } }, histories)) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
  });
});
