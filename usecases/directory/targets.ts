import {
  DirectoryError,
  notSupportedByTarget,
  resolverOf,
  type DirectoryCapabilities,
  type DirectoryCapability,
  type DirectoryConnector,
  type DirectoryDeps,
} from '../../core/directory/connector.js';
import { BUILTIN_TARGET, DirectoryTarget, targetLocation, type DirectoryTargetType } from '../../core/directory/targets.js';
import { notFound } from '../../core/errors.js';
import type { Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { currentPolicy } from '../../db/tenancy.js';

export interface DirectoryTargetDeps extends DirectoryDeps {
  pool: Pool;
}

/** An id no account has: reading it proves the target answers without touching anyone. */
export const PROBE_USER_ID = 'tenure-connectivity-probe';
export const PROBE_ROLE = 'tenure-connectivity-probe';

export interface DirectoryCheck {
  /** What was tried, e.g. `read a user`. */
  operation: string;
  ok: boolean;
  durationMs: number;
  /** The connector's error: its type, whether a retry can help, and its message (naming target and operation, never a secret). */
  error: { type: string; retryable: boolean; message: string } | null;
}

export interface DirectoryTestResult {
  tenantId: string;
  /** The policy version whose `directory` section was tested. */
  policyVersion: number;
  target: { type: DirectoryTargetType; location: string | null };
  /** The connector kind, once built. */
  connector: string | null;
  /** What the connector declares; null when it could not be built. */
  capabilities: DirectoryCapabilities | null;
  /** Each capability it lacks, as `<capability>: not supported by target`. */
  notSupported: string[];
  /** The target cannot end memberships by itself, so the tenant's expiry sweeper runs for it. */
  sweeper: boolean;
  checks: DirectoryCheck[];
  /** Every check passed. */
  ok: boolean;
  checkedAt: string;
}

async function timed<T>(operation: string, checks: DirectoryCheck[], fn: () => Promise<T>): Promise<{ value?: T; ok: boolean }> {
  const started = performance.now();
  try {
    const value = await fn();
    checks.push({ operation, ok: true, durationMs: Math.round(performance.now() - started), error: null });
    return { value, ok: true };
  } catch (error) {
    if (!(error instanceof DirectoryError)) throw error;
    checks.push({
      operation,
      ok: false,
      durationMs: Math.round(performance.now() - started),
      error: { type: error.name, retryable: error.retryable, message: error.message },
    });
    return { ok: false };
  }
}

/** Reads through the connector what any use needs: a user and, when it can, roles. Stops at the first failure. */
export async function probeDirectory(
  directory: DirectoryConnector,
  tenantId: string,
  checks: DirectoryCheck[] = [],
): Promise<DirectoryCheck[]> {
  const read = await timed('read a user', checks, () => directory.getUser(tenantId, PROBE_USER_ID));
  if (read.ok && directory.capabilities.roleLookup) await timed('look up roles', checks, () => directory.getRoles(tenantId, [PROBE_ROLE]));
  return checks;
}

export function missingCapabilities(capabilities: DirectoryCapabilities): string[] {
  return (Object.keys(capabilities) as DirectoryCapability[]).filter((c) => !capabilities[c]).map(notSupportedByTarget);
}

/**
 * Checks the tenant's current target: builds its connector (its secret is read), reads a user
 * and looks up roles where it can, and says what the connector declares. Changes nothing; the
 * outcome also updates the tenant's health metric. A target that fails answers `ok: false`
 * with the failing operation, not an error status.
 */
export async function testDirectory(deps: DirectoryTargetDeps, tenantId: string): Promise<DirectoryTestResult> {
  const policy = await inScope(deps.pool, tenantScope(tenantId), (client) => currentPolicy(client, tenantId));
  if (!policy) throw notFound('tenant');
  const parsed = DirectoryTarget.safeParse((policy.document as { directory?: unknown }).directory ?? BUILTIN_TARGET);
  const target = parsed.success ? parsed.data : undefined;
  const checks: DirectoryCheck[] = [];
  const built = await timed('build the connector', checks, () => resolverOf(deps).directoryFor(tenantId));
  const directory = built.value;
  if (directory) await probeDirectory(directory, tenantId, checks);
  return {
    tenantId,
    policyVersion: policy.version,
    target: { type: target?.type ?? 'builtin', location: target ? targetLocation(target) : null },
    connector: directory?.kind ?? null,
    capabilities: directory ? { ...directory.capabilities } : null,
    notSupported: directory ? missingCapabilities(directory.capabilities) : [],
    sweeper: directory ? !directory.capabilities.membershipEnd : false,
    checks,
    ok: checks.every((c) => c.ok),
    checkedAt: new Date().toISOString(),
  };
}
