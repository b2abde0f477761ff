import { parseArgs } from 'node:util';
import { positiveInt, UsageError } from '../support.js';

export const USAGE = 'usage: npm run bench -- lifecycle [--people N] [--tenants N] [--concurrency N] [--pool-max N]';

export type LifecycleBenchOptions = ReturnType<typeof parseLifecycleBenchOptions>;

export function parseLifecycleBenchOptions(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        people: { type: 'string', default: '1000' },
        tenants: { type: 'string', default: '10' },
        concurrency: { type: 'string', default: '10' },
        'pool-max': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const options = {
    people: positiveInt('people', values.people)!,
    tenants: positiveInt('tenants', values.tenants)!,
    concurrency: positiveInt('concurrency', values.concurrency)!,
    poolMax: positiveInt('pool-max', values['pool-max']),
  };
  if (options.tenants > options.people) throw new UsageError(`--tenants (${options.tenants}) cannot exceed --people (${options.people})`);
  return options;
}
