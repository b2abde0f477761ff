import { parseArgs } from 'node:util';
import { positiveInt, UsageError } from '../support.js';

export const USAGE =
  'usage: npm run bench -- campaigns [--tenants N] [--items N] [--revokes N] [--call-size N] [--concurrency N] [--pool-max N]';

export type CampaignsBenchOptions = ReturnType<typeof parseCampaignsBenchOptions>;

/** A definition's scope names at most this many tenants (CampaignScope). */
const MAX_SCOPE_TENANTS = 1000;

export function parseCampaignsBenchOptions(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        tenants: { type: 'string', default: '1000' },
        items: { type: 'string', default: '100' },
        revokes: { type: 'string', default: '10000' },
        'call-size': { type: 'string', default: '500' },
        concurrency: { type: 'string', default: '4' },
        'pool-max': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const tenants = positiveInt('tenants', values.tenants)!;
  if (tenants > MAX_SCOPE_TENANTS) throw new UsageError(`--tenants is at most ${MAX_SCOPE_TENANTS} (a campaign scope's list)`);
  const callSize = positiveInt('call-size', values['call-size'])!;
  if (callSize > 1000) throw new UsageError('--call-size is at most 1000 (the bulk decision limit)');
  const revokes = positiveInt('revokes', values.revokes)!;
  return {
    tenants,
    items: positiveInt('items', values.items)!,
    revokes,
    callSize,
    /** Remediation tenants per side: one decision call of `callSize` revokes each (the last may be smaller). */
    revokeTenants: Math.ceil(revokes / callSize),
    /** Bulk decision calls in flight. */
    concurrency: positiveInt('concurrency', values.concurrency)!,
    poolMax: positiveInt('pool-max', values['pool-max']),
  };
}
