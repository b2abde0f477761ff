import { ApplicationFailure } from '@temporalio/common';
import { PERMANENT_DATA_ERROR } from '../core/errors.js';
import { permanentDatabaseErrorCode } from '../db/errors.js';

/**
 * A PostgreSQL error no retry can fix as a non-retryable failure of type PERMANENT_DATA_ERROR
 * (the SQLSTATE in its details), so the workflow takes its failure path instead of retrying the
 * same data forever; anything else passes through unchanged and stays retryable.
 */
export function permanentDataFailure(error: unknown): unknown {
  const sqlState = permanentDatabaseErrorCode(error);
  if (!sqlState) return error;
  return ApplicationFailure.create({
    type: PERMANENT_DATA_ERROR,
    message: `the database refused the data for good (SQLSTATE ${sqlState}): ${(error as Error).message}`,
    nonRetryable: true,
    details: [{ sqlState }],
    cause: error as Error,
  });
}

/** `activities` with each one's permanent database errors reported as permanentDataFailure does. */
export function withPermanentDataFailures<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, activity]) => [
      name,
      async (...args: never[]) => {
        try {
          return await activity(...args);
        } catch (error) {
          throw permanentDataFailure(error);
        }
      },
    ]),
  ) as T;
}
