import { describe, expect, inject, it } from 'vitest';
import { runTsEntry, summaryLine } from '../support/cli.js';

/**
 * `npm run bench -- rollouts` and `npm run faults -- rollouts` at a tiny size, so CI proves they
 * run end to end and say what they measured (the figures themselves are not judged here: no
 * timing is asserted). The benchmark uses the test run's PostgreSQL and Temporal; the fault run
 * owns its PostgreSQL (it restarts it) and uses the test run's Temporal.
 */
const env = () => ({
  DATABASE_URL: inject('adminDatabaseUrl'),
  TEMPORAL_ADDRESS: inject('temporalAddress'),
  TEMPORAL_NAMESPACE: inject('temporalNamespace'),
  ...(process.env.TEMPORAL_CLI_PATH ? { TEMPORAL_CLI_PATH: process.env.TEMPORAL_CLI_PATH } : {}),
});

describe('rollouts benchmark and fault run', () => {
  it('the benchmark rolls out to every tenant on both sides, scans them for drift, starts nobody after a halt and prints its figures', async () => {
    const result = await runTsEntry(
      'bench/main.ts',
      ['rollouts', '--tenants', '6', '--window', '3', '--halt-tenants', '8', '--max-failures', '1'],
      env(),
    );
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    const summary = summaryLine(result);
    expect(summary).toMatchObject({
      bench: 'rollouts',
      tenants: 6,
      haltTenants: 8,
      driftChecked: 6,
      tenantsStartedAfterHalt: 0,
      problems: [],
    });
    // The halt came on the second failure with at most a window's worth started: never all 8.
    expect(summary.startedAtHalt).toBeGreaterThanOrEqual(2);
    expect(summary.startedAtHalt).toBeLessThan(8);
    expect(summary.childrenStartedInTemporal).toBe(summary.startedAtHalt);
    for (const key of ['tenantsPerSec', 'floorTenantsPerSec', 'ratio', 'driftScanSeconds', 'maxHistoryEvents', 'workerRssMb'])
      expect(summary[key], key).toBeGreaterThan(0);
  }, 600_000);

  it('the fault run kills the worker and restarts PostgreSQL while applying and while rolling back, and every invariant holds', async () => {
    const result = await runTsEntry(
      'faults/main.ts',
      ['rollouts', '--tenants', '5', '--window', '2', '--kill-every', '2-4', '--kill-growth', '1.5', '--timeout', '800'],
      env(),
    );
    const summary = summaryLine(result);
    expect(result.code, `${JSON.stringify(summary)}\n${result.stderr.slice(-3000)}`).toBe(0);
    expect(summary).toMatchObject({
      scenario: 'rollouts',
      tenants: 5,
      applyStatuses: { applied: 5 },
      rollbackStatuses: { rolled_back: 5 },
      policyVersionsWritten: 5,
      policyVersionsRestored: 5,
      tenantsAppliedTwice: 0,
      tenantsLeftHalfApplied: 0,
      rollbacksNotExact: 0,
      chainsFailingVerification: 0,
      violations: [],
      faultsMissed: [],
    });
    for (const key of [
      'workerKillsDuringApply',
      'postgresRestartsDuringApply',
      'workerKillsDuringRollback',
      'postgresRestartsDuringRollback',
    ])
      expect(summary[key], key).toBeGreaterThanOrEqual(1);
  }, 900_000);
});
