import type { Router } from 'express';
import { z } from 'zod';
import { CloneTenantRequest, TenantCloneView } from '../../core/templates/clone-schemas.js';
import { Uuid } from '../../core/tenancy/schemas.js';
import * as clone from '../../usecases/templates/clone.js';
import { IdempotencyHeaders } from '../headers.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { routeSet } from '../route.js';

const TenantParams = z.strictObject({ tenantId: Uuid });
/** Required here: a clone creates a tenant, and only the key makes a re-sent request safe. */
const CloneHeaders = z.object({
  'idempotency-key': IdempotencyHeaders.shape['idempotency-key']
    .unwrap()
    .describe('Required. The same key with the same body answers the same clone; with another body, 409.'),
});

/** Org cloning for onboarding (core/templates/clone.ts). */
export function templateCloneRoutes(deps: clone.CloneDeps, registry: OpenAPIRegistry): Router {
  const { router, route } = routeSet(registry, 'templates');

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/clone',
    summary: 'Clone a tenant for onboarding: its roles, security settings, policy and template pin; none of its users or secrets',
    description:
      'Creates a new tenant (MSP admins, as creating a tenant) with the source’s directory roles and security settings (read ' +
      'through its connector, written to the new tenant’s built-in directory), its policy (without its directory target and ' +
      'secret reference, webhook URL and contact, which are the source’s) and its template pin (the applied version is left ' +
      'for an apply to verify). Nothing of the source’s users, memberships, grants, entitlements, role bindings, tokens, ' +
      'webhook secret or people is copied. Runs as the workflow `clone/<sourceId>/<Idempotency-Key>`, audited on the MSP ' +
      'chain, the source’s and the new tenant’s. The same key with the same body answers the same clone (201, ' +
      '`Idempotent-Replayed: true`); with another body, 409. 202: still running; send the same request again for the outcome.',
    params: TenantParams,
    headers: CloneHeaders,
    body: CloneTenantRequest,
    access: { msp: 'tenant.create' },
    responses: {
      201: { description: 'Cloned: the new tenant and what was copied.', schema: TenantCloneView },
      202: { description: 'Still running: send the same request (same key) again for the outcome.', schema: TenantCloneView },
    },
    errors: {
      404: 'No such source tenant.',
      409: 'The slug or name is taken (`issues` names the field), the key was used with another body, or the clone failed.',
    },
    handler: async ({ res, params, headers, body, actor }) => {
      const outcome = await clone.cloneTenant(deps, actor(), params.tenantId, body, headers['idempotency-key']);
      if (outcome.replayed) res.setHeader('Idempotent-Replayed', 'true');
      if (outcome.status === 201) res.location(`/v1/tenants/${outcome.view.tenantId}`);
      res.status(outcome.status).json(outcome.view);
    },
  });

  return router;
}
