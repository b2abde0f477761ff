import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { apiClient, runAction, withConnection } from '../api-client.js';

type Conn = { url?: string; token?: string };

/** `tenure tenant clone`: a new tenant from another's roles, settings, policy and pin (none of its users or secrets). */
export function registerTenantCloneCommand(tenant: Command): void {
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  withConnection(
    tenant
      .command('clone')
      .description('Clone a tenant for onboarding: its roles, security settings, policy and template pin; none of its users or secrets')
      .argument('<sourceTenantId>')
      .requiredOption('--slug <slug>')
      .requiredOption('--name <name>')
      .option('--tag <tag>', 'a tag of the new tenant (repeatable)', collect)
      .option('--idempotency-key <key>', 'run it again with the same key to get the same tenant (default: a new key, printed)'),
  ).action((sourceTenantId: string, o: Conn & { slug: string; name: string; tag?: string[]; idempotencyKey?: string }) =>
    runAction(() => {
      const key = o.idempotencyKey ?? randomUUID();
      if (!o.idempotencyKey) process.stderr.write(`idempotency key: ${key} (repeat with --idempotency-key ${key} to retry safely)\n`);
      return apiClient(o).request(
        'POST',
        `/v1/tenants/${encodeURIComponent(sourceTenantId)}/clone`,
        { slug: o.slug, name: o.name, ...(o.tag ? { tags: o.tag } : {}) },
        { 'idempotency-key': key },
      );
    }),
  );
}
