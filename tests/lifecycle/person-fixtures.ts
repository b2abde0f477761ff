import type { HrEvent, PersonView, SubmittedHrEvent } from '../../core/lifecycle/contract.js';
import { LifecyclePolicy } from '../../core/lifecycle/policy.js';
import type { Queued } from '../../workflows/lifecycle/queue.js';

/** Plain values for the person workflow's pure modules (no worker, no server). */

export const policy = LifecyclePolicy.parse({
  attributes: ['department'],
  rules: [
    { id: 'staff', roles: ['Staff'] },
    { id: 'eng', when: { department: 'Engineering' }, roles: ['Developers'], eligibleGrantRoles: ['GlobalAdmin'] },
    { id: 'sales', when: { department: 'Sales' }, roles: ['CRM'] },
  ],
  moverGraceMinutes: 60,
  preProvisionDays: 3,
  leaver: { retentionDays: 30, afterRetention: 'delete' },
});

export const at = (iso: string) => Date.parse(iso);

export function submitted(
  event: Partial<HrEvent> & Pick<HrEvent, 'eventId' | 'type' | 'effectiveAt'>,
  over: Partial<SubmittedHrEvent> = {},
) {
  return {
    event: { personId: 'p', ...event },
    policyVersion: 1,
    policy,
    actor: { id: 'hr', type: 'service' },
    authority: { requestId: 'req' },
    ...over,
  } satisfies SubmittedHrEvent;
}

export function queued(event: Partial<HrEvent> & Pick<HrEvent, 'eventId' | 'type' | 'effectiveAt'>, over: Partial<Queued> = {}): Queued {
  return { submitted: submitted(event), arrival: 1, phase: 'waiting', ...over };
}

export function person(over: Partial<PersonView> = {}): PersonView {
  return {
    tenantId: 't',
    personId: 'p',
    workflowId: 'person/t/p',
    status: 'active',
    profile: { username: 'p', displayName: 'P', email: null },
    attributes: { department: 'Engineering' },
    birthright: [
      { role: 'Staff', ruleId: 'staff' },
      { role: 'Developers', ruleId: 'eng' },
    ],
    matchedRuleIds: ['staff', 'eng'],
    eligibleGrantRoles: ['GlobalAdmin'],
    pendingRemovals: [],
    pendingEvents: [],
    deletion: null,
    lastApplied: { eventId: 'j1', type: 'joiner', effectiveAt: '2030-01-01T00:00:00.000Z' },
    policyVersion: 1,
    joinedAt: '2030-01-01T00:00:00.000Z',
    leftAt: null,
    version: 1,
    ...over,
  };
}
