import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { apiClient, runAction, withConnection } from './api-client.js';

type Conn = { url?: string; token?: string; tenant: string };

const tenantPath = (tenant: string) => `/v1/tenants/${encodeURIComponent(tenant)}`;

/** The import's media type, from the file name: CSV, or one JSON event per line. */
function importType(file: string): string {
  if (/\.csv$/i.test(file)) return 'text/csv';
  if (/\.(ndjson|jsonl)$/i.test(file)) return 'application/x-ndjson';
  throw new Error(`cannot tell the format of ${file}: name it .csv, .ndjson or .jsonl`);
}

async function readEvent(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`${file} is not JSON: ${(error as Error).message}`, { cause: error });
  }
}

/** `tenure person …`: HR events and people's lifecycle state through the API. */
export function registerPersonCommands(program: Command): void {
  const person = program.command('person').description('Joiner / mover / leaver: HR events and people');
  const cmd = (name: string, description: string) =>
    withConnection(person.command(name).description(description).requiredOption('--tenant <tenantId>'));

  cmd('event', 'Submit one HR event (a JSON file: eventId, personId, type, effectiveAt, attributes, profile)')
    .requiredOption('--file <event.json>')
    .action((o: Conn & { file: string }) =>
      runAction(async () => apiClient(o).request('POST', `${tenantPath(o.tenant)}/hr-events`, await readEvent(o.file))),
    );

  cmd('preview', 'Show what an HR event would change, changing nothing')
    .requiredOption('--file <event.json>')
    .action((o: Conn & { file: string }) =>
      runAction(async () => apiClient(o).request('POST', `${tenantPath(o.tenant)}/hr-events/preview`, await readEvent(o.file))),
    );

  cmd('import', 'Bulk import HR events from a CSV or NDJSON file; prints per-row results (exit 1 when any row failed)')
    .requiredOption('--file <events.csv|events.ndjson>')
    .action((o: Conn & { file: string }) =>
      runAction(async () => {
        const type = importType(o.file);
        const result = await apiClient(o).sendText<{ invalid: number; rejected: number }>(
          'POST',
          `${tenantPath(o.tenant)}/hr-events/import`,
          await readFile(o.file, 'utf8'),
          type,
        );
        if (result.invalid + result.rejected > 0) process.exitCode = 1;
        return result;
      }),
    );

  cmd('list', 'List people and their lifecycle state')
    .option('--status <status>')
    .option('--limit <n>')
    .option('--after <personId>', 'cursor: the last person id of the previous page')
    .action((o: Conn & { status?: string; limit?: string; after?: string }) =>
      runAction(() => {
        const query = new URLSearchParams(
          Object.entries({ status: o.status, limit: o.limit, after: o.after }).filter((e): e is [string, string] => e[1] !== undefined),
        ).toString();
        return apiClient(o).request('GET', `${tenantPath(o.tenant)}/people${query ? `?${query}` : ''}`);
      }),
    );

  cmd('show', "Show a person's state, open entitlements and open grants")
    .argument('<personId>')
    .action((personId: string, o: Conn) =>
      runAction(() => apiClient(o).request('GET', `${tenantPath(o.tenant)}/people/${encodeURIComponent(personId)}`)),
    );

  cmd('timeline', "Show a person's HR events and audit trail")
    .argument('<personId>')
    .action((personId: string, o: Conn) =>
      runAction(() => apiClient(o).request('GET', `${tenantPath(o.tenant)}/people/${encodeURIComponent(personId)}/timeline`)),
    );
}
