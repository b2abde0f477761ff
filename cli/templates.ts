import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { apiClient, runAction, withConnection } from './api-client.js';
import { registerTemplateReportCommand } from './templates/report.js';
import { registerTemplateRollbackCommands } from './template-rollbacks.js';

type Conn = { url?: string; token?: string };
const enc = encodeURIComponent;

async function readDocument(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8')) as unknown;
}

/** `--param name=value`, repeatable, into the parameters object. */
function collectParam(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at < 1) throw new Error(`--param ${value}: expected name=value`);
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

/** `tenure template …`: templates and their versions (template owners), tenants' pins and dry-runs. */
export function registerTemplateCommands(program: Command): void {
  const template = program.command('template').description('Template baselines: versions, approval, diff, assignment, dry-run');
  const cmd = (name: string, description: string) => withConnection(template.command(name).description(description));
  const versionPath = (templateId: string, version: string) => `/v1/templates/${enc(templateId)}/versions/${enc(version)}`;

  cmd('create', 'Create a template; its first version is a draft (the template document as JSON)')
    .requiredOption('--name <name>', 'lower-case letters, digits and dashes')
    .requiredOption('--file <template.json>')
    .option('--description <text>')
    .action((o: Conn & { name: string; file: string; description?: string }) =>
      runAction(async () =>
        apiClient(o).request('POST', '/v1/templates', {
          name: o.name,
          ...(o.description ? { description: o.description } : {}),
          document: await readDocument(o.file),
        }),
      ),
    );

  cmd('list', 'List templates').action((o: Conn) => runAction(() => apiClient(o).request('GET', '/v1/templates')));

  // Versions are positional: `--version` is the program's own option.
  cmd('show', 'Show a template, or one of its versions')
    .argument('<templateId>')
    .argument('[version]')
    .action((templateId: string, version: string | undefined, o: Conn) =>
      runAction(() => apiClient(o).request('GET', version ? versionPath(templateId, version) : `/v1/templates/${enc(templateId)}`)),
    );

  cmd('versions', 'List the versions of a template')
    .argument('<templateId>')
    .action((templateId: string, o: Conn) => runAction(() => apiClient(o).request('GET', `/v1/templates/${enc(templateId)}/versions`)));

  cmd('draft', 'Start a new version (a draft) from a JSON file')
    .argument('<templateId>')
    .requiredOption('--file <template.json>')
    .action((templateId: string, o: Conn & { file: string }) =>
      runAction(async () =>
        apiClient(o).request('POST', `/v1/templates/${enc(templateId)}/versions`, { document: await readDocument(o.file) }),
      ),
    );

  cmd('edit', 'Replace a draft’s document')
    .argument('<templateId>')
    .argument('<version>')
    .requiredOption('--file <template.json>')
    .requiredOption('--expected-updated-at <time>', 'the draft’s updatedAt as you read it')
    .action((templateId: string, version: string, o: Conn & { file: string; expectedUpdatedAt: string }) =>
      runAction(async () =>
        apiClient(o).request('PUT', versionPath(templateId, version), {
          expectedUpdatedAt: o.expectedUpdatedAt,
          document: await readDocument(o.file),
        }),
      ),
    );

  for (const [step, description] of [
    ['propose', 'Propose a draft for approval'],
    ['approve', 'Approve a proposed version (not its author or proposer)'],
    ['reject', 'Send a proposed version back to draft'],
    ['deprecate', 'Deprecate an approved version'],
  ] as const) {
    cmd(step, description)
      .argument('<templateId>')
      .argument('<version>')
      .option('--comment <text>')
      .action((templateId: string, version: string, o: Conn & { comment?: string }) =>
        runAction(() =>
          apiClient(o).request('POST', `${versionPath(templateId, version)}/${step}`, o.comment ? { comment: o.comment } : {}),
        ),
      );
  }

  registerTemplateReportCommand(cmd);

  cmd('diff', 'What changes between two versions, path by path')
    .argument('<templateId>')
    .requiredOption('--from <n>')
    .requiredOption('--to <n>')
    .action((templateId: string, o: Conn & { from: string; to: string }) =>
      runAction(() => apiClient(o).request('GET', `/v1/templates/${enc(templateId)}/diff?from=${enc(o.from)}&to=${enc(o.to)}`)),
    );

  cmd('assign', 'Pin a tenant to an approved version')
    .argument('<templateId>')
    .argument('<version>')
    .requiredOption('--tenant <tenantId>')
    .option('--param <name=value>', 'a parameter value (repeatable)', collectParam, {})
    .action((templateId: string, version: string, o: Conn & { tenant: string; param: Record<string, string> }) =>
      runAction(() =>
        apiClient(o).request('PUT', `/v1/tenants/${enc(o.tenant)}/template`, { templateId, version: Number(version), parameters: o.param }),
      ),
    );

  cmd('assignment', 'Show a tenant’s pin')
    .requiredOption('--tenant <tenantId>')
    .action((o: Conn & { tenant: string }) => runAction(() => apiClient(o).request('GET', `/v1/tenants/${enc(o.tenant)}/template`)));

  cmd('dry-run', 'Plan a version for a tenant (its pin when none is named); changes nothing')
    .argument('[templateId]')
    .argument('[version]')
    .requiredOption('--tenant <tenantId>')
    .option('--param <name=value>', 'a parameter value for this plan (repeatable)', collectParam)
    .action((templateId: string | undefined, version: string | undefined, o: Conn & { tenant: string; param?: Record<string, string> }) =>
      runAction(() =>
        apiClient(o).request('POST', `/v1/tenants/${enc(o.tenant)}/template/dry-run`, {
          ...(templateId ? { templateId } : {}),
          ...(version ? { version: Number(version) } : {}),
          ...(o.param ? { parameters: o.param } : {}),
        }),
      ),
    );

  cmd('apply', 'Apply the tenant’s pinned version (its approvers decide when it loosens control)')
    .requiredOption('--tenant <tenantId>')
    .option('--approval-timeout-minutes <n>')
    .action((o: Conn & { tenant: string; approvalTimeoutMinutes?: string }) =>
      runAction(() =>
        apiClient(o).request(
          'POST',
          `/v1/tenants/${enc(o.tenant)}/template/apply`,
          o.approvalTimeoutMinutes ? { approvalTimeoutMinutes: Number(o.approvalTimeoutMinutes) } : {},
        ),
      ),
    );

  cmd('apply-status', 'Show an apply: status, gate, what it changed, its plan')
    .argument('<rolloutId>')
    .requiredOption('--tenant <tenantId>')
    .action((rolloutId: string, o: Conn & { tenant: string }) =>
      runAction(() => apiClient(o).request('GET', `/v1/tenants/${enc(o.tenant)}/template/applies/${enc(rolloutId)}`)),
    );

  for (const decision of ['approve-apply', 'deny-apply'] as const) {
    cmd(decision, `${decision === 'approve-apply' ? 'Approve' : 'Deny'} an apply at the tenant’s gate (the tenant’s approvers)`)
      .argument('<rolloutId>')
      .requiredOption('--tenant <tenantId>')
      .option('--comment <text>')
      .action((rolloutId: string, o: Conn & { tenant: string; comment?: string }) =>
        runAction(() =>
          apiClient(o).request(
            'POST',
            `/v1/tenants/${enc(o.tenant)}/template/applies/${enc(rolloutId)}/${decision.replace('-apply', '')}`,
            o.comment ? { comment: o.comment } : {},
          ),
        ),
      );
  }
  registerTemplateRollbackCommands(template);
}
