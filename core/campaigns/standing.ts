import { z } from 'zod';
import { nonBlank } from '../text.js';
import { csvCells } from './report.js';

/**
 * The standing-privilege report: privileged access (members of roles the target marks
 * privileged) that stands without the controls that would end or question it. Each entry says
 * which of these it has:
 * - `no_end_date`: nothing that explains it ends by itself (no source with an end; a grant always has one);
 * - `no_owner`: nobody answers for it: no ledger source explains it, or the holder is a service
 *   account whose `owner` attribute names nobody;
 * - `not_reviewed`: no reviewer decided it (keep or revoke) in a completed review within `reviewDays`;
 * - `holder_inactive`: the holder's account is not active (disabled, or gone from the target), or
 *   the tenant's lifecycle says the person has left.
 */
export const STANDING_REASONS = ['no_end_date', 'no_owner', 'not_reviewed', 'holder_inactive'] as const;
export type StandingReason = (typeof STANDING_REASONS)[number];

/** The directory user attribute that marks a service account (`true`), beside `breakGlass`. */
export const SERVICE_ACCOUNT_ATTRIBUTE = 'serviceAccount';
/** The directory user attribute naming who answers for a service account (an actor id, email or user id). */
export const OWNER_ATTRIBUTE = 'owner';

export function isServiceAccount(attributes: Record<string, unknown>): boolean {
  return attributes[SERVICE_ACCOUNT_ATTRIBUTE] === true;
}

/** Who the attributes name as the account's owner, or null. */
export function ownerOf(attributes: Record<string, unknown>): string | null {
  const owner = attributes[OWNER_ATTRIBUTE];
  return typeof owner === 'string' && owner.trim() !== '' ? owner.trim() : null;
}

export interface StandingFacts {
  subjectStatus: string;
  /** The lifecycle's status of the person with this id in the tenant, when there is one. */
  personStatus: string | null;
  serviceAccount: boolean;
  /** The service account's owner attribute, when set. */
  owner: string | null;
  sources: { type: string; id: string; expiresAt: string | null }[];
  lastReviewedAt: string | null;
}

const DAY_MS = 86_400_000;

export function standingReasons(facts: StandingFacts, now: number, reviewDays: number): StandingReason[] {
  const reasons: StandingReason[] = [];
  if (!facts.sources.some((s) => s.type === 'grant' || s.expiresAt !== null)) reasons.push('no_end_date');
  if (facts.sources.length === 0 || (facts.serviceAccount && !facts.owner)) reasons.push('no_owner');
  if (!facts.lastReviewedAt || now - Date.parse(facts.lastReviewedAt) > reviewDays * DAY_MS) reasons.push('not_reviewed');
  if (facts.subjectStatus !== 'active' || facts.personStatus === 'left') reasons.push('holder_inactive');
  return reasons;
}

/** When the access ends by itself: the latest end among its sources, or null when one of them never ends. */
export function standingEndsAt(sources: StandingFacts['sources']): string | null {
  if (sources.length === 0 || sources.some((s) => s.expiresAt === null)) return null;
  return sources
    .map((s) => s.expiresAt!)
    .sort()
    .at(-1)!;
}

const Uuid = z.uuid();
const RoleName = z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, . _ -');
const SubjectId = z.string().min(1).max(200);

export const StandingQuery = z.strictObject({
  /** Access no reviewer decided within this many days counts as `not_reviewed`. */
  reviewDays: z.coerce.number().int().min(1).max(3650).default(90),
  /** Only entries with this reason. */
  reason: z.enum(STANDING_REASONS).optional(),
  format: z.enum(['json', 'csv']).default('json'),
});
export type StandingQuery = z.infer<typeof StandingQuery>;

export const StandingEntryView = z
  .object({
    tenantId: Uuid,
    subjectId: z.string(),
    subjectStatus: z.string(),
    serviceAccount: z.boolean(),
    owner: z.string().nullable(),
    role: z.string(),
    sources: z.array(z.object({ type: z.string(), id: z.string(), expiresAt: z.string().nullable() })),
    endsAt: z.string().nullable(),
    lastReviewedAt: z.string().nullable(),
    lastReviewRunId: Uuid.nullable(),
    reasons: z.array(z.enum(STANDING_REASONS)),
  })
  .meta({ id: 'StandingPrivilegeEntry' });
export type StandingEntryView = z.infer<typeof StandingEntryView>;

export const StandingReportView = z
  .object({
    generatedAt: z.string(),
    reviewDays: z.number().int(),
    entries: z.array(StandingEntryView),
    /** Tenants whose target could not be read now; their entries are missing, never guessed. */
    unavailable: z.array(z.object({ tenantId: Uuid, reason: z.string() })),
  })
  .meta({ id: 'StandingPrivilegeReport' });
export type StandingReportView = z.infer<typeof StandingReportView>;

export const STANDING_CSV_COLUMNS = [
  'tenantId',
  'subjectId',
  'subjectStatus',
  'serviceAccount',
  'owner',
  'role',
  'sources',
  'endsAt',
  'lastReviewedAt',
  'lastReviewRunId',
  'reasons',
] as const satisfies readonly (keyof StandingEntryView)[];

/** One CSV row per entry; its reasons space-separated, nested values as JSON. */
export function standingCsvRecord(entry: StandingEntryView): Record<string, string | null> {
  return { ...csvCells(entry, STANDING_CSV_COLUMNS), reasons: entry.reasons.join(' ') };
}

/**
 * Items one review of exactly these takes: a subject id of 200 escaped UTF-16 units is ~1.4 kB of
 * JSON per item, so 60 of them fit the default body limit with room for the rest.
 */
export const STANDING_REVIEW_MAX_ITEMS = 60;

/** "Start a review of exactly these": the listed access, each by tenant, subject and role. */
export const StandingReviewBody = z
  .strictObject({
    name: nonBlank(200),
    /** Up to STANDING_REVIEW_MAX_ITEMS: even with the longest ids, a full list stays inside the API's 100 kB body limit. */
    items: z
      .array(z.strictObject({ tenantId: Uuid, subjectId: SubjectId, role: RoleName }))
      .min(1)
      .max(STANDING_REVIEW_MAX_ITEMS)
      .meta({ uniqueItems: true }),
    /** The review's stages; one of seven days by default. */
    stages: z
      .array(
        z.strictObject({
          durationMinutes: z
            .number()
            .min(0.01)
            .max(365 * 24 * 60),
          strategy: z.enum(['first_decision', 'all_must_accept', 'any_deny']).default('first_decision'),
        }),
      )
      .min(1)
      .max(5)
      .default([{ durationMinutes: 7 * 24 * 60, strategy: 'first_decision' }]),
    nonResponse: z.enum(['keep', 'revoke', 'recommendation']).default('keep'),
  })
  .superRefine((body, ctx) => {
    const seen = new Set<string>();
    body.items.forEach((item, i) => {
      const key = JSON.stringify([item.tenantId, item.subjectId, item.role]);
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['items', i], message: 'named twice' });
      seen.add(key);
    });
  })
  .meta({ id: 'StandingPrivilegeReview' });
export type StandingReviewBody = z.infer<typeof StandingReviewBody>;
