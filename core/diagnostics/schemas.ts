import { z } from 'zod';
import { nonBlank } from '../text.js';
import { PING_STATUSES } from './contract.js';

export const PingRequest = z
  .strictObject({
    message: nonBlank(500),
    delaySeconds: z
      .number()
      .int()
      .min(0)
      .max(366 * 24 * 3600)
      .default(0),
  })
  .meta({ id: 'PingRequest', description: 'Starts a diagnostics ping workflow that records a row in PostgreSQL.' });

export const PingId = z.uuid();

export const PingView = z
  .object({
    pingId: z.uuid(),
    workflowId: z.string(),
    // `failed`: the API's word for a ping workflow that ended any other way.
    status: z.enum([...PING_STATUSES, 'failed']),
    message: z.string(),
    recordedAt: z.string().nullable(),
  })
  .meta({ id: 'Ping' });

export type PingView = z.infer<typeof PingView>;
