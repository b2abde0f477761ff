import { parseArgs } from 'node:util';
import { positiveInt, UsageError } from '../support.js';
import { nonNegativeNumber } from '../grants/options.js';

export const USAGE =
  'usage: npm run bench -- isolation [--burst N] [--burst-spread SECONDS] [--tenants N] [--concurrency N] ' +
  '[--items N] [--campaign-tenants N] [--lead SECONDS] [--no-quiet-after] [--pool-max N]';

export type IsolationBenchOptions = ReturnType<typeof parseIsolationBenchOptions>;

/** A campaign scope names at most this many tenants (CampaignScope). */
const MAX_SCOPE_TENANTS = 1000;

export function parseIsolationBenchOptions(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        burst: { type: 'string', default: '500' },
        'burst-spread': { type: 'string', default: '5' },
        tenants: { type: 'string', default: '8' },
        concurrency: { type: 'string', default: '20' },
        items: { type: 'string', default: '100000' },
        'campaign-tenants': { type: 'string', default: '1000' },
        lead: { type: 'string', default: '15' },
        'no-quiet-after': { type: 'boolean', default: false },
        'pool-max': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const items = positiveInt('items', values.items)!;
  const campaignTenants = positiveInt('campaign-tenants', values['campaign-tenants'])!;
  if (campaignTenants > MAX_SCOPE_TENANTS)
    throw new UsageError(`--campaign-tenants is at most ${MAX_SCOPE_TENANTS} (a campaign scope's list)`);
  if (items < campaignTenants) throw new UsageError(`--items (${items}) must be at least --campaign-tenants (${campaignTenants})`);
  return {
    /** Grants in each burst (quiet, mixed, quiet again). */
    burst: positiveInt('burst', values.burst)!,
    burstSpreadSeconds: nonNegativeNumber('burst-spread', values['burst-spread']),
    /** The grants' tenants. */
    tenants: positiveInt('tenants', values.tenants)!,
    /** Grant requests (each approved at once) in flight. */
    concurrency: positiveInt('concurrency', values.concurrency)!,
    /** The campaign's items in all, spread evenly over its tenants. */
    items,
    campaignTenants,
    itemsPerTenant: Math.ceil(items / campaignTenants),
    /** Seconds of materialisation before the burst's first expiry. */
    leadSeconds: nonNegativeNumber('lead', values.lead),
    /** A second quiet burst after the mixed one, to show how much the machine's own load moved meanwhile. */
    quietAfter: !values['no-quiet-after'],
    poolMax: positiveInt('pool-max', values['pool-max']),
  };
}
