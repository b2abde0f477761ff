import { afterAll } from 'vitest';
import { canonicalCheck, enableCanonicalCheck } from '../../core/audit/canonical.js';

/*
 * Every audit event a test process hashes (appends through the API, the worker's activities,
 * verification, exports) is serialised by the fast path and by the RFC 8785 library, and the
 * two must agree: the fast path is only trusted because every test event checks it.
 */
enableCanonicalCheck();

afterAll(() => {
  const { mismatches } = canonicalCheck()!;
  if (mismatches.length > 0) {
    const first = mismatches[0]!;
    throw new Error(
      `${mismatches.length} audit event(s) canonicalised differently by the fast path and the RFC 8785 library; first:\n` +
        `fast:    ${first.fast}\nlibrary: ${first.library}`,
    );
  }
});
