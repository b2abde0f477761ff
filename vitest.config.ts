import os from 'node:os';
import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './tests/setup/sequencer.js';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/setup/global.ts'],
    // Checks the audit chain's fast canonical JSON against the RFC 8785 library on every test event.
    setupFiles: ['tests/setup/canonical-check.ts'],
    // The Temporal worker's native bridge does not mix with worker threads.
    pool: 'forks',
    fileParallelism: true,
    sequence: { sequencer: LongestFirstSequencer },
    // Most files spend more time waiting (timers, task queues, child processes) than computing:
    // on 2 cores three forks kept about 1.4 cores busy. Two per core, at least 3, at most 6.
    maxWorkers: Number(process.env.TEST_MAX_WORKERS ?? Math.min(6, Math.max(3, os.availableParallelism() * 2))),
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
