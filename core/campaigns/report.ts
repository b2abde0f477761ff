import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/**
 * A tenant's review report: what was reviewed, who reviewed, every decision with its
 * justification, non-responses, guardrail holds and applied results. Its hash is SHA-256 over the
 * RFC 8785 canonical JSON (as for audit events), recorded in the tenant's chain when the review
 * completes, so the report can be checked offline against an exported chain.
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
}

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

export function reportCsvRecord(item: ReportItem): Record<string, string | null> {
  return csvCells(item, REPORT_CSV_COLUMNS);
}
