import type { Command } from 'commander';
import { apiClient, runAction, withConnection } from './api-client.js';

type Conn = { url?: string; token?: string; tenant: string };

const grantsPath = (tenant: string) => `/v1/tenants/${encodeURIComponent(tenant)}/grants`;

/** `tenure grant …`: request, decide on and list time-bound grants through the API. */
export function registerGrantCommands(program: Command): void {
  const grant = program.command('grant').description('Time-bound admin grants');
  const cmd = (name: string, description: string) =>
    withConnection(grant.command(name).description(description).requiredOption('--tenant <tenantId>'));

  cmd('request', 'Request a role for a directory user')
    .requiredOption('--subject <userId>', 'directory user who receives the role')
    .requiredOption('--role <role>')
    .option('--minutes <n>', 'duration in minutes')
    .option('--start <iso>', 'start time (default: now)')
    .option('--end <iso>', 'end time, instead of --minutes')
    .option('--justification <text>')
    .option('--ticket <ref>')
    .option('--idempotency-key <key>', 'retry-safe: the same key returns the same grant')
    .action(
      (
        o: Conn & {
          subject: string;
          role: string;
          minutes?: string;
          start?: string;
          end?: string;
          justification?: string;
          ticket?: string;
          idempotencyKey?: string;
        },
      ) =>
        runAction(async () => {
          const body = {
            subjectId: o.subject,
            role: o.role,
            ...(o.minutes ? { durationMinutes: Number(o.minutes) } : {}),
            ...(o.start ? { startAt: o.start } : {}),
            ...(o.end ? { endAt: o.end } : {}),
            ...(o.justification ? { justification: o.justification } : {}),
            ...(o.ticket ? { ticket: o.ticket } : {}),
          };
          const client = apiClient(o);
          return client.request('POST', grantsPath(o.tenant), body, o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : {});
        }),
    );

  cmd('list', 'List grants, newest first')
    .option('--status <status>')
    .option('--subject <userId>')
    .option('--role <role>')
    .option('--expiring-before <iso>')
    .option('--limit <n>')
    .option('--cursor <cursor>')
    .action((o: Conn & { status?: string; subject?: string; role?: string; expiringBefore?: string; limit?: string; cursor?: string }) =>
      runAction(() => {
        const query = new URLSearchParams(
          Object.entries({
            status: o.status,
            subjectId: o.subject,
            role: o.role,
            expiringBefore: o.expiringBefore,
            limit: o.limit,
            cursor: o.cursor,
          }).filter((e): e is [string, string] => e[1] !== undefined),
        ).toString();
        return apiClient(o).request('GET', `${grantsPath(o.tenant)}${query ? `?${query}` : ''}`);
      }),
    );

  cmd('show', 'Show one grant')
    .argument('<grantId>')
    .action((grantId: string, o: Conn) =>
      runAction(() => apiClient(o).request('GET', `${grantsPath(o.tenant)}/${encodeURIComponent(grantId)}`)),
    );

  for (const decision of ['approve', 'deny', 'revoke', 'relinquish'] as const) {
    cmd(decision, `${decision[0]!.toUpperCase()}${decision.slice(1)} a grant`)
      .argument('<grantId>')
      .option('--comment <text>')
      .action((grantId: string, o: Conn & { comment?: string }) =>
        runAction(() =>
          apiClient(o).request(
            'POST',
            `${grantsPath(o.tenant)}/${encodeURIComponent(grantId)}/${decision}`,
            o.comment ? { comment: o.comment } : {},
          ),
        ),
      );
  }

  cmd('extend', 'Ask for more time (re-approved when the policy says so)')
    .argument('<grantId>')
    .requiredOption('--minutes <n>', 'additional minutes')
    .option('--justification <text>')
    .action((grantId: string, o: Conn & { minutes: string; justification?: string }) =>
      runAction(() =>
        apiClient(o).request('POST', `${grantsPath(o.tenant)}/${encodeURIComponent(grantId)}/extend`, {
          additionalMinutes: Number(o.minutes),
          ...(o.justification ? { justification: o.justification } : {}),
        }),
      ),
    );
}
