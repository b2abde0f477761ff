import { describe, expect, inject, it } from 'vitest';
import { runTsEntry, summaryLine } from '../support/cli.js';

/**
 * `npm run bench -- campaigns` and `npm run faults -- campaigns` at a tiny size, so CI proves they
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

describe('campaigns benchmark and fault run', () => {
  it('the benchmark materialises every item, decides through the API, applies every revoke on both sides and prints its figures', async () => {
    const result = await runTsEntry(
      'bench/main.ts',
      ['campaigns', '--tenants', '3', '--items', '5', '--revokes', '20', '--call-size', '10', '--concurrency', '2'],
      env(),
    );
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    const summary = summaryLine(result);
    expect(summary).toMatchObject({ bench: 'campaigns', tenants: 3, items: 15, callSize: 10, revokes: 20, problems: [] });
    for (const key of [
      'materialiseSeconds',
      'bulkDecisionsPerSec',
      'revocationsPerSec',
      'floorRevocationsPerSec',
      'ratio',
      'maxHistoryEvents',
      'workerRssMb',
    ])
      expect(summary[key], key).toBeGreaterThan(0);
  }, 600_000);

  it('the fault run kills the worker and restarts PostgreSQL while materialising, remediating at close and remediating on decision, and every invariant holds', async () => {
    const result = await runTsEntry(
      'faults/main.ts',
      [
        'campaigns',
        '--tenants',
        '3',
        '--items',
        '10',
        '--on-decision-tenants',
        '2',
        '--kill-every',
        '2-4',
        '--kill-growth',
        '1.5',
        '--timeout',
        '800',
      ],
      env(),
    );
    const summary = summaryLine(result);
    expect(result.code, `${JSON.stringify(summary)}\n${result.stderr.slice(-3000)}`).toBe(0);
    expect(summary).toMatchObject({
      scenario: 'campaigns',
      // 3 × 10 at close and 2 × 10 on decision; every other item revoked.
      items: 50,
      revokes: 25,
      onDecisionItems: 20,
      onDecisionRevokes: 10,
      onDecisionResults: { applied_verified: 10, kept: 10 },
      itemsLost: 0,
      itemsDoubled: 0,
      revokesNotApplied: 0,
      revokesAppliedTwice: 0,
      reportMismatches: 0,
      chainsFailingVerification: 0,
      violations: [],
      faultsMissed: [],
    });
    for (const key of [
      'workerKillsDuringMaterialisation',
      'postgresRestartsDuringMaterialisation',
      'workerKillsDuringRemediation',
      'postgresRestartsDuringRemediation',
      'workerKillsDuringOnDecision',
      'postgresRestartsDuringOnDecision',
    ])
      expect(summary[key], key).toBeGreaterThanOrEqual(1);
  }, 900_000);
});
