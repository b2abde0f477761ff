/**
 * Checks a campaign recurrence before it reaches Temporal, so a bad one is the caller's 400 with
 * a reason, never a Schedule the server refuses after the version has committed. The form is the
 * classic five fields (minute hour day-of-month month day-of-week) Temporal's cron spec reads,
 * with `*`, lists, ranges, steps and month/day names, or one of the `@` shorthands; time zones
 * are IANA names.
 */
const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  // 7 is Sunday too, as most cron dialects (and Temporal) read it.
  { name: 'day of week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
] as const;

const SHORTHANDS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

const MINUTE = '[0-5]?[0-9]';
const HOUR = '(?:[01]?[0-9]|2[0-3])';
const DAY = '(?:0?[1-9]|[12][0-9]|3[01])';
const MONTH = '(?:0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)';
const WEEKDAY = '(?:[0-7]|SUN|MON|TUE|WED|THU|FRI|SAT)';
const field = (v: string) => `(?:\\*|${v}(?:-${v})?)(?:/[1-9][0-9]{0,2})?(?:,(?:\\*|${v}(?:-${v})?)(?:/[1-9][0-9]{0,2})?)*`;
/**
 * The documented form of a cron expression: five fields in range, or a shorthand. What it cannot
 * say (a range running backwards) `cronProblem` checks.
 */
export const CRON_PATTERN = `^(?:${[MINUTE, HOUR, DAY, MONTH, WEEKDAY].map(field).join(' ')}|@(?:yearly|annually|monthly|weekly|daily|midnight|hourly))$`;

function value(text: string, field: (typeof FIELDS)[number]): number | undefined {
  if (/^\d{1,2}$/.test(text)) return Number(text);
  const names: readonly string[] | undefined = 'names' in field ? field.names : undefined;
  const at = names?.indexOf(text.toLowerCase()) ?? -1;
  if (at < 0) return undefined;
  return field.name === 'month' ? at + 1 : at;
}

function fieldProblem(text: string, field: (typeof FIELDS)[number]): string | undefined {
  for (const part of text.split(',')) {
    const [range, step, extra] = part.split('/');
    if (extra !== undefined || range === undefined || range === '') return `${field.name}: "${part}" is not a value, range or step`;
    if (step !== undefined && !(/^\d{1,3}$/.test(step) && Number(step) >= 1))
      return `${field.name}: the step in "${part}" must be a whole number of at least 1`;
    if (range === '*') continue;
    const bounds = range.split('-');
    if (bounds.length > 2) return `${field.name}: "${part}" is not a range`;
    const numbers = bounds.map((b) => value(b, field));
    if (numbers.some((n) => n === undefined)) return `${field.name}: "${part}" is not a value`;
    for (const n of numbers as number[])
      if (n < field.min || n > field.max) return `${field.name}: ${n} is outside ${field.min}-${field.max}`;
    if (numbers.length === 2 && numbers[0]! > numbers[1]!) return `${field.name}: the range "${range}" runs backwards`;
  }
  return undefined;
}

const CRON_RE = new RegExp(CRON_PATTERN);

/** Why the expression is not a cron recurrence Tenure accepts, or undefined when it is. */
export function cronProblem(expression: string): string | undefined {
  const text = expression.trim();
  if (text.startsWith('@')) return SHORTHANDS.has(text) && text === expression ? undefined : `"${expression}" is not a known shorthand`;
  const parts = text.split(/\s+/);
  if (parts.length !== 5) return `a cron expression has five fields (minute hour day-of-month month day-of-week), not ${parts.length}`;
  for (let i = 0; i < 5; i++) {
    const problem = fieldProblem(parts[i]!, FIELDS[i]!);
    if (problem) return problem;
  }
  // What the fields allow but the documented form does not: lower-case names, extra spaces, a leading zero on a step.
  if (!CRON_RE.test(expression)) return 'write it as documented: single spaces, month and day names in capitals (JAN, MON)';
  return undefined;
}

/** The canonical IANA names this runtime knows, as documented; aliases (Asia/Kolkata) are accepted too. */
export const TIME_ZONES: readonly string[] = [...new Set(['UTC', ...Intl.supportedValuesOf('timeZone')])];

/** Whether the runtime knows the IANA time zone (the same tz database names Temporal reads). */
export function isTimeZone(name: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(name)) return false;
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return false;
  }
  // ICU reads names in any case, Temporal's tz database does not: only the canonical spelling (or an alias) passes.
  return resolved === name || resolved.toLowerCase() !== name.toLowerCase();
}
