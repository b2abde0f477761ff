import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_CHANGE_APPROVALS, DEFAULT_POLICY_CHANGE_TIMEOUT_DAYS } from '../../core/tenancy/contract.js';
import { classifyPolicyChange } from '../../core/tenancy/policy-diff.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';

const current = TenantPolicyDocument.parse({
  contactEmail: 'security@fabrikam.example',
  notificationWebhookUrl: 'https://hooks.fabrikam.example/tenure',
  grants: {
    roles: {
      GlobalAdmin: { maxDurationMinutes: 120, approvalsRequired: 2, requestableBy: ['operator'] },
      HelpdeskAdmin: { privileged: false, maxDurationMinutes: 480, approvalsRequired: 1, requestableBy: ['operator', 'msp_admin'] },
    },
    ticketPattern: '^INC-[0-9]+$',
  },
  lifecycle: {
    attributes: ['department', 'location'],
    rules: [
      { id: 'eng', when: { department: 'Engineering' }, roles: ['Developers', 'VPN'], eligibleGrantRoles: ['GlobalAdmin'] },
      { id: 'eng-london', when: { department: ['Engineering', 'Research'], location: 'London' }, roles: ['LondonOffice'] },
    ],
    moverReviewsPrivilegedAccess: true,
  },
  governance: { policyChangeApprovals: 2 },
});

type Doc = TenantPolicyDocument;

/** The current policy changed by `edit`, validated like a proposal at the API. */
function proposed(edit: (doc: Doc) => void): Doc {
  const doc = structuredClone(current);
  edit(doc);
  return TenantPolicyDocument.parse(doc);
}

/** The same JSON value with every object's keys in reverse order. */
function reversedKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map(reversedKeys) as T;
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(
    Object.entries(v)
      .reverse()
      .map(([k, x]) => [k, reversedKeys(x)]),
  ) as T;
}

const role = (doc: Doc, name: string) => doc.grants.roles[name]!;
const rule = (doc: Doc, id: string) => doc.lifecycle.rules.find((r) => r.id === id)!;

describe('governance settings in the tenant policy', () => {
  it('a stored document without a governance section parses with the defaults', () => {
    const stored = JSON.parse(JSON.stringify(current)) as Record<string, unknown>;
    delete stored.governance;
    expect(TenantPolicyDocument.parse(stored).governance).toEqual({
      policyChangeApprovals: DEFAULT_POLICY_CHANGE_APPROVALS,
      policyChangeTimeoutDays: DEFAULT_POLICY_CHANGE_TIMEOUT_DAYS,
      approveEveryChange: false,
    });
  });

  it.each([
    ['policyChangeApprovals 0', { policyChangeApprovals: 0 }, 'governance.policyChangeApprovals'],
    ['policyChangeTimeoutDays 0', { policyChangeTimeoutDays: 0 }, 'governance.policyChangeTimeoutDays'],
    ['policyChangeTimeoutDays 1.5', { policyChangeTimeoutDays: 1.5 }, 'governance.policyChangeTimeoutDays'],
    ['an unknown governance field', { quorum: 1 }, 'governance'],
  ])('%s is refused with its field path', (_name, governance, path) => {
    const result = TenantPolicyDocument.safeParse({ governance });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => i.path.join('.'))).toContain(path);
  });
});

describe('classifyPolicyChange', () => {
  it('an identical document (even with keys in another order) gives an empty diff that neither loosens nor tightens', () => {
    expect(classifyPolicyChange(current, reversedKeys(current))).toEqual({
      items: [],
      loosens: false,
      tightensOnly: false,
      needsApproval: false,
    });
  });

  const loosening: [string, (doc: Doc) => void, string][] = [
    [
      'lowering approvalsRequired',
      (d) => void (role(d, 'GlobalAdmin').approvalsRequired = 0),
      'grants.roles.GlobalAdmin.approvalsRequired',
    ],
    [
      'raising maxDurationMinutes',
      (d) => void (role(d, 'GlobalAdmin').maxDurationMinutes = 240),
      'grants.roles.GlobalAdmin.maxDurationMinutes',
    ],
    ['raising maxTotalDurationMinutes', (d) => void (d.grants.maxTotalDurationMinutes *= 2), 'grants.maxTotalDurationMinutes'],
    ['raising approvalTimeoutMinutes', (d) => void (d.grants.approvalTimeoutMinutes *= 2), 'grants.approvalTimeoutMinutes'],
    [
      'making a role grantable',
      (d) =>
        void (d.grants.roles.ExchangeAdmin = {
          privileged: true,
          maxDurationMinutes: 60,
          approvalsRequired: 1,
          requestableBy: ['operator'],
        }),
      'grants.roles.ExchangeAdmin',
    ],
    [
      'marking a grantable role non-privileged',
      (d) => void (role(d, 'GlobalAdmin').privileged = false),
      'grants.roles.GlobalAdmin.privileged',
    ],
    [
      'widening requestableBy',
      (d) => void role(d, 'GlobalAdmin').requestableBy.push('msp_admin'),
      'grants.roles.GlobalAdmin.requestableBy',
    ],
    [
      'replacing a requestableBy role with another',
      (d) => void (role(d, 'GlobalAdmin').requestableBy = ['msp_admin']),
      'grants.roles.GlobalAdmin.requestableBy',
    ],
    ['turning off extensionRequiresApproval', (d) => void (d.grants.extensionRequiresApproval = false), 'grants.extensionRequiresApproval'],
    ['turning off justificationRequired', (d) => void (d.grants.justificationRequired = false), 'grants.justificationRequired'],
    ['removing ticketPattern', (d) => void (d.grants.ticketPattern = null), 'grants.ticketPattern'],
    ['changing ticketPattern', (d) => void (d.grants.ticketPattern = '.*'), 'grants.ticketPattern'],
    [
      'adding a lifecycle rule with no when that gives a role',
      (d) => void d.lifecycle.rules.push({ id: 'x', when: {}, roles: ['GlobalAdmin'] }),
      'lifecycle.rules.x',
    ],
    [
      'adding a lifecycle rule that only makes people eligible for a grant role',
      (d) => void d.lifecycle.rules.push({ id: 'x', when: { department: 'Sales' }, roles: [], eligibleGrantRoles: ['GlobalAdmin'] }),
      'lifecycle.rules.x',
    ],
    ['adding a birthright role to a rule', (d) => void rule(d, 'eng').roles.push('GlobalAdmin'), 'lifecycle.rules.eng.roles'],
    [
      'adding an eligible grant role to a rule',
      (d) => void rule(d, 'eng').eligibleGrantRoles!.push('HelpdeskAdmin'),
      'lifecycle.rules.eng.eligibleGrantRoles',
    ],
    [
      'giving eligible grant roles to a rule that had none',
      (d) => void (rule(d, 'eng-london').eligibleGrantRoles = ['GlobalAdmin']),
      'lifecycle.rules.eng-london.eligibleGrantRoles',
    ],
    [
      'adding a value to a rule condition',
      (d) => void (rule(d, 'eng').when.department = ['Engineering', 'Sales']),
      'lifecycle.rules.eng.when',
    ],
    ['dropping one condition of a rule', (d) => void delete rule(d, 'eng-london').when.location, 'lifecycle.rules.eng-london.when'],
    ['removing a rule’s when', (d) => void (rule(d, 'eng').when = {}), 'lifecycle.rules.eng.when'],
    ['pointing a rule at other people', (d) => void (rule(d, 'eng').when.department = 'Sales'), 'lifecycle.rules.eng.when'],
    ['changing notificationWebhookUrl', (d) => void (d.notificationWebhookUrl = 'https://msp.example/hook'), 'notificationWebhookUrl'],
    ['clearing notificationWebhookUrl', (d) => void (d.notificationWebhookUrl = null), 'notificationWebhookUrl'],
    ['changing contactEmail', (d) => void (d.contactEmail = 'noc@msp.example'), 'contactEmail'],
    ['lowering governance.policyChangeApprovals', (d) => void (d.governance.policyChangeApprovals = 1), 'governance.policyChangeApprovals'],
    [
      'raising governance.policyChangeTimeoutDays',
      (d) => void (d.governance.policyChangeTimeoutDays = 30),
      'governance.policyChangeTimeoutDays',
    ],
    ['raising lifecycle.moverGraceMinutes', (d) => void (d.lifecycle.moverGraceMinutes *= 2), 'lifecycle.moverGraceMinutes'],
    ['raising lifecycle.preProvisionDays', (d) => void (d.lifecycle.preProvisionDays = 14), 'lifecycle.preProvisionDays'],
    ['raising leaver.retentionDays', (d) => void (d.lifecycle.leaver.retentionDays = 365), 'lifecycle.leaver.retentionDays'],
    [
      'lowering leaver.retentionDays (records deleted sooner)',
      (d) => void (d.lifecycle.leaver.retentionDays = 0),
      'lifecycle.leaver.retentionDays',
    ],
    ['changing leaver.afterRetention', (d) => void (d.lifecycle.leaver.afterRetention = 'anonymise'), 'lifecycle.leaver.afterRetention'],
    [
      'turning off moverReviewsPrivilegedAccess',
      (d) => void (d.lifecycle.moverReviewsPrivilegedAccess = false),
      'lifecycle.moverReviewsPrivilegedAccess',
    ],
    ['turning off endGrantsNotEligible', (d) => void (d.lifecycle.endGrantsNotEligible = false), 'lifecycle.endGrantsNotEligible'],
    ['turning on adoptExistingAccounts', (d) => void (d.lifecycle.adoptExistingAccounts = true), 'lifecycle.adoptExistingAccounts'],
  ];

  it.each(loosening)('%s loosens control and needs approval', (_name, edit, path) => {
    const result = classifyPolicyChange(current, proposed(edit));
    expect(result.items).toEqual([expect.objectContaining({ path, effect: 'loosens' })]);
    expect(result.items[0]!.reason).not.toBe('');
    expect(result).toMatchObject({ loosens: true, tightensOnly: false, needsApproval: true });
  });

  it('turning off approveEveryChange loosens control', () => {
    const strict = proposed((d) => void (d.governance.approveEveryChange = true));
    const result = classifyPolicyChange(strict, current);
    expect(result.items).toEqual([
      { path: 'governance.approveEveryChange', before: true, after: false, effect: 'loosens', reason: expect.any(String) },
    ]);
    expect(result.loosens).toBe(true);
  });

  it('any change of the target directory loosens control: to LDAP, between settings, a new secret, and back to the built-in one', () => {
    const ldap = {
      type: 'ldap' as const,
      settings: { url: 'ldap://dc1.fabrikam.example', bindDn: 'cn=tenure,dc=f', usersDn: 'ou=people,dc=f', groupsDn: 'ou=groups,dc=f' },
      bindPassword: { env: 'TENURE_SECRET_FABRIKAM' },
    };
    const onLdap = proposed((d) => void (d.directory = ldap as never));
    const steps: [Doc, Doc][] = [
      [current, onLdap],
      [onLdap, proposed((d) => void (d.directory = { ...ldap, settings: { ...ldap.settings, timeoutMs: 2000 } } as never))],
      [onLdap, proposed((d) => void (d.directory = { ...ldap, bindPassword: { file: '/run/secrets/fabrikam' } } as never))],
      [onLdap, current],
    ];
    for (const [before, after] of steps) {
      const result = classifyPolicyChange(before, after);
      expect(result.items).toEqual([
        { path: 'directory', before: before.directory, after: after.directory, effect: 'loosens', reason: expect.any(String) },
      ]);
      expect(result.needsApproval).toBe(true);
    }
    expect(current.directory).toEqual({ type: 'builtin' });
  });

  const tightening: [string, (doc: Doc) => void, string][] = [
    ['raising approvalsRequired', (d) => void (role(d, 'GlobalAdmin').approvalsRequired = 3), 'grants.roles.GlobalAdmin.approvalsRequired'],
    [
      'lowering maxDurationMinutes',
      (d) => void (role(d, 'GlobalAdmin').maxDurationMinutes = 30),
      'grants.roles.GlobalAdmin.maxDurationMinutes',
    ],
    ['lowering maxTotalDurationMinutes', (d) => void (d.grants.maxTotalDurationMinutes = 60), 'grants.maxTotalDurationMinutes'],
    ['lowering approvalTimeoutMinutes', (d) => void (d.grants.approvalTimeoutMinutes = 30), 'grants.approvalTimeoutMinutes'],
    ['removing a grantable role', (d) => void delete d.grants.roles.HelpdeskAdmin, 'grants.roles.HelpdeskAdmin'],
    [
      'marking a grantable role privileged',
      (d) => void (role(d, 'HelpdeskAdmin').privileged = true),
      'grants.roles.HelpdeskAdmin.privileged',
    ],
    [
      'narrowing requestableBy',
      (d) => void (role(d, 'HelpdeskAdmin').requestableBy = ['operator']),
      'grants.roles.HelpdeskAdmin.requestableBy',
    ],
    ['removing a rule', (d) => void (d.lifecycle.rules = d.lifecycle.rules.filter((r) => r.id !== 'eng')), 'lifecycle.rules.eng'],
    ['removing a role from a rule', (d) => void (rule(d, 'eng').roles = ['VPN']), 'lifecycle.rules.eng.roles'],
    [
      'removing a rule’s eligible grant roles',
      (d) => void delete rule(d, 'eng').eligibleGrantRoles,
      'lifecycle.rules.eng.eligibleGrantRoles',
    ],
    ['adding a condition to a rule', (d) => void (rule(d, 'eng').when.location = 'London'), 'lifecycle.rules.eng.when'],
    [
      'removing a value from a rule condition',
      (d) => void (rule(d, 'eng-london').when.department = 'Engineering'),
      'lifecycle.rules.eng-london.when',
    ],
    ['lowering lifecycle.moverGraceMinutes', (d) => void (d.lifecycle.moverGraceMinutes = 0), 'lifecycle.moverGraceMinutes'],
    ['raising governance.policyChangeApprovals', (d) => void (d.governance.policyChangeApprovals = 3), 'governance.policyChangeApprovals'],
    [
      'lowering governance.policyChangeTimeoutDays',
      (d) => void (d.governance.policyChangeTimeoutDays = 2),
      'governance.policyChangeTimeoutDays',
    ],
    ['turning on approveEveryChange', (d) => void (d.governance.approveEveryChange = true), 'governance.approveEveryChange'],
  ];

  it.each(tightening)('%s tightens control and applies at once', (_name, edit, path) => {
    const result = classifyPolicyChange(current, proposed(edit));
    expect(result.items).toEqual([expect.objectContaining({ path, effect: 'tightens' })]);
    expect(result).toMatchObject({ loosens: false, tightensOnly: true, needsApproval: false });
  });

  it.each([
    ['turning justificationRequired back on', 'grants.justificationRequired', (d: Doc) => void (d.grants.justificationRequired = false)],
    ['adding a ticketPattern where there was none', 'grants.ticketPattern', (d: Doc) => void (d.grants.ticketPattern = null)],
    [
      'turning extensionRequiresApproval back on',
      'grants.extensionRequiresApproval',
      (d: Doc) => void (d.grants.extensionRequiresApproval = false),
    ],
    ['lowering preProvisionDays', 'lifecycle.preProvisionDays', (d: Doc) => void (d.lifecycle.preProvisionDays = 14)],
    ['turning endGrantsNotEligible back on', 'lifecycle.endGrantsNotEligible', (d: Doc) => void (d.lifecycle.endGrantsNotEligible = false)],
    [
      'turning moverReviewsPrivilegedAccess back on',
      'lifecycle.moverReviewsPrivilegedAccess',
      (d: Doc) => void (d.lifecycle.moverReviewsPrivilegedAccess = false),
    ],
    [
      'turning adoptExistingAccounts back off',
      'lifecycle.adoptExistingAccounts',
      (d: Doc) => void (d.lifecycle.adoptExistingAccounts = true),
    ],
  ])('%s (the reverse of a loosening change) tightens control', (_name, path, loosen) => {
    const result = classifyPolicyChange(proposed(loosen), current);
    expect(result.items).toEqual([expect.objectContaining({ path, effect: 'tightens' })]);
  });

  it.each([
    ['changing the timezone', (d: Doc) => void (d.timezone = 'Europe/London'), 'timezone'],
    ['declaring another person attribute', (d: Doc) => void d.lifecycle.attributes.push('title'), 'lifecycle.attributes'],
    ['editing a rule description', (d: Doc) => void (rule(d, 'eng').description = 'engineers'), 'lifecycle.rules.eng.description'],
    ['reordering the rules', (d: Doc) => void d.lifecycle.rules.reverse(), 'lifecycle.rules'],
    [
      'writing a one-value condition as a list',
      (d: Doc) => void (rule(d, 'eng').when.department = ['Engineering']),
      'lifecycle.rules.eng.when',
    ],
    [
      'adding a rule that gives nothing',
      (d: Doc) => void d.lifecycle.rules.push({ id: 'tag', when: {}, roles: [] }),
      'lifecycle.rules.tag',
    ],
    [
      'reordering requestableBy',
      (d: Doc) => void role(d, 'HelpdeskAdmin').requestableBy.reverse(),
      'grants.roles.HelpdeskAdmin.requestableBy',
    ],
  ])('%s is neutral and applies at once', (_name, edit, path) => {
    const result = classifyPolicyChange(current, proposed(edit));
    expect(result.items).toEqual([expect.objectContaining({ path, effect: 'neutral' })]);
    expect(result).toMatchObject({ loosens: false, tightensOnly: true, needsApproval: false });
  });

  it('a tenant that decides every change is asked even for a tightening one', () => {
    const strict = proposed((d) => void (d.governance.approveEveryChange = true));
    const result = classifyPolicyChange(
      strict,
      proposed((d) => {
        d.governance.approveEveryChange = true;
        role(d, 'GlobalAdmin').approvalsRequired = 3;
      }),
    );
    expect(result).toMatchObject({ loosens: false, tightensOnly: true, needsApproval: true });
    expect(classifyPolicyChange(strict, strict).needsApproval).toBe(false);
  });

  it('a change that tightens several settings and loosens one loosens control, each item with its own effect', () => {
    const result = classifyPolicyChange(
      current,
      proposed((d) => {
        role(d, 'GlobalAdmin').approvalsRequired = 3;
        d.grants.maxTotalDurationMinutes = 60;
        d.contactEmail = 'noc@msp.example';
      }),
    );
    expect(result.items.map((i) => [i.path, i.effect])).toEqual([
      ['contactEmail', 'loosens'],
      ['grants.maxTotalDurationMinutes', 'tightens'],
      ['grants.roles.GlobalAdmin.approvalsRequired', 'tightens'],
    ]);
    expect(result).toMatchObject({ loosens: true, tightensOnly: false, needsApproval: true });
  });

  it('a rule whose when narrows while it gains a role loosens through the role', () => {
    const result = classifyPolicyChange(
      current,
      proposed((d) => {
        rule(d, 'eng').when.location = 'London';
        rule(d, 'eng').roles.push('GlobalAdmin');
      }),
    );
    expect(result.items.map((i) => [i.path, i.effect])).toEqual([
      ['lifecycle.rules.eng.roles', 'loosens'],
      ['lifecycle.rules.eng.when', 'tightens'],
    ]);
    expect(result.loosens).toBe(true);
  });

  it('renaming a rule is a removed rule and a new one, and the new one loosens', () => {
    const result = classifyPolicyChange(
      current,
      proposed((d) => void (rule(d, 'eng').id = 'engineering')),
    );
    expect(result.items.map((i) => [i.path, i.effect])).toEqual([
      ['lifecycle.rules.eng', 'tightens'],
      ['lifecycle.rules.engineering', 'loosens'],
    ]);
  });

  it('items carry before and after values, leaving out the side where the setting is absent', () => {
    const result = classifyPolicyChange(
      current,
      proposed((d) => {
        role(d, 'GlobalAdmin').approvalsRequired = 0;
        delete d.grants.roles.HelpdeskAdmin;
        d.lifecycle.rules.push({ id: 'x', when: {}, roles: ['GlobalAdmin'] });
      }),
    );
    const byPath = Object.fromEntries(result.items.map((i) => [i.path, i]));
    expect(byPath['grants.roles.GlobalAdmin.approvalsRequired']).toMatchObject({ before: 2, after: 0 });
    expect(byPath['grants.roles.HelpdeskAdmin']).toEqual({
      path: 'grants.roles.HelpdeskAdmin',
      before: current.grants.roles.HelpdeskAdmin,
      effect: 'tightens',
      reason: expect.any(String),
    });
    expect(byPath['lifecycle.rules.x']).toEqual({
      path: 'lifecycle.rules.x',
      after: { id: 'x', when: {}, roles: ['GlobalAdmin'] },
      effect: 'loosens',
      reason: expect.any(String),
    });
  });

  it('items come sorted by path segments whatever order the documents list their keys in', () => {
    const edit = (d: Doc) => {
      d.timezone = 'Europe/Paris';
      d.governance.policyChangeApprovals = 3;
      role(d, 'HelpdeskAdmin').approvalsRequired = 3;
      role(d, 'GlobalAdmin').approvalsRequired = 3;
      d.lifecycle.moverGraceMinutes = 0;
      d.contactEmail = null;
    };
    const after = proposed(edit);
    const shuffled = reversedKeys(after);
    expect(Object.keys(shuffled.grants.roles)).toEqual(['HelpdeskAdmin', 'GlobalAdmin']);
    const paths = classifyPolicyChange(current, after).items.map((i) => i.path);
    expect(paths).toEqual([
      'contactEmail',
      'governance.policyChangeApprovals',
      'grants.roles.GlobalAdmin.approvalsRequired',
      'grants.roles.HelpdeskAdmin.approvalsRequired',
      'lifecycle.moverGraceMinutes',
      'timezone',
    ]);
    expect(classifyPolicyChange(current, shuffled)).toEqual(classifyPolicyChange(current, after));
  });

  it.each([
    ['a new top-level section', (d: Record<string, unknown>) => void (d.reviews = { everyDays: 90 }), 'reviews'],
    [
      'a new grants setting',
      (d: Record<string, unknown>) => void ((d.grants as Record<string, unknown>).breakGlass = true),
      'grants.breakGlass',
    ],
    [
      'a new setting on a grantable role',
      (d: Record<string, unknown>) => void (((d.grants as Doc['grants']).roles.GlobalAdmin as Record<string, unknown>).mfa = 'none'),
      'grants.roles.GlobalAdmin.mfa',
    ],
    [
      'a new setting on a lifecycle rule',
      (d: Record<string, unknown>) => void (((d.lifecycle as Doc['lifecycle']).rules[0] as Record<string, unknown>).startsAt = 'now'),
      'lifecycle.rules.eng.startsAt',
    ],
  ])('%s the classifier does not know loosens control', (_name, edit, path) => {
    const after = structuredClone(current) as unknown as Record<string, unknown>;
    edit(after);
    const result = classifyPolicyChange(current, after as unknown as Doc);
    expect(result.items).toEqual([expect.objectContaining({ path, effect: 'loosens' })]);
    expect(result.loosens).toBe(true);
  });

  it('a stored document without governance compared unparsed loosens, and parsed first gives no diff', () => {
    const stored = JSON.parse(JSON.stringify(current)) as Record<string, unknown>;
    delete stored.governance;
    const defaults = proposed((d) => void (d.governance = TenantPolicyDocument.parse({}).governance));
    expect(classifyPolicyChange(stored as unknown as Doc, defaults).items).toEqual([
      expect.objectContaining({ path: 'governance', effect: 'loosens' }),
    ]);
    expect(classifyPolicyChange(TenantPolicyDocument.parse(stored), defaults).items).toEqual([]);
  });

  it('role names and rule ids that are not plain words are quoted in paths and never read the prototype', () => {
    const result = classifyPolicyChange(
      current,
      proposed((d) => {
        d.grants.roles['Exchange.Admin'] = { privileged: true, maxDurationMinutes: 60, approvalsRequired: 1, requestableBy: ['operator'] };
        Object.assign(d.grants.roles, {
          constructor: { privileged: true, maxDurationMinutes: 60, approvalsRequired: 1, requestableBy: ['operator'] },
        });
        d.lifecycle.rules.push({ id: 'toString', when: {}, roles: ['VPN'] });
      }),
    );
    expect(result.items.map((i) => [i.path, i.effect])).toEqual([
      ['grants.roles["Exchange.Admin"]', 'loosens'],
      ['grants.roles.constructor', 'loosens'],
      ['lifecycle.rules.toString', 'loosens'],
    ]);
  });
});
