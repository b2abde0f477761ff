import { setTimeout } from 'node:timers/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { apiClient, currentOutputFormat, printError, runAction, UnreachableError, withConnection, type ApiClient } from './api-client.js';
import { EXIT } from './exit-codes.js';
import { colours } from './output.js';

type Conn = { url?: string; token?: string; tenant: string };

const grantsPath = (tenant: string) => `/v1/tenants/${encodeURIComponent(tenant)}/grants`;

/** The fields of a grant `watch` reads. */
interface Grant {
  grantId: string;
  subjectId: string;
  role: string;
  status: string;
  endReason: string | null;
  approvalsRequired: number;
  approvals: unknown[];
  startAt: string;
  endAt: string;
}

/** A grant in these states has ended: nothing more will happen to it. */
const FINAL = new Set(['ended', 'denied', 'approval_timed_out', 'cancelled']);
/** Ended the way a grant should: its time ran out or someone took it back. Anything else (denied, timed out, cancelled, failed, ineligible) exits 1. */
const ENDED_WELL = new Set(['expired', 'revoked', 'relinquished']);
/** Reads that may fail in a row (the API restarting) before `watch` gives up with exit 5. */
const WATCH_MISSES = 5;

const seconds = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.2 || n > 3600) throw new InvalidArgumentError('must be a number of seconds from 0.2 to 3600');
  return n;
};

/**
 * Follows a grant until it ends, printing a line each time it changes (or, with --json, the grant
 * as one JSON line); exit 0 when it expired or was revoked or relinquished, 1 when it ended any other way.
 */
async function watchGrant(api: ApiClient, path: string, intervalSeconds: number): Promise<void> {
  const json = currentOutputFormat() === 'json';
  const c = colours(process.stdout);
  let last = '';
  let misses = 0;
  for (;;) {
    let grant: Grant;
    try {
      grant = await api.request<Grant>('GET', path);
      misses = 0;
    } catch (error) {
      if (!(error instanceof UnreachableError) || ++misses >= WATCH_MISSES) throw error;
      await setTimeout(intervalSeconds * 1000);
      continue;
    }
    const state = [grant.status, grant.endReason, grant.approvals.length, grant.endAt].join('|');
    if (state !== last) {
      last = state;
      if (json) process.stdout.write(`${JSON.stringify(grant)}\n`);
      else {
        const time = new Date().toISOString().slice(11, 19);
        const approvals = grant.status === 'pending_approval' ? `  approvals ${grant.approvals.length}/${grant.approvalsRequired}` : '';
        const reason = grant.endReason ? ` (${grant.endReason})` : '';
        const until = ['active', 'scheduled'].includes(grant.status) ? `  until ${grant.endAt}` : '';
        process.stdout.write(
          `${c.dim(time)}  ${c.bold(grant.status)}${reason}  ${grant.role} for ${grant.subjectId}${approvals}${until}\n`,
        );
      }
    }
    if (FINAL.has(grant.status)) {
      process.exitCode = grant.status === 'ended' && ENDED_WELL.has(grant.endReason ?? '') ? EXIT.ok : EXIT.failed;
      return;
    }
    await setTimeout(intervalSeconds * 1000);
  }
}

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

  cmd('watch', 'Follow a grant live, a line per change, until it ends (exit 0 expired/revoked/relinquished, 1 any other end)')
    .argument('<grantId>')
    .option('--interval <seconds>', 'how often to ask the API', seconds, 2)
    .action(async (grantId: string, o: Conn & { interval: number }) => {
      process.once('SIGINT', () => process.exit(EXIT.interrupted));
      try {
        await watchGrant(apiClient(o), `${grantsPath(o.tenant)}/${encodeURIComponent(grantId)}`, o.interval);
      } catch (error) {
        process.exitCode = printError(error);
      }
    });

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
