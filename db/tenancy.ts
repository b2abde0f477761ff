import { randomUUID } from 'node:crypto';
import type { ActorKind, Role } from '../core/tenancy/authz.js';
import type { PoolClient } from './pool.js';

export interface TenantRow {
  id: string;
  slug: string;
  name: string;
  status: 'active' | 'suspended';
  created_at: Date;
  created_by: string;
  updated_at: Date;
}

export interface PolicyRow {
  tenant_id: string;
  version: number;
  document: Record<string, unknown>;
  created_at: Date;
  created_by: string;
}

export interface ActorRow {
  id: string;
  kind: ActorKind;
  display_name: string;
  email: string | null;
  home_tenant_id: string | null;
  oidc_subject: string | null;
  status: 'active' | 'disabled';
  created_at: Date;
  created_by: string;
}

export interface BindingRow {
  id: string;
  actor_id: string;
  role: Role;
  tenant_id: string | null;
  created_at: Date;
  created_by: string;
}

export interface TokenRow {
  id: string;
  actor_id: string;
  name: string;
  prefix: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  created_at: Date;
  created_by: string;
}

export async function insertTenant(
  client: PoolClient,
  t: { id?: string; slug: string; name: string; createdBy: string },
): Promise<TenantRow> {
  const { rows } = await client.query<TenantRow>('INSERT INTO tenants (id, slug, name, created_by) VALUES ($1, $2, $3, $4) RETURNING *', [
    t.id ?? randomUUID(),
    t.slug,
    t.name,
    t.createdBy,
  ]);
  return rows[0]!;
}

export async function insertPolicyVersion(
  client: PoolClient,
  p: { tenantId: string; version: number; document: Record<string, unknown>; createdBy: string },
): Promise<PolicyRow> {
  const { rows } = await client.query<PolicyRow>(
    'INSERT INTO tenant_policies (tenant_id, version, document, created_by) VALUES ($1, $2, $3, $4) RETURNING *',
    [p.tenantId, p.version, JSON.stringify(p.document), p.createdBy],
  );
  return rows[0]!;
}

export async function currentPolicy(client: PoolClient, tenantId: string): Promise<PolicyRow | undefined> {
  const { rows } = await client.query<PolicyRow>('SELECT * FROM tenant_policies WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1', [
    tenantId,
  ]);
  return rows[0];
}

export async function insertActor(
  client: PoolClient,
  a: {
    id?: string;
    kind: ActorKind;
    displayName: string;
    email?: string | null;
    homeTenantId?: string | null;
    oidcSubject?: string | null;
    createdBy: string;
  },
): Promise<ActorRow> {
  const { rows } = await client.query<ActorRow>(
    `INSERT INTO actors (id, kind, display_name, email, home_tenant_id, oidc_subject, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
    [a.id ?? randomUUID(), a.kind, a.displayName, a.email ?? null, a.homeTenantId ?? null, a.oidcSubject ?? null, a.createdBy],
  );
  return rows[0]!;
}

export async function insertBinding(
  client: PoolClient,
  b: { actorId: string; role: Role; tenantId: string | null; createdBy: string },
): Promise<BindingRow> {
  const { rows } = await client.query<BindingRow>(
    'INSERT INTO role_bindings (id, actor_id, role, tenant_id, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING *',
    [randomUUID(), b.actorId, b.role, b.tenantId, b.createdBy],
  );
  return rows[0]!;
}

export async function insertToken(
  client: PoolClient,
  t: { actorId: string; name: string; hash: Buffer; prefix: string; expiresAt: Date | null; createdBy: string },
): Promise<TokenRow> {
  const { rows } = await client.query<TokenRow>(
    `INSERT INTO api_tokens (id, actor_id, name, token_hash, prefix, expires_at, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     RETURNING id, actor_id, name, prefix, expires_at, revoked_at, last_used_at, created_at, created_by`,
    [randomUUID(), t.actorId, t.name, t.hash, t.prefix, t.expiresAt, t.createdBy],
  );
  return rows[0]!;
}
