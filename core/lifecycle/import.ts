import { parse } from 'csv-parse/sync';
import type { FieldIssue } from '../errors.js';

/**
 * Parsing of bulk HR event imports (CSV or NDJSON) into one candidate object per data row.
 * Pure: validation against the schema and the tenant's rules happens in the use case, so a bad
 * row is reported by its number and never stops the others.
 */
export type ImportFormat = 'csv' | 'ndjson';

export interface ParsedRow {
  /** 1-based data row: CSV rows after the header, NDJSON non-empty lines. */
  row: number;
  /** Source line where the row starts. */
  line: number;
  value: unknown;
  /** Problems found while parsing; the row is not processed when there are any. */
  issues: FieldIssue[];
}

const PROFILE_COLUMNS = new Set(['username', 'displayName', 'email']);
const EVENT_COLUMNS = new Set(['eventId', 'personId', 'type', 'effectiveAt']);

/**
 * CSV: a header row naming `eventId, personId, type, effectiveAt`, optionally `username,
 * displayName, email` (the joiner's profile), and one column per person attribute, named
 * either `department` or `attributes.department`. Empty cells are absent values.
 */
export function parseCsv(text: string): ParsedRow[] {
  let broken: FieldIssue | undefined;
  // With `info`, each record comes with where it ends in the input (the typings omit that form).
  const records = parse(text, {
    bom: true,
    trim: true,
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    info: true,
    on_skip: (error: Error | undefined) => {
      broken = { path: 'row', message: error?.message ?? 'unreadable CSV row' };
    },
  }) as unknown as { record: string[]; info: { lines: number } }[];
  const [header, ...rows] = records;
  if (!header) return [];
  const names = header.record;
  const out: ParsedRow[] = rows.map(({ record, info }, i) => {
    const issues: FieldIssue[] = [];
    if (record.length !== names.length)
      issues.push({ path: 'row', message: `has ${record.length} fields; the header has ${names.length}` });
    const value: Record<string, unknown> = {};
    const attributes: Record<string, string> = {};
    const profile: Record<string, string> = {};
    names.forEach((name, column) => {
      const cell = record[column];
      if (cell === undefined || cell === '') return;
      if (EVENT_COLUMNS.has(name)) value[name] = cell;
      else if (PROFILE_COLUMNS.has(name)) profile[name] = cell;
      else attributes[name.startsWith('attributes.') ? name.slice('attributes.'.length) : name] = cell;
    });
    if (Object.keys(attributes).length) value.attributes = attributes;
    if (Object.keys(profile).length) value.profile = profile;
    return { row: i + 1, line: info.lines, value, issues };
  });
  // An unclosed quote swallows the rest of the input: report the row where it started.
  if (broken) out.push({ row: out.length + 1, line: (records.at(-1)?.info.lines ?? 0) + 1, value: null, issues: [broken] });
  return out;
}

/** NDJSON: one JSON object per line; blank lines are ignored. */
export function parseNdjson(text: string): ParsedRow[] {
  const out: ParsedRow[] = [];
  text.split(/\r?\n/).forEach((content, index) => {
    if (content.trim() === '') return;
    const row = out.length + 1;
    try {
      const value: unknown = JSON.parse(content);
      const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
      out.push({ row, line: index + 1, value, issues: isObject ? [] : [{ path: 'row', message: 'not a JSON object' }] });
    } catch (error) {
      out.push({ row, line: index + 1, value: null, issues: [{ path: 'row', message: `invalid JSON: ${(error as Error).message}` }] });
    }
  });
  return out;
}

export function parseHrEventImport(text: string, format: ImportFormat): ParsedRow[] {
  return format === 'csv' ? parseCsv(text) : parseNdjson(text);
}
