import canonicalize from 'canonicalize';

/**
 * RFC 8785 (JCS) canonical JSON of an audit event, fast for the shape every event has.
 *
 * JCS is JSON.stringify's own string and number forms with object keys sorted by UTF-16 code
 * unit at every level. So the fast path copies the event with every object's keys inserted in
 * that order and lets V8's JSON.stringify write it; the event's top-level keys are fixed, so their
 * order is written out here. Anything outside plain JSON (a missing or extra top-level key,
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

/** Returned by `sortedCopy` for anything the fast path leaves to the library. */
const OUTSIDE = Symbol('outside the fast path');

/** The value with every object's keys inserted in JCS order, or OUTSIDE. */
function sortedCopy(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : OUTSIDE;
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_DEPTH) return OUTSIDE;
      if (Array.isArray(value)) {
        if (Object.getPrototypeOf(value) !== Array.prototype) return OUTSIDE;
        const copy: unknown[] = new Array(value.length);
        for (let i = 0; i < value.length; i++) {
          const item = sortedCopy(value[i], depth + 1);
          if (item === OUTSIDE) return OUTSIDE;
          copy[i] = item;
        }
        return copy;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return OUTSIDE;
      const record = value as Record<string, unknown>;
      if (typeof record.toJSON === 'function') return OUTSIDE;
      // Default sort compares UTF-16 code units, the order JCS requires.
      const keys = Object.keys(record).sort();
      const copy: Record<string, unknown> = {};
      for (const key of keys) {
        // Objects enumerate integer-like keys first whatever the insertion order, and assigning
        // `__proto__` sets the prototype: both are the library's to write.
        const first = key.charCodeAt(0);
        if ((first >= 48 && first <= 57) || key === '__proto__') return OUTSIDE;
        const item = sortedCopy(record[key], depth + 1);
        if (item === OUTSIDE) return OUTSIDE;
        copy[key] = item;
      }
      return copy;
    }
    default:
      return OUTSIDE;
  }
}

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
  const copy: Record<string, unknown> = {};
  for (const key of EVENT_KEYS) {
    const item = sortedCopy(record[key], 1);
    if (item === OUTSIDE) return undefined;
    copy[key] = item;
  }
  const json = JSON.stringify(copy);
  // JSON.stringify escapes a lone surrogate as \udXXX where JCS refuses it; the library decides
  // (a string that merely contains the text "\ud" ends up there too, and comes out the same).
  return json.includes('\\ud') ? undefined : json;
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
