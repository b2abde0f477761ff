import type { ActionContext } from '../../core/audit/context.js';
import type { DirectoryConnector } from '../../core/directory/connector.js';
import { AppError, badRequest, conflict, notFound } from '../../core/errors.js';
import type { PolicyView, TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { appendActionEvent as audit } from '../../db/audit.js';
import type { Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { currentPolicy, getTenantRow, insertPolicyVersion, listPolicyRows, policyVersion } from '../../db/tenancy.js';
import { policyView, translate, type TenancyDeps } from './views.js';

export async function getPolicy(pool: Pool, tenantId: string, version?: number): Promise<PolicyView> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const row = version === undefined ? await currentPolicy(client, tenantId) : await policyVersion(client, tenantId, version);
    if (!row) throw notFound('policy version');
    return policyView(row);
  });
}

export async function listPolicyVersions(pool: Pool, tenantId: string): Promise<PolicyView[]> {
  return inScope(pool, tenantScope(tenantId), async (client) => (await listPolicyRows(client, tenantId)).map(policyView));
}

/**
 * Birthright rules may only name roles the tenant's directory has: a joiner would otherwise be
 * provisioned half-way and stop at the missing role. Asked through the tenant's connector; one
 * that cannot list roles gets the change refused with that reason, never waved through.
 */
async function checkBirthrightRoles(directory: DirectoryConnector, tenantId: string, document: TenantPolicyDocument): Promise<void> {
  const named = [...new Set(document.lifecycle.rules.flatMap((rule) => rule.roles))];
  if (named.length === 0) return;
  if (!directory.capabilities.roleLookup) {
    throw new AppError(
      409,
      'directory_capability_missing',
      `The tenant's ${directory.kind} directory cannot list its roles, so birthright rules naming roles cannot be checked.`,
    );
  }
  const known = new Set((await directory.getRoles(tenantId, named)).map((r) => r.name));
  const issues = document.lifecycle.rules.flatMap((rule, i) =>
    rule.roles.flatMap((role, j) =>
      known.has(role)
        ? []
        : [{ path: `body.document.lifecycle.rules.${i}.roles.${j}`, message: `no role ${role} in the tenant directory` }],
    ),
  );
  if (issues.length) throw badRequest('Birthright rules name roles the tenant directory does not have.', issues);
}

export async function putPolicy(
  deps: TenancyDeps,
  ctx: ActionContext,
  tenantId: string,
  expectedVersion: number,
  document: TenantPolicyDocument,
): Promise<PolicyView> {
  return translate(
    inScope(deps.pool, tenantScope(tenantId), async (client) => {
      await getTenantRow(client, tenantId, true); // serialise versioning per tenant
      const current = await currentPolicy(client, tenantId);
      if (!current) throw notFound('tenant');
      if (current.version !== expectedVersion) {
        throw conflict(`The policy is at version ${current.version}, not ${expectedVersion}; re-read it and apply your change again.`);
      }
      await checkBirthrightRoles(deps.directory, tenantId, document);
      const next = await insertPolicyVersion(client, { tenantId, version: current.version + 1, document, createdBy: ctx.actor.id });
      await audit(client, ctx, {
        tenantId,
        action: 'tenant_policy.updated',
        target: { type: 'tenant_policy', id: `${tenantId}/${next.version}` },
        payload: { before: { version: current.version, document: current.document }, after: { version: next.version, document } },
      });
      return policyView(next);
    }),
    { unique: 'The policy changed concurrently; re-read it and apply your change again.' },
  );
}
