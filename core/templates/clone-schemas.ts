import { z } from 'zod';
import { nonBlank } from '../text.js';
import { Slug, TenantTags, TenantView, Uuid } from '../tenancy/schemas.js';
import { CLONE_STATUSES } from './clone.js';

/** The clone endpoint's bodies and answers (zod, also the OpenAPI document); the contract is clone.ts. */
export const CloneTenantRequest = z
  .strictObject({ slug: Slug, name: nonBlank(200), tags: TenantTags.optional() })
  .meta({ id: 'CloneTenantRequest' });
export type CloneTenantRequest = z.infer<typeof CloneTenantRequest>;

export const TenantCloneView = z
  .object({
    cloneId: Uuid,
    sourceTenantId: Uuid,
    workflowId: z.string(),
    status: z.enum(CLONE_STATUSES),
    tenantId: Uuid.describe('The new tenant (created once the clone completes).'),
    tenant: TenantView.nullable(),
    copied: z
      .object({
        roles: z.number().int(),
        privilegedRoles: z.number().int(),
        settings: z.array(z.string()),
        policyVersion: z.number().int(),
        pin: z.object({ templateId: Uuid, version: z.number().int(), appliedVersion: z.number().int().nullable() }).nullable(),
      })
      .nullable(),
    notCopied: z.array(z.string()),
    notes: z.array(z.string()),
    requestedBy: z.string(),
    requestedAt: z.string(),
  })
  .meta({ id: 'TenantClone' });
export type TenantCloneView = z.infer<typeof TenantCloneView>;
