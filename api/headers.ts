import { z } from 'zod';

/**
 * `Idempotency-Key` on a request that creates something: the same key from the same caller
 * answers the same result, a key reused for another request is a 409.
 */
export const IdempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,200}$/, '1-200 letters, digits or . _ : -')
    .optional(),
});
