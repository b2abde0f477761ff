import os from 'node:os';
import { quantile } from '../../bench/stats.js';
import type { LateCauses } from '../support/history.js';
import type { TemporalRestart } from '../support/inject.js';
import type { WorkerSupervisor } from '../support/worker-supervisor.js';
import * as invariant from './invariants.js';
import type { Observations } from './observations.js';

/**
 * The counters that must be 0 (docs/benchmarks-and-faults.md defines each): the three promises
 * (no access past its end, no audit event lost or doubled, every chain verifies) and what makes
 * the run itself valid (every grant and workflow finished, the worker and client rode through
 * every Temporal restart).
 */
export const MUST_BE_ZERO = [
  'grantsActivePastExpiry',
  'accessPastExpiry',
  'accessPastRevoke',
  'activatedAfterEnd',
  'auditMissing',
  'auditDoubled',
  'auditUnexpected',
  'auditOutOfOrder',
  'auditCountMismatch',
  'chainsFailingVerification',
  'stillOpenPastDeadline',
  'orphanMemberships',
  'unfinished',
  'workflowsNotCompleted',
  'temporalReconnectFailures',
] as const;

/** The summary line; its keys are what CI and earlier runs compare. */
export function grantsFaultsSummary(
  obs: Observations,
  run: {
    started: number;
    planned: number;
    supervisor: WorkerSupervisor;
    postgresRestarts: number;
    temporalRestarts: TemporalRestart[];
    /** The fault counts the run must reach (the options asked for). */
    minimums: {
      workerKills: number;
      postgresRestarts: number;
      temporalRestarts: number;
      accessGiven: number;
      revokesOfGivenAccess: number;
    };
    accessSamplesFailed: number;
    lateCauses: LateCauses | null;
    stillRunning: number;
    workflowsNotCompleted: number;
    driverErrors: number;
    driverRetries: number;
    runStart: number;
    loadAtStart: number;
    /** The tenants' directory: `builtin`, `ldap` or `scim`. */
    target: string;
    /** The sweeper's own worker, on a target that needs one. */
    sweeper: {
      everySeconds: number;
      unexpectedExits: number;
      schedules: { taken: number; skippedOverlap: number; missedCatchupWindow: number; missing: number } | null;
    } | null;
  },
) {
  const reconnects = run.temporalRestarts;
  const maxOf = (values: (number | null)[]) => (values.length ? Math.max(...values.map((v) => v ?? Infinity)) : null);
  const summary = {
    faults: 'grants',
    target: run.target,
    grants: run.started,
    planned: run.planned,
    workerKills: run.supervisor.kills,
    workerUnexpectedExits: run.supervisor.unexpectedExits,
    workerStartupP50Ms: quantile(
      [...run.supervisor.startupMs].sort((a, b) => a - b),
      0.5,
    ),
    postgresRestarts: run.postgresRestarts,
    temporalRestarts: reconnects.length,
    temporalRestartSignals: reconnects.map((r) => r.signal),
    temporalClientReconnectMaxMs: maxOf(reconnects.map((r) => r.clientMs)),
    temporalWorkerReconnectMaxMs: maxOf(reconnects.map((r) => r.workerMs)),
    temporalReconnectFailures: reconnects.filter((r) => !r.rodeThrough || r.clientMs === null).length,
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
    // Removals the sweeper made (by reason) when the grant's own workflow had not yet, and refused ones.
    ...(run.sweeper
      ? {
          sweepEverySeconds: run.sweeper.everySeconds,
          sweeperUnexpectedExits: run.sweeper.unexpectedExits,
          sweepRuns: run.sweeper.schedules,
          swept: obs.sweeps,
        }
      : {}),
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
    accessGiven: invariant.accessGiven(obs),
    revokesOfGivenAccess: invariant.revokesOfGivenAccess(obs),
    driverErrors: run.driverErrors,
    driverRetries: run.driverRetries,
    durationSec: Math.round((Date.now() - run.runStart) / 1000),
    loadAverage1m: { start: Number(run.loadAtStart.toFixed(2)), end: Number(os.loadavg()[0]!.toFixed(2)) },
    cpus: os.cpus().length,
  };
  const short = [
    summary.grants < summary.planned && `grants ${summary.grants} < ${summary.planned}`,
    summary.workerKills < run.minimums.workerKills && `workerKills ${summary.workerKills} < ${run.minimums.workerKills}`,
    summary.postgresRestarts < run.minimums.postgresRestarts &&
      `postgresRestarts ${summary.postgresRestarts} < ${run.minimums.postgresRestarts}`,
    summary.temporalRestarts < run.minimums.temporalRestarts &&
      `temporalRestarts ${summary.temporalRestarts} < ${run.minimums.temporalRestarts}`,
    // A machine too busy to activate grants inside their windows makes the access counters 0 by
    // default: such a run proves nothing and does not pass.
    summary.accessGiven < run.minimums.accessGiven && `accessGiven ${summary.accessGiven} < ${run.minimums.accessGiven}`,
    summary.revokesOfGivenAccess < run.minimums.revokesOfGivenAccess &&
      `revokesOfGivenAccess ${summary.revokesOfGivenAccess} < ${run.minimums.revokesOfGivenAccess}`,
  ].filter((reason) => reason !== false);
  /** Every counter that is not 0 and every fault count short of its minimum: the run passes only when empty. */
  const violations = [...MUST_BE_ZERO.filter((key) => summary[key] !== 0), ...short];
  return { ...summary, violations };
}
