import canonicalize from 'canonicalize';

/**
 * RFC 8785 (JCS) canonical JSON of an audit event, fast for the shape every event has.
 *
 * JCS is JSON.stringify's own string and number forms with object keys sorted by UTF-16 code
 * unit at every level. So the fast path writes each object's members in that order, each string
 * and number by JSON.stringify; the event's top-level keys are fixed, so their order is written
 * out here. Anything outside plain JSON (a missing or extra top-level key,
 * `undefined`, a non-finite number, a `toJSON`, a class instance, a key that JavaScript would
 * enumerate before the others because it looks like an array index, a lone surrogate, very deep
 * nesting) is handed to the `canonicalize` library, which stays the reference: see
 * `enableCanonicalCheck`.
 */

/** The hashed fields of an event, in JCS order (`hash` itself is never hashed). */
const EVENT_KEYS = [
  'action',
  'actor',
  'authority',
  'eventId',
  'occurredAt',
  'payload',
  'prevHash',
  'runId',
  'seq',
  'target',
  'tenantId',
  'workflowId',
] as const;
const HASHED = new Set<string>(EVENT_KEYS);

/** Deeper than any event we write; past it the library (which detects cycles) takes over. */
const MAX_DEPTH = 32;

/** What JSON.stringify (and JCS) would escape in a string: quote, backslash, controls, surrogates. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A surrogate without its pair, which JCS refuses (RFC 8785 3.2.2.2) and JSON.stringify escapes. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * JSON.stringify(text), without its call where nothing needs escaping (most strings); undefined
 * for a lone surrogate, which the library then refuses.
 */
function quote(text: string): string | undefined {
  if (!ESCAPED.test(text)) return `"${text}"`;
  return LONE_SURROGATE.test(text) ? undefined : JSON.stringify(text);
}

/**
 * The JCS text of `value`, or undefined for anything the fast path leaves to the library.
 * Written directly (keys sorted, then each member's text joined) rather than through a sorted
 * copy handed to JSON.stringify: no intermediate objects, which was most of the cost per event.
 */
function write(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      // JSON.stringify of a well-formed string is JCS's string form (RFC 8785 3.2.2.2).
      return quote(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      // ECMAScript's Number-to-string, as JCS requires (3.2.2.3); -0 is written 0 by both.
      return Number.isFinite(value) ? JSON.stringify(value) : undefined;
    case 'object': {
      if (value === null) return 'null';
      if (depth >= MAX_DEPTH) return undefined;
      if (Array.isArray(value)) {
        if (Object.getPrototypeOf(value) !== Array.prototype) return undefined;
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          const item = write(value[i], depth + 1);
          if (item === undefined) return undefined;
          out += i === 0 ? item : `,${item}`;
        }
        return `${out}]`;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return undefined;
      const record = value as Record<string, unknown>;
      if (typeof record.toJSON === 'function') return undefined;
      const keys = Object.keys(record);
      // Default sort compares UTF-16 code units, the order JCS requires (3.2.3).
      if (keys.length > 1) keys.sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        // Kept with the library, as before this writer: integer-like keys (which objects
        // enumerate first) and `__proto__`.
        const first = key.charCodeAt(0);
        if ((first >= 48 && first <= 57) || key === '__proto__') return undefined;
        const name = quote(key);
        const item = write(record[key], depth + 1);
        if (name === undefined || item === undefined) return undefined;
        out += `${i === 0 ? '' : ','}${name}:${item}`;
      }
      return `${out}}`;
    }
    default:
      return undefined;
  }
}

/** `"key":` for each hashed field, in JCS order, with the separator before all but the first. */
const PREFIXES = EVENT_KEYS.map((key, i) => `${i === 0 ? '' : ','}${JSON.stringify(key)}:`);

/** The fast path alone: the canonical form, or undefined when the event is outside the known shape. */
export function fastCanonicalEvent(event: object): string | undefined {
  const record = event as Record<string, unknown>;
  let count = 0;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) return undefined;
    if (key === 'hash') continue;
    if (!HASHED.has(key)) return undefined;
    count++;
  }
  if (count !== EVENT_KEYS.length) return undefined;
  let json = '{';
  for (let i = 0; i < EVENT_KEYS.length; i++) {
    const item = write(record[EVENT_KEYS[i]!], 1);
    if (item === undefined) return undefined;
    json += PREFIXES[i]! + item;
  }
  return `${json}}`;
}

/** The reference: the RFC 8785 library over every field but `hash`. */
export function libraryCanonicalEvent(event: object): string {
  const { hash: _ignored, ...rest } = event as Record<string, unknown>;
  const canonical = canonicalize(rest);
  if (canonical === undefined) throw new Error('audit event could not be canonicalized');
  return canonical;
}

export interface CanonicalMismatch {
  event: unknown;
  fast: string;
  library: string;
}

interface CheckState {
  compared: number;
  mismatches: CanonicalMismatch[];
}

let check: CheckState | undefined;

/**
 * From now on, every event the fast path serialises is also serialised by the library and the
 * two compared; a difference throws, and is kept for `canonicalCheck()` to report. Test
 * processes turn this on (tests/setup/canonical-check.ts); production does not pay for it.
 */
export function enableCanonicalCheck(): void {
  check ??= { compared: 0, mismatches: [] };
}

/** What the check has seen so far, or undefined when it is off. */
export function canonicalCheck(): Readonly<CheckState> | undefined {
  return check;
}

/** The canonical JSON of every field of `event` but `hash`: the fast path when it applies, the library otherwise. */
export function canonicalEvent(event: object): string {
  const fast = fastCanonicalEvent(event);
  if (fast === undefined) return libraryCanonicalEvent(event);
  if (check) {
    const library = libraryCanonicalEvent(event);
    check.compared++;
    if (library !== fast) {
      check.mismatches.push({ event: structuredClone(event), fast, library });
      throw new Error(
        `fast canonical form differs from the RFC 8785 library for audit event ${String((event as { eventId?: unknown }).eventId)}`,
      );
    }
  }
  return fast;
}
