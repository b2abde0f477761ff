import type { z } from 'zod';
import { badRequest, type FieldIssue } from './errors.js';

/** Formats a zod error as field paths the caller can fix, e.g. `body.delaySeconds`. */
export function toFieldIssues(error: z.ZodError, prefix: string): FieldIssue[] {
  return error.issues.map((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    return keys.map((key) => ({
      path: [prefix, ...issue.path.map(String), ...(key === undefined ? [] : [key])].join('.'),
      message: issue.message,
    }));
  }).flat();
}

/** Parses one part of a request (body, query, params); a failure is a 400 naming every bad field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, part: 'body' | 'query' | 'params' | 'headers'): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw badRequest(`Invalid request ${part}.`, toFieldIssues(result.error, part));
  return result.data;
}
