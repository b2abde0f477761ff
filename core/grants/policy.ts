import { RE2JS } from 're2js';
import { z } from 'zod';
import { ROLES } from '../tenancy/authz.js';

/** A directory role that may be requested as a time-bound grant, and the rules for it. */
export const GrantableRole = z.strictObject({
  privileged: z.boolean().default(true),
  /** Longest single grant. */
  maxDurationMinutes: z
    .number()
    .int()
    .min(1)
    .max(60 * 24 * 90),
  /** Distinct tenant approvers needed (N of the tenant's approvers); 0 approves automatically. */
  approvalsRequired: z.number().int().min(0).max(10).default(1),
  /** Tenure roles (role bindings in this tenant or MSP-wide) whose holders may request it. */
  requestableBy: z.array(z.enum(ROLES)).min(1).default(['operator']),
});
export type GrantableRole = z.infer<typeof GrantableRole>;

/** The `grants` section of a tenant's versioned policy. */
export const GrantPolicy = z
  .strictObject({
    roles: z
      .record(z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, . _ -'), GrantableRole)
      .meta({ propertyNames: { pattern: '^[A-Za-z0-9._-]{1,100}$' } })
      .default({}),
    approvalTimeoutMinutes: z
      .number()
      .int()
      .min(1)
      .max(60 * 24 * 30)
      .default(60 * 24),
    extensionRequiresApproval: z.boolean().default(true),
    /** Cap on a grant's total length, extensions included. */
    maxTotalDurationMinutes: z
      .number()
      .int()
      .min(1)
      .max(60 * 24 * 365)
      .default(60 * 24),
    justificationRequired: z.boolean().default(true),
    /** While a grant's revocation keeps failing, how often it raises an alert again (the first comes at once). */
    revocationAlertMinutes: z
      .number()
      .int()
      .min(5)
      .max(60 * 24 * 7)
      .default(60),
    /**
     * A regular expression (RE2 syntax) the whole ticket reference must match; null when no ticket
     * is required. RE2 matches in linear time, so a hostile ticket cannot stall the event loop.
     * What RE2 cannot run (backreferences, lookarounds) is refused at policy write
     * (patternIssues), not here: a version stored before that check must still load, and
     * then simply matches no ticket.
     */
    ticketPattern: z.string().max(200).meta({ format: 'regex' }).nullable().default(null),
  })
  .meta({ id: 'GrantPolicy' });
export type GrantPolicy = z.infer<typeof GrantPolicy>;

/** The compiled ticket pattern, or null when RE2 cannot compile it. */
export function compileTicketPattern(pattern: string): RE2JS | null {
  try {
    return RE2JS.compile(pattern);
  } catch {
    return null;
  }
}

/** A policy write's problem with a ticket pattern at `path`, if RE2 cannot run it. */
export function patternIssues(pattern: string | null, path: string): { path: string; message: string }[] {
  if (pattern === null || compileTicketPattern(pattern) !== null) return [];
  return [{ path, message: 'not a regular expression RE2 can run (no backreferences or lookarounds)' }];
}

// Compiling a pattern cost more CPU than the rest of a grant request (about 5 ms); a tenant has
// one. Compiled patterns are kept, and all forgotten should there ever be more than a thousand.
// (A plain Map: this module is also in the workflow bundle's reach, so no cache library here.)
const compiled = new Map<string, RE2JS | null>();

/** Whether the whole ticket matches the policy's pattern (RE2, linear in the ticket's length). */
export function ticketMatches(pattern: string, ticket: string): boolean {
  let re = compiled.get(pattern);
  if (re === undefined) {
    if (compiled.size >= 1000) compiled.clear();
    compiled.set(pattern, (re = compileTicketPattern(pattern)));
  }
  return re?.matches(ticket) ?? false;
}
