import type { ErrorRequestHandler, RequestHandler } from 'express';
import { isGrpcServiceError, ServiceError, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';

import { DirectoryError, DirectoryUnavailableError } from '../core/directory/connector.js';
import { AppError, badRequest, conflict, notFound } from '../core/errors.js';
import { isTransientDatabaseError } from '../db/errors.js';

export { AppError, badRequest, conflict, notFound };
export type { FieldIssue } from '../core/errors.js';

/** pino-http's request id as a string (it is always one here: see genReqId in app.ts). */
export const requestIdOf = (req: { id: unknown }): string => (typeof req.id === 'string' ? req.id : JSON.stringify(req.id));

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      requestId: z.string(),
      issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
  })
  .meta({ id: 'Error' });

export type ErrorBodyType = z.infer<typeof ErrorBody>;

/** Maps what the caller did wrong to a 4xx; anything else is our fault: logged and a plain 500. */
function classify(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof WorkflowExecutionAlreadyStartedError) return conflict('already started');
  if (error instanceof WorkflowNotFoundError) return notFound();
  const bodyError = error as { type?: string; status?: number; limit?: number };
  if (bodyError.type === 'entity.parse.failed')
    return badRequest('The request body is not valid JSON.', [{ path: '(body)', message: 'malformed JSON' }]);
  if (bodyError.type === 'entity.too.large') {
    // 400 rather than 413, so every input problem has the same shape: a message and field paths.
    return new AppError(400, 'payload_too_large', `The request body exceeds the limit of ${bodyError.limit} bytes.`, [
      { path: '(body)', message: `larger than ${bodyError.limit} bytes` },
    ]);
  }
  if (bodyError.type === 'encoding.unsupported' || bodyError.type === 'charset.unsupported') {
    return new AppError(415, 'unsupported_media_type', 'The request body encoding is not supported.');
  }
  if (typeof bodyError.status === 'number' && bodyError.status >= 400 && bodyError.status < 500) {
    return new AppError(bodyError.status, 'bad_request', 'The request could not be read.');
  }
  // A tenant's target refusing for good (wrong credentials, its secret missing): the message names
  // the target and the operation, never a secret.
  if (error instanceof DirectoryError && !error.retryable) {
    return new AppError(409, 'directory_refused', `The tenant's directory refused: ${error.message}`, [], { cause: error });
  }
  if (workflowNotReady(error))
    return new AppError(
      503,
      'unavailable',
      'The workflow cannot take this right now: its last step failed and is being retried; nothing was changed. Try again shortly.',
      [],
      { cause: error },
    );
  const unavailable = dependencyDown(error);
  if (unavailable)
    return new AppError(
      503,
      'unavailable',
      `${unavailable} is unavailable right now; nothing was changed that a retry would repeat. Try again shortly.`,
      [],
      { cause: error },
    );
  return new AppError(500, 'internal', 'Internal error.', [], { cause: error });
}

// gRPC status codes: the server could not be reached, or did not answer in time.
const UNREACHABLE: ReadonlySet<number> = new Set([14 /* UNAVAILABLE */, 4 /* DEADLINE_EXCEEDED */]);

/**
 * Temporal refusing an Update or Query because the run's workflow task keeps failing or timing out
 * (FAILED_PRECONDITION, "Workflow Task in failed state"): a busy or restarting worker, not the
 * caller's doing, and over once a task completes.
 */
function workflowNotReady(error: unknown): boolean {
  const grpc = error instanceof ServiceError ? error.cause : error;
  return isGrpcServiceError(grpc) && Number(grpc.code) === 9 && /workflow task in failed state/i.test(grpc.details ?? grpc.message);
}

/** A dependency that is down (not the caller's doing): answered 503 with Retry-After. */
function dependencyDown(error: unknown): string | undefined {
  if (isTransientDatabaseError(error)) return 'The database';
  if (error instanceof DirectoryUnavailableError) return `The tenant's directory (${error.message})`;
  const grpc = error instanceof ServiceError ? error.cause : error;
  if (isGrpcServiceError(grpc) && UNREACHABLE.has(Number(grpc.code))) return 'Temporal';
  return undefined;
}

export const errorHandler: ErrorRequestHandler = (error, req, res, next) => {
  // A failure after the response started (e.g. mid-stream) cannot become a JSON error any more.
  if (res.headersSent) return next(error);
  const appError = classify(error);
  if (appError.status >= 500) req.log.error({ err: error }, 'request failed');
  if (appError.status === 503) res.setHeader('Retry-After', '5');
  // Set while a token was being checked; only a 401 is about the token.
  if (appError.status !== 401) res.removeHeader('WWW-Authenticate');
  const body: ErrorBodyType = {
    error: {
      code: appError.code,
      message: appError.message,
      requestId: requestIdOf(req),
      ...(appError.issues.length > 0 ? { issues: appError.issues } : {}),
    },
  };
  res.status(appError.status).json(body);
};

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new AppError(404, 'not_found', `No route for ${req.method} ${req.path}`));
};
