import type { Command } from 'commander';
import { apiClient, fetchDocument, runAction } from '../api-client.js';

type Conn = { url?: string; token?: string };

/** `tenure template report`: the cross-tenant RBAC drift report, as JSON or CSV. */
export function registerTemplateReportCommand(cmd: (name: string, description: string) => Command): void {
  cmd('report', 'Cross-tenant RBAC drift report: privileged roles, members and security settings per tenant, deviations flagged')
    .option('--template <templateId>', 'only the tenants pinned to this template')
    .option('--csv', 'CSV instead of JSON (one row per tenant)')
    .option('--out <file>', 'write it to this file instead of standard output')
    .action((o: Conn & { template?: string; csv?: boolean; out?: string }) =>
      runAction(() => {
        const query = new URLSearchParams({ format: o.csv ? 'csv' : 'json', ...(o.template ? { templateId: o.template } : {}) });
        return fetchDocument(apiClient(o), `/v1/templates/rbac-report?${query.toString()}`, o.out);
      }),
    );
}
