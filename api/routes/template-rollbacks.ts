import type { Router } from 'express';
import { z } from 'zod';
import {
  RollbackStartedView,
  RolloutRollbackStartedView,
  RolloutRollbackView,
  TemplateRollbackView,
} from '../../core/templates/rollback-schemas.js';
import { Uuid } from '../../core/tenancy/schemas.js';
import * as rollbacks from '../../usecases/template-rollbacks.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { routeSet } from '../route.js';

const ApplyParams = z.strictObject({ tenantId: Uuid, rolloutId: Uuid });
const RolloutParams = z.strictObject({ rolloutId: Uuid });
const StartRolloutRollbackRequest = z
  .strictObject({
    window: z.number().int().min(1).max(50).optional().describe('Tenants rolled back at once (default 5).'),
  })
  .meta({ id: 'StartRolloutRollbackRequest' });

const NO_GATE =
  'Restores the snapshot the apply took (roles it created are deleted, roles it changed get their description and privileged ' +
  'flag back, security settings, the policy as the tenant’s next version), reads the tenant back until it equals the snapshot, ' +
  'and re-pins the version applied before. No tenant gate: it restores the tenant’s own prior state. A path the tenant changed ' +
  'after the apply is never overwritten: it is listed in `conflicts` and the status is `rolled_back_with_conflicts`.';

/** Rolling back template applies: one tenant's, or a whole rollout's. */
export function templateRollbackRoutes(deps: rollbacks.TemplateRollbackDeps, registry: OpenAPIRegistry): Router {
  const { pool } = deps;
  const { router, route } = routeSet(registry, 'templates');

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/template/applies/{rolloutId}/rollback',
    summary: 'Roll back the tenant’s apply: restore its snapshot, read back, re-pin the version before',
    description:
      `${NO_GATE} Starts \`rollout/<rolloutId>/<tenantId>/rollback\`; a second request answers the first (\`existing\`). ` +
      'A rollback that failed (its target refused, or never read back as the snapshot) may be requested again once it has ' +
      'ended: it restores what the failed attempt left, from the tenant as it is now.',
    params: ApplyParams,
    access: { tenant: 'template.assign' },
    responses: { 202: { description: 'Started, or answered by the rollback already requested.', schema: RollbackStartedView } },
    errors: {
      404: 'No such apply.',
      409: 'The apply (or another for the tenant) is under way, or it took no snapshot: nothing to roll back.',
    },
    handler: async ({ res, params, actor }) => {
      const started = await rollbacks.startTenantRollback(deps, actor(), params.tenantId, params.rolloutId);
      res.status(202).location(`/v1/tenants/${params.tenantId}/template/applies/${params.rolloutId}/rollback`).json(started);
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/template/applies/{rolloutId}/rollback',
    summary: 'The rollback of the tenant’s apply: status, what it restored, its conflicts, the pin',
    params: ApplyParams,
    access: { tenant: 'template.plan', hiddenAs: 'template rollback' },
    responses: { 200: { description: 'The rollback.', schema: TemplateRollbackView } },
    handler: async ({ res, params }) => {
      res.json(await rollbacks.getTenantRollback(pool, params.tenantId, params.rolloutId));
    },
  });

  route({
    method: 'post',
    path: '/v1/rollouts/{rolloutId}/rollback',
    summary: 'Roll back a whole rollout: every tenant whose apply took a snapshot, a bounded window at a time',
    description:
      'Starts `rollout/<rolloutId>/rollback`, which runs one tenant rollback per tenant (see the tenant endpoint: ' +
      `${NO_GATE}). A tenant whose rollback was requested on its own is answered by that one. A second request answers the first.`,
    params: RolloutParams,
    body: StartRolloutRollbackRequest,
    bodyOptional: true,
    access: { msp: 'template.assign' },
    responses: { 202: { description: 'Started, or answered by the rollback already requested.', schema: RolloutRollbackStartedView } },
    errors: {
      404: 'No apply belongs to this rollout.',
      409: 'An apply of the rollout is under way, or none took a snapshot.',
    },
    handler: async ({ res, params, body, actor }) => {
      const started = await rollbacks.startRolloutRollback(deps, actor(), params.rolloutId, body);
      res.status(202).location(`/v1/rollouts/${params.rolloutId}/rollback`).json(started);
    },
  });

  route({
    method: 'get',
    path: '/v1/rollouts/{rolloutId}/rollback',
    summary: 'A rollout’s rollback: progress, counts, and each tenant’s rollback',
    params: RolloutParams,
    access: { msp: 'template.read' },
    responses: { 200: { description: 'The rollback.', schema: RolloutRollbackView } },
    errors: { 404: 'No rollback of this rollout was requested.' },
    handler: async ({ res, params }) => {
      res.json(await rollbacks.getRolloutRollback(pool, params.rolloutId));
    },
  });

  return router;
}
