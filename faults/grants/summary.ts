import os from 'node:os';
import { quantile } from '../../bench/stats.js';
import type { LateCauses } from '../support/history.js';
import type { WorkerSupervisor } from '../support/worker-supervisor.js';
import * as invariant from './invariants.js';
import type { Observations } from './observations.js';

/** The summary line; its keys are what CI and earlier runs compare. */
export function grantsFaultsSummary(
  obs: Observations,
  run: {
    started: number;
    planned: number;
    supervisor: WorkerSupervisor;
    postgresRestarts: number;
    accessSamplesFailed: number;
    lateCauses: LateCauses | null;
    stillRunning: number;
    workflowsNotCompleted: number;
    driverErrors: number;
    driverRetries: number;
    runStart: number;
    loadAtStart: number;
  },
) {
  return {
    faults: 'grants',
    grants: run.started,
    planned: run.planned,
    workerKills: run.supervisor.kills,
    workerUnexpectedExits: run.supervisor.unexpectedExits,
    workerStartupP50Ms: quantile(
      [...run.supervisor.startupMs].sort((a, b) => a - b),
      0.5,
    ),
    postgresRestarts: run.postgresRestarts,
    grantsActivePastExpiry: invariant.grantsActivePastExpiry(obs),
    accessPastExpiry: invariant.accessPastExpiry(obs),
    accessPastRevoke: invariant.accessPastRevoke(obs),
    maxAccessPastDeadlineMs: invariant.maxAccessPastDeadlineMs(obs),
    accessSamples: obs.samples.length,
    accessSamplesFailed: run.accessSamplesFailed,
    verifiedRevocationLate: invariant.verifiedRevocationLate(obs),
    auditMissing: invariant.auditMissing(obs),
    auditDoubled: invariant.auditDoubled(obs),
    chainsFailingVerification: invariant.chainsFailingVerification(obs),
    maxExpiryLagMs: invariant.expiryLags(obs).at(-1) ?? null,
    expiryLagP50Ms: invariant.expiryLagP50Ms(obs),
    expiryLagP99Ms: invariant.expiryLagP99Ms(obs),
    maxRemovalLagMs: invariant.removalLags(obs).at(-1) ?? null,
    lateGrants: invariant.verifiedRevocationLate(obs),
    lateCauses: run.lateCauses,
    stillOpenPastDeadline: invariant.stillOpenPastDeadline(obs),
    activatedAfterEnd: invariant.activatedAfterEnd(obs),
    orphanMemberships: invariant.orphanMemberships(obs),
    auditUnexpected: invariant.auditUnexpected(obs),
    auditOutOfOrder: invariant.auditOutOfOrder(obs),
    auditCountMismatch: invariant.auditCountMismatch(obs),
    chains: obs.chains.length,
    eventsVerified: invariant.eventsVerified(obs),
    unfinished: Math.max(invariant.unfinished(obs), run.stillRunning),
    workflowsNotCompleted: run.workflowsNotCompleted,
    outcomes: invariant.outcomes(obs),
    driverErrors: run.driverErrors,
    driverRetries: run.driverRetries,
    durationSec: Math.round((Date.now() - run.runStart) / 1000),
    loadAverage1m: { start: Number(run.loadAtStart.toFixed(2)), end: Number(os.loadavg()[0]!.toFixed(2)) },
    cpus: os.cpus().length,
  };
}

/**
 * The three promises, and what makes the run itself valid (every grant driven and finished).
 * Extra or miscounted audit events are "doubled/lost" seen another way; order is reported only.
 */
export function held(summary: ReturnType<typeof grantsFaultsSummary>): boolean {
  return (
    summary.grantsActivePastExpiry === 0 &&
    summary.auditMissing === 0 &&
    summary.auditDoubled === 0 &&
    summary.chainsFailingVerification === 0 &&
    summary.auditUnexpected === 0 &&
    summary.auditCountMismatch === 0 &&
    summary.unfinished === 0 &&
    summary.workflowsNotCompleted === 0 &&
    summary.grants === summary.planned
  );
}
