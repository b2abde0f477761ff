/**
 * `npm run bench -- <name> [options]`: runs one benchmark; its last stdout line is a JSON summary
 * (progress goes to stderr), so CI can keep the line and compare runs.
 */
const BENCHES: Record<string, { describe: string; load: () => Promise<(args: string[]) => Promise<void>> }> = {
  api: {
    describe:
      'HTTP p50/p99 per route at a steady rate and max req/s, against /healthz as the floor, API and worker in processes of their own [--rate N] [--seconds N] [--max-seconds N] [--connections N] [--routes a,b,…] [--cache-seconds N]',
    load: async () => (await import('./api/run.js')).runApiBench,
  },
  audit: {
    describe: 'audit append throughput vs a plain-INSERT floor, and chain verification speed [--events N] [--tenants N] [--concurrency N]',
    load: async () => (await import('./audit.js')).runAuditBench,
  },
  campaigns: {
    describe:
      'materialise 1,000 tenants × 100 review items, bulk decisions/s through the API, remediation revocations/s vs a no-op target, max history, worker RSS [--tenants N] [--items N] [--revokes N] [--call-size N] [--concurrency N]',
    load: async () => (await import('./campaigns/run.js')).runCampaignsBench,
  },
  grants: {
    describe: 'grant lifecycles per second vs the same workflow with no-op activities, expiry lag p50/p99, worker RSS [--grants N]',
    load: async () => (await import('./grants/run.js')).runGrantsBench,
  },
  isolation: {
    describe:
      'grant expiry lag p50/p99 while a 100,000-item campaign materialises on the same worker, against the same burst on a quiet one [--burst N] [--items N] [--campaign-tenants N] [--lead SECONDS]',
    load: async () => (await import('./isolation/run.js')).runIsolationBench,
  },
  lifecycle: {
    describe:
      'bulk joiners then leavers (HR events/s) vs the same workflow with no-op activities, leaver latency p50/p99, residual entitlements [--people N] [--tenants N] [--concurrency N]',
    load: async () => (await import('./lifecycle/run.js')).runLifecycleBench,
  },
  policy: {
    describe:
      'tenant policy changes (propose → approve → applied) per second through the use cases vs the same workflow with no-op activities, approve p50/p99 [--changes N] [--tenants N] [--concurrency N]',
    load: async () => (await import('./policy/run.js')).runPolicyBench,
  },
  startup: {
    describe: 'how long `npm start` takes to be ready on a fresh data folder, then on the same folder again (warm) [--warm N]',
    load: async () => (await import('./startup.js')).runStartupBench,
  },
  rollouts: {
    describe:
      'a template rollout to 500 tenants (tenants/s) vs the same workflows on a no-op target, tenants started after an error-budget halt (must be 0), a drift scan over the applied tenants, max history, worker RSS [--tenants N] [--window N] [--halt-tenants N] [--max-failures N]',
    load: async () => (await import('./rollouts/run.js')).runRolloutsBench,
  },
};

const [name, ...args] = process.argv.slice(2);
const bench = name ? BENCHES[name] : undefined;
if (!bench) {
  const list = Object.entries(BENCHES).map(([key, b]) => `  ${key.padEnd(10)} ${b.describe}`);
  process.stderr.write(`usage: npm run bench -- <name> [options]\n${list.join('\n')}\n`);
  process.exit(2);
}
await (
  await bench.load()
)(args);
