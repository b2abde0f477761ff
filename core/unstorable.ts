/**
 * Text PostgreSQL cannot store: U+0000 in any text or jsonb value, and UTF-16 surrogates without
 * their pair (jsonb refuses the escape JSON.stringify writes for them; text silently stores U+FFFD,
 * which no longer matches what the audit chain hashed). The API refuses such text at the edge
 * (`unstorableText`); a workflow that met it anyway records a scrubbed copy (`scrubUnstorable`).
 * Pure, and free of zod, so workflows import it.
 */
import type { FieldIssue } from './errors.js';

const NUL = '\u0000';
// With the `u` flag a well-formed pair reads as one astral code point, so only a lone half matches.
const LONE_SURROGATE = /\p{Surrogate}/u;
const LONE_SURROGATES = /\p{Surrogate}/gu;

/**
 * `value` with every unstorable character in its strings (object keys included) replaced by
 * U+FFFD, so a record of what happened can still be kept when the data itself was the problem.
 * Pure and deterministic: workflows use it.
 */
export function scrubUnstorable<T>(value: T): T {
  if (typeof value === 'string') return value.replaceAll(NUL, '\uFFFD').replace(LONE_SURROGATES, '\uFFFD') as T;
  if (Array.isArray(value)) return value.map((item: unknown) => scrubUnstorable(item)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [scrubUnstorable(key), scrubUnstorable(item)])) as T;
  }
  return value;
}

/**
 * Where `value` holds text PostgreSQL cannot store as given: U+0000 (refused in text and jsonb)
 * and lone UTF-16 surrogates (refused in jsonb, silently replaced in text). One issue per
 * offending string, named by its path under `path` (an object key as `<path>.(key)`), so the
 * caller can refuse the field instead of failing at the insert.
 */
export function unstorableText(value: unknown, path = ''): FieldIssue[] {
  const at = (key: string) => (path ? `${path}.${key}` : key);
  if (typeof value === 'string') {
    if (value.includes(NUL)) return [{ path: path || '(value)', message: 'contains NUL (U+0000), which cannot be stored' }];
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
