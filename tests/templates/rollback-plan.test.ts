import { describe, expect, it } from 'vitest';
import { DEFAULT_DIRECTORY_SETTINGS } from '../../core/directory/settings.js';
import { planRollback, policyAfterApply, type RollbackFacts } from '../../core/templates/rollback-plan.js';

/** The pure three-way comparison behind a rollback: snapshot, what the apply left, the tenant now. */
const SNAPSHOT_POLICY = { grants: { roles: { Admin: { maxDurationMinutes: 60 } } } };
const APPLIED: RollbackFacts['applied'] = {
  directory: {
    roles: [
      { name: 'Ops', description: 'Operators', privileged: true },
      { name: 'Helpdesk', description: 'Run by the MSP', privileged: false },
    ],
    settings: { mfaRequired: true, passwordMinLength: 12 },
  },
  policy: { grants: { roles: { Ops: { maxDurationMinutes: 30 } } } as never },
};
const before = { name: 'Helpdesk', description: 'Our own', privileged: true };
const afterApply = () => ({
  roles: [
    { name: 'Helpdesk', description: 'Run by the MSP', privileged: false },
    { name: 'Ops', description: 'Operators', privileged: true },
  ],
  settings: { ...DEFAULT_DIRECTORY_SETTINGS, mfaRequired: true, passwordMinLength: 12 },
  policy: { version: 4, document: policyAfterApply(SNAPSHOT_POLICY, APPLIED) },
});

function facts(current: Partial<RollbackFacts['current']> = {}, overrides: Partial<RollbackFacts> = {}): RollbackFacts {
  return {
    snapshot: { target: 'postgres', roles: [before], settings: { ...DEFAULT_DIRECTORY_SETTINGS }, policyVersion: 3 },
    snapshotPolicy: { version: 3, document: SNAPSHOT_POLICY },
    applied: APPLIED,
    current: { ...afterApply(), ...current },
    capabilities: { roleDelete: true },
    ...overrides,
  };
}

describe('planning a rollback', () => {
  it('what the apply left is restored: the created role deleted, the changed role, the settings and the policy back', () => {
    const plan = planRollback(facts());
    expect(plan.conflicts).toEqual([]);
    expect(plan.unsupported).toEqual([]);
    expect(plan.steps).toEqual([
      { kind: 'restoreRole', path: 'directory.roles.Helpdesk', role: before },
      { kind: 'deleteRole', path: 'directory.roles.Ops', name: 'Ops' },
      { kind: 'setting', path: 'directory.settings.mfaRequired', name: 'mfaRequired', value: false },
      { kind: 'setting', path: 'directory.settings.passwordMinLength', name: 'passwordMinLength', value: 8 },
      { kind: 'policy', path: 'policy', document: SNAPSHOT_POLICY, from: 4 },
    ]);
  });

  it('a tenant already as the snapshot (never applied, or restored) needs nothing: the paths the apply meant to touch read as unchanged', () => {
    const plan = planRollback(
      facts({ roles: [before], settings: { ...DEFAULT_DIRECTORY_SETTINGS }, policy: { version: 5, document: SNAPSHOT_POLICY } }),
    );
    expect(plan.steps).toEqual([]);
    expect(plan.conflicts).toEqual([]);
    expect(plan.unchanged).toEqual([
      'directory.roles.Helpdesk',
      'directory.roles.Ops',
      'directory.settings.mfaRequired',
      'directory.settings.passwordMinLength',
      'policy',
    ]);
  });

  it('paths changed after the apply are conflicts, left alone, even ones the template never set; the rest is still restored', () => {
    const now = afterApply();
    const plan = planRollback(
      facts({
        roles: [{ ...now.roles[0]!, description: 'Renamed by the tenant' }, now.roles[1]!],
        settings: { ...now.settings, passwordMinLength: 14, sessionIdleTimeoutMinutes: 30 },
        policy: { version: 5, document: { grants: { roles: {} } } },
      }),
    );
    expect(plan.conflicts.map((c) => c.path)).toEqual([
      'directory.roles.Helpdesk',
      'directory.settings.passwordMinLength',
      'directory.settings.sessionIdleTimeoutMinutes',
      'policy',
    ]);
    expect(plan.conflicts[1]).toMatchObject({ snapshot: 8, applied: 12, current: 14 });
    expect(plan.steps.map((s) => s.path)).toEqual(['directory.roles.Ops', 'directory.settings.mfaRequired']);
  });

  it('the policy is restored only from the very version the apply wrote', () => {
    const now = afterApply();
    expect(planRollback(facts({ policy: { ...now.policy, version: 6 } })).conflicts.map((c) => c.path)).toEqual(['policy']);
  });

  it('what the target cannot do is listed, never skipped silently: no role deletion, no role lookup', () => {
    expect(planRollback(facts({}, { capabilities: { roleDelete: false } })).unsupported).toEqual([
      'directory.roles.Ops: roleDelete: not supported by target',
    ]);
    const blind = planRollback(facts({ roles: null }, { snapshot: { ...facts().snapshot, roles: null } }));
    expect(blind.unsupported).toEqual(['directory.roles: roleLookup: not supported by target']);
    expect(blind.steps.some((s) => s.kind === 'deleteRole' || s.kind === 'restoreRole')).toBe(false);
  });

  it('a setting the target did not hold at the snapshot is never planned', () => {
    const snapshot = { ...facts().snapshot, settings: { ...DEFAULT_DIRECTORY_SETTINGS, mfaRequired: null } };
    const plan = planRollback(facts({}, { snapshot }));
    expect(plan.steps.map((s) => s.path)).not.toContain('directory.settings.mfaRequired');
  });
});
