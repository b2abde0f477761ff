import { WorkflowUpdateFailedError } from '@temporalio/client';
import { AppError } from '../core/errors.js';

/**
 * A workflow Update refused by its validator or handler, as the caller's error: the failure's
 * type picks the answer from `byType`, anything else is 409 (the decision no longer applies).
 * Undefined when `error` is not a refusal, so the caller rethrows it.
 */
export function updateRefusal(error: unknown, byType: Record<string, (message: string) => AppError>): AppError | undefined {
  if (!(error instanceof WorkflowUpdateFailedError)) return undefined;
  const failure = error.cause as { type?: string; message?: string } | undefined;
  const message = failure?.message ?? 'The decision was refused.';
  const answer = failure?.type ? byType[failure.type] : undefined;
  return answer ? answer(message) : new AppError(409, 'conflict', message);
}
