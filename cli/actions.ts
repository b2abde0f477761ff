import { Argument, type Command } from 'commander';
import { ACTION_STATUSES, ACTION_TYPES } from '../core/actions/contract.js';
import { apiClient, runAction, withConnection } from './api-client.js';

type Conn = { url?: string; token?: string; tenant: string };

const actionsPath = (tenant: string) => `/v1/tenants/${encodeURIComponent(tenant)}/actions`;

/** `tenure action …`: request, decide on and list remote actions (unlock, MFA reset, …) through the API. */
export function registerActionCommands(program: Command): void {
  const action = program.command('action').description('Approval-gated remote actions on directory users');
  const cmd = (name: string, description: string) =>
    withConnection(action.command(name).description(description).requiredOption('--tenant <tenantId>'));

  cmd('request', 'Request an action on a directory user')
    .addArgument(new Argument('<action>').choices(ACTION_TYPES))
    .requiredOption('--subject <userId>', 'directory user the action is done to')
    .option('--justification <text>')
    .option('--ticket <ref>')
    .option('--idempotency-key <key>', 'retry-safe: the same key returns the same action')
    .action((kind: string, o: Conn & { subject: string; justification?: string; ticket?: string; idempotencyKey?: string }) =>
      runAction(() =>
        apiClient(o).request(
          'POST',
          actionsPath(o.tenant),
          {
            action: kind,
            subjectId: o.subject,
            ...(o.justification ? { justification: o.justification } : {}),
            ...(o.ticket ? { ticket: o.ticket } : {}),
          },
          o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : {},
        ),
      ),
    );

  cmd('list', 'List actions, newest first')
    .option('--status <status>', `one of ${ACTION_STATUSES.join(', ')}`)
    .option('--action <action>', `one of ${ACTION_TYPES.join(', ')}`)
    .option('--subject <userId>')
    .option('--limit <n>')
    .option('--cursor <cursor>')
    .action((o: Conn & { status?: string; action?: string; subject?: string; limit?: string; cursor?: string }) =>
      runAction(() => {
        const query = new URLSearchParams(
          Object.entries({ status: o.status, action: o.action, subjectId: o.subject, limit: o.limit, cursor: o.cursor }).filter(
            (e): e is [string, string] => e[1] !== undefined,
          ),
        ).toString();
        return apiClient(o).request('GET', `${actionsPath(o.tenant)}${query ? `?${query}` : ''}`);
      }),
    );

  cmd('show', 'Show one action')
    .argument('<actionId>')
    .action((actionId: string, o: Conn) =>
      runAction(() => apiClient(o).request('GET', `${actionsPath(o.tenant)}/${encodeURIComponent(actionId)}`)),
    );

  for (const decision of ['approve', 'deny', 'cancel'] as const) {
    cmd(decision, `${decision[0]!.toUpperCase()}${decision.slice(1)} an action`)
      .argument('<actionId>')
      .option('--comment <text>')
      .action((actionId: string, o: Conn & { comment?: string }) =>
        runAction(() =>
          apiClient(o).request(
            'POST',
            `${actionsPath(o.tenant)}/${encodeURIComponent(actionId)}/${decision}`,
            o.comment ? { comment: o.comment } : {},
          ),
        ),
      );
  }
}
