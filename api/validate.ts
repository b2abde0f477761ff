import type { z } from 'zod';
import { toFieldIssues } from '../core/errors.js';
import { badRequest } from './errors.js';

/** Parses one part of a request (body, query, params); a failure is a 400 naming every bad field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, part: 'body' | 'query' | 'params' | 'headers'): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw badRequest(`Invalid request ${part}.`, toFieldIssues(result.error, part));
  return result.data;
}
