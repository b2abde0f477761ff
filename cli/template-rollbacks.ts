import type { Command } from 'commander';
import { apiClient, runAction, withConnection } from './api-client.js';

type Conn = { url?: string; token?: string };
const enc = encodeURIComponent;

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
    .action((rolloutId: string, o: Conn & { window?: string }) =>
      runAction(() =>
        apiClient(o).request('POST', `/v1/rollouts/${enc(rolloutId)}/rollback`, o.window ? { window: Number(o.window) } : {}),
      ),
    );

  cmd('rollback-rollout-status', 'Show a rollout’s rollback: progress, counts, each tenant')
    .argument('<rolloutId>')
    .action((rolloutId: string, o: Conn) => runAction(() => apiClient(o).request('GET', `/v1/rollouts/${enc(rolloutId)}/rollback`)));
}
