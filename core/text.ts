import { z } from 'zod';
import type { FieldIssue } from './errors.js';

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

// With the `u` flag a well-formed pair reads as one astral code point, so only a lone half matches.
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Where `value` holds text PostgreSQL cannot store as given: U+0000 (refused in text and jsonb)
 * and lone UTF-16 surrogates (refused in jsonb, silently replaced in text). One issue per
 * offending string, named by its path under `path` (an object key as `<path>.(key)`), so the
 * caller can refuse the field instead of failing at the insert.
 */
export function unstorableText(value: unknown, path = ''): FieldIssue[] {
  const at = (key: string) => (path ? `${path}.${key}` : key);
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return [{ path: path || '(value)', message: 'contains NUL (U+0000), which cannot be stored' }];
    if (LONE_SURROGATE.test(value))
      return [{ path: path || '(value)', message: 'contains a lone UTF-16 surrogate, which cannot be stored' }];
    return [];
  }
  if (Array.isArray(value)) return value.flatMap((item, i) => unstorableText(item, at(String(i))));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) => [...unstorableText(key, at('(key)')), ...unstorableText(item, at(key))]);
  }
  return [];
}
