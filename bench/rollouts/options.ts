import { parseArgs } from 'node:util';
import { MAX_ROLLOUT_WINDOW } from '../../core/templates/rollouts.js';
import { positiveInt, UsageError } from '../support.js';

export const USAGE = 'usage: npm run bench -- rollouts [--tenants N] [--window N] [--halt-tenants N] [--max-failures N] [--pool-max N]';

export type RolloutsBenchOptions = ReturnType<typeof parseRolloutsBenchOptions>;

export function parseRolloutsBenchOptions(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        tenants: { type: 'string', default: '500' },
        window: { type: 'string', default: '20' },
        'halt-tenants': { type: 'string', default: '40' },
        'max-failures': { type: 'string', default: '2' },
        'pool-max': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const window = positiveInt('window', values.window)!;
  if (window > MAX_ROLLOUT_WINDOW) throw new UsageError(`--window is at most ${MAX_ROLLOUT_WINDOW} (a rollout's window)`);
  const haltTenants = positiveInt('halt-tenants', values['halt-tenants'])!;
  const maxFailures = Number(values['max-failures']);
  if (!Number.isSafeInteger(maxFailures) || maxFailures < 0)
    throw new UsageError(`--max-failures must be 0 or more, got ${values['max-failures']}`);
  if (haltTenants <= maxFailures) throw new UsageError('--halt-tenants must be more than --max-failures, or nothing halts');
  return {
    /** Tenants of each side's rollout (real and floor) and of the drift scan. */
    tenants: positiveInt('tenants', values.tenants)!,
    window,
    /** Tenants of the halting rollout: every one's target refuses the settings. */
    haltTenants,
    maxFailures,
    poolMax: positiveInt('pool-max', values['pool-max']),
  };
}
