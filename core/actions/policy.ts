import { z } from 'zod';
import { ROLES } from '../tenancy/authz.js';
import { ACTION_TYPES, type ActionType } from './contract.js';

/** One remote action the tenant allows, and who decides it. */
export const ActionRule = z
  .strictObject({
    /** Distinct tenant approvers needed (N of the tenant's approvers); 0 runs it without approval. */
    approvalsRequired: z.number().int().min(0).max(10).default(1),
    /** Tenure roles (role bindings in this tenant or MSP-wide) whose holders may request it. */
    requestableBy: z.array(z.enum(ROLES)).min(1).default(['operator']),
  })
  .meta({ id: 'ActionRule' });
export type ActionRule = z.infer<typeof ActionRule>;

/** An action the policy does not list is not allowed in the tenant. */
const Allowed = z.strictObject(
  Object.fromEntries(ACTION_TYPES.map((action) => [action, ActionRule.optional()])) as Record<ActionType, z.ZodOptional<typeof ActionRule>>,
);

/** The `actions` section of a tenant's versioned policy. */
export const ActionPolicy = z
  .strictObject({
    allowed: Allowed.default({}),
    /** A request nobody approves in this time expires, and nothing is done. */
    approvalTimeoutMinutes: z
      .number()
      .int()
      .min(1)
      .max(60 * 24 * 7)
      .default(60 * 4),
    justificationRequired: z.boolean().default(true),
    /**
     * A regular expression (RE2 syntax) the whole ticket reference must match; null when no ticket
     * is required. The same rules as the grants' pattern (core/grants/policy.ts).
     */
    ticketPattern: z.string().max(200).meta({ format: 'regex' }).nullable().default(null),
  })
  .meta({ id: 'ActionPolicy' });
export type ActionPolicy = z.infer<typeof ActionPolicy>;
