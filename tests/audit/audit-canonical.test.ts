import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalCheck, canonicalEvent, fastCanonicalEvent, libraryCanonicalEvent } from '../../core/audit/canonical.js';
import { hashEvent, type AuditEvent } from '../../core/audit/chain.js';

const FIXTURE = 'tests/fixtures/audit/chain-written-before-group-commit.ndjson';
const fixture = readFileSync(FIXTURE, 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as AuditEvent);

/** A well-formed event whose nested parts are arbitrary JSON (every code point, every number form). */
const json = fc.jsonValue({ depthSize: 'small', stringUnit: 'binary' });
const sha256Hex = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });
const event = fc.record({
  tenantId: fc.string({ unit: 'grapheme' }),
  seq: fc.integer({ min: 1 }),
  eventId: fc.uuid(),
  occurredAt: fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(Date.UTC(9999, 0)) }).map((d) => d.toISOString()),
  actor: fc.record({ id: fc.string({ unit: 'binary' }), type: fc.constantFrom('user', 'service', 'system') }),
  action: fc.string(),
  target: fc.option(fc.record({ type: fc.string(), id: fc.string({ unit: 'binary' }) }), { nil: null }),
  authority: fc.dictionary(fc.string({ unit: 'binary' }), json),
  workflowId: fc.option(fc.string(), { nil: null }),
  runId: fc.option(fc.uuid(), { nil: null }),
  payload: fc.dictionary(fc.string({ unit: 'binary' }), json),
  prevHash: sha256Hex,
  hash: sha256Hex,
});

/** Keys the fast path leaves to the library: integer-like ones (enumerated first) and `__proto__`. */
function hasLibraryOnlyKey(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(hasLibraryOnlyKey);
  return Object.entries(value).some(([key, v]) => /^[0-9]/.test(key) || key === '__proto__' || hasLibraryOnlyKey(v));
}

describe('the fast canonical form of an audit event', () => {
  it('equals the RFC 8785 library for every event of the chain written before it, by the fast path but where keys look like array indexes', () => {
    let fast = 0;
    for (const e of fixture) {
      const form = fastCanonicalEvent(e);
      expect(form === undefined).toBe(hasLibraryOnlyKey(e));
      if (form !== undefined) fast++;
      expect(canonicalEvent(e)).toBe(libraryCanonicalEvent(e));
      expect(hashEvent(e)).toBe(e.hash);
    }
    expect(fast).toBe(34);
  });

  it('equals the library for generated events with arbitrary JSON in authority and payload', () => {
    fc.assert(
      fc.property(event, (e) => {
        const fast = fastCanonicalEvent(e);
        expect(fast === undefined).toBe(hasLibraryOnlyKey(e));
        expect(canonicalEvent(e)).toBe(libraryCanonicalEvent(e));
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves events outside the known shape to the library, which then decides the hash', () => {
    const base = fixture[0]!;
    const outside: Record<string, object> = {
      'an added field': { ...base, extra: 1 },
      'a missing field': Object.fromEntries(Object.entries(base).filter(([key]) => key !== 'runId')),
      'an undefined value': { ...base, payload: { gone: undefined, kept: 1 } },
      'undefined in an array': { ...base, payload: { list: [1, undefined] } },
      'an own __proto__ key': { ...base, payload: JSON.parse('{"__proto__":{"x":1},"a":2}') as object },
      'integer-like keys': { ...base, payload: { b: 1, '10': 2, '9': 3 } },
      'a Date (toJSON)': { ...base, payload: { at: new Date(Date.UTC(2026, 0, 1)) } },
      'a boxed number': { ...base, payload: { n: new Number(3) } },
      'a class instance': {
        ...base,
        authority: new (class Evidence {
          ticket = 'CHG-1';
        })(),
      },
      'nesting deeper than the fast path goes': { ...base, payload: JSON.parse(`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`) as object },
    };
    for (const [situation, e] of Object.entries(outside)) {
      expect(fastCanonicalEvent(e), situation).toBeUndefined();
      expect(canonicalEvent(e), situation).toBe(libraryCanonicalEvent(e));
    }
    // An added field is hashed, so adding one to a stored event breaks its hash.
    expect(createHash('sha256').update(canonicalEvent(outside['an added field']!)).digest('hex')).not.toBe(base.hash);
  });

  it('refuses what the library refuses: a lone surrogate, NaN, Infinity', () => {
    const base = fixture[0]!;
    for (const payload of [{ s: 'a\ud800b' }, { n: Number.NaN }, { n: Number.POSITIVE_INFINITY }, { ['\udc00']: 1 }]) {
      expect(fastCanonicalEvent({ ...base, payload })).toBeUndefined();
      expect(() => canonicalEvent({ ...base, payload })).toThrow(/Lone surrogate|NaN|Infinity/);
    }
  });

  it('keeps on the fast path text that only looks like an escape, and paired surrogates', () => {
    // Found by the property above in CI: text holding a backslash followed by "ud" was sent to the library.
    const base = fixture[0]!;
    for (const payload of [
      { s: '\\ud800' },
      { s: 'a\\\\udc00' },
      { ['\\ud']: 1 },
      { s: 'a\ud83d\ude00b' },
      { ['\ud83d\ude00']: '\udbff\udfff' },
    ]) {
      const e = { ...base, payload };
      expect(fastCanonicalEvent(e)).toBe(libraryCanonicalEvent(e));
    }
  });

  it('is compared with the library in test processes, so a divergence would fail the run', () => {
    const before = canonicalCheck()!.compared;
    hashEvent(fixture[1]!);
    expect(canonicalCheck()!.compared).toBe(before + 1);
    expect(canonicalCheck()!.mismatches).toEqual([]);
  });
});
