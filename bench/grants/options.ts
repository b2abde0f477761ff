import { parseArgs } from 'node:util';
import { REMOTE_TARGET_KINDS, type RemoteTargetKind } from '../directory-targets.js';
import { positiveInt, UsageError } from '../support.js';

export const USAGE =
  'usage: npm run bench -- grants [--grants N] [--burst N] [--burst-spread SECONDS] [--tenants N] [--concurrency N] [--duration SECONDS] ' +
  '[--target builtin|ldap|scim] [--pool-max N] [--max-cached-workflows N] [--max-concurrent-activities N] [--max-concurrent-workflow-tasks N]';

export type GrantsBenchOptions = ReturnType<typeof parseGrantsBenchOptions>;

export function nonNegativeNumber(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || value.trim() === '')
    throw new UsageError(`--${name} must be a number of seconds, 0 or more, got ${value}`);
  return n;
}

export function parseGrantsBenchOptions(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        grants: { type: 'string', default: '200' },
        burst: { type: 'string' },
        'burst-spread': { type: 'string', default: '5' },
        tenants: { type: 'string', default: '8' },
        concurrency: { type: 'string', default: '20' },
        duration: { type: 'string', default: '10' },
        target: { type: 'string', default: 'builtin' },
        'pool-max': { type: 'string' },
        'max-cached-workflows': { type: 'string' },
        'max-concurrent-activities': { type: 'string' },
        'max-concurrent-workflow-tasks': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const grants = positiveInt('grants', values.grants)!;
  const target = values.target;
  if (target !== 'builtin' && !(REMOTE_TARGET_KINDS as readonly string[]).includes(target))
    throw new UsageError(`--target must be builtin, ${REMOTE_TARGET_KINDS.join(' or ')}, got ${target}`);
  return {
    /** The tenants' directory: the built-in one, or a real server started for the run (compared with the built-in one). */
    target: target as 'builtin' | RemoteTargetKind,
    grants,
    burst: positiveInt('burst', values.burst) ?? grants,
    burstSpreadSeconds: nonNegativeNumber('burst-spread', values['burst-spread']),
    tenants: positiveInt('tenants', values.tenants)!,
    concurrency: positiveInt('concurrency', values.concurrency)!,
    durationSeconds: positiveInt('duration', values.duration)!,
    poolMax: positiveInt('pool-max', values['pool-max']),
    /** SDK sizing for both sides' workers (worker/'s WorkerTuning). */
    tuning: {
      maxCachedWorkflows: positiveInt('max-cached-workflows', values['max-cached-workflows']),
      maxConcurrentActivityTaskExecutions: positiveInt('max-concurrent-activities', values['max-concurrent-activities']),
      maxConcurrentWorkflowTaskExecutions: positiveInt('max-concurrent-workflow-tasks', values['max-concurrent-workflow-tasks']),
    },
  };
}
