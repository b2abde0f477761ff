import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { apiClient, runAction, withConnection } from './api-client.js';

type Conn = { url?: string; token?: string; tenant: string };

const policyPath = (tenant: string) => `/v1/tenants/${encodeURIComponent(tenant)}/policy`;

/**
 * `tenure policy …`: propose a tenant policy and decide on pending changes through the API. A
 * change that loosens the tenant's control is not applied by proposing it: its approvers decide.
 */
export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('Tenant policy: the MSP proposes, the tenant decides');
  const cmd = (name: string, description: string) =>
    withConnection(policy.command(name).description(description).requiredOption('--tenant <tenantId>'));

  cmd('propose', 'Propose a new policy document: applied at once if it only tightens, otherwise pending')
    .requiredOption('--file <path>', 'JSON file holding the whole policy document')
    .option('--expected-version <n>', 'the version the change is based on (default: the current one)')
    .action((o: Conn & { file: string; expectedVersion?: string }) =>
      runAction(async () => {
        const document = JSON.parse(await readFile(o.file, 'utf8')) as unknown;
        const client = apiClient(o);
        const expectedVersion = o.expectedVersion
          ? Number(o.expectedVersion)
          : (await client.request<{ version: number }>('GET', policyPath(o.tenant))).version;
        const answer = await client.request<{ changeId?: string; status?: string }>('PUT', policyPath(o.tenant), {
          expectedVersion,
          document,
        });
        if (answer.changeId) {
          process.stderr.write(
            `tenure: the change loosens the tenant's control; it waits for the tenant's approvers (${answer.changeId})\n`,
          );
        }
        return answer;
      }),
    );

  cmd('changes', 'List proposed policy changes, newest first')
    .option('--status <status>', 'pending, applied, denied, withdrawn, timed_out or conflicted')
    .action((o: Conn & { status?: string }) =>
      runAction(() =>
        apiClient(o).request('GET', `${policyPath(o.tenant)}/changes${o.status ? `?status=${encodeURIComponent(o.status)}` : ''}`),
      ),
    );

  cmd('change', 'Show one policy change')
    .argument('<changeId>')
    .action((changeId: string, o: Conn) =>
      runAction(() => apiClient(o).request('GET', `${policyPath(o.tenant)}/changes/${encodeURIComponent(changeId)}`)),
    );

  for (const decision of ['approve', 'deny', 'withdraw'] as const) {
    cmd(decision, `${decision[0]!.toUpperCase()}${decision.slice(1)} a pending policy change`)
      .argument('<changeId>')
      .option('--comment <text>')
      .action((changeId: string, o: Conn & { comment?: string }) =>
        runAction(() =>
          apiClient(o).request(
            'POST',
            `${policyPath(o.tenant)}/changes/${encodeURIComponent(changeId)}/${decision}`,
            o.comment ? { comment: o.comment } : {},
          ),
        ),
      );
  }
}
