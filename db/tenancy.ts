import { randomBytes, randomUUID } from 'node:crypto';
import type { ActionContext } from '../core/audit/context.js';
import type { ActorKind, Role } from '../core/tenancy/authz.js';
import { notFound } from '../core/errors.js';
import { appendActionEvent } from './audit.js';
import type { Pool, PoolClient } from './pool.js';
import type { Reader } from './scope.js';

export interface TenantRow {
  id: string;
  slug: string;
  name: string;
  status: 'active' | 'suspended';
  tags: string[];
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
  /** Set on a version an approved policy change wrote (migration 0010); null on direct writes. */
  change_id: string | null;
  approved_by: string[] | null;
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
  t: { id?: string; slug: string; name: string; tags?: readonly string[]; createdBy: string },
): Promise<TenantRow> {
  const { rows } = await client.query<TenantRow>(
    'INSERT INTO tenants (id, slug, name, tags, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING *',
    [t.id ?? randomUUID(), t.slug, t.name, t.tags ?? [], t.createdBy],
  );
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

export async function currentPolicy(client: Reader, tenantId: string): Promise<PolicyRow | undefined> {
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

// ---------------------------------------------------------------- tenants

export async function listTenantRows(
  client: PoolClient,
  filter: { ids: string[] | null; status?: TenantRow['status'] },
): Promise<(TenantRow & { policy_version: number })[]> {
  const { rows } = await client.query<TenantRow & { policy_version: number }>(
    `SELECT t.*, coalesce((SELECT max(version) FROM tenant_policies p WHERE p.tenant_id = t.id), 0) AS policy_version
       FROM tenants t
      WHERE ($1::uuid[] IS NULL OR t.id = ANY($1)) AND ($2::text IS NULL OR t.status = $2)
      ORDER BY t.slug`,
    [filter.ids, filter.status ?? null],
  );
  return rows;
}

/** `forUpdate` locks the row, which also serialises policy versioning per tenant. */
export async function getTenantRow(client: PoolClient, tenantId: string, forUpdate = false): Promise<TenantRow | undefined> {
  const { rows } = await client.query<TenantRow>(`SELECT * FROM tenants WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [tenantId]);
  return rows[0];
}

export async function tenantExists(client: PoolClient, tenantId: string): Promise<boolean> {
  const { rowCount } = await client.query('SELECT 1 FROM tenants WHERE id = $1', [tenantId]);
  return Boolean(rowCount);
}

/** Whether this database has never had a tenant. */
export async function hasNoTenants(client: PoolClient): Promise<boolean> {
  return (await client.query('SELECT 1 FROM tenants LIMIT 1')).rowCount === 0;
}

export async function updateTenantRow(
  client: PoolClient,
  tenantId: string,
  change: { name?: string; tags?: readonly string[] } | { status: TenantRow['status'] },
): Promise<TenantRow | undefined> {
  const { rows } = await client.query<TenantRow>(
    `UPDATE tenants SET name = coalesce($2, name), tags = coalesce($3, tags), status = coalesce($4, status), updated_at = now()
      WHERE id = $1 RETURNING *`,
    [
      tenantId,
      'name' in change ? (change.name ?? null) : null,
      'tags' in change ? (change.tags ?? null) : null,
      'status' in change ? change.status : null,
    ],
  );
  return rows[0];
}

// ---------------------------------------------------------------- policies

export async function policyVersion(client: PoolClient, tenantId: string, version: number): Promise<PolicyRow | undefined> {
  const { rows } = await client.query<PolicyRow>('SELECT * FROM tenant_policies WHERE tenant_id = $1 AND version = $2', [
    tenantId,
    version,
  ]);
  return rows[0];
}

export async function listPolicyRows(client: PoolClient, tenantId: string): Promise<PolicyRow[]> {
  const { rows } = await client.query<PolicyRow>('SELECT * FROM tenant_policies WHERE tenant_id = $1 ORDER BY version DESC', [tenantId]);
  return rows;
}

/** The webhook URL of the tenant's current policy, read without parsing the whole document. */
export async function currentWebhookUrl(client: PoolClient, tenantId: string): Promise<string | null> {
  const { rows } = await client.query<{ url: string | null }>(
    `SELECT document->>'notificationWebhookUrl' AS url FROM tenant_policies WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1`,
    [tenantId],
  );
  return rows[0]?.url ?? null;
}

// ---------------------------------------------------------------- actors

export async function listActorRows(client: PoolClient): Promise<ActorRow[]> {
  return (await client.query<ActorRow>('SELECT * FROM actors ORDER BY display_name, id')).rows;
}

export async function getActorRow(client: PoolClient, actorId: string, forUpdate = false): Promise<ActorRow | undefined> {
  const { rows } = await client.query<ActorRow>(`SELECT * FROM actors WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [actorId]);
  return rows[0];
}

export async function disableActorRow(client: PoolClient, actorId: string): Promise<ActorRow> {
  return (await client.query<ActorRow>("UPDATE actors SET status = 'disabled' WHERE id = $1 RETURNING *", [actorId])).rows[0]!;
}

/** Whether an active actor holds one of `roles` in the tenant or MSP-wide. */
export async function actorHoldsRole(client: PoolClient, actorId: string, roles: readonly Role[], tenantId: string): Promise<boolean> {
  const { rows } = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM actors a JOIN role_bindings b ON b.actor_id = a.id
      WHERE a.id = $1 AND a.status = 'active' AND b.role = ANY($2) AND (b.tenant_id IS NULL OR b.tenant_id = $3)`,
    [actorId, roles, tenantId],
  );
  return Boolean(rows[0]?.n);
}

export async function activeMspAdminExists(client: PoolClient): Promise<boolean> {
  const { rowCount } = await client.query(
    `SELECT 1 FROM role_bindings b JOIN actors a ON a.id = b.actor_id
      WHERE b.role = 'msp_admin' AND b.tenant_id IS NULL AND a.status = 'active' LIMIT 1`,
  );
  return Boolean(rowCount);
}

// ---------------------------------------------------------------- role bindings

export async function listBindingRows(client: PoolClient, filter: { actorId?: string; tenantId?: string }): Promise<BindingRow[]> {
  const { rows } = await client.query<BindingRow>(
    `SELECT * FROM role_bindings WHERE ($1::uuid IS NULL OR actor_id = $1) AND ($2::uuid IS NULL OR tenant_id = $2)
      ORDER BY created_at, id`,
    [filter.actorId ?? null, filter.tenantId ?? null],
  );
  return rows;
}

/** The actor's bindings that count now: MSP-wide ones and those in active tenants. */
export async function liveBindingsOf(client: PoolClient, actorId: string): Promise<Pick<BindingRow, 'id' | 'role' | 'tenant_id'>[]> {
  const { rows } = await client.query<Pick<BindingRow, 'id' | 'role' | 'tenant_id'>>(
    `SELECT b.id, b.role, b.tenant_id FROM role_bindings b
       LEFT JOIN tenants t ON t.id = b.tenant_id
      WHERE b.actor_id = $1 AND (b.tenant_id IS NULL OR t.status = 'active')`,
    [actorId],
  );
  return rows;
}

export async function deleteBindingRow(client: PoolClient, bindingId: string): Promise<BindingRow | undefined> {
  return (await client.query<BindingRow>('DELETE FROM role_bindings WHERE id = $1 RETURNING *', [bindingId])).rows[0];
}

// ---------------------------------------------------------------- API tokens

/** Never the hash: a token row as the API shows it. */
const TOKEN_COLUMNS = 'id, actor_id, name, prefix, expires_at, revoked_at, last_used_at, created_at, created_by';

export async function listTokenRows(client: PoolClient, actorId?: string): Promise<TokenRow[]> {
  const { rows } = await client.query<TokenRow>(
    `SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE ($1::uuid IS NULL OR actor_id = $1) ORDER BY created_at, id`,
    [actorId ?? null],
  );
  return rows;
}

export async function getTokenRowForUpdate(client: PoolClient, tokenId: string): Promise<TokenRow | undefined> {
  return (await client.query<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE id = $1 FOR UPDATE`, [tokenId])).rows[0];
}

export async function revokeTokenRow(client: PoolClient, tokenId: string): Promise<TokenRow> {
  return (await client.query<TokenRow>(`UPDATE api_tokens SET revoked_at = now() WHERE id = $1 RETURNING ${TOKEN_COLUMNS}`, [tokenId]))
    .rows[0]!;
}

/** Who a token or OIDC subject is (migration 0030's tenure_auth_principal), as one row. */
export interface PrincipalRow {
  /** Null for an OIDC subject. */
  tokenId: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  actorId: string;
  status: ActorRow['status'];
  kind: ActorKind;
  displayName: string;
  bindings: { id: string; role: Role; tenantId: string | null }[];
}

/**
 * The token (by hash) or OIDC subject, its actor and the actor's live bindings, in one round trip
 * and no explicit transaction: the function scopes itself to the MSP for its own statement.
 */
export async function principalRow(pool: Pool, key: { tokenHash: Buffer } | { oidcSubject: string }): Promise<PrincipalRow | undefined> {
  const { rows } = await pool.query<{ p: PrincipalRow | null }>('SELECT tenure_auth_principal($1, $2) AS p', [
    'tokenHash' in key ? key.tokenHash : null,
    'oidcSubject' in key ? key.oidcSubject : null,
  ]);
  return rows[0]?.p ?? undefined;
}

/** Records when tokens were last used, many at once; a later time already stored is kept. */
export async function recordTokenUse(client: PoolClient, uses: { tokenId: string; at: Date }[]): Promise<void> {
  await client.query(
    `UPDATE api_tokens t SET last_used_at = u.at FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)
      WHERE t.id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < u.at)`,
    [uses.map((u) => u.tokenId), uses.map((u) => u.at)],
  );
}

// ---------------------------------------------------------------- webhook signing secret

/**
 * The secret that signs this tenant's webhook bodies (HMAC-SHA256 over `<timestamp>.<body>`);
 * created on first read, replaced on rotation. Both are audited in the caller's transaction (a
 * tenant scope); the secret itself never is.
 */
export async function webhookSecretOf(
  client: PoolClient,
  ctx: ActionContext,
  tenantId: string,
  rotate: boolean,
): Promise<{ secret: string; createdAt: string }> {
  if (!(await getTenantRow(client, tenantId, true))) throw notFound('tenant');
  const existing = (
    await client.query<{ secret: string; created_at: Date }>('SELECT secret, created_at FROM tenant_webhook_secrets WHERE tenant_id = $1', [
      tenantId,
    ])
  ).rows[0];
  if (existing && !rotate) return { secret: existing.secret, createdAt: existing.created_at.toISOString() };
  const secret = randomBytes(32).toString('base64url');
  const { rows } = await client.query<{ created_at: Date }>(
    `INSERT INTO tenant_webhook_secrets (tenant_id, secret) VALUES ($1, $2)
     ON CONFLICT (tenant_id) DO UPDATE SET secret = EXCLUDED.secret, created_at = now() RETURNING created_at`,
    [tenantId, secret],
  );
  await appendActionEvent(client, ctx, {
    tenantId,
    action: existing ? 'tenant_webhook_secret.rotated' : 'tenant_webhook_secret.created',
    target: { type: 'tenant', id: tenantId },
    payload: {},
  });
  return { secret, createdAt: rows[0]!.created_at.toISOString() };
}

/**
 * Of `actorIds`, those that still count as approvers in the tenant: active, not MSP staff, and
 * bound as tenant_approver in that tenant itself (the rule authorizeDecision applies at decision time).
 */
export async function countingApprovers(client: PoolClient, actorIds: readonly string[], tenantId: string): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>(
    `SELECT DISTINCT a.id::text AS id FROM actors a JOIN role_bindings b ON b.actor_id = a.id
      WHERE a.id::text = ANY($1::text[]) AND a.status = 'active' AND a.kind <> 'msp_staff'
        AND b.role = 'tenant_approver' AND b.tenant_id = $2`,
    [actorIds, tenantId],
  );
  return rows.map((r) => r.id);
}

export interface TenantOverviewRow {
  id: string;
  slug: string;
  name: string;
  status: 'active' | 'suspended';
  pending_grants: number;
  pending_policy_changes: number;
  pending_actions: number;
  active_grants: number;
  open_review_items: number;
  open_drift: number;
  drift_checked_at: Date | null;
  drift_error: string | null;
}

/**
 * One page of tenants (slug order) with the counts the MSP overview shows, in one statement: each
 * count is an index-backed subquery bounded by the page, so the cost grows with the page, not
 * with the number of tenants. Needs the MSP scope.
 */
export async function tenantOverviewRows(
  client: PoolClient,
  page: { limit: number; after?: string; status?: 'active' | 'suspended' },
): Promise<TenantOverviewRow[]> {
  const { rows } = await client.query<TenantOverviewRow>(
    `SELECT t.id, t.slug, t.name, t.status,
            (SELECT count(*)::int FROM grants g WHERE g.tenant_id = t.id AND g.status = 'pending_approval') AS pending_grants,
            (SELECT count(*)::int FROM policy_changes c WHERE c.tenant_id = t.id AND c.status = 'pending') AS pending_policy_changes,
            (SELECT count(*)::int FROM remote_actions a WHERE a.tenant_id = t.id AND a.status = 'pending_approval') AS pending_actions,
            (SELECT count(*)::int FROM grants g WHERE g.tenant_id = t.id AND g.status IN ('active', 'revoking')) AS active_grants,
            (SELECT count(*)::int FROM review_items i JOIN reviews r ON r.tenant_id = i.tenant_id AND r.run_id = i.run_id
              WHERE i.tenant_id = t.id AND r.status = 'open' AND i.outcome IS NULL) AS open_review_items,
            (SELECT count(*)::int FROM template_drift_items d WHERE d.tenant_id = t.id AND d.resolved_at IS NULL) AS open_drift,
            s.checked_at AS drift_checked_at, s.error AS drift_error
       FROM tenants t LEFT JOIN template_drift_state s ON s.tenant_id = t.id
      WHERE ($1::text IS NULL OR t.slug > $1) AND ($2::text IS NULL OR t.status = $2)
      ORDER BY t.slug
      LIMIT $3`,
    [page.after ?? null, page.status ?? null, page.limit],
  );
  return rows;
}
