import { randomUUID } from 'node:crypto';
import { random } from '../support/run.js';

/** Roles the fault tenants make grantable: one needs a tenant approval, one is approved automatically. */
export const APPROVED_ROLE = 'PrivilegedAdmin';
export const AUTO_ROLE = 'HelpdeskAdmin';
export const USERS_PER_TENANT = 12;

export type Ending = 'expire' | 'revoke' | 'cancel' | 'deny';

export interface PlannedGrant {
  index: number;
  tenant: number;
  role: string;
  subjectId: string;
  launchAtMs: number;
  startDelaySec: number;
  durationSec: number;
  ending: Ending;
  /** For 'revoke': when, as a fraction of the duration after the start. */
  revokeFraction: number;
  idempotencyKey: string;
}

/** A planned grant as the driver got on with it. */
export interface Tracked {
  plan: PlannedGrant;
  tenantId: string;
  grantId?: string;
  /**
   * When the system took the early revoke (the start of the attempt it accepted, see the
   * driver); the grant's deadline when earlier than its end.
   */
  revokeSentAt?: number;
  driverError?: string;
}

/** `count` grants launched evenly over `launchMs`, with random roles, delays, durations and endings. */
export function makePlan(count: number, tenants: number, launchMs: number): PlannedGrant[] {
  return Array.from({ length: count }, (_, index) => {
    const role = Math.random() < 0.5 ? APPROVED_ROLE : AUTO_ROLE;
    const startDelaySec = Math.random() < 0.2 ? Math.round(random(2, 10)) : 0;
    const r = Math.random();
    let ending: Ending;
    if (role === APPROVED_ROLE) ending = r < 0.04 ? 'deny' : r < 0.08 ? 'cancel' : r < 0.28 ? 'revoke' : 'expire';
    else ending = startDelaySec > 0 && r < 0.25 ? 'cancel' : r < 0.45 ? 'revoke' : 'expire';
    return {
      index,
      tenant: index % tenants,
      role,
      subjectId: `user${String(Math.floor(Math.random() * USERS_PER_TENANT)).padStart(2, '0')}`,
      launchAtMs: Math.round((index / count) * launchMs),
      startDelaySec,
      durationSec: Math.round(random(5, 30)),
      ending,
      revokeFraction: random(0.2, 0.7),
      idempotencyKey: `faults-${randomUUID()}`,
    };
  });
}
