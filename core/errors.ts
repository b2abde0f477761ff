import type { z } from 'zod';

export interface FieldIssue {
  path: string;
  message: string;
}

/** An error the caller can act on; the API's error middleware turns it into its status and body. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: FieldIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }
}

export const badRequest = (message: string, issues: FieldIssue[] = []) => new AppError(400, 'bad_request', message, issues);
export const notFound = (what = 'resource') => new AppError(404, 'not_found', `${what} not found`);
export const conflict = (message: string) => new AppError(409, 'conflict', message);
export const forbidden = (message: string) => new AppError(403, 'forbidden', message);
export const unauthorized = (message: string) => new AppError(401, 'unauthorized', message);

/**
 * A zod error as field paths the caller can fix, e.g. `body.delaySeconds`; an unknown key is
 * named in its own path. `prefix` names the part of the request (none for a bare row).
 */
export function toFieldIssues(error: z.ZodError, prefix = ''): FieldIssue[] {
  return error.issues.flatMap((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    return keys.map((key) => ({
      path: [prefix, ...issue.path.map(String), ...(key === undefined ? [] : [key])].filter((part) => part !== '').join('.'),
      message: issue.message,
    }));
  });
}

/**
 * ApplicationFailure type, non-retryable, of an activity whose database write or read was refused
 * for good: a value the column or type cannot hold (NUL bytes, bad encoding or syntax, too long) or a
 * broken constraint. Retrying sends the same data again, so the workflow takes its failure path instead.
 */
export const PERMANENT_DATA_ERROR = 'PermanentDataError';
