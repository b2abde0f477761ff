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
    maxWorkers: Number(process.env.TEST_MAX_WORKERS ?? 3),
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
