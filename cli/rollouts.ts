import type { Command } from 'commander';
import { apiClient, runAction, withConnection, type ApiClient } from './api-client.js';
import { EXIT } from './exit-codes.js';
import { follow } from './progress.js';

type Conn = { url?: string; token?: string };
const enc = encodeURIComponent;

const list = (value: string) =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
/** `--wave 3` (tenants) or `--wave 25%` (of the tenants after the canary), repeatable. */
function collectWave(value: string, previous: ({ count: number } | { percent: number })[] = []) {
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(value);
  if (percent) return [...previous, { percent: Number(percent[1]) }];
  if (!/^\d+$/.test(value)) throw new Error(`--wave ${value}: expected a count (3) or a percentage (25%)`);
  return [...previous, { count: Number(value) }];
}

/** The fields of a rollout `--wait` reads. */
interface Rollout {
  rolloutId: string;
  status: string;
  tenants: number;
  waves: Record<'applied' | 'skipped' | 'denied' | 'failed' | 'passedOver' | 'cancelled', number>[];
}
/** A rollout in these states goes no further without someone: `--wait` stops there. */
const STOPPED = new Set(['completed', 'cancelled', 'halted']);

/** Waits for a rollout to complete (or halt, or be cancelled), a bar of settled tenants on a terminal; exit 1 unless it completed. */
async function followRollout(api: ApiClient, first: Rollout): Promise<Rollout> {
  const settled = (r: Rollout) =>
    r.waves.reduce((sum, w) => sum + w.applied + w.skipped + w.denied + w.failed + w.passedOver + w.cancelled, 0);
  const failed = (r: Rollout) => r.waves.reduce((sum, w) => sum + w.failed, 0);
  const last = await follow({
    label: 'rollout',
    id: first.rolloutId,
    unit: 'tenants',
    first,
    read: () => api.request<Rollout>('GET', `/v1/rollouts/${enc(first.rolloutId)}`),
    progress: (r) => ({ done: settled(r), total: r.tenants, state: r.status, note: `${failed(r)} failed` }),
    finished: (r) => STOPPED.has(r.status),
    resume: `tenure rollout status ${first.rolloutId} --wait`,
  });
  if (last.status !== 'completed') process.exitCode = EXIT.failed;
  return last;
}

interface StartOptions extends Conn {
  template: string;
  templateVersion: string;
  tenants?: string;
  allPinned?: boolean;
  canary?: string;
  canaryTenants?: string;
  wave?: ({ count: number } | { percent: number })[];
  bakeSeconds?: string;
  approveWaves?: boolean;
  maxFailures?: string;
  maxFailurePercent?: string;
  window?: string;
  approvalTimeoutMinutes?: string;
  idempotencyKey?: string;
  wait?: boolean;
}

/** `tenure rollout …`: roll an approved template version out in waves, follow it, and steer it. */
export function registerRolloutCommands(program: Command): void {
  const rollout = program.command('rollout').description('Template rollouts: waves, halt, pause, resume, cancel');
  const cmd = (name: string, description: string) => withConnection(rollout.command(name).description(description));

  cmd('start', 'Roll an approved template version out to tenants in waves')
    .requiredOption('--template <templateId>')
    .requiredOption('--template-version <n>', 'an approved version')
    .option('--tenants <ids>', 'comma-separated tenant ids, in rollout order (or --all-pinned)')
    .option('--all-pinned', 'every tenant pinned to the template')
    .option('--canary <n>', 'the first N tenants as the canary wave')
    .option('--canary-tenants <ids>', 'these tenants as the canary wave')
    .option('--wave <size>', 'a wave after the canary: a count (3) or a percentage (25%); repeatable', collectWave)
    .option('--bake-seconds <n>', 'wait after each wave')
    .option('--approve-waves', 'each wave after the first waits for `tenure rollout approve-wave`')
    .option('--max-failures <n>', 'failures a wave may have before the rollout halts (default 0)')
    .option('--max-failure-percent <p>', 'failures as a percentage of the wave before it halts')
    .option('--window <n>', 'tenants applying at once')
    .option('--approval-timeout-minutes <n>', 'how long tenants’ approvers have (their own policy timeout by default)')
    .option('--idempotency-key <key>', 'retry safely: the same key answers with the same rollout')
    .option('--wait', 'show its progress until it completes, halts or is cancelled (exit 1 unless it completed)')
    .action((o: StartOptions) =>
      runAction(async () => {
        const number = (v: string | undefined) => (v === undefined ? undefined : Number(v));
        const budget = { maxFailures: number(o.maxFailures), maxFailurePercent: number(o.maxFailurePercent) };
        const body = {
          templateId: o.template,
          version: Number(o.templateVersion),
          tenants: o.allPinned ? 'pinned' : list(o.tenants ?? ''),
          ...(o.canaryTenants ? { canary: { tenants: list(o.canaryTenants) } } : o.canary ? { canary: { count: Number(o.canary) } } : {}),
          ...(o.wave ? { waves: o.wave } : {}),
          ...(o.bakeSeconds ? { bakeSeconds: Number(o.bakeSeconds) } : {}),
          ...(o.approveWaves ? { approveBetweenWaves: true } : {}),
          ...(budget.maxFailures !== undefined || budget.maxFailurePercent !== undefined
            ? { errorBudget: Object.fromEntries(Object.entries(budget).filter(([, v]) => v !== undefined)) }
            : {}),
          ...(o.window ? { window: Number(o.window) } : {}),
          ...(o.approvalTimeoutMinutes ? { approvalTimeoutMinutes: Number(o.approvalTimeoutMinutes) } : {}),
        };
        const api = apiClient(o);
        const started = await api.request<Rollout>(
          'POST',
          '/v1/rollouts',
          body,
          o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : {},
        );
        return o.wait ? followRollout(api, started) : started;
      }),
    );

  cmd('list', 'List rollouts, newest first')
    .option('--status <status>')
    .option('--template <templateId>')
    .action((o: Conn & { status?: string; template?: string }) => {
      const query = new URLSearchParams({ ...(o.status ? { status: o.status } : {}), ...(o.template ? { templateId: o.template } : {}) });
      return runAction(() => apiClient(o).request('GET', `/v1/rollouts${query.size ? `?${query.toString()}` : ''}`));
    });

  cmd('status', 'A rollout’s progress by wave and by tenant')
    .argument('<rolloutId>')
    .option('--limit <n>', 'tenants shown (default 500; `nextCursor` says more follow)')
    .option('--cursor <cursor>', 'the tenants after this `nextCursor`')
    .option('--wait', 'show its progress until it completes, halts or is cancelled (exit 1 unless it completed)')
    .action((rolloutId: string, o: Conn & { wait?: boolean; limit?: string; cursor?: string }) =>
      runAction(async () => {
        const api = apiClient(o);
        const query = new URLSearchParams({ ...(o.limit ? { limit: o.limit } : {}), ...(o.cursor ? { cursor: o.cursor } : {}) });
        const rollout = await api.request<Rollout>('GET', `/v1/rollouts/${enc(rolloutId)}${query.size ? `?${query.toString()}` : ''}`);
        return o.wait ? followRollout(api, rollout) : rollout;
      }),
    );

  const steps: [string, string][] = [
    ['pause', 'Pause: no tenant starts until resumed'],
    ['resume', 'Resume a paused or halted rollout'],
    ['cancel', 'Cancel: no tenant starts; tenants at their gate are skipped, applies under way finish'],
    ['skip', 'Skip the rest of the halted wave and move on'],
    ['approve-wave', 'Approve the next wave'],
  ];
  for (const [step, description] of steps) {
    cmd(step, description)
      .argument('<rolloutId>')
      .option('--comment <text>')
      .action((rolloutId: string, o: Conn & { comment?: string }) =>
        runAction(() => apiClient(o).request('POST', `/v1/rollouts/${enc(rolloutId)}/${step}`, o.comment ? { comment: o.comment } : {})),
      );
  }
}
