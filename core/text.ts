import { z } from 'zod';

/**
 * Text that must not be blank once trimmed. The documented pattern says so in terms every regex
 * engine reads the same way: at least one character outside JavaScript's whitespace (what
 * `trim()` removes), so a fuzzer's "valid" blank string is not documented as valid.
 */
export const NOT_BLANK = '[^\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]';

export const nonBlank = (max: number) => z.string().trim().min(1).max(max).meta({ pattern: NOT_BLANK });

/**
 * An email address as zod's `z.email()` checks it, documented by its pattern alone: the JSON
 * Schema `email` format is a different rule, so stating it would document something else.
 */
export const Email = z.string().regex(z.regexes.email, 'Invalid email address');

/**
 * An RFC 3339 date-time with an offset, on a day every offset keeps inside the years 0001-9999
 * (PostgreSQL has no year 0 and JavaScript writes years past 9999 in another form).
 */
const EDGE_DAYS = /^(?:0000|0001-01-01T|9999-12-31T)/;
export const DateTime = z.iso
  .datetime({ offset: true })
  .refine((value) => !EDGE_DAYS.test(value), 'must be between 0001-01-02 and 9999-12-30')
  .meta({ pattern: '^(?!0000|0001-01-01T|9999-12-31T)' });

/** A DateTime as a filter: normalised to UTC, so PostgreSQL reads every offset RFC 3339 allows. */
export const UtcDateTime = DateTime.transform((value) => new Date(value).toISOString());

/**
 * A spreadsheet runs a cell starting with one of these as a formula (OWASP CSV injection); a
 * leading `'` makes it text. Cells already starting with `'` get one too, so the escape stays
 * reversible: a reader drops one leading `'` from any cell that has one.
 */
const FORMULA_START = /^[=+\-@\t\r']/;

export function neutraliseCsvCell<T>(value: T): T | string {
  return typeof value === 'string' && FORMULA_START.test(value) ? `'${value}` : value;
}
