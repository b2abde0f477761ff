/**
 * Text PostgreSQL cannot store: U+0000 in any text or jsonb value, and UTF-16 surrogates without
 * their pair (jsonb refuses the escape JSON.stringify writes for them).
 */
const NUL = '\u0000';
const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

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
