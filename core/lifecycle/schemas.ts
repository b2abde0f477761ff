import { z } from 'zod';
import { HR_EVENT_TYPES } from './contract.js';
import { AttributeName } from './policy.js';

/** Person ids are the HR system's own; they become directory user ids. */
export const PersonId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/, 'letters, digits, . _ @ - (at most 128)');

export const PersonProfileSchema = z.strictObject({
  username: z.string().trim().min(1).max(128),
  displayName: z.string().trim().min(1).max(200),
  email: z.email().nullable().optional(),
});

/**
 * An HR event at the HTTP edge (body of POST …/hr-events, one row of an import). Attribute names
 * are checked against the tenant's declared attributes by the use case, which knows the policy.
 */
export const HrEventBody = z
  .strictObject({
    eventId: z.string().trim().min(1).max(200),
    personId: PersonId,
    type: z.enum(HR_EVENT_TYPES),
    effectiveAt: z.iso.datetime({ offset: true }),
    attributes: z.record(AttributeName, z.string().trim().min(1).max(200)).optional(),
    profile: PersonProfileSchema.optional(),
  })
  .superRefine((event, ctx) => {
    if (event.type === 'joiner' && !event.profile) ctx.addIssue({ code: 'custom', path: ['profile'], message: 'required for a joiner' });
  })
  .meta({ id: 'HrEvent' });
export type HrEventBody = z.infer<typeof HrEventBody>;
