/**
 * Imported first by cli/main.ts: tracing must be running before the stack starts. Off unless the
 * OTEL_* variables ask for traces (runtime/tracing.ts); then the SDK is loaded, otherwise nothing.
 */
import { existsSync } from 'node:fs';
import { startTracing, tracingRequested } from '../runtime/tracing.js';

// The OTEL_* variables may sit in .env, which config() reads later; a bad file is reported there.
if (existsSync('.env')) {
  try {
    process.loadEnvFile('.env');
  } catch {
    // config() names the problem and exits.
  }
}
if (tracingRequested(process.env)) await startTracing();
