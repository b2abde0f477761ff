import type { Command } from 'commander';
import { apiClient, runAction, withConnection, type ApiClient } from './api-client.js';
import { EXIT } from './exit-codes.js';
import { follow } from './progress.js';

type Conn = { url?: string; token?: string };
const enc = encodeURIComponent;

/** The fields of a rollout's rollback `--wait` reads. */
interface RolloutRollback {
  rolloutId: string;
  status: string;
  counts: Record<'total' | 'rolledBack' | 'withConflicts' | 'failed' | 'alreadyRequested', number>;
  tenants?: { tenantId: string; status: string }[];
}

/**
 * Waits for a rollout's rollback to complete, a bar of tenants settled; exit 1 when any tenant's
 * rollback failed (each may be requested again: `tenure template rollback <rolloutId> --tenant <id>`).
 */
async function followRolloutRollback(api: ApiClient, rolloutId: string): Promise<RolloutRollback> {
  const read = () => api.request<RolloutRollback>('GET', `/v1/rollouts/${enc(rolloutId)}/rollback`);
  const last = await follow({
    label: 'rollback',
    id: rolloutId,
    unit: 'tenants',
    first: await read(),
    read,
    progress: ({ counts: c, status }) => ({
      done: c.rolledBack + c.withConflicts + c.failed + c.alreadyRequested,
      total: c.total,
      state: status,
      note: `${c.failed} failed`,
    }),
    finished: (r) => r.status !== 'running',
    resume: `tenure template rollback-rollout-status ${rolloutId} --wait`,
  });
  // Its tenants' rows include those rolled back on their own, which its counts only call already requested.
  const failed = last.counts.failed > 0 || (last.tenants ?? []).some((t) => t.status === 'failed');
  if (last.status !== 'completed' || failed) process.exitCode = EXIT.failed;
  return last;
}

/**
 * `tenure template rollback …`: roll back one tenant's apply (`--tenant`) or a whole rollout
 * (`rollback-rollout`), and follow them (`rollback-status`, `rollback-rollout-status`).
 */
export function registerTemplateRollbackCommands(template: Command): void {
  const cmd = (name: string, description: string) => withConnection(template.command(name).description(description));
  const tenantPath = (tenant: string, rolloutId: string) => `/v1/tenants/${enc(tenant)}/template/applies/${enc(rolloutId)}/rollback`;

  cmd('rollback', 'Roll back the tenant’s apply in a rollout: restore its snapshot, read back, re-pin the version before')
    .argument('<rolloutId>')
    .requiredOption('--tenant <tenantId>')
    .action((rolloutId: string, o: Conn & { tenant: string }) =>
      runAction(() => apiClient(o).request('POST', tenantPath(o.tenant, rolloutId))),
    );

  cmd('rollback-status', 'Show the rollback of the tenant’s apply: status, restored paths, conflicts, pin')
    .argument('<rolloutId>')
    .requiredOption('--tenant <tenantId>')
    .action((rolloutId: string, o: Conn & { tenant: string }) =>
      runAction(() => apiClient(o).request('GET', tenantPath(o.tenant, rolloutId))),
    );

  cmd('rollback-rollout', 'Roll back every tenant of a rollout whose apply took a snapshot')
    .argument('<rolloutId>')
    .option('--window <n>', 'tenants rolled back at once (default 5)')
    .option('--wait', 'show its progress until every tenant is rolled back (exit 1 if any failed)')
    .action((rolloutId: string, o: Conn & { window?: string; wait?: boolean }) =>
      runAction(async () => {
        const api = apiClient(o);
        const started = await api.request('POST', `/v1/rollouts/${enc(rolloutId)}/rollback`, o.window ? { window: Number(o.window) } : {});
        return o.wait ? followRolloutRollback(api, rolloutId) : started;
      }),
    );

  cmd('rollback-rollout-status', 'Show a rollout’s rollback: progress, counts, each tenant')
    .argument('<rolloutId>')
    .option('--wait', 'show its progress until every tenant is rolled back (exit 1 if any failed)')
    .action((rolloutId: string, o: Conn & { wait?: boolean }) =>
      runAction(() => {
        const api = apiClient(o);
        return o.wait ? followRolloutRollback(api, rolloutId) : api.request('GET', `/v1/rollouts/${enc(rolloutId)}/rollback`);
      }),
    );
}
