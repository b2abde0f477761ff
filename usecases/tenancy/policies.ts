import type { ActionContext } from '../../core/audit/context.js';
import canonicalize from 'canonicalize';
import { DirectoryError, resolverOf, type DirectoryConnector } from '../../core/directory/connector.js';
import { BUILTIN_TARGET, DirectoryTarget } from '../../core/directory/targets.js';
import { AppError, badRequest, conflict, notFound } from '../../core/errors.js';
import type { PolicyChangeView, PolicyDiffItem } from '../../core/tenancy/contract.js';
import { classifyPolicyChange } from '../../core/tenancy/policy-diff.js';
import { TenantPolicyDocument, ticketPatternIssues, type PolicyView } from '../../core/tenancy/schemas.js';
import { refusedWebhookUrl } from '../../core/tenancy/webhook-destination.js';
import { appendActionEvent as audit } from '../../db/audit.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { currentPolicy, getTenantRow, insertPolicyVersion, listPolicyRows, policyVersion, type PolicyRow } from '../../db/tenancy.js';
import { probeDirectory } from '../directory/targets.js';
import { listPolicyChanges, proposePolicyChange, type PolicyChangeDeps } from './policy-changes.js';
import { policyView, translate, type TenancyDeps } from './views.js';

export async function getPolicy(pool: Pool, tenantId: string, version?: number): Promise<PolicyView> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const row = version === undefined ? await currentPolicy(client, tenantId) : await policyVersion(client, tenantId, version);
    if (!row) throw notFound('policy version');
    return policyView(row);
  });
}

/** The current version with the changes waiting for the tenant's approvers beside it. */
export async function getPolicyWithPending(pool: Pool, tenantId: string): Promise<PolicyView & { pendingChanges: PolicyChangeView[] }> {
  const [policy, pendingChanges] = await Promise.all([getPolicy(pool, tenantId), listPolicyChanges(pool, tenantId, { status: 'pending' })]);
  return { ...policy, pendingChanges };
}

export async function listPolicyVersions(pool: Pool, tenantId: string): Promise<PolicyView[]> {
  return inScope(pool, tenantScope(tenantId), async (client) => (await listPolicyRows(client, tenantId)).map(policyView));
}

/**
 * A policy may only name roles the tenant's directory has, as grantable roles (`grants.roles`) or
 * in birthright rules: a grant would otherwise be approved and then fail at activation, a joiner be
 * provisioned half-way and stop at the missing role. Asked through the tenant's connector; one
 * that cannot list roles gets the change refused with that reason, never waved through.
 */
async function checkPolicyRoles(directory: DirectoryConnector, tenantId: string, document: TenantPolicyDocument): Promise<void> {
  const named = [
    ...Object.keys(document.grants.roles).map((role) => ({ role, path: `body.document.grants.roles.${role}` })),
    ...document.lifecycle.rules.flatMap((rule, i) =>
      rule.roles.map((role, j) => ({ role, path: `body.document.lifecycle.rules.${i}.roles.${j}` })),
    ),
  ];
  if (named.length === 0) return;
  if (!directory.capabilities.roleLookup) {
    throw new AppError(
      409,
      'directory_capability_missing',
      `The tenant's ${directory.kind} directory cannot list its roles, so a policy naming roles cannot be checked.`,
    );
  }
  const known = new Set((await directory.getRoles(tenantId, [...new Set(named.map((n) => n.role))])).map((r) => r.name));
  const issues = named
    .filter((n) => !known.has(n.role))
    .map((n) => ({ path: n.path, message: `no role ${n.role} in the tenant directory` }));
  if (issues.length) throw badRequest('The policy names roles the tenant directory does not have.', issues);
}

/** How long a proposed target may take to answer the check, whatever its own timeout says. */
const PROPOSED_TARGET_TIMEOUT_MS = 5_000;

function bounded(target: DirectoryTarget): DirectoryTarget {
  if (target.type === 'builtin') return target;
  return {
    ...target,
    settings: { ...target.settings, timeoutMs: Math.min(target.settings.timeoutMs, PROPOSED_TARGET_TIMEOUT_MS) },
  } as DirectoryTarget;
}

/**
 * Checks a policy document against the directory it would have, before anything is written:
 * the tenant's current one when the `directory` section stays, otherwise the proposed target,
 * which must answer a read (with its secret, in this process) and have the roles the policy names
 * before the change is even proposed. A proposed target that cannot be used is a 409 naming the target and the operation;
 * the current one being down is the 503 of any unavailable dependency.
 */
async function checkAgainstDirectory(
  deps: TenancyDeps,
  tenantId: string,
  expectedVersion: number,
  document: TenantPolicyDocument,
): Promise<void> {
  const patternIssues = ticketPatternIssues(document, 'body.document');
  if (patternIssues.length) throw badRequest('The ticket pattern cannot be run.', patternIssues);
  const resolver = resolverOf(deps);
  const current = await inScope(deps.pool, tenantScope(tenantId), (client) => currentPolicy(client, tenantId));
  if (!current) throw notFound('tenant');
  if (current.version !== expectedVersion) return; // the write refuses it (409); nothing to ask a target

  const stored = DirectoryTarget.safeParse((current.document as { directory?: unknown }).directory ?? BUILTIN_TARGET);
  if (stored.success && canonicalize(stored.data) === canonicalize(document.directory)) {
    return checkPolicyRoles(await resolver.directoryFor(tenantId), tenantId, document);
  }
  const proposed = document.directory;
  const check = async (directory: DirectoryConnector) => {
    const failed = (await probeDirectory(directory, tenantId)).find((c) => !c.ok);
    if (failed) {
      throw new AppError(
        409,
        'directory_target_unusable',
        `The proposed ${proposed.type} directory cannot be used (${failed.operation}): ${failed.error!.message}`,
      );
    }
    await checkPolicyRoles(directory, tenantId, document);
  };
  if (proposed.type === 'builtin' && !resolver.withTarget) return check(deps.directory);
  if (!resolver.withTarget) {
    throw new AppError(409, 'directory_target_unusable', `This deployment cannot connect tenants to ${proposed.type} directories.`);
  }
  try {
    await resolver.withTarget(tenantId, bounded(proposed), check);
  } catch (error) {
    if (!(error instanceof DirectoryError)) throw error;
    throw new AppError(409, 'directory_target_unusable', `The proposed ${proposed.type} directory cannot be used: ${error.message}`, [], {
      cause: error,
    });
  }
}

/**
 * A webhook may not be aimed at the worker's own neighbourhood (loopback, private networks, cloud
 * metadata) unless the deployment allows it; delivery checks the resolved address again.
 */
export function checkWebhookDestination(
  deps: Pick<TenancyDeps, 'allowPrivateWebhooks'>,
  document: Pick<TenantPolicyDocument, 'notificationWebhookUrl'>,
  path = 'body.document.notificationWebhookUrl',
): void {
  if (deps.allowPrivateWebhooks || !document.notificationWebhookUrl) return;
  const reason = refusedWebhookUrl(document.notificationWebhookUrl);
  if (reason) throw badRequest('The webhook URL points at a non-public address.', [{ path, message: reason }]);
}

/** The next version after `current`, audited with before and after (and the diff when classified). */
async function writeVersion(
  client: PoolClient,
  ctx: ActionContext,
  current: PolicyRow,
  document: TenantPolicyDocument,
  extra: { diff?: PolicyDiffItem[] } = {},
): Promise<PolicyView> {
  const tenantId = current.tenant_id;
  const next = await insertPolicyVersion(client, { tenantId, version: current.version + 1, document, createdBy: ctx.actor.id });
  await audit(client, ctx, {
    tenantId,
    action: 'tenant_policy.updated',
    target: { type: 'tenant_policy', id: `${tenantId}/${next.version}` },
    payload: { before: { version: current.version, document: current.document }, after: { version: next.version, document }, ...extra },
  });
  return policyView(next);
}

/**
 * Writes the next policy version at once, without asking the tenant: for seeding and setup in
 * process (demo, benchmarks, tests). What callers of the API send goes through `changePolicy`.
 */
export async function putPolicy(
  deps: TenancyDeps,
  ctx: ActionContext,
  tenantId: string,
  expectedVersion: number,
  document: TenantPolicyDocument,
): Promise<PolicyView> {
  await checkAgainstDirectory(deps, tenantId, expectedVersion, document);
  return translate(
    inScope(deps.pool, tenantScope(tenantId), async (client) => {
      await getTenantRow(client, tenantId, true); // serialise versioning per tenant
      const current = await currentPolicy(client, tenantId);
      if (!current) throw notFound('tenant');
      if (current.version !== expectedVersion) {
        throw conflict(`The policy is at version ${current.version}, not ${expectedVersion}; re-read it and apply your change again.`);
      }
      return writeVersion(client, ctx, current, document);
    }),
    { unique: 'The policy changed concurrently; re-read it and apply your change again.' },
  );
}

export type PolicyChangeOutcome = { applied: PolicyView } | { pending: PolicyChangeView };

/**
 * A change asked for through the API. One that only tightens (or changes nothing) is written at
 * once; one that loosens the tenant's control, or any change once the tenant asked to decide every
 * change, becomes a pending change its own approvers decide, with the quorum and timeout of the
 * CURRENT policy (never the proposed one). Bad input and a stale `expectedVersion` change nothing.
 */
export async function changePolicy(
  deps: TenancyDeps & PolicyChangeDeps,
  ctx: ActionContext,
  tenantId: string,
  expectedVersion: number,
  document: TenantPolicyDocument,
  requestId: string | null = null,
): Promise<PolicyChangeOutcome> {
  type Step = { applied: PolicyView } | { propose: { baseVersion: number; diff: PolicyDiffItem[] } };
  checkWebhookDestination(deps, document);
  // Checked before the transaction (a remote target is not asked while the tenant row is locked);
  // a change written in between moves the version, which the transaction then refuses.
  await checkAgainstDirectory(deps, tenantId, expectedVersion, document);
  const outcome = await translate(
    inScope(deps.pool, tenantScope(tenantId), async (client): Promise<Step> => {
      await getTenantRow(client, tenantId, true); // the same lock a direct write and an approved change take
      const current = await currentPolicy(client, tenantId);
      if (!current) throw notFound('tenant');
      if (current.version !== expectedVersion) {
        throw conflict(`The policy is at version ${current.version}, not ${expectedVersion}; re-read it and apply your change again.`);
      }
      // Stored versions from before a section existed parse with its defaults, so only real changes differ.
      const stored = TenantPolicyDocument.safeParse(current.document);
      const before = stored.success ? stored.data : (current.document as TenantPolicyDocument);
      const classification = classifyPolicyChange(before, document);
      if (classification.needsApproval) return { propose: { baseVersion: current.version, diff: classification.items } };
      return { applied: await writeVersion(client, ctx, current, document, { diff: classification.items }) };
    }),
    { unique: 'The policy changed concurrently; re-read it and apply your change again.' },
  );
  if ('applied' in outcome) return outcome;
  // The proposal checks the version again: a write in between makes it a 409, never a stale base.
  return { pending: await proposePolicyChange(deps, ctx, tenantId, { ...outcome.propose, document, requestId }) };
}
