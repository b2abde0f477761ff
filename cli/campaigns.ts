import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { apiClient, fetchDocument, runAction, withConnection, type ApiClient } from './api-client.js';
import { follow } from './progress.js';

type Conn = { url?: string; token?: string };
const enc = encodeURIComponent;

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8')) as unknown;
}

/** The fields of a campaign run `--wait` reads. */
interface CampaignRun {
  runId: string;
  status: string;
  tenantCount: number | null;
  materialisedCount: number;
}

/** Waits until a run's review items exist in every tenant in scope (or it ended), a bar of tenants on a terminal. */
function followMaterialisation(api: ApiClient, first: CampaignRun): Promise<CampaignRun> {
  return follow({
    label: 'campaign run',
    id: first.runId,
    unit: 'tenants',
    first,
    read: () => api.request<CampaignRun>('GET', `/v1/campaign-runs/${enc(first.runId)}`),
    progress: (run) => ({ done: run.materialisedCount, total: run.tenantCount, state: run.status }),
    finished: (run) =>
      ['completed', 'cancelled'].includes(run.status) || (run.tenantCount !== null && run.materialisedCount >= run.tenantCount),
    resume: `tenure campaign progress ${first.runId} --wait`,
  });
}

/** `tenure campaign …`: campaign definitions and runs (MSP staff). */
export function registerCampaignCommands(program: Command): void {
  const campaign = program.command('campaign').description('Recertification campaigns: definitions and runs');
  const cmd = (name: string, description: string) => withConnection(campaign.command(name).description(description));

  cmd('create', 'Create a definition from a JSON file (the definition document)')
    .requiredOption('--name <name>')
    .requiredOption('--file <definition.json>')
    .action((o: Conn & { name: string; file: string }) =>
      runAction(async () => apiClient(o).request('POST', '/v1/campaigns', { name: o.name, definition: await readJson(o.file) })),
    );

  cmd('update', 'Write a new version of a definition')
    .argument('<definitionId>')
    .requiredOption('--expected-version <n>', 'the version this change is based on')
    .requiredOption('--file <definition.json>')
    .option('--name <name>')
    .action((definitionId: string, o: Conn & { expectedVersion: string; file: string; name?: string }) =>
      runAction(async () =>
        apiClient(o).request('PUT', `/v1/campaigns/${enc(definitionId)}`, {
          expectedVersion: Number(o.expectedVersion),
          ...(o.name ? { name: o.name } : {}),
          definition: await readJson(o.file),
        }),
      ),
    );

  cmd('delete', 'Delete a definition (no run of it may be going); its runs and reports stay')
    .argument('<definitionId>')
    .action((definitionId: string, o: Conn) => runAction(() => apiClient(o).request('DELETE', `/v1/campaigns/${enc(definitionId)}`)));

  cmd('list', 'List definitions').action((o: Conn) => runAction(() => apiClient(o).request('GET', '/v1/campaigns')));

  cmd('show', 'Show a definition, or one of its versions')
    .argument('<definitionId>')
    .option('--version <n>')
    .action((definitionId: string, o: Conn & { version?: string }) =>
      runAction(() => apiClient(o).request('GET', `/v1/campaigns/${enc(definitionId)}${o.version ? `/versions/${enc(o.version)}` : ''}`)),
    );

  cmd('versions', 'List the versions of a definition')
    .argument('<definitionId>')
    .action((definitionId: string, o: Conn) => runAction(() => apiClient(o).request('GET', `/v1/campaigns/${enc(definitionId)}/versions`)));

  cmd('start', 'Start a run now (ad hoc)')
    .argument('<definitionId>')
    .option('--wait', "show its materialisation until every tenant's review items exist")
    .action((definitionId: string, o: Conn & { wait?: boolean }) =>
      runAction(async () => {
        const api = apiClient(o);
        const run = await api.request<CampaignRun>('POST', `/v1/campaigns/${enc(definitionId)}/runs`);
        return o.wait ? followMaterialisation(api, run) : run;
      }),
    );

  cmd('runs', 'List the runs of a definition')
    .argument('<definitionId>')
    .action((definitionId: string, o: Conn) => runAction(() => apiClient(o).request('GET', `/v1/campaigns/${enc(definitionId)}/runs`)));

  cmd('progress', 'Show a run and each tenant’s review counts')
    .argument('<runId>')
    .option('--wait', "show its materialisation until every tenant's review items exist")
    .action((runId: string, o: Conn & { wait?: boolean }) =>
      runAction(async () => {
        const api = apiClient(o);
        const run = await api.request<CampaignRun>('GET', `/v1/campaign-runs/${enc(runId)}`);
        return o.wait ? followMaterialisation(api, run) : run;
      }),
    );

  cmd('cancel', "Cancel a run (or, with --tenant, only that tenant's review): what reviewers decided is settled, nothing else")
    .argument('<runId>')
    .option('--tenant <tenantId>', "only this tenant's review")
    .option('--reason <text>')
    .action((runId: string, o: Conn & { tenant?: string; reason?: string }) =>
      runAction(() =>
        apiClient(o).request(
          'POST',
          o.tenant ? `/v1/tenants/${enc(o.tenant)}/reviews/${enc(runId)}/cancel` : `/v1/campaign-runs/${enc(runId)}/cancel`,
          o.reason ? { reason: o.reason } : {},
        ),
      ),
    );

  cmd('reassign', "Move a reviewer's undecided items to another member of the tenant's own staff")
    .requiredOption('--tenant <tenantId>')
    .argument('<runId>')
    .requiredOption('--from <actorId>')
    .requiredOption('--to <actorId>')
    .option('--items <itemIds...>', 'only these items')
    .option('--comment <text>')
    .action((runId: string, o: Conn & { tenant: string; from: string; to: string; items?: string[]; comment?: string }) =>
      runAction(() =>
        apiClient(o).request('POST', `/v1/tenants/${enc(o.tenant)}/reviews/${enc(runId)}/reassign`, {
          from: o.from,
          to: o.to,
          ...(o.items ? { itemIds: o.items } : {}),
          ...(o.comment ? { comment: o.comment } : {}),
        }),
      ),
    );

  cmd('nudge', 'Remind the reviewers still owing decisions at the open stage now')
    .requiredOption('--tenant <tenantId>')
    .argument('<runId>')
    .option('--reviewer <actorIds...>', 'only these reviewers')
    .option('--comment <text>')
    .action((runId: string, o: Conn & { tenant: string; reviewer?: string[]; comment?: string }) =>
      runAction(() =>
        apiClient(o).request('POST', `/v1/tenants/${enc(o.tenant)}/reviews/${enc(runId)}/nudge`, {
          ...(o.reviewer ? { reviewerIds: o.reviewer } : {}),
          ...(o.comment ? { comment: o.comment } : {}),
        }),
      ),
    );

  cmd('schedule', "Show or control the definition's Schedule: show, pause, unpause or trigger")
    .argument('<action>', 'show | pause | unpause | trigger')
    .argument('<definitionId>')
    .option('--note <text>')
    .action((action: string, definitionId: string, o: Conn & { note?: string }) =>
      runAction(() =>
        action === 'show'
          ? apiClient(o).request('GET', `/v1/campaigns/${enc(definitionId)}/schedule`)
          : apiClient(o).request('POST', `/v1/campaigns/${enc(definitionId)}/schedule/${enc(action)}`, o.note ? { note: o.note } : {}),
      ),
    );

  cmd('deadline', "Move the deadline of a tenant's open stage (a past time closes it now)")
    .requiredOption('--tenant <tenantId>')
    .argument('<runId>')
    .requiredOption('--closes-at <iso>')
    .option('--comment <text>')
    .action((runId: string, o: Conn & { tenant: string; closesAt: string; comment?: string }) =>
      runAction(() =>
        apiClient(o).request('POST', `/v1/tenants/${enc(o.tenant)}/reviews/${enc(runId)}/deadline`, {
          closesAt: o.closesAt,
          ...(o.comment ? { comment: o.comment } : {}),
        }),
      ),
    );
}

/** `tenure review …`: a tenant reviewer's inbox and decisions. */
export function registerReviewCommands(program: Command): void {
  const review = program.command('review').description("Access reviews: a tenant reviewer's inbox and decisions");
  const cmd = (name: string, description: string) =>
    withConnection(review.command(name).description(description).requiredOption('--tenant <tenantId>'));
  const base = (tenant: string) => `/v1/tenants/${enc(tenant)}/reviews`;

  cmd('list', "The tenant's reviews").action((o: Conn & { tenant: string }) =>
    runAction(() => apiClient(o).request('GET', base(o.tenant))),
  );

  cmd('items', 'Review items; --mine for your inbox')
    .option('--mine', 'only items waiting for your decision')
    .option('--run <runId>')
    .option('--role <role>')
    .option('--subject <userId>')
    .option('--recommendation <keep|revoke>')
    .option('--decided <true|false>')
    .option('--limit <n>')
    .option('--cursor <cursor>')
    .action(
      (
        o: Conn & {
          tenant: string;
          mine?: boolean;
          run?: string;
          role?: string;
          subject?: string;
          recommendation?: string;
          decided?: string;
          limit?: string;
          cursor?: string;
        },
      ) =>
        runAction(() => {
          const query = new URLSearchParams(
            Object.entries({
              assignedTo: o.mine ? 'me' : undefined,
              runId: o.run,
              role: o.role,
              subjectId: o.subject,
              recommendation: o.recommendation,
              decided: o.decided,
              limit: o.limit,
              cursor: o.cursor,
            }).filter((e): e is [string, string] => e[1] !== undefined),
          ).toString();
          return apiClient(o).request('GET', `${base(o.tenant)}/items${query ? `?${query}` : ''}`);
        }),
    );

  cmd('report', "A completed or cancelled review's report: JSON (with its hash), CSV or a printable HTML page")
    .argument('<runId>')
    .option('--format <format>', 'json | csv | html', 'json')
    .option('--out <file>', 'write it to this file instead of standard output')
    .action((runId: string, o: Conn & { tenant: string; format: string; out?: string }) =>
      runAction(() =>
        fetchDocument(apiClient(o), `${base(o.tenant)}/${enc(runId)}/report?format=${enc(o.format)}`, o.out, 'x-report-hash'),
      ),
    );

  cmd('decide', 'Decide items: keep, revoke or recommended (accept the recommendation)')
    .argument('<decision>', 'keep | revoke | recommended')
    .argument('<itemIds...>')
    .option('--justification <text>')
    .action((decision: string, itemIds: string[], o: Conn & { tenant: string; justification?: string }) =>
      runAction(() =>
        apiClient(o).request('POST', `${base(o.tenant)}/decisions`, {
          decisions: itemIds.map((itemId) => ({ itemId, decision })),
          ...(o.justification ? { justification: o.justification } : {}),
        }),
      ),
    );
}
