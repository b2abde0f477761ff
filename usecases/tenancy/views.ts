import type { DirectoryDeps } from '../../core/directory/connector.js';
import { badRequest, conflict } from '../../core/errors.js';
import {
  TenantPolicyDocument,
  type ActorView,
  type BindingView,
  type PolicyView,
  type TenantView,
  type TokenView,
} from '../../core/tenancy/schemas.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { currentPolicy, type ActorRow, type BindingRow, type PolicyRow, type TenantRow, type TokenRow } from '../../db/tenancy.js';

/** What the tenancy use cases need: the database and, to check policies against them, the tenants' directories. */
export interface TenancyDeps extends DirectoryDeps {
  pool: Pool;
  /** WEBHOOK_ALLOW_PRIVATE_NETWORKS: webhooks may point at non-public addresses (off when absent). */
  allowPrivateWebhooks?: boolean;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export const tenantView = (t: TenantRow, policyVersion: number): TenantView => ({
  id: t.id,
  slug: t.slug,
  name: t.name,
  status: t.status,
  tags: t.tags ?? [],
  policyVersion,
  createdAt: t.created_at.toISOString(),
  updatedAt: t.updated_at.toISOString(),
});
/**
 * A version as it is in force: stored documents are read through the current schema, so a
 * version written before a setting existed shows that setting's default (governance, say).
 */
const inForce = (document: Record<string, unknown>): TenantPolicyDocument => {
  const parsed = TenantPolicyDocument.safeParse(document);
  return parsed.success ? parsed.data : (document as TenantPolicyDocument);
};
export const policyView = (p: PolicyRow): PolicyView => ({
  tenantId: p.tenant_id,
  version: p.version,
  document: inForce(p.document),
  createdAt: p.created_at.toISOString(),
  createdBy: p.created_by,
  changeId: p.change_id ?? null,
  approvedBy: p.approved_by ?? null,
});
export const actorView = (a: ActorRow): ActorView => ({
  id: a.id,
  kind: a.kind,
  displayName: a.display_name,
  email: a.email,
  homeTenantId: a.home_tenant_id,
  oidcSubject: a.oidc_subject,
  status: a.status,
  createdAt: a.created_at.toISOString(),
});
export const bindingView = (b: BindingRow): BindingView => ({
  id: b.id,
  actorId: b.actor_id,
  role: b.role,
  tenantId: b.tenant_id,
  createdAt: b.created_at.toISOString(),
  createdBy: b.created_by,
});
export const tokenView = (t: TokenRow): TokenView => ({
  id: t.id,
  actorId: t.actor_id,
  name: t.name,
  prefix: t.prefix,
  expiresAt: iso(t.expires_at),
  revokedAt: iso(t.revoked_at),
  lastUsedAt: iso(t.last_used_at),
  createdAt: t.created_at.toISOString(),
});

export async function policyVersionOf(client: PoolClient, tenantId: string): Promise<number> {
  return (await currentPolicy(client, tenantId))?.version ?? 0;
}

/** Turns constraint violations the caller caused into 409 / 400 instead of a 500. */
export async function translate<T>(
  work: Promise<T>,
  messages: { unique?: string; foreignKey?: { path: string; message: string } },
): Promise<T> {
  try {
    return await work;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === '23505' && messages.unique) throw conflict(messages.unique);
    if (code === '23503' && messages.foreignKey) throw badRequest('A referenced object does not exist.', [messages.foreignKey]);
    throw error;
  }
}
