import { z } from 'zod';
import type { DirectoryCapability } from './connector.js';
import { DIRECTORY_TARGET_TYPES } from './targets.js';

/** The answer of `POST /v1/tenants/{tenantId}/directory/test` (usecases/directory/targets.ts). */
export const DirectoryTestResultSchema = z
  .object({
    tenantId: z.uuid(),
    policyVersion: z.number().int(),
    target: z.object({ type: z.enum(DIRECTORY_TARGET_TYPES), location: z.string().nullable() }),
    connector: z.string().nullable().describe('The connector kind once built: postgres, ldap or scim.'),
    capabilities: z
      .object({
        sessions: z.boolean(),
        membershipEnd: z.boolean(),
        roleLookup: z.boolean(),
        roleDelete: z.boolean(),
        unlock: z.boolean(),
        mfaReset: z.boolean(),
        passwordReset: z.boolean(),
        mfaPolicy: z.boolean(),
        passwordPolicy: z.boolean(),
        lockoutPolicy: z.boolean(),
        sessionPolicy: z.boolean(),
      } satisfies Record<DirectoryCapability, z.ZodBoolean>)
      .nullable()
      .describe('What the connector declares; null when it could not be built.'),
    notSupported: z.array(z.string()).describe('Each missing capability, as `<capability>: not supported by target`.'),
    sweeper: z.boolean().describe('The target cannot end memberships by itself: the expiry sweeper runs for this tenant.'),
    checks: z.array(
      z.object({
        operation: z.string(),
        ok: z.boolean(),
        durationMs: z.number().int(),
        error: z.object({ type: z.string(), retryable: z.boolean(), message: z.string() }).nullable(),
      }),
    ),
    ok: z.boolean(),
    checkedAt: z.string(),
  })
  .meta({ id: 'DirectoryTestResult' });

/** The test takes no input; an empty object is accepted. */
export const DirectoryTestRequest = z.strictObject({}).meta({ id: 'DirectoryTestRequest' });
