import type { HrEvent } from '../../core/lifecycle/contract.js';
import { LifecyclePolicy } from '../../core/lifecycle/policy.js';
import { evaluateBirthright } from '../../core/lifecycle/rules.js';

const DEPARTMENTS = ['Engineering', 'Sales', 'Support', 'Finance'] as const;
const LOCATIONS = ['London', 'Berlin', 'Remote'] as const;

/** Ordered rules: everyone is Staff, each department adds one role, remote workers add VPN: 2–3 roles each. */
export const LIFECYCLE = LifecyclePolicy.parse({
  attributes: ['department', 'location'],
  rules: [
    { id: 'everyone', roles: ['Staff'] },
    { id: 'engineering', when: { department: 'Engineering' }, roles: ['Developers'] },
    { id: 'sales', when: { department: 'Sales' }, roles: ['CRM'] },
    { id: 'support', when: { department: 'Support' }, roles: ['Helpdesk'] },
    { id: 'finance', when: { department: 'Finance' }, roles: ['Ledger'] },
    { id: 'remote', when: { location: 'Remote' }, roles: ['VPN'] },
  ],
  leaver: { retentionDays: 30, afterRetention: 'delete' },
});
export const DIRECTORY_ROLES = [...new Set(LIFECYCLE.rules.flatMap((r) => r.roles))];

export interface Person {
  tenant: number;
  personId: string;
  attributes: { department: string; location: string };
  /** Birthright roles the rules give, sorted. */
  roles: string[];
}

export function peopleOf(prefix: string, count: number, tenantCount: number): Person[] {
  return Array.from({ length: count }, (_, i) => {
    const attributes = {
      department: DEPARTMENTS[i % DEPARTMENTS.length]!,
      location: LOCATIONS[Math.floor(i / DEPARTMENTS.length) % LOCATIONS.length]!,
    };
    return { tenant: i % tenantCount, personId: `${prefix}-${i}`, attributes, roles: evaluateBirthright(LIFECYCLE, attributes).roles };
  });
}

/** An HR event as the HR system sends it; the same for the CSV (real side) and the floor's Updates. */
export function hrEvent(side: string, type: 'joiner' | 'leaver', person: Person, effectiveAt: string): HrEvent {
  const event: HrEvent = { eventId: `${side}-${person.personId}-${type}`, personId: person.personId, type, effectiveAt };
  if (type === 'joiner') {
    event.attributes = person.attributes;
    event.profile = { username: person.personId, displayName: `Bench person ${person.personId}`, email: `${person.personId}@example.com` };
  }
  return event;
}

const CSV_HEADER = 'eventId,personId,type,effectiveAt,username,displayName,email,department,location';
export function csvOf(events: HrEvent[]): string {
  const rows = events.map((e) =>
    [
      e.eventId,
      e.personId,
      e.type,
      e.effectiveAt,
      e.profile?.username ?? '',
      e.profile?.displayName ?? '',
      e.profile?.email ?? '',
      e.attributes?.department ?? '',
      e.attributes?.location ?? '',
    ].join(','),
  );
  return `${CSV_HEADER}\n${rows.join('\n')}\n`;
}
