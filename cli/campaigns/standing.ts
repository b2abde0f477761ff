import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { apiClient, fetchDocument, runAction, withConnection } from '../api-client.js';

type Conn = { url?: string; token?: string };
type Item = { tenantId: string; subjectId: string; role: string };

/** The items of a saved standing-privilege report (its `entries`), or a plain list of items. */
function itemsOf(document: unknown): Item[] {
  const list = Array.isArray(document) ? document : ((document as { entries?: unknown[] }).entries ?? []);
  return (list as Item[]).map(({ tenantId, subjectId, role }) => ({ tenantId, subjectId, role }));
}

/** `tenure standing …`: the standing-privilege report, and a review of exactly what it lists. */
export function registerStandingCommands(program: Command): void {
  const standing = program.command('standing').description('Standing privilege: privileged access with no end, owner or recent review');

  withConnection(
    standing
      .command('report')
      .description('The report for one tenant (--tenant) or across every tenant you see')
      .option('--tenant <tenantId>')
      .option('--tag <tag>', 'across tenants: only those with this tag')
      .option('--review-days <n>', 'no reviewer decision in this many days counts as not reviewed', '90')
      .option('--reason <reason>', 'only entries with this reason: no_end_date | no_owner | not_reviewed | holder_inactive')
      .option('--format <format>', 'json | csv', 'json')
      .option('--out <file>', 'write it to this file instead of standard output'),
  ).action((o: Conn & { tenant?: string; tag?: string; reviewDays: string; reason?: string; format: string; out?: string }) =>
    runAction(() => {
      const query = new URLSearchParams(
        Object.entries({ reviewDays: o.reviewDays, reason: o.reason, format: o.format, tag: o.tenant ? undefined : o.tag }).filter(
          (e): e is [string, string] => e[1] !== undefined,
        ),
      ).toString();
      const path = o.tenant ? `/v1/tenants/${encodeURIComponent(o.tenant)}/standing-privilege` : '/v1/standing-privilege';
      return fetchDocument(apiClient(o), `${path}?${query}`, o.out);
    }),
  );

  withConnection(
    standing
      .command('review')
      .description('Start a review of exactly the access a saved JSON report (or a list of {tenantId, subjectId, role}) names')
      .requiredOption('--name <name>')
      .requiredOption('--file <report.json>')
      .option('--stage-minutes <n>', 'how long the single stage lasts (default 7 days)')
      .option('--non-response <policy>', 'keep | revoke | recommendation'),
  ).action((o: Conn & { name: string; file: string; stageMinutes?: string; nonResponse?: string }) =>
    runAction(async () =>
      apiClient(o).request('POST', '/v1/standing-privilege/reviews', {
        name: o.name,
        items: itemsOf(JSON.parse(await readFile(o.file, 'utf8'))),
        ...(o.stageMinutes ? { stages: [{ durationMinutes: Number(o.stageMinutes) }] } : {}),
        ...(o.nonResponse ? { nonResponse: o.nonResponse } : {}),
      }),
    ),
  );
}
