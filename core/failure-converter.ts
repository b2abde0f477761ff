// Loaded by path (DataConverter.failureConverterPath): bundled into the workflow code, and
// require()d as it stands by the worker and clients (tests run it untranspiled), so this file must
// stay free of TypeScript-only syntax.
import { DefaultFailureConverter } from '@temporalio/common';

/**
 * Error messages and stack traces travel as an encoded payload ("Encoded failure" on the wire), so
 * the payload codec encrypts them like any other data: a refusal that quotes a comment or a name
 * is not readable in Temporal's history.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
