import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { apiClient, runAction, UsageError, withConnection, type ApiClient } from './api-client.js';
import { EXIT } from './exit-codes.js';
import { follow } from './progress.js';

type Conn = { url?: string; token?: string; tenant: string };

const tenantPath = (tenant: string) => `/v1/tenants/${encodeURIComponent(tenant)}`;
const importPath = (tenant: string, importId: string) => `${tenantPath(tenant)}/hr-events/imports/${encodeURIComponent(importId)}`;

/** An import job as the API shows it (the fields the CLI reads). */
interface ImportJob {
  importId: string;
  status: 'queued' | 'running' | 'completed';
  total: number;
  done: number;
  failed: number;
}

/** Shows a job's progress until it completes (a bar on a terminal, plain lines otherwise; see progress.ts). */
function followImport(api: ApiClient, tenant: string, job: ImportJob): Promise<ImportJob> {
  return follow({
    label: 'import',
    id: job.importId,
    unit: 'rows',
    first: job,
    read: () => api.request<ImportJob>('GET', `${importPath(tenant, job.importId)}?limit=1`),
    progress: (current) => ({ done: current.done, total: current.total, state: current.status, note: `${current.failed} failed` }),
    finished: (current) => current.status === 'completed',
    resume: `tenure person import-status --tenant ${tenant} --wait ${job.importId}`,
  });
}

/** The job (without a progress read's page of rows) and every failed row, paged through; exit 1 when there is any. */
async function withFailedRows(
  api: ApiClient,
  tenant: string,
  { rows: _page, nextCursor: _cursor, ...job }: ImportJob & { rows?: unknown; nextCursor?: unknown },
) {
  const failedRows: unknown[] = [];
  for (let after: number | null = 0; after !== null;) {
    const page: { rows: unknown[]; nextCursor: number | null } = await api.request(
      'GET',
      `${importPath(tenant, job.importId)}?status=failed&limit=1000&after=${after}`,
    );
    failedRows.push(...page.rows);
    after = page.nextCursor;
  }
  if (job.failed > 0) process.exitCode = EXIT.failed;
  return { ...job, failedRows };
}

/** The import's media type, from the file name: CSV, or one JSON event per line. */
function importType(file: string): string {
  if (/\.csv$/i.test(file)) return 'text/csv';
  if (/\.(ndjson|jsonl)$/i.test(file)) return 'application/x-ndjson';
  throw new UsageError(`cannot tell the format of ${file}: name it .csv, .ndjson or .jsonl`);
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

  cmd(
    'import',
    'Bulk import HR events from a CSV or NDJSON file as a job, showing its progress until it completes; prints the job and its failed rows (exit 1 when any row failed)',
  )
    .requiredOption('--file <events.csv|events.ndjson>')
    .option('--no-wait', 'print the job as stored and return at once (follow it with `person import-status`)')
    .action((o: Conn & { file: string; wait: boolean }) =>
      runAction(async () => {
        const type = importType(o.file);
        const api = apiClient(o);
        const job = await api.sendText<ImportJob>('POST', `${tenantPath(o.tenant)}/hr-events/import`, await readFile(o.file, 'utf8'), type);
        return o.wait ? withFailedRows(api, o.tenant, await followImport(api, o.tenant, job)) : job;
      }),
    );

  cmd('import-status', "Show a bulk import's progress and failed rows (exit 1 when any row failed)")
    .argument('<importId>')
    .option('--wait', 'show its progress until it completes')
    .action((importId: string, o: Conn & { wait?: boolean }) =>
      runAction(async () => {
        const api = apiClient(o);
        const job = await api.request<ImportJob>('GET', `${importPath(o.tenant, importId)}?limit=1`);
        return withFailedRows(api, o.tenant, o.wait ? await followImport(api, o.tenant, job) : job);
      }),
    );

  cmd('imports', 'List bulk imports, newest first')
    .option('--limit <n>')
    .option('--after <importId>', 'cursor: the last import id of the previous page')
    .action((o: Conn & { limit?: string; after?: string }) =>
      runAction(() => {
        const query = new URLSearchParams(
          Object.entries({ limit: o.limit, after: o.after }).filter((e): e is [string, string] => e[1] !== undefined),
        ).toString();
        return apiClient(o).request('GET', `${tenantPath(o.tenant)}/hr-events/imports${query ? `?${query}` : ''}`);
      }),
    );

  cmd('list', 'List people and their lifecycle state')
    .option('--status <status>')
    .option('--search <text>', 'only people whose id, display name or email contains the text (any case)')
    .option('--limit <n>')
    .option('--after <personId>', 'cursor: the last person id of the previous page')
    .action((o: Conn & { status?: string; search?: string; limit?: string; after?: string }) =>
      runAction(() => {
        const query = new URLSearchParams(
          Object.entries({ status: o.status, q: o.search, limit: o.limit, after: o.after }).filter(
            (e): e is [string, string] => e[1] !== undefined,
          ),
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
