import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/**
 * A tenant's review report: what was reviewed, who reviewed, every decision with its
 * justification, non-responses, guardrail holds and applied results. Its hash is SHA-256 over the
 * RFC 8785 canonical JSON (as for audit events), recorded in the tenant's chain when the review
 * completes or, cancelled, once the revocations it had settled are applied, so the report can be
 * checked offline against an exported chain.
 */
export interface ReviewReport {
  tenantId: string;
  runId: string;
  definitionId: string;
  generatedAt: string;
  settings: unknown;
  reviewers: { reviewerId: string; stage: number; via: string; items: number }[];
  counts: { outcomes: Record<string, number>; results: Record<string, number> };
  items: ReportItem[];
  /** How the review ended. Reports recorded before cancelled reviews had one lack it: they are all `completed`. */
  status?: ReviewReportStatus;
  /** A cancelled review's cancellation: who, when, why, and what was decided until then and what was not. */
  cancellation?: ReportCancellation;
}

export type ReviewReportStatus = 'completed' | 'cancelled';

export interface ReportCancellation {
  cancelledAt: string;
  /** The MSP staff member who cancelled it (MSP staff never decide items; they may stop a review). */
  cancelledBy: string;
  /** As the `review.cancelled` event in the tenant's chain records it (e.g. `cancelledWithRun`). */
  authority: Record<string, unknown>;
  comment: string | null;
  /** The stage that was open (0: its items were not stored yet). */
  stage: number;
  /** Items the tenant's recorded decisions settled at the cancellation (null when no stage was open). */
  settled: { revoke: number; keep: number; held: number } | null;
  /** Items with an outcome, decided before or at the cancellation. */
  decided: number;
  /** Items nobody decided: they keep their access unchanged (no non-response policy applies). */
  undecided: number;
}

/** The outcome reason a cancelled review's undecided item carries in its report. */
export const UNDECIDED_AT_CANCELLATION =
  'not decided before the review was cancelled: access left unchanged, no non-response policy applied';

/** How a stored report's review ended (reports from before cancellations had one are all completed). */
export const reportStatus = (report: Pick<ReviewReport, 'status'>): ReviewReportStatus => report.status ?? 'completed';

export interface ReportItem {
  itemId: string;
  subjectId: string;
  role: string;
  sources: { type: string; id: string }[];
  recommendation: string;
  recommendationReason: string;
  decisions: { stage: number; reviewerId: string; decision: string; justification: string | null; decidedAt: string; changes: number }[];
  outcome: string | null;
  outcomeBy: string | null;
  outcomeReason: string | null;
  guardrail: string | null;
  result: string | null;
  resultDetail: Record<string, unknown> | null;
  resultAt: string | null;
}

export function reportHash(report: ReviewReport): string {
  const canonical = canonicalize(report);
  if (canonical === undefined) throw new Error('review report could not be canonicalized');
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

/** One CSV row per item; nested values as JSON. */
export const REPORT_CSV_COLUMNS = [
  'itemId',
  'subjectId',
  'role',
  'sources',
  'recommendation',
  'recommendationReason',
  'decisions',
  'outcome',
  'outcomeBy',
  'outcomeReason',
  'guardrail',
  'result',
  'resultDetail',
  'resultAt',
] as const satisfies readonly (keyof ReportItem)[];

/** A row's cells by column: text as it is, null as empty, anything else as JSON. */
export function csvCells<T extends object>(row: T, columns: readonly (keyof T & string)[]): Record<string, string | null> {
  return Object.fromEntries(
    columns.map((column) => {
      const value: unknown = row[column];
      return [column, value === null || typeof value === 'string' ? value : JSON.stringify(value)];
    }),
  );
}

/** The CSV's columns: the item's, then how the review ended, so every row says whether it was cancelled. */
export const REPORT_CSV_HEADER = [...REPORT_CSV_COLUMNS, 'reviewStatus'] as const;

export function reportCsvRecord(item: ReportItem, status: ReviewReportStatus = 'completed'): Record<string, string | null> {
  return { ...csvCells(item, REPORT_CSV_COLUMNS), reviewStatus: status };
}
