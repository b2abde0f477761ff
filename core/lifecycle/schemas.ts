import { z } from 'zod';
import { DateTime, Email, nonBlank } from '../text.js';
import { HR_EVENT_TYPES } from './contract.js';
import { AttributeName, attributeNames } from './policy.js';

/** Person ids are the HR system's own; they become directory user ids. */
export const PersonId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/, 'letters, digits, . _ @ - (at most 128)');

export const PersonProfileSchema = z.strictObject({
  username: nonBlank(128),
  displayName: nonBlank(200),
  email: Email.nullable().optional(),
});

/**
 * An HR event at the HTTP edge (body of POST …/hr-events, one row of an import). Attribute names
 * are checked against the tenant's declared attributes by the use case, which knows the policy.
 */
export const HrEventBody = z
  .strictObject({
    eventId: nonBlank(200),
    personId: PersonId,
    type: z.enum(HR_EVENT_TYPES),
    effectiveAt: DateTime,
    attributes: z.record(AttributeName, nonBlank(200)).meta(attributeNames).optional(),
    profile: PersonProfileSchema.optional(),
  })
  .superRefine((event, ctx) => {
    if (event.type === 'joiner' && !event.profile) ctx.addIssue({ code: 'custom', path: ['profile'], message: 'required for a joiner' });
  })
  // What the refinement enforces, stated in the document.
  .meta({ id: 'HrEvent', anyOf: [{ properties: { type: { enum: ['mover', 'leaver'] } } }, { required: ['profile'] }] });
export type HrEventBody = z.infer<typeof HrEventBody>;
