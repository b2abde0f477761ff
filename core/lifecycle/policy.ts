import { z } from 'zod';
import { nonBlank } from '../text.js';

/** A person attribute name the tenant declares (department, title, location, employmentType, …). */
const ATTRIBUTE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;
export const AttributeName = z.string().regex(ATTRIBUTE_NAME, 'a letter, then letters, digits or _ (at most 63)');
/** Record keys are not in the generated document unless stated (zod-to-openapi drops them). */
export const attributeNames = { propertyNames: { pattern: ATTRIBUTE_NAME.source } };
const RoleName = z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, . _ -');
const AttributeValue = nonBlank(200);

/**
 * One birthright rule: when every condition matches the person's attributes (a value, or any of
 * a list of values), the person holds `roles`; `eligibleGrantRoles` are the grant roles this
 * position makes the person eligible for (a mover losing them has those grants ended).
 */
export const BirthrightRule = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, . _ -'),
  description: z.string().max(500).optional(),
  when: z
    .record(AttributeName, z.union([AttributeValue, z.array(AttributeValue).min(1).max(100)]))
    .meta(attributeNames)
    .default({}),
  roles: z.array(RoleName).max(100).default([]),
  eligibleGrantRoles: z.array(RoleName).max(100).optional(),
});
export type BirthrightRule = z.infer<typeof BirthrightRule>;

export const LeaverPolicy = z.strictObject({
  /** Days after the leaver's effective time before the account is deleted or anonymised. */
  retentionDays: z.number().int().min(0).max(3650).default(30),
  afterRetention: z.enum(['delete', 'anonymise']).default('delete'),
});

const DAY_MINUTES = 24 * 60;

/**
 * The `lifecycle` section of a tenant's versioned policy: joiner / mover / leaver rules.
 * Rules are evaluated in order; every matching rule contributes its roles.
 */
export const LifecyclePolicy = z
  .strictObject({
    /** Person attributes HR events may carry and rules may test; anything else is refused. */
    attributes: z.array(AttributeName).max(50).meta({ uniqueItems: true }).default([]),
    rules: z.array(BirthrightRule).max(500).default([]),
    /** How long a mover keeps the old position's birthright roles (fractions allowed). */
    moverGraceMinutes: z
      .number()
      .min(0)
      .max(365 * DAY_MINUTES)
      .default(7 * DAY_MINUTES),
    /** Create the (disabled) account and its roles this many days before a joiner's start. */
    preProvisionDays: z.number().int().min(0).max(90).default(0),
    leaver: LeaverPolicy.default(LeaverPolicy.parse({})),
    /** A mover raises a review (audit event) of the privileged access the person keeps. */
    moverReviewsPrivilegedAccess: z.boolean().default(false),
    /** A mover ends grants whose role the new position no longer makes eligible. */
    endGrantsNotEligible: z.boolean().default(true),
    /**
     * A joiner may take over a directory account the lifecycle did not create (audited). Off, such
     * a joiner is refused, so an HR feed cannot revive e.g. a disabled break-glass account.
     */
    adoptExistingAccounts: z.boolean().default(false),
  })
  .superRefine((policy, ctx) => {
    const declared = new Set(policy.attributes);
    const seen = new Set<string>();
    policy.attributes.forEach((name, i) => {
      if (policy.attributes.indexOf(name) !== i)
        ctx.addIssue({ code: 'custom', path: ['attributes', i], message: `attribute ${name} is declared twice` });
    });
    policy.rules.forEach((rule, i) => {
      if (seen.has(rule.id)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `rule id ${rule.id} is used twice` });
      seen.add(rule.id);
      for (const attribute of Object.keys(rule.when)) {
        if (!declared.has(attribute)) {
          ctx.addIssue({
            code: 'custom',
            path: ['rules', i, 'when', attribute],
            message: `unknown attribute ${attribute}; declare it in lifecycle.attributes`,
          });
        }
      }
    });
  })
  .meta({ id: 'LifecyclePolicy' });
export type LifecyclePolicy = z.infer<typeof LifecyclePolicy>;
