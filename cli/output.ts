import Table from 'cli-table3';
import picocolors from 'picocolors';
import type { Colors } from 'picocolors/types.js';
import { columnsFor, fieldOrder } from './views.js';

/** How a command prints the API's answer: a table for people (the default), more columns, or the API's JSON for scripts. */
export const OUTPUT_FORMATS = ['table', 'wide', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** `--json` or `-o json|table|wide`; `--json` wins. */
export function outputFormat(options: { json?: boolean; output?: string }): OutputFormat {
  if (options.json) return 'json';
  return OUTPUT_FORMATS.find((f) => f === options.output) ?? 'table';
}

/**
 * Colour on a terminal only. NO_COLOR (any non-empty value) turns it off, FORCE_COLOR (anything
 * but 0 or false) turns it on even through a pipe; https://no-color.org and the Node convention.
 */
export function colourEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false') return true;
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

export function colours(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): Colors {
  return picocolors.createColors(colourEnabled(stream, env));
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Row = Record<string, Json>;

/** Notes under a table are dim as a whole; their values are not coloured again. */
const plainColours = picocolors.createColors(false);

const isRow = (value: unknown): value is Row => typeof value === 'object' && value !== null && !Array.isArray(value);
const isScalar = (value: unknown): value is string | number | boolean | null =>
  value === null || ['string', 'number', 'boolean'].includes(typeof value);
const ISO_TIME = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?Z$/;

const GOOD = new Set(['active', 'completed', 'approved', 'applied', 'in_sync', 'open', 'succeeded', 'verified', 'intact', 'running']);
const WAITING = new Set([
  'pending',
  'pending_approval',
  'scheduled',
  'queued',
  'starting',
  'materialising',
  'awaiting_wave_approval',
  'baking',
  'paused',
  'proposed',
  'draft',
  'revoking',
  'settling',
  'remediating',
  'cancelling',
]);
const BAD = new Set(['failed', 'denied', 'halted', 'drifted', 'suspended', 'disabled', 'approval_timed_out', 'error', 'conflict']);

/** One cell: times without milliseconds, lists joined, objects as compact JSON, nothing as a dim dash. */
function cell(value: Json | undefined, key: string, c: Colors, limit = 60): string {
  if (value === null || value === undefined) return c.dim('-');
  if (typeof value === 'string') {
    const time = ISO_TIME.exec(value);
    if (time) return `${time[1]} ${time[2]}Z`;
    if (key === 'status' || key === 'state')
      return GOOD.has(value) ? c.green(value) : WAITING.has(value) ? c.yellow(value) : BAD.has(value) ? c.red(value) : value;
    return value.length > limit ? `${value.slice(0, limit - 1)}…` : value;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.every(isScalar)) return truncate(value.join(', '), limit);
  // Field issues (an import row's, a refusal's) read as `path: message`.
  if (Array.isArray(value) && value.every((v) => isRow(v) && typeof v.message === 'string')) {
    return truncate(
      (value as Row[])
        .map((v) => (typeof v.path === 'string' && v.path ? `${v.path}: ${v.message as string}` : (v.message as string)))
        .join('; '),
      limit,
    );
  }
  if (Array.isArray(value)) return `${value.length} item${value.length === 1 ? '' : 's'}`;
  return truncate(JSON.stringify(value), limit);
}

const truncate = (text: string, limit: number) => (text.length > limit ? `${text.slice(0, limit - 1)}…` : text);

/** A borderless table, like `kubectl get`: a header row and one line per item. */
function table(rows: Row[], columns: string[], c: Colors, wide: boolean): string {
  const t = new Table({
    head: columns.map((name) => c.bold(header(name))),
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: '',
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const row of rows) t.push(columns.map((name) => cell(row[name], name, c, wide ? 200 : 48)));
  return `${t
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')}\n`;
}

/** `subjectId` → `SUBJECT ID`. */
function header(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toUpperCase();
}

/** The scalar columns a row has, for a collection no view names. */
function scalarColumns(rows: Row[]): string[] {
  const names: string[] = [];
  for (const row of rows) for (const [key, value] of Object.entries(row)) if (isScalar(value) && !names.includes(key)) names.push(key);
  return names;
}

function columns(collection: string, rows: Row[], wide: boolean): string[] {
  const all = scalarColumns(rows);
  const view = columnsFor(collection);
  // A view names the record by its list's name; another record under the same name (drift `items`) falls back.
  const known = view?.table.filter((name) => rows.some((row) => name in row)) ?? [];
  if (view && known.length >= Math.min(2, view.table.length)) {
    return wide ? [...known, ...view.wide.filter((name) => rows.some((row) => name in row))] : known;
  }
  return wide ? all : all.slice(0, 6);
}

/** The one list an answer carries (`{ grants: [...], nextCursor }`), if it is a page of one kind of thing. */
function pageOf(value: Row): { key: string; rows: Row[] } | undefined {
  const lists = Object.entries(value).filter(([, v]) => Array.isArray(v) && v.length > 0 && v.every(isRow));
  const emptyLists = Object.entries(value).filter(([, v]) => Array.isArray(v) && v.length === 0);
  const rest = Object.values(value).filter((v) => !Array.isArray(v));
  if (rest.some((v) => !isScalar(v))) return undefined;
  if (lists.length === 1 && rest.length <= 2) return { key: lists[0]![0], rows: lists[0]![1] as Row[] };
  if (lists.length === 0 && emptyLists.length === 1 && rest.length <= 2) return { key: emptyLists[0]![0], rows: [] };
  return undefined;
}

/** A single resource: its scalar fields as aligned `key  value` lines, then a small table per list of records in it. */
function detail(value: Row, c: Colors, wide: boolean): string {
  const lines: [string, string][] = [];
  const sections: string[] = [];
  const add = (key: string, v: Json) => {
    if (Array.isArray(v) && v.length > 0 && v.every(isRow)) {
      const rows = v;
      sections.push(`\n${c.bold(`${key} (${rows.length})`)}\n${table(rows, columns(key, rows, wide), c, wide)}`);
    } else if (isRow(v) && !wide) {
      const keys = Object.keys(v);
      lines.push([
        key,
        keys.every((k) => isScalar(v[k])) && keys.length <= 4
          ? keys.map((k) => `${k}=${cell(v[k], k, c, 40)}`).join(' ')
          : c.dim(`{${keys.length} fields: -o wide or --json}`),
      ]);
    } else if (isRow(v)) {
      for (const [k, inner] of Object.entries(v)) lines.push([`${key}.${k}`, cell(inner, k, c, 200)]);
    } else lines.push([key, cell(v, key, c, wide ? 200 : 100)]);
  };
  for (const key of fieldOrder(value)) add(key, value[key]!);
  const width = Math.max(0, ...lines.map(([k]) => k.length));
  return `${lines.map(([k, v]) => `${c.dim(k.padEnd(width))}  ${v}`).join('\n')}\n${sections.join('')}`;
}

/**
 * What a command prints for the API's answer: its JSON as it always was with --json (scripts
 * rely on it byte for byte), otherwise a table (a list) or a key/value view (one resource).
 * `hint` names the collection when the answer is a bare list or a single resource.
 */
export function render(result: unknown, format: OutputFormat, c: Colors, hint?: string): string {
  if (format === 'json') return `${JSON.stringify(result, null, 2)}\n`;
  const wide = format === 'wide';
  if (Array.isArray(result)) {
    const rows = result.filter(isRow);
    return rows.length ? table(rows, columns(hint ?? '', rows, wide), c, wide) : `${c.dim('(none)')}\n`;
  }
  if (!isRow(result)) return `${String(result)}\n`;
  const page = pageOf(result);
  if (page) {
    const notes = Object.entries(result)
      .filter(([key, v]) => key !== page.key && v !== null && !Array.isArray(v))
      .map(([key, v]) => c.dim(`${key}: ${cell(v, key, plainColours)}`));
    const body = page.rows.length ? table(page.rows, columns(page.key, page.rows, wide), c, wide) : `${c.dim(`No ${page.key}.`)}\n`;
    return `${body}${notes.map((n) => `${n}\n`).join('')}`;
  }
  return detail(result, c, wide);
}
