import type { Command } from 'commander';
import { apiClient, runAction, withConnection } from './api-client.js';
import { registerTenantCloneCommand } from './templates/clone.js';

type Conn = { url?: string; token?: string };

const query = (params: Record<string, string | undefined>) => {
  const entries = Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined);
  return entries.length ? `?${new URLSearchParams(entries).toString()}` : '';
};

/** `tenure tenant|actor|binding|token|whoami`: identity administration through the API. */
export function registerAdminCommands(program: Command): void {
  withConnection(program.command('whoami').description('Show the caller and its role bindings')).action((o: Conn) =>
    runAction(() => apiClient(o).request('GET', '/v1/me')),
  );

  const tenant = program.command('tenant').description('Manage tenants (MSP admins)');
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  withConnection(
    tenant
      .command('create')
      .requiredOption('--slug <slug>')
      .requiredOption('--name <name>')
      .option('--tag <tag>', 'a tag campaigns may scope by (repeatable)', collect),
  ).action((o: Conn & { slug: string; name: string; tag?: string[] }) =>
    runAction(() => apiClient(o).request('POST', '/v1/tenants', { slug: o.slug, name: o.name, ...(o.tag ? { tags: o.tag } : {}) })),
  );
  withConnection(
    tenant
      .command('update')
      .description('Rename a tenant or replace its tags')
      .argument('<tenantId>')
      .option('--name <name>')
      .option('--tag <tag>', 'the tenant’s tags from now on (repeatable)', collect)
      .option('--no-tags', 'remove every tag'),
  ).action((id: string, o: Conn & { name?: string; tag?: string[]; tags?: boolean }) =>
    runAction(() =>
      apiClient(o).request('PATCH', `/v1/tenants/${encodeURIComponent(id)}`, {
        ...(o.name ? { name: o.name } : {}),
        ...(o.tag ? { tags: o.tag } : o.tags === false ? { tags: [] } : {}),
      }),
    ),
  );
  withConnection(tenant.command('list').option('--status <status>', 'active or suspended')).action((o: Conn & { status?: string }) =>
    runAction(() => apiClient(o).request('GET', `/v1/tenants${query({ status: o.status })}`)),
  );
  withConnection(tenant.command('show').argument('<tenantId>')).action((id: string, o: Conn) =>
    runAction(() => apiClient(o).request('GET', `/v1/tenants/${encodeURIComponent(id)}`)),
  );
  for (const verb of ['suspend', 'resume'] as const) {
    withConnection(tenant.command(verb).argument('<tenantId>')).action((id: string, o: Conn) =>
      runAction(() => apiClient(o).request('POST', `/v1/tenants/${encodeURIComponent(id)}/${verb}`)),
    );
  }

  registerTenantCloneCommand(tenant);

  const actor = program.command('actor').description('Manage actors: people and service accounts (MSP admins)');
  withConnection(
    actor
      .command('create')
      .requiredOption('--kind <kind>', 'msp_staff, tenant_staff or service_account')
      .requiredOption('--name <displayName>')
      .option('--email <email>')
      .option('--tenant <tenantId>', 'home tenant (tenant staff)')
      .option('--oidc-subject <sub>', 'the `sub` claim that identifies this actor in OIDC tokens'),
  ).action((o: Conn & { kind: string; name: string; email?: string; tenant?: string; oidcSubject?: string }) =>
    runAction(() =>
      apiClient(o).request('POST', '/v1/actors', {
        kind: o.kind,
        displayName: o.name,
        ...(o.email ? { email: o.email } : {}),
        ...(o.tenant ? { homeTenantId: o.tenant } : {}),
        ...(o.oidcSubject ? { oidcSubject: o.oidcSubject } : {}),
      }),
    ),
  );
  withConnection(actor.command('list')).action((o: Conn) => runAction(() => apiClient(o).request('GET', '/v1/actors')));
  withConnection(actor.command('disable').argument('<actorId>')).action((id: string, o: Conn) =>
    runAction(() => apiClient(o).request('POST', `/v1/actors/${encodeURIComponent(id)}/disable`)),
  );

  const binding = program.command('binding').description('Manage role bindings (MSP admins)');
  withConnection(
    binding
      .command('add')
      .requiredOption('--actor <actorId>')
      .requiredOption('--role <role>')
      .option('--tenant <tenantId>', 'omit for an MSP-wide binding'),
  ).action((o: Conn & { actor: string; role: string; tenant?: string }) =>
    runAction(() => apiClient(o).request('POST', '/v1/role-bindings', { actorId: o.actor, role: o.role, tenantId: o.tenant ?? null })),
  );
  withConnection(binding.command('list').option('--actor <actorId>').option('--tenant <tenantId>')).action(
    (o: Conn & { actor?: string; tenant?: string }) =>
      runAction(() => apiClient(o).request('GET', `/v1/role-bindings${query({ actorId: o.actor, tenantId: o.tenant })}`)),
  );
  withConnection(binding.command('remove').argument('<bindingId>')).action((id: string, o: Conn) =>
    runAction(() => apiClient(o).request('DELETE', `/v1/role-bindings/${encodeURIComponent(id)}`)),
  );

  const token = program.command('token').description('Manage API tokens (MSP admins); a new token is shown once');
  withConnection(
    token
      .command('create')
      .requiredOption('--actor <actorId>')
      .requiredOption('--name <name>')
      .option('--expires-in-days <days>', 'expiry, in days from now')
      .option('--expires-at <iso>', 'expiry, as an ISO 8601 time'),
  ).action((o: Conn & { actor: string; name: string; expiresInDays?: string; expiresAt?: string }) =>
    runAction(() => {
      const expiresAt =
        o.expiresAt ?? (o.expiresInDays ? new Date(Date.now() + Number(o.expiresInDays) * 86_400_000).toISOString() : undefined);
      return apiClient(o).request('POST', '/v1/tokens', { actorId: o.actor, name: o.name, ...(expiresAt ? { expiresAt } : {}) });
    }),
  );
  withConnection(token.command('list').option('--actor <actorId>')).action((o: Conn & { actor?: string }) =>
    runAction(() => apiClient(o).request('GET', `/v1/tokens${query({ actorId: o.actor })}`)),
  );
  withConnection(token.command('revoke').argument('<tokenId>')).action((id: string, o: Conn) =>
    runAction(() => apiClient(o).request('DELETE', `/v1/tokens/${encodeURIComponent(id)}`)),
  );
}
