import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { cpuMeter } from '../cpu.js';
import { benchRun, optionsOrUsage, positiveInt, UsageError } from '../support.js';
import { grantBody, startApiBenchStack, type ApiBenchStack } from './stack.js';

/**
 * `npm run bench -- api`: HTTP latency and throughput of the real API (its own process, with the
 * worker in another, on a scratch database and a Temporal dev server), driven by autocannon from
 * this process. Each route runs at a steady rate (`--rate` req/s for `--seconds`), then at the
 * highest rate `--connections` connections reach (for `--max-seconds`). The floor is `/healthz`
 * (no authentication, no database) measured the same way in the same run; ratios are to it.
 * Every answer must be 2xx: anything else counts in `errors`.
 */

const USAGE =
  'usage: npm run bench -- api [--rate N] [--seconds N] [--max-seconds N] [--connections N] [--routes a,b,…] [--cache-seconds N] [--cpu-prof DIR] [--floor-once]';
const progress = (message: string) => process.stderr.write(`[bench api] ${message}\n`);

const ROUTES = ['floor', 'listGrants', 'readGrant', 'readPerson', 'postGrant', 'approve'] as const;
type RouteName = (typeof ROUTES)[number];
const READS: RouteName[] = ['listGrants', 'readGrant', 'readPerson'];

function parse(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        rate: { type: 'string', default: '100' },
        seconds: { type: 'string', default: '20' },
        'max-seconds': { type: 'string', default: '5' },
        connections: { type: 'string', default: '10' },
        routes: { type: 'string', default: ROUTES.join(',') },
        'cache-seconds': { type: 'string' },
        'cpu-prof': { type: 'string' },
        'floor-once': { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const routes = values.routes.split(',').map((r) => r.trim());
  for (const r of routes)
    if (!ROUTES.includes(r as RouteName)) throw new UsageError(`--routes: unknown route ${r} (known: ${ROUTES.join(', ')})`);
  if (!routes.includes('floor')) throw new UsageError('--routes must include floor: every ratio is to it');
  if (routes.includes('approve') && !routes.includes('postGrant'))
    throw new UsageError('--routes: approve approves the grants postGrant requested');
  return {
    rate: positiveInt('rate', values.rate)!,
    seconds: positiveInt('seconds', values.seconds)!,
    maxSeconds: positiveInt('max-seconds', values['max-seconds'])!,
    connections: positiveInt('connections', values.connections)!,
    routes: ROUTES.filter((r) => routes.includes(r)),
    // AUTH_CACHE_SECONDS for the API process (its default when absent); 0 compares without the cache.
    cacheSeconds: values['cache-seconds'] === '0' ? 0 : positiveInt('cache-seconds', values['cache-seconds']),
    // A V8 CPU profile of the API process, written to this folder when it stops.
    cpuProfDir: values['cpu-prof'],
    // The floor again right before each route, its ratios taken to that (unless --floor-once).
    floorEach: !values['floor-once'],
  };
}
type Options = ReturnType<typeof parse>;

interface Phase {
  p50Ms: number;
  p99Ms: number;
  reqPerSec: number;
  requests: number;
  errors: number;
  /** Non-2xx answers by status, and connection errors/timeouts, when there were any. */
  failures?: Record<string, number>;
  /** CPU ms per request of the API process and of the scratch database's PostgreSQL backends (Linux). */
  apiCpuMsPerRequest?: number;
  postgresCpuMsPerRequest?: number;
}

type Request = autocannon.Request;

/** The requests of one route: a fixed one, or one built per call (a new Idempotency-Key, the next grant to approve). */
function routeRequests(stack: ApiBenchStack, route: RouteName, pending: string[]): Request[] {
  const t = stack.tenantId;
  const auth = (token: string) => ({ authorization: `Bearer ${token}` });
  switch (route) {
    case 'floor':
      return [{ method: 'GET', path: '/healthz' }];
    case 'listGrants':
      return [{ method: 'GET', path: `/v1/tenants/${t}/grants?limit=20`, headers: auth(stack.tokens.operator) }];
    case 'readGrant':
      return [{ method: 'GET', path: `/v1/tenants/${t}/grants/${stack.grantId}`, headers: auth(stack.tokens.operator) }];
    case 'readPerson':
      return [{ method: 'GET', path: `/v1/tenants/${t}/people/${stack.personId}`, headers: auth(stack.tokens.operator) }];
    case 'postGrant': {
      let n = 0;
      return [
        {
          method: 'POST',
          path: `/v1/tenants/${t}/grants`,
          setupRequest: (req) => ({
            ...req,
            headers: { ...auth(stack.tokens.operator), 'content-type': 'application/json', 'idempotency-key': randomUUID() },
            body: JSON.stringify(grantBody(stack.subjects[n++ % stack.subjects.length]!)),
          }),
          onResponse: (status, body) => {
            if (status === 201) pending.push((JSON.parse(body) as { grantId: string }).grantId);
          },
        },
      ];
    }
    case 'approve':
      return [
        {
          method: 'POST',
          path: `/v1/tenants/${t}/grants`,
          setupRequest: (req) => ({
            ...req,
            // Out of grants to approve (should not happen: the run is bounded by them), an unknown id answers 404, an error.
            path: `/v1/tenants/${t}/grants/${pending.shift() ?? randomUUID()}/approve`,
            headers: { ...auth(stack.tokens.approver), 'content-type': 'application/json' },
            body: '{}',
          }),
        },
      ];
  }
}

async function measure(
  stack: ApiBenchStack,
  requests: Request[],
  how: { connections: number; seconds?: number; amount?: number; rate?: number },
  signal: AbortSignal,
): Promise<Phase> {
  let instance: autocannon.Instance | undefined;
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(
      {
        url: stack.url,
        connections: how.connections,
        ...(how.amount !== undefined ? { amount: how.amount } : { duration: how.seconds! }),
        ...(how.rate ? { overallRate: how.rate } : {}),
        requests,
        timeout: 10,
      },
      (error, result) => (error ? reject(error as Error) : resolve(result)),
    );
  });
  const onAbort = () => instance?.stop();
  signal.addEventListener('abort', onAbort, { once: true });
  const result = await finished.finally(() => signal.removeEventListener('abort', onAbort));
  signal.throwIfAborted();
  const requestsDone = result.requests.total;
  const failures = [
    ...Object.entries(result.statusCodeStats ?? {})
      .filter(([code]) => !code.startsWith('2'))
      .map(([code, stat]) => [code, stat.count ?? 0] as const),
    ...(result.errors ? [['connection errors', result.errors] as const] : []),
    ...(result.timeouts ? [['timeouts', result.timeouts] as const] : []),
  ];
  return {
    p50Ms: round(result.latency.p50),
    p99Ms: round(result.latency.p99),
    reqPerSec: round(requestsDone / (result.duration || 1)),
    requests: requestsDone,
    errors: result.errors + result.timeouts + result.non2xx,
    ...(failures.length ? { failures: Object.fromEntries(failures) } : {}),
  };
}

const round = (n: number) => Number(n.toFixed(2));

export async function runApiBench(argv: string[]): Promise<void> {
  const options = optionsOrUsage(() => parse(argv), USAGE);
  if (!options) return;
  const run = benchRun('bench-api', progress);
  await run.complete(async () => {
    const stack = await startApiBenchStack({
      logger: run.logger,
      cleanup: run.cleanup,
      progress,
      signal: run.abort.signal,
      env: options.cacheSeconds === undefined ? {} : { AUTH_CACHE_SECONDS: String(options.cacheSeconds) },
      ...(options.cpuProfDir ? { apiNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${path.resolve(options.cpuProfDir)}`] } : {}),
    });
    const results = await measureRoutes(stack, options, run.abort.signal);
    report(results, options);
  });
}

type RouteResult = {
  steady: Phase;
  max: Phase;
  /**
   * The floor measured right before this route (the same phases), which its ratios are to; the
   * run's first floor with `--floor-once`.
   */
  floor: { steady: Phase; max: Phase };
};
type Results = Partial<Record<RouteName, RouteResult>>;

async function measureRoutes(stack: ApiBenchStack, options: Options, signal: AbortSignal): Promise<Results> {
  const pending: string[] = [];
  const results: Results = {};
  // A floor measured since the last route, which the next route's ratios are taken to.
  let adjacentFloor: { steady: Phase; max: Phase } | undefined;
  for (const route of options.routes) {
    if (route !== 'floor' && options.floorEach && !adjacentFloor) {
      progress(`floor again, right before ${route}`);
      adjacentFloor = await measureRoute(stack, 'floor', options, pending, signal);
    }
    const measured = await measureRoute(stack, route, options, pending, signal);
    if (route === 'floor') adjacentFloor = measured;
    results[route] = { ...measured, floor: route === 'floor' ? measured : (adjacentFloor ?? results.floor!) };
    if (route !== 'floor' && options.floorEach) adjacentFloor = undefined;
    if (!stack.api.alive() || !stack.worker.alive())
      throw new Error(`a process of the stack stopped: ${stack.api.problem()} / ${stack.worker.problem()}`);
  }
  return results;
}

/** One route's steady and max phases, each with the API's and PostgreSQL's CPU per request. */
async function measureRoute(
  stack: ApiBenchStack,
  route: RouteName,
  options: Options,
  pending: string[],
  signal: AbortSignal,
): Promise<{ steady: Phase; max: Phase }> {
  const requests = routeRequests(stack, route, pending);
  const phase = async (how: Parameters<typeof measure>[2]): Promise<Phase> => {
    const cpu = cpuMeter(undefined, stack.database, stack.api.pid);
    const result = await measure(stack, requests, how, signal);
    const spent = cpu();
    const per = (ms: number | undefined) => (ms === undefined || result.requests === 0 ? undefined : round(ms / result.requests));
    const api = per(spent.worker);
    const postgres = per(spent.postgres);
    return {
      ...result,
      ...(api !== undefined ? { apiCpuMsPerRequest: api } : {}),
      ...(postgres !== undefined ? { postgresCpuMsPerRequest: postgres } : {}),
    };
  };
  // A few requests first, so code paths are compiled and connections open before anything counts.
  if (route !== 'approve' && route !== 'postGrant') await measure(stack, requests, { connections: 2, amount: 50 }, signal);
  progress(`${route}: ${options.rate} req/s for ${options.seconds} s`);
  let steady: Phase;
  let max: Phase;
  if (route === 'approve') {
    // Each approval needs a pending grant of its own: the ones postGrant requested, two thirds
    // at the steady rate (at most rate × seconds of them) and the rest as fast as they go.
    const total = pending.length;
    if (total < 3) throw new Error(`postGrant left ${total} grants to approve; approve needs at least 3`);
    const steadyCount = Math.min(Math.floor((total * 2) / 3), options.rate * options.seconds);
    steady = await phase({ connections: options.connections, amount: steadyCount, rate: options.rate });
    progress(`${route}: the other ${pending.length} as fast as ${options.connections} connections go`);
    max = await phase({ connections: options.connections, amount: pending.length });
  } else {
    steady = await phase({ connections: options.connections, seconds: options.seconds, rate: options.rate });
    progress(`${route}: as fast as ${options.connections} connections go, for ${options.maxSeconds} s`);
    max = await phase({ connections: options.connections, seconds: options.maxSeconds });
  }
  if (steady.failures || max.failures) progress(`${route}: failures ${JSON.stringify({ steady: steady.failures, max: max.failures })}`);
  const cpu = (p: Phase) =>
    p.apiCpuMsPerRequest !== undefined ? `, API CPU ${p.apiCpuMsPerRequest} ms/req, PostgreSQL ${p.postgresCpuMsPerRequest} ms/req` : '';
  progress(
    `${route}: steady p50 ${steady.p50Ms} ms p99 ${steady.p99Ms} ms (${steady.reqPerSec} req/s, ${steady.errors} errors${cpu(steady)}); ` +
      `max ${max.reqPerSec} req/s p99 ${max.p99Ms} ms (${max.errors} errors${cpu(max)})`,
  );
  return { steady, max };
}

function report(results: Results, options: Options): void {
  const floor = results.floor!;
  const lines = [
    `route        steady ${options.rate} req/s: p50 ms   p99 ms  ×floor p99 | max req/s  ×floor  p99 ms | API CPU ms/req | errors`,
    ...Object.entries(results).map(([name, r]) =>
      [
        name.padEnd(12),
        String(r.steady.p50Ms).padStart(26),
        String(r.steady.p99Ms).padStart(8),
        (r.steady.p99Ms / r.floor.steady.p99Ms).toFixed(2).padStart(11),
        '|',
        String(r.max.reqPerSec).padStart(9),
        (r.max.reqPerSec / r.floor.max.reqPerSec).toFixed(2).padStart(7),
        String(r.max.p99Ms).padStart(7),
        '|',
        String(r.max.apiCpuMsPerRequest ?? '-').padStart(14),
        '|',
        String(r.steady.errors + r.max.errors + (name === 'floor' ? 0 : r.floor.steady.errors + r.floor.max.errors)).padStart(6),
      ].join(' '),
    ),
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
  const reads = READS.filter((r) => results[r]).map((r) => results[r]!);
  const worstRead = reads.reduce<RouteResult | undefined>(
    (worst, r) => (!worst || r.steady.p99Ms > worst.steady.p99Ms ? r : worst),
    undefined,
  );
  const slowestReadMax = reads.reduce<RouteResult | undefined>(
    (min, r) => (!min || r.max.reqPerSec < min.max.reqPerSec ? r : min),
    undefined,
  );
  // Each read's ratios to the floor measured right before it; the worst of them.
  const readP99Ratio = reads.length ? Math.max(...reads.map((r) => r.steady.p99Ms / r.floor.steady.p99Ms)) : undefined;
  const readMaxRatio = reads.length ? Math.min(...reads.map((r) => r.max.reqPerSec / r.floor.max.reqPerSec)) : undefined;
  const floors = new Set(Object.values(results).map((r) => r.floor));
  const errors = [
    ...floors,
    ...Object.entries(results)
      .filter(([name]) => name !== 'floor')
      .map(([, r]) => r),
  ].reduce((sum, r) => sum + r.steady.errors + r.max.errors, 0);
  const summary = {
    bench: 'api',
    routes: options.routes,
    cacheSeconds: options.cacheSeconds ?? null,
    rate: options.rate,
    seconds: options.seconds,
    connections: options.connections,
    floorEach: options.floorEach,
    floorP50Ms: floor.steady.p50Ms,
    floorP99Ms: floor.steady.p99Ms,
    floorMaxReqPerSec: floor.max.reqPerSec,
    readP99Ms: worstRead?.steady.p99Ms ?? null,
    readP99Ratio: readP99Ratio === undefined ? null : round(readP99Ratio),
    readMaxReqPerSec: slowestReadMax?.max.reqPerSec ?? null,
    readMaxRatio: readMaxRatio === undefined ? null : round(readMaxRatio),
    postGrantP99Ms: results.postGrant?.steady.p99Ms ?? null,
    postGrantMaxReqPerSec: results.postGrant?.max.reqPerSec ?? null,
    approveP99Ms: results.approve?.steady.p99Ms ?? null,
    approveMaxReqPerSec: results.approve?.max.reqPerSec ?? null,
    results,
    errors,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (errors > 0) process.exitCode = 1;
}
