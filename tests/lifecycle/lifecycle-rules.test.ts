import { describe, expect, it } from 'vitest';
import type { PersonView } from '../../core/lifecycle/contract.js';
import { parseCsv, parseNdjson } from '../../core/lifecycle/import.js';
import { admitEvent, diffHoldings, evaluateBirthright, previewEvent, unknownAttributes } from '../../core/lifecycle/rules.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { LifecyclePolicy } from '../../core/lifecycle/policy.js';

const policy = LifecyclePolicy.parse({
  attributes: ['department', 'title', 'location', 'employmentType'],
  rules: [
    { id: 'all-staff', when: { employmentType: ['employee', 'contractor'] }, roles: ['Staff'] },
    { id: 'eng', when: { department: 'Engineering' }, roles: ['Developers', 'VPN'], eligibleGrantRoles: ['GlobalAdmin'] },
    { id: 'eng-london', when: { department: 'Engineering', location: 'London' }, roles: ['LondonOffice'] },
    { id: 'sales', when: { department: 'Sales' }, roles: ['CRM', 'VPN'] },
  ],
  moverGraceMinutes: 60,
  leaver: { retentionDays: 30, afterRetention: 'anonymise' },
});

const person = (over: Partial<PersonView> = {}): PersonView => ({
  tenantId: 't',
  personId: 'p',
  workflowId: 'person/t/p',
  status: 'active',
  profile: { username: 'p', displayName: 'P' },
  attributes: { department: 'Engineering', location: 'London', employmentType: 'employee' },
  birthright: evaluateBirthright(policy, { department: 'Engineering', location: 'London', employmentType: 'employee' }).holdings,
  matchedRuleIds: ['all-staff', 'eng', 'eng-london'],
  eligibleGrantRoles: ['GlobalAdmin'],
  pendingRemovals: [],
  pendingEvents: [],
  deletion: null,
  lastApplied: { eventId: 'j1', type: 'joiner', effectiveAt: '2030-01-01T00:00:00.000Z' },
  policyVersion: 2,
  joinedAt: '2030-01-01T00:00:00.000Z',
  leftAt: null,
  version: 3,
  ...over,
});

describe('lifecycle policy schema', () => {
  it('defaults to no rules, a week of mover grace and 30 days of retention', () => {
    const empty = TenantPolicyDocument.parse({}).lifecycle;
    expect(empty).toMatchObject({
      attributes: [],
      rules: [],
      moverGraceMinutes: 7 * 24 * 60,
      preProvisionDays: 0,
      leaver: { retentionDays: 30, afterRetention: 'delete' },
    });
  });

  it('refuses a rule naming an undeclared attribute, with the field path', () => {
    const result = LifecyclePolicy.safeParse({
      attributes: ['department'],
      rules: [{ id: 'r', when: { costCentre: '42' }, roles: ['X'] }],
    });
    expect(result.success).toBe(false);
    expect(result.error!.issues.map((i) => i.path.join('.'))).toEqual(['rules.0.when.costCentre']);
  });

  it('refuses duplicate rule ids', () => {
    const result = LifecyclePolicy.safeParse({
      rules: [
        { id: 'r', roles: ['X'] },
        { id: 'r', roles: ['Y'] },
      ],
    });
    expect(result.error!.issues[0]!.path).toEqual(['rules', 1, 'id']);
  });
});

describe('birthright evaluation', () => {
  it('gives every matching rule its roles, in rule order, when all conditions match', () => {
    const result = evaluateBirthright(policy, { department: 'Engineering', location: 'London', employmentType: 'employee' });
    expect(result.ruleIds).toEqual(['all-staff', 'eng', 'eng-london']);
    expect(result.roles).toEqual(['Developers', 'LondonOffice', 'Staff', 'VPN']);
    expect(result.eligibleGrantRoles).toEqual(['GlobalAdmin']);
  });

  it('matches a list condition by membership and skips a rule with one unmet condition', () => {
    const result = evaluateBirthright(policy, { department: 'Engineering', location: 'Paris', employmentType: 'contractor' });
    expect(result.ruleIds).toEqual(['all-staff', 'eng']);
  });

  it('gives nothing when an attribute a rule needs is missing', () => {
    expect(evaluateBirthright(policy, { location: 'London' }).holdings).toEqual([]);
  });

  it('diffs by role and rule, so a role moving to another rule is kept and re-sourced', () => {
    const before = evaluateBirthright(policy, { department: 'Engineering' }).holdings;
    const after = evaluateBirthright(policy, { department: 'Sales' }).holdings;
    const diff = diffHoldings(before, after);
    expect(diff.added).toEqual([
      { role: 'CRM', ruleId: 'sales' },
      { role: 'VPN', ruleId: 'sales' },
    ]);
    expect(diff.removed).toEqual([
      { role: 'Developers', ruleId: 'eng' },
      { role: 'VPN', ruleId: 'eng' },
    ]);
  });

  it('names attributes the tenant has not declared', () => {
    expect(unknownAttributes(policy, { department: 'x', shoeSize: '44' })).toEqual(['shoeSize']);
  });
});

describe('admission and ordering', () => {
  const active = { status: 'active' as const, everJoined: true, lastApplied: { effectiveAt: '2030-01-10T00:00:00Z' } };

  it('supersedes an event dated before the last applied one', () => {
    expect(admitEvent(active, [], { eventId: 'm0', type: 'mover', effectiveAt: '2030-01-05T00:00:00Z' }).kind).toBe('superseded');
  });

  it('refuses a mover or leaver for someone who never joined', () => {
    expect(
      admitEvent({ status: 'pending', everJoined: false, lastApplied: null }, [], {
        eventId: 'l',
        type: 'leaver',
        effectiveAt: '2030-01-01T00:00:00Z',
      }),
    ).toMatchObject({ kind: 'reject', rejection: 'NotJoined' });
  });

  it('lets a leaver cancel a joiner still waiting for its start date', () => {
    const waiting = { status: 'pending' as const, everJoined: true, lastApplied: null };
    const queue = [{ eventId: 'j', type: 'joiner' as const, effectiveAt: '2030-02-01T00:00:00Z' }];
    expect(admitEvent(waiting, queue, { eventId: 'l', type: 'leaver', effectiveAt: '2030-01-20T00:00:00Z' })).toEqual({
      kind: 'accept',
      cancels: ['j'],
      position: 0,
    });
  });

  it('orders by effective time and refuses a mover that would land after a waiting leaver', () => {
    const queue = [{ eventId: 'l', type: 'leaver' as const, effectiveAt: '2030-03-01T00:00:00Z' }];
    expect(admitEvent(active, queue, { eventId: 'm', type: 'mover', effectiveAt: '2030-02-01T00:00:00Z' })).toMatchObject({
      kind: 'accept',
      position: 0,
    });
    expect(admitEvent(active, queue, { eventId: 'm', type: 'mover', effectiveAt: '2030-04-01T00:00:00Z' })).toMatchObject({
      kind: 'reject',
      rejection: 'Conflict',
    });
  });

  it('refuses a joiner for a person already active, and accepts a rehire after a leaver', () => {
    expect(admitEvent(active, [], { eventId: 'j2', type: 'joiner', effectiveAt: '2030-02-01T00:00:00Z' })).toMatchObject({
      kind: 'reject',
      rejection: 'Conflict',
    });
    const left = { ...active, status: 'left' as const };
    expect(admitEvent(left, [], { eventId: 'j2', type: 'joiner', effectiveAt: '2030-02-01T00:00:00Z' }).kind).toBe('accept');
  });
});

describe('preview', () => {
  const now = '2030-01-15T00:00:00.000Z';

  it('shows a mover adding new roles now and removing old ones after the grace period', () => {
    const preview = previewEvent({
      person: person(),
      event: { eventId: 'm1', personId: 'p', type: 'mover', effectiveAt: now, attributes: { department: 'Sales' } },
      policy,
      policyVersion: 2,
      now,
      openGrants: [
        { grantId: 'g1', role: 'GlobalAdmin', status: 'active' },
        { grantId: 'g2', role: 'HelpdeskAdmin', status: 'active' },
      ],
    });
    expect(preview.outcome).toBe('apply');
    expect(preview.rolesToAdd).toEqual([
      { role: 'CRM', ruleId: 'sales' },
      { role: 'VPN', ruleId: 'sales' },
    ]);
    expect(preview.rolesToRemoveNow).toEqual([]);
    expect(preview.rolesToRemoveAfterGrace.map((r) => `${r.ruleId}:${r.role}@${r.dueAt}`)).toEqual([
      'eng:Developers@2030-01-15T01:00:00.000Z',
      'eng:VPN@2030-01-15T01:00:00.000Z',
      'eng-london:LondonOffice@2030-01-15T01:00:00.000Z',
    ]);
    expect(preview.grantsToEnd.map((g) => g.grantId)).toEqual(['g1']);
  });

  it('shows a move-back cancelling the removals still in grace', () => {
    const pendingRemovals = [{ role: 'Developers', ruleId: 'eng', dueAt: '2030-01-15T01:00:00.000Z', hrEventId: 'm1', policyVersion: 2 }];
    const preview = previewEvent({
      person: person({
        attributes: { department: 'Sales', location: 'London', employmentType: 'employee' },
        pendingRemovals,
        birthright: [
          { role: 'Staff', ruleId: 'all-staff' },
          { role: 'CRM', ruleId: 'sales' },
          { role: 'Developers', ruleId: 'eng' },
        ],
      }),
      event: { eventId: 'm2', personId: 'p', type: 'mover', effectiveAt: now, attributes: { department: 'Engineering' } },
      policy,
      policyVersion: 2,
      now,
    });
    expect(preview.removalsCancelled).toEqual([{ role: 'Developers', ruleId: 'eng' }]);
    expect(preview.rolesToAdd.map((r) => r.role)).toEqual(['VPN', 'LondonOffice']);
  });

  it('shows a future joiner pre-provisioned as a disabled account', () => {
    const preview = previewEvent({
      person: null,
      event: {
        eventId: 'j1',
        personId: 'p',
        type: 'joiner',
        effectiveAt: '2030-02-01T09:00:00.000Z',
        attributes: { department: 'Sales', employmentType: 'employee' },
        profile: { username: 'p', displayName: 'P' },
      },
      policy: { ...policy, preProvisionDays: 3 },
      policyVersion: 2,
      now,
    });
    expect(preview).toMatchObject({
      outcome: 'apply',
      account: 'create_disabled',
      preProvisionAt: '2030-01-29T09:00:00.000Z',
      matchedRuleIds: ['all-staff', 'sales'],
    });
  });

  it('shows a leaver ending everything and scheduling deletion after retention', () => {
    const preview = previewEvent({
      person: person(),
      event: { eventId: 'l1', personId: 'p', type: 'leaver', effectiveAt: now },
      policy,
      policyVersion: 2,
      now,
      openGrants: [{ grantId: 'g1', role: 'GlobalAdmin', status: 'active' }],
      openEntitlements: [
        { role: 'Staff', sourceType: 'birthright', sourceId: 'all-staff' },
        { role: 'Printers', sourceType: 'manual', sourceId: 'ticket-9' },
      ],
    });
    expect(preview).toMatchObject({
      account: 'disable',
      revokeSessions: true,
      deletion: { action: 'schedule', dueAt: '2030-02-14T00:00:00.000Z', mode: 'anonymise' },
    });
    expect(preview.entitlementsToEnd).toEqual([{ role: 'Printers', sourceType: 'manual', sourceId: 'ticket-9' }]);
    expect(preview.grantsToEnd).toHaveLength(1);
  });

  it('shows a rehire inside retention cancelling the deletion', () => {
    const preview = previewEvent({
      person: person({ status: 'left', birthright: [], deletion: { dueAt: '2030-02-14T00:00:00.000Z', mode: 'delete', hrEventId: 'l1' } }),
      event: {
        eventId: 'j2',
        personId: 'p',
        type: 'joiner',
        effectiveAt: now,
        attributes: { department: 'Sales', employmentType: 'employee' },
        profile: { username: 'p', displayName: 'P' },
      },
      policy,
      policyVersion: 2,
      now,
    });
    expect(preview).toMatchObject({ account: 're_enable', deletion: { action: 'cancel' } });
  });
});

describe('import parsing', () => {
  it('reads CSV rows with profile and attribute columns, numbering data rows', () => {
    const rows = parseCsv(
      'eventId,personId,type,effectiveAt,username,displayName,department\n' +
        'e1,p1,joiner,2030-01-01T00:00:00Z,p1,Person One,Sales\n' +
        'e2,p2,leaver,2030-01-01T00:00:00Z,,,\n',
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({
      row: 1,
      value: { eventId: 'e1', profile: { username: 'p1', displayName: 'Person One' }, attributes: { department: 'Sales' } },
      issues: [],
    });
    expect(rows[1]!.value).toEqual({ eventId: 'e2', personId: 'p2', type: 'leaver', effectiveAt: '2030-01-01T00:00:00Z' });
  });

  it('flags a CSV row with the wrong number of fields and an unclosed quote', () => {
    const rows = parseCsv('eventId,personId,type\ne1,p1,joiner\ne2,p2\ne3,"p3,joiner\n');
    expect(rows.map((r) => [r.row, r.issues.length])).toEqual([
      [1, 0],
      [2, 1],
      [3, 1],
    ]);
  });

  it('reads NDJSON lines and reports a bad line by its row', () => {
    const rows = parseNdjson('{"eventId":"e1"}\n\nnot json\n[1]\n');
    expect(rows.map((r) => [r.row, r.line, r.issues.length])).toEqual([
      [1, 1, 0],
      [2, 3, 1],
      [3, 4, 1],
    ]);
  });
});

describe('admission while an event is being applied', () => {
  it('orders a new event after the one in progress and judges it by that event’s outcome', () => {
    const joining = { status: 'pending' as const, everJoined: true, lastApplied: null };
    const inProgress = { eventId: 'j', type: 'joiner' as const, effectiveAt: '2030-01-01T00:00:00Z' };
    expect(
      admitEvent({ ...joining, status: 'active' }, [], { eventId: 'm', type: 'mover', effectiveAt: '2030-01-02T00:00:00Z' }, inProgress)
        .kind,
    ).toBe('accept');
    expect(admitEvent(joining, [], { eventId: 'm', type: 'mover', effectiveAt: '2030-01-02T00:00:00Z' }, inProgress).kind).toBe('accept');
    expect(admitEvent(joining, [], { eventId: 'm', type: 'mover', effectiveAt: '2029-12-31T00:00:00Z' }, inProgress).kind).toBe(
      'superseded',
    );
  });
});
