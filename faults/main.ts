/**
 * `npm run faults -- <name> [options]`: runs one fault-injection scenario against a stack it owns.
 * Progress goes to stderr; the last stdout line is a JSON summary, and the exit code is 1 when an
 * invariant the scenario checks does not hold.
 */
const SCENARIOS: Record<string, { describe: string; load: () => Promise<(args: string[]) => Promise<boolean>> }> = {
  campaigns: {
    describe:
      'a campaign over many tenants while the worker is SIGKILLed and PostgreSQL restarted during materialisation and during remediation, ' +
      'then one remediating on decision over other tenants under the same faults; ' +
      'checks items lost or doubled, revokes applied once and proven, keeps untouched, reports and chains ' +
      '[--tenants N] [--items N] [--on-decision-tenants N] [--timeout S] [--kill-every MIN-MAX] [--kill-growth F] [--postgres-restarts N]',
    load: async () => (await import('./campaigns/run.js')).runCampaignsFaults,
  },
  grants: {
    describe:
      'grant lifecycles while the worker is SIGKILLed and PostgreSQL and Temporal restarted; checks expiry, revokes, audit and chains ' +
      '[--grants N] [--launch-seconds S] [--timeout S] [--kill-every MIN-MAX] [--min-worker-kills N] [--postgres-restarts N] [--temporal-restarts N]',
    load: async () => (await import('./grants/run.js')).runGrantsFaults,
  },
  policy: {
    describe:
      'tenant policy changes proposed, approved (quorum 1 and 2), denied, withdrawn or conflicted while the worker is SIGKILLed and ' +
      'PostgreSQL restarted; checks applied-once, quorum, versions, audit and chains ' +
      '[--changes N] [--launch-seconds S] [--timeout S] [--kill-every MIN-MAX] [--postgres-restarts N]',
    load: async () => (await import('./policy/run.js')).runPolicyFaults,
  },
  rollouts: {
    describe:
      'a template rollout over many tenants while the worker is SIGKILLed and PostgreSQL restarted during apply, then the whole rollout ' +
      'rolled back under the same faults; checks applied twice, left half-applied, rollbacks not exact, and chains ' +
      '[--tenants N] [--window N] [--timeout S] [--kill-every MIN-MAX] [--kill-growth F] [--postgres-restarts N]',
    load: async () => (await import('./rollouts/run.js')).runRolloutsFaults,
  },
};

const [name, ...args] = process.argv.slice(2);
const scenario = name ? SCENARIOS[name] : undefined;
if (!scenario) {
  const list = Object.entries(SCENARIOS).map(([key, s]) => `  ${key.padEnd(10)} ${s.describe}`);
  process.stderr.write(`usage: npm run faults -- <name> [options]\n${list.join('\n')}\n`);
  process.exit(2);
}
const held = await (await scenario.load())(args);
// Clients, pools and timers are closed by the scenario; exit explicitly so a stray native
// handle cannot keep a finished run alive.
process.exit(held ? 0 : 1);
