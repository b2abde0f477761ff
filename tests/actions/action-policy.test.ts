import { describe, expect, it } from 'vitest';
import { ACTION_CAPABILITY, ACTION_TYPES, actionConfirmed } from '../../core/actions/contract.js';
import type { DirectoryAccountState } from '../../core/directory/connector.js';
import { classifyPolicyChange } from '../../core/tenancy/policy-diff.js';
import { TenantPolicyDocument, ticketPatternIssues } from '../../core/tenancy/schemas.js';

/** The `actions` section of a tenant's policy, and how changing it is classified for the tenant's approval. */
const current = TenantPolicyDocument.parse({
  actions: {
    allowed: { unlock: { approvalsRequired: 1 }, reset_mfa: { approvalsRequired: 2, requestableBy: ['operator'] } },
    ticketPattern: '^INC-[0-9]+$',
  },
});
type Doc = TenantPolicyDocument;

function proposed(edit: (doc: Doc) => void): Doc {
  const doc = structuredClone(current);
  edit(doc);
  return TenantPolicyDocument.parse(doc);
}

describe('the actions section of the tenant policy', () => {
  it('defaults to no action allowed, a four-hour approval window, a justification and no ticket; older versions parse with it', () => {
    const stored = JSON.parse(JSON.stringify(TenantPolicyDocument.parse({}))) as Record<string, unknown>;
    delete stored.actions;
    expect(TenantPolicyDocument.parse(stored).actions).toEqual({
      allowed: {},
      approvalTimeoutMinutes: 240,
      justificationRequired: true,
      ticketPattern: null,
    });
    expect(current.actions.allowed.unlock).toEqual({ approvalsRequired: 1, requestableBy: ['operator'] });
  });

  it.each([
    ['an action Tenure does not have', { allowed: { reboot: {} } }, 'actions.allowed'],
    ['a negative quorum', { allowed: { unlock: { approvalsRequired: -1 } } }, 'actions.allowed.unlock.approvalsRequired'],
    ['an unknown role', { allowed: { unlock: { requestableBy: ['janitor'] } } }, 'actions.allowed.unlock.requestableBy.0'],
    ['no requesting role', { allowed: { unlock: { requestableBy: [] } } }, 'actions.allowed.unlock.requestableBy'],
    ['a zero approval window', { approvalTimeoutMinutes: 0 }, 'actions.approvalTimeoutMinutes'],
  ])('%s is refused with its field path', (_name, actions, path) => {
    const result = TenantPolicyDocument.safeParse({ actions });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => i.path.join('.'))).toContain(path);
  });

  it('a ticket pattern RE2 cannot run is named by its path, in either section', () => {
    const doc = TenantPolicyDocument.parse({ actions: { ticketPattern: '(a)\\1' }, grants: { ticketPattern: '(?=x)' } });
    expect(ticketPatternIssues(doc, 'body.document').map((i) => i.path)).toEqual([
      'body.document.grants.ticketPattern',
      'body.document.actions.ticketPattern',
    ]);
  });
});

describe('changes to the actions section', () => {
  it.each<[string, (doc: Doc) => void, string, 'loosens' | 'tightens']>([
    [
      'allowing an action',
      (d) => (d.actions.allowed.disable_account = { approvalsRequired: 1, requestableBy: ['operator'] }),
      'actions.allowed.disable_account',
      'loosens',
    ],
    ['no longer allowing one', (d) => delete d.actions.allowed.unlock, 'actions.allowed.unlock', 'tightens'],
    [
      'fewer approvers',
      (d) => (d.actions.allowed.reset_mfa!.approvalsRequired = 0),
      'actions.allowed.reset_mfa.approvalsRequired',
      'loosens',
    ],
    ['more approvers', (d) => (d.actions.allowed.unlock!.approvalsRequired = 2), 'actions.allowed.unlock.approvalsRequired', 'tightens'],
    [
      'another requesting role',
      (d) => d.actions.allowed.unlock!.requestableBy.push('msp_admin'),
      'actions.allowed.unlock.requestableBy',
      'loosens',
    ],
    ['a longer approval window', (d) => (d.actions.approvalTimeoutMinutes = 600), 'actions.approvalTimeoutMinutes', 'loosens'],
    ['a shorter approval window', (d) => (d.actions.approvalTimeoutMinutes = 30), 'actions.approvalTimeoutMinutes', 'tightens'],
    ['no justification', (d) => (d.actions.justificationRequired = false), 'actions.justificationRequired', 'loosens'],
    ['no ticket', (d) => (d.actions.ticketPattern = null), 'actions.ticketPattern', 'loosens'],
    ['another ticket pattern', (d) => (d.actions.ticketPattern = '^CHG-[0-9]+$'), 'actions.ticketPattern', 'loosens'],
  ])('%s: %s', (_name, edit, path, effect) => {
    const change = classifyPolicyChange(current, proposed(edit));
    expect(change.items.map((i) => [i.path, i.effect])).toEqual([[path, effect]]);
    expect(change.needsApproval).toBe(effect === 'loosens');
    expect(change.items[0]!.reason).not.toMatch(/does not know/);
  });

  it('requiring a ticket where none was needed tightens', () => {
    const none = TenantPolicyDocument.parse({});
    const change = classifyPolicyChange(none, TenantPolicyDocument.parse({ actions: { ticketPattern: '^INC-[0-9]+$' } }));
    expect(change).toMatchObject({ tightensOnly: true, items: [{ path: 'actions.ticketPattern', effect: 'tightens' }] });
  });
});

describe('what each action needs and how it is confirmed', () => {
  const done: Record<(typeof ACTION_TYPES)[number], Partial<DirectoryAccountState>> = {
    unlock: { locked: false },
    reset_mfa: { mfaFactors: 0 },
    revoke_sessions: { liveSessions: 0 },
    force_password_reset: { passwordResetRequired: true },
    disable_account: { status: 'disabled' },
  };
  const unknown: DirectoryAccountState = {
    status: 'active',
    locked: null,
    mfaFactors: null,
    passwordResetRequired: null,
    liveSessions: null,
  };

  it.each(ACTION_TYPES)('%s is confirmed only by the target showing it done, never by a field it cannot tell', (action) => {
    expect(actionConfirmed(action, { ...unknown, ...done[action] })).toBe(true);
    expect(actionConfirmed(action, unknown)).toBe(false);
  });

  it('every action but disabling needs a capability of its own', () => {
    expect(ACTION_CAPABILITY).toEqual({
      unlock: 'unlock',
      reset_mfa: 'mfaReset',
      revoke_sessions: 'sessions',
      force_password_reset: 'passwordReset',
      disable_account: null,
    });
  });
});
