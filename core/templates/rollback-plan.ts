import canonicalize from 'canonicalize';
import type { DirectoryRole } from '../directory/connector.js';
import { DIRECTORY_SETTING_NAMES, type DirectorySecuritySettingsState, type DirectorySettingName } from '../directory/settings.js';
import { renderPath } from '../tenancy/policy-diff.js';
import type { RollbackConflict } from './rollback.js';
import type { TemplateDocumentShape } from './contract.js';

/**
 * Pure: what rolling back an apply means for one tenant, path by path. Each path the snapshot or
 * the apply knows is compared three ways, the snapshot (before the apply), what the apply left
 * there (the rendered version over the snapshot) and the tenant now:
 * - now equals the snapshot: nothing to do (`unchanged`: never applied, or already restored);
 * - now equals what the apply left: restore the snapshot's value (a step);
 * - anything else: the tenant (or someone) changed it after the apply, a `conflict`, left alone.
 * Running it again after the steps finds only `unchanged` and the same conflicts: that is the
 * read-back verification.
 */

/** What `template_snapshots.state` holds (what the apply's snapshot step read). */
export interface SnapshotState {
  target: string;
  /** Null when the target cannot list roles (no `roleLookup`). */
  roles: DirectoryRole[] | null;
  settings: DirectorySecuritySettingsState;
  policyVersion: number | null;
  /** The tenant's pin before the apply; absent in snapshots taken before rollbacks recorded it. */
  pin?: {
    templateId: string;
    /** The version assigned before the apply, and its values; absent in older snapshots. */
    version?: number;
    parameters?: Record<string, string>;
    appliedVersion: number | null;
    appliedAt: string | null;
    /** The values the version was applied with (what drift compares against); absent in older snapshots. */
    appliedParameters?: Record<string, string> | null;
  } | null;
}

export interface PolicyAt {
  version: number;
  document: unknown;
}

export interface RollbackFacts {
  snapshot: SnapshotState;
  /** The policy version the snapshot names, as stored. */
  snapshotPolicy: PolicyAt | null;
  /** The version the apply applied, rendered for the tenant with the apply's values. */
  applied: Pick<TemplateDocumentShape, 'directory' | 'policy'>;
  current: { roles: DirectoryRole[] | null; settings: DirectorySecuritySettingsState; policy: PolicyAt };
  capabilities: { roleDelete: boolean };
}

export type RollbackStep =
  | { kind: 'deleteRole'; path: string; name: string }
  | { kind: 'restoreRole'; path: string; role: DirectoryRole }
  | { kind: 'setting'; path: string; name: DirectorySettingName; value: unknown }
  | { kind: 'policy'; path: 'policy'; document: unknown; from: number };

export interface RollbackPlan {
  steps: RollbackStep[];
  unchanged: string[];
  conflicts: RollbackConflict[];
  unsupported: string[];
}

const same = (a: unknown, b: unknown) => canonicalize(a ?? null) === canonicalize(b ?? null);
const roleValue = (r: { description: string; privileged: boolean } | undefined) =>
  r ? { description: r.description, privileged: r.privileged } : null;

/** The tenant policy the apply wrote: the snapshot's with the version's sections. */
export function policyAfterApply(snapshotPolicy: unknown, applied: RollbackFacts['applied']): unknown {
  const before = (snapshotPolicy ?? {}) as Record<string, unknown>;
  return {
    ...before,
    ...(applied.policy.grants ? { grants: applied.policy.grants } : {}),
    ...(applied.policy.lifecycle ? { lifecycle: applied.policy.lifecycle } : {}),
  };
}

export function planRollback(facts: RollbackFacts): RollbackPlan {
  const plan: RollbackPlan = { steps: [], unchanged: [], conflicts: [], unsupported: [] };
  const { snapshot, applied, current } = facts;

  /** One path: `before` the snapshot's value, `after` what the apply left, `now` the tenant's; `restore` makes the step. */
  function compare(path: string, before: unknown, after: unknown, now: unknown, restore: () => RollbackStep | string, what: string) {
    if (same(now, before)) {
      if (!same(after, before)) plan.unchanged.push(path);
      return;
    }
    if (!same(after, before) && same(now, after)) {
      const step = restore();
      if (typeof step === 'string') plan.unsupported.push(`${path}: ${step}`);
      else plan.steps.push(step);
      return;
    }
    plan.conflicts.push({
      path,
      snapshot: before ?? null,
      applied: after ?? null,
      current: now ?? null,
      reason: `${what} changed after the apply; the rollback leaves it as it is now`,
    });
  }

  // ------------------------------------------------------------ roles
  if (snapshot.roles === null || current.roles === null) {
    if (applied.directory.roles.length) plan.unsupported.push('directory.roles: roleLookup: not supported by target');
  } else {
    const before = new Map(snapshot.roles.map((r) => [r.name, r]));
    const now = new Map(current.roles.map((r) => [r.name, r]));
    const template = new Map(applied.directory.roles.map((r) => [r.name, r]));
    const names = [...new Set([...before.keys(), ...template.keys()])].sort();
    for (const name of names) {
      const s = before.get(name);
      const left = template.get(name) ?? s;
      compare(
        renderPath(['directory', 'roles', name]),
        roleValue(s),
        roleValue(left),
        roleValue(now.get(name)),
        () => {
          const path = renderPath(['directory', 'roles', name]);
          if (s) return { kind: 'restoreRole', path, role: { name, description: s.description, privileged: s.privileged } };
          return facts.capabilities.roleDelete ? { kind: 'deleteRole', path, name } : 'roleDelete: not supported by target';
        },
        `role ${name}`,
      );
    }
  }

  // ------------------------------------------------------------ security settings
  for (const name of DIRECTORY_SETTING_NAMES) {
    const s = snapshot.settings[name];
    if (s === null || s === undefined) continue; // the target did not hold it at the snapshot
    const left = applied.directory.settings[name] ?? s;
    const path = renderPath(['directory', 'settings', name]);
    compare(path, s, left, current.settings[name], () => ({ kind: 'setting', path, name, value: s }), `setting ${name}`);
  }

  // ------------------------------------------------------------ policy
  const sp = facts.snapshotPolicy;
  if (sp) {
    const left = policyAfterApply(sp.document, applied);
    const cp = current.policy;
    if (same(cp.document, sp.document)) {
      if (!same(left, sp.document)) plan.unchanged.push('policy');
    } else if (cp.version === sp.version + 1 && same(cp.document, left)) {
      plan.steps.push({ kind: 'policy', path: 'policy', document: sp.document, from: cp.version });
    } else {
      plan.conflicts.push({
        path: 'policy',
        snapshot: { version: sp.version },
        applied: { version: same(left, sp.document) ? sp.version : sp.version + 1 },
        current: { version: cp.version },
        reason: `the tenant's policy moved on to version ${cp.version} after the apply; the rollback leaves it as it is now`,
      });
    }
  }
  return plan;
}
