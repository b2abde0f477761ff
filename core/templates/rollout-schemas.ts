import { z } from 'zod';
import { Uuid } from '../tenancy/schemas.js';
import { APPLY_STATUSES } from './contract.js';
import {
  DEFAULT_ROLLOUT_WINDOW,
  MAX_ROLLOUT_TENANTS,
  MAX_ROLLOUT_WINDOW,
  ROLLOUT_STATUSES,
  ROLLOUT_TENANT_STATES,
  WAVE_COUNTERS,
  WAVE_STATUSES,
} from './rollouts.js';
import { TemplateVersionNumber } from './schemas.js';

const uniqueTenants = (max: number) =>
  z
    .array(Uuid)
    .min(1)
    .max(max)
    .superRefine((ids, ctx) => {
      const seen = new Set<string>();
      ids.forEach((id, i) => {
        if (seen.has(id)) ctx.addIssue({ code: 'custom', path: [i], message: 'a tenant is listed twice' });
        seen.add(id);
      });
    });

const WaveSize = z.union([
  z.strictObject({ count: z.number().int().min(1).max(MAX_ROLLOUT_TENANTS) }),
  z.strictObject({ percent: z.number().min(1).max(100) }),
]);

export const StartRolloutRequest = z
  .strictObject({
    templateId: Uuid,
    version: TemplateVersionNumber.describe('An approved version of the template.'),
    tenants: z
      .union([uniqueTenants(MAX_ROLLOUT_TENANTS), z.literal('pinned')])
      .describe('The tenants, in the order they roll out; or `pinned`: every tenant pinned to the template (any version).'),
    canary: z
      .union([z.strictObject({ tenants: uniqueTenants(100) }), z.strictObject({ count: z.number().int().min(1).max(100) })])
      .optional()
      .describe('The first wave: these tenants, or the first `count`.'),
    waves: z
      .array(WaveSize)
      .max(50)
      .optional()
      .describe('The waves after the canary, by count or by a percentage of the tenants after it; whatever is left is a last wave.'),
    bakeSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 86_400)
      .default(0)
      .describe('How long to wait after each wave before the next.'),
    approveBetweenWaves: z.boolean().default(false).describe('Each wave after the first waits for an operator’s `approve-wave`.'),
    errorBudget: z
      .strictObject({
        maxFailures: z.number().int().min(0).max(MAX_ROLLOUT_TENANTS).optional(),
        maxFailurePercent: z.number().min(0).max(100).optional(),
      })
      .default({ maxFailures: 0 })
      .describe('Failures a wave may have; past either limit the rollout halts. Default: none (the first failure halts).'),
    window: z.number().int().min(1).max(MAX_ROLLOUT_WINDOW).default(DEFAULT_ROLLOUT_WINDOW).describe('Tenants applying at once.'),
    approvalTimeoutMinutes: z
      .number()
      .int()
      .min(1)
      .max(60 * 24 * 90)
      .optional()
      .describe('How long each tenant’s approvers have when its plan needs them; each tenant’s own policy-change timeout when absent.'),
  })
  .meta({ id: 'StartRollout' });
export type StartRolloutRequest = z.infer<typeof StartRolloutRequest>;

export const RolloutActionBody = z.strictObject({ comment: z.string().trim().max(2000).optional() }).meta({ id: 'RolloutAction' });

export const RolloutListQuery = z.strictObject({
  status: z.enum(ROLLOUT_STATUSES).optional(),
  templateId: Uuid.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

const RolloutWave = z.object({
  index: z.number().int(),
  name: z.string(),
  size: z.number().int(),
  status: z.enum(WAVE_STATUSES),
  ...(Object.fromEntries(WAVE_COUNTERS.map((c) => [c, z.number().int()])) as Record<(typeof WAVE_COUNTERS)[number], z.ZodNumber>),
  startedAt: z.string().nullable(),
  completedAt: z.string().nullable(),
  approvedBy: z.string().nullable(),
});

export const TemplateRolloutView = z
  .object({
    rolloutId: Uuid,
    workflowId: z.string(),
    templateId: Uuid,
    version: z.number().int(),
    status: z.enum(ROLLOUT_STATUSES),
    requesterId: z.string(),
    tenants: z.number().int(),
    currentWave: z.number().int(),
    waves: z.array(RolloutWave),
    inFlight: z.number().int(),
    halt: z.object({ wave: z.number().int(), failures: z.number().int(), budget: z.string(), at: z.string() }).nullable(),
    bakeUntil: z.string().nullable(),
    options: z.object({
      window: z.number().int(),
      bakeSeconds: z.number().int(),
      approveBetweenWaves: z.boolean(),
      errorBudget: z.object({ maxFailures: z.number().int().nullable(), maxFailurePercent: z.number().nullable() }),
      approvalTimeoutMinutes: z.number().int().nullable(),
    }),
    startedAt: z.string(),
    completedAt: z.string().nullable(),
    revision: z.number().int(),
  })
  .meta({ id: 'TemplateRollout' });

export const RolloutTenantView = z.object({
  tenantId: Uuid,
  tenantName: z.string(),
  wave: z.number().int(),
  position: z.number().int(),
  state: z.enum(ROLLOUT_TENANT_STATES),
  /** The apply's status once it has started (`GET /v1/tenants/{id}/template/applies/{rolloutId}` for more). */
  applyStatus: z.enum(APPLY_STATUSES).nullable(),
  outcome: z.string().nullable(),
});

/** Tenants of a rollout, a page at a time in wave and position order: a rollout holds up to 5,000. */
export const ROLLOUT_TENANTS_PAGE = 500;
export const RolloutDetailQuery = z.strictObject({
  cursor: z
    .string()
    .regex(/^\d{1,4}\.\d{1,6}$/, 'not a cursor returned by this endpoint')
    .optional()
    .meta({ description: 'The `nextCursor` of the previous page: its tenants come after that one.' }),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(ROLLOUT_TENANTS_PAGE)
    .meta({ description: `Tenants per page (default ${ROLLOUT_TENANTS_PAGE}, at most 1,000).` }),
});

export const TemplateRolloutDetailView = TemplateRolloutView.extend({
  tenantStates: z.array(RolloutTenantView),
  nextCursor: z.string().nullable().meta({ description: 'More tenants follow: pass it as `cursor`.' }),
}).meta({
  id: 'TemplateRolloutDetail',
});
