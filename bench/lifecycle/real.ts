import { IMPORT_FAILED_STATUSES, personWorkflowId } from '../../core/lifecycle/contract.js';
import { getHrImport, startHrImport, type LifecycleDeps } from '../../usecases/lifecycle.js';
import { abortable, withTimeout } from '../support.js';
import { byTenant, PHASE_TIMEOUT_MS, type LifecycleBench, type PhaseResult } from './context.js';
import { joinedCount, leftCount, stepTimes } from './measure.js';
import { csvOf, hrEvent, type Person } from './people.js';

/** A phase with no person finishing for this long is reported as stuck. */
const STALL_MS = 90_000;
const POLL_MS = 250;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      reject(signal.reason as Error);
    }
    signal.addEventListener('abort', onAbort, { once: true });
  });

/** One import job per tenant, all at once, as the API's import route starts them; done when every job has completed with every row accepted. */
async function importAll(bench: LifecycleBench, deps: LifecycleDeps, type: 'joiner' | 'leaver', cohort: Person[]): Promise<void> {
  const effectiveAt = new Date().toISOString();
  const lists = byTenant(bench, cohort);
  const importing = async () => {
    const jobs = await Promise.all(
      bench.tenants.map(async (t, i) => {
        const list = lists[i]!;
        if (list.length === 0) return undefined;
        const text = csvOf(list.map((p) => hrEvent('real', type, p, effectiveAt)));
        const job = await startHrImport(
          deps,
          t.ctx,
          t.tenantId,
          { format: 'csv', text },
          {
            maxRows: list.length,
            concurrency: bench.perTenantConcurrency,
          },
        );
        if (type === 'joiner') bench.started.push(...list.map((p) => personWorkflowId(t.tenantId, p.personId)));
        return job;
      }),
    );
    for (const job of jobs) {
      if (!job) continue;
      for (;;) {
        const progress = await getHrImport(deps.pool, job.tenantId, job.importId, { limit: 1, statuses: IMPORT_FAILED_STATUSES });
        if (progress.status === 'completed') {
          if (progress.counts.accepted !== progress.total) {
            throw new Error(
              `the ${type} import accepted ${progress.counts.accepted} of ${progress.total} rows; first failed: ${JSON.stringify(progress.rows[0])}`,
            );
          }
          break;
        }
        await sleep(POLL_MS, bench.abort.signal);
      }
    }
  };
  // Every Temporal call is cancelled on Ctrl-C; a job nobody finishes would be waited for forever, hence the bound.
  const { abort } = bench;
  await bench.client.withAbortSignal(abort.signal, () => abortable(withTimeout(importing(), PHASE_TIMEOUT_MS), abort.signal));
}

/** Waits until `count()` reaches `total`, failing when the worker stops or the count stops moving for STALL_MS. */
async function waitUntil(bench: LifecycleBench, what: string, total: number, count: () => Promise<number>, workerRunning: Promise<void>) {
  let workerEnded: Error | undefined;
  workerRunning.then(
    () => (workerEnded = new Error('the worker stopped')),
    (error: unknown) => (workerEnded = error as Error),
  );
  let last = -1;
  let movedAt = Date.now();
  let reportedAt = Date.now();
  for (;;) {
    if (workerEnded) throw workerEnded;
    const now = Date.now();
    const done = await count();
    if (done >= total) return;
    if (done !== last) {
      last = done;
      movedAt = now;
    } else if (now - movedAt > STALL_MS) {
      throw new Error(`${what}: stuck at ${done} of ${total} for ${STALL_MS / 1000} s`);
    }
    if (now - reportedAt >= 10_000) {
      bench.progress(`  ${what}: ${done} of ${total}`);
      reportedAt = now;
    }
    await sleep(POLL_MS, bench.abort.signal);
  }
}

/** The real side's phases: imports through the API's use case, done when the read model says so. */
export function realSide(bench: LifecycleBench, deps: LifecycleDeps, workerRunning: Promise<void>) {
  return async function realPhase(type: 'joiner' | 'leaver', cohort: Person[]): Promise<PhaseResult> {
    const cpu = bench.meter();
    const start = Date.now();
    await importAll(bench, deps, type, cohort);
    bench.progress(
      `  real: ${cohort.length} ${type} rows imported in ${((Date.now() - start) / 1000).toFixed(1)} s; waiting for every person to be ${type === 'joiner' ? 'active' : 'left'}`,
    );
    const count = type === 'joiner' ? joinedCount(bench, cohort) : leftCount(bench, cohort);
    await waitUntil(bench, `real ${type}s`, cohort.length, count, workerRunning);
    const spent = cpu();
    const { latenciesMs, lastAt } = await stepTimes(bench, type, cohort);
    return { seconds: (lastAt - start) / 1000, latenciesMs, cpu: spent };
  };
}
