import type { DirectoryConnector } from '../../core/directory/connector.js';
import type { Pool } from '../../db/pool.js';

/**
 * What a tenant holds where a template apply writes and a rollback restores: its directory's
 * roles and security settings (read through the connector), its policy as in force and its pin.
 */
export interface TenantState {
  roles: { name: string; description: string; privileged: boolean }[];
  settings: Record<string, unknown>;
  policyVersion: number;
  policy: unknown;
  appliedVersion: number | null;
}

/** Canonical JSON: objects with sorted keys, so equal content compares equal. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
}

export async function readTenantState(owner: Pool, directory: DirectoryConnector, tenantId: string): Promise<TenantState> {
  const roles = (await directory.listAllRoles(tenantId)).map((r) => ({
    name: r.name,
    description: r.description,
    privileged: r.privileged,
  }));
  const settings = { ...(await directory.getSecuritySettings(tenantId)) };
  const { rows } = await owner.query<{ version: number; document: unknown; applied_version: number | null }>(
    `SELECT p.version, p.document, (SELECT a.applied_version FROM template_assignments a WHERE a.tenant_id = p.tenant_id) AS applied_version
       FROM tenant_policies p WHERE p.tenant_id = $1 ORDER BY p.version DESC LIMIT 1`,
    [tenantId],
  );
  const row = rows[0]!;
  return { roles, settings, policyVersion: row.version, policy: row.document, appliedVersion: row.applied_version };
}

/** The parts of `a` and `b` that differ, by name (`roles`, `settings`, `policy`, `pin`); the policy by content, not by version number. */
export function differences(a: TenantState, b: TenantState): string[] {
  return [
    ...(canonical(a.roles) !== canonical(b.roles) ? ['roles'] : []),
    ...(canonical(a.settings) !== canonical(b.settings) ? ['settings'] : []),
    ...(canonical(a.policy) !== canonical(b.policy) ? ['policy'] : []),
    ...(a.appliedVersion !== b.appliedVersion ? ['pin'] : []),
  ];
}
