import type { Command } from 'commander';
import { apiClient, runAction, withConnection } from './api-client.js';

type Conn = { url?: string; token?: string };
const enc = encodeURIComponent;

/** `tenure drift …`: a tenant's drift from its applied template version, its exceptions, and the drift Schedule. */
export function registerDriftCommands(program: Command): void {
  const drift = program.command('drift').description('Template drift: status, check now, exceptions, the drift Schedule');
  const cmd = (name: string, description: string) => withConnection(drift.command(name).description(description));
  const base = (tenantId: string) => `/v1/tenants/${enc(tenantId)}/template/drift`;

  cmd('status', 'The tenant’s drift items and exceptions')
    .requiredOption('--tenant <tenantId>')
    .action((o: Conn & { tenant: string }) => runAction(() => apiClient(o).request('GET', base(o.tenant))));

  cmd('check', 'Check the tenant now (remediating and alerting as the applied version says)')
    .requiredOption('--tenant <tenantId>')
    .action((o: Conn & { tenant: string }) => runAction(() => apiClient(o).request('POST', `${base(o.tenant)}/check`)));

  cmd('exceptions', 'List the tenant’s drift exceptions')
    .requiredOption('--tenant <tenantId>')
    .action((o: Conn & { tenant: string }) => runAction(() => apiClient(o).request('GET', `${base(o.tenant)}/exceptions`)));

  cmd('except', 'Ask to accept a deviation on one path until an expiry (the tenant’s approver approves it)')
    .requiredOption('--tenant <tenantId>')
    .requiredOption('--path <path>', 'e.g. directory.settings.passwordMinLength')
    .requiredOption('--owner <owner>', 'who answers for the deviation')
    .requiredOption('--justification <text>')
    .requiredOption('--expires <datetime>', 'RFC 3339, at most 365 days ahead')
    .action((o: Conn & { tenant: string; path: string; owner: string; justification: string; expires: string }) =>
      runAction(() =>
        apiClient(o).request('POST', `${base(o.tenant)}/exceptions`, {
          path: o.path,
          owner: o.owner,
          justification: o.justification,
          expiresAt: o.expires,
        }),
      ),
    );

  for (const [name, step, description] of [
    ['approve-exception', 'approve', 'Approve a pending exception (the tenant’s own approvers)'],
    ['expire-exception', 'expire', 'End an exception now: its path is drift again'],
  ] as const) {
    cmd(name, description)
      .argument('<exceptionId>')
      .requiredOption('--tenant <tenantId>')
      .option('--comment <text>')
      .action((exceptionId: string, o: Conn & { tenant: string; comment?: string }) =>
        runAction(() =>
          apiClient(o).request('POST', `${base(o.tenant)}/exceptions/${enc(exceptionId)}/${step}`, o.comment ? { comment: o.comment } : {}),
        ),
      );
  }

  cmd('schedule', 'Show the drift Schedule, or pause, unpause or trigger it')
    .argument('[action]', 'pause | unpause | trigger')
    .option('--note <text>')
    .action((action: string | undefined, o: Conn & { note?: string }) =>
      runAction(() => {
        if (action === undefined) return apiClient(o).request('GET', '/v1/templates/drift-schedule');
        if (!['pause', 'unpause', 'trigger'].includes(action))
          throw new Error(`drift schedule ${action}: expected pause, unpause or trigger`);
        return apiClient(o).request('POST', `/v1/templates/drift-schedule/${action}`, o.note ? { note: o.note } : {});
      }),
    );
}
