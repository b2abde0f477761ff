import type { Router } from 'express';
import { z } from 'zod';
import {
  RolloutActionBody,
  RolloutDetailQuery,
  RolloutListQuery,
  StartRolloutRequest,
  TemplateRolloutDetailView,
  TemplateRolloutView,
} from '../../core/templates/rollout-schemas.js';
import { Uuid } from '../../core/tenancy/schemas.js';
import * as rollouts from '../../usecases/rollouts.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { routeSet } from '../route.js';

const RolloutParams = z.strictObject({ rolloutId: Uuid });
const StartHeaders = z.object({
  'idempotency-key': z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,200}$/, '1-200 letters, digits or . _ : -')
    .optional(),
});

const STEPS: { step: rollouts.RolloutStep; summary: string; conflict: string }[] = [
  {
    step: 'pause',
    summary: 'Pause: no tenant starts until it is resumed; applies under way finish',
    conflict: 'The rollout is not running or baking.',
  },
  {
    step: 'resume',
    summary: 'Resume a paused or halted rollout; after a halt the wave’s error budget counts failures afresh',
    conflict: 'The rollout is neither paused nor halted.',
  },
  {
    step: 'cancel',
    summary: 'Cancel: no tenant starts; tenants still at their approval gate are skipped (nothing changed), applies under way finish',
    conflict: 'The rollout has ended or is being cancelled.',
  },
  {
    step: 'skip',
    summary: 'Skip the rest of the halted wave: its tenants not started are passed over and the rollout moves on',
    conflict: 'The rollout is not halted.',
  },
  {
    step: 'approve-wave',
    summary: 'Approve the next wave, when waves wait for an operator',
    conflict: 'The rollout is not waiting for the next wave’s approval.',
  },
];

/** Rollouts are MSP-wide: MSP admins and operators run them (`template.assign`), template readers follow them. */
export function rolloutRoutes(deps: rollouts.RolloutDeps, registry: OpenAPIRegistry): Router {
  const { router, route } = routeSet(registry, 'rollouts');

  route({
    method: 'post',
    path: '/v1/rollouts',
    summary: 'Roll an approved template version out to tenants in waves',
    description:
      'Starts `rollout/<rolloutId>`: a canary wave (named tenants or the first N), then waves by count or percentage, with ' +
      'optional bake time and operator approval between waves. Each tenant is planned, passes its own approvers’ gate when the ' +
      'plan loosens its control (skipped on timeout), is snapshotted, applied, read back and pinned. A wave whose failures pass ' +
      'the error budget halts the rollout: no tenant starts until an operator resumes, skips or cancels. Each tenant’s ' +
      'parameters are its pin’s when it is pinned to this template, else the template’s defaults. Send an `Idempotency-Key` ' +
      'header to make retries safe: the same key returns the same rollout.',
    headers: StartHeaders,
    body: StartRolloutRequest,
    access: { msp: 'template.assign' },
    responses: { 201: { description: 'Started; follow it at `Location`.', schema: TemplateRolloutView } },
    errors: {
      409: 'The version is not approved, a tenant is in a rollout or apply under way, or the idempotency key was used for another request.',
    },
    handler: async ({ res, body, headers, actor }) => {
      const { view } = await rollouts.startRollout(deps, actor(), body, headers['idempotency-key']);
      res.status(201).location(`/v1/rollouts/${view.rolloutId}`).json(view);
    },
  });

  route({
    method: 'get',
    path: '/v1/rollouts',
    summary: 'List rollouts, newest first',
    query: RolloutListQuery,
    access: { msp: 'template.read' },
    responses: {
      200: { description: 'Rollouts with their progress by wave.', schema: z.object({ rollouts: z.array(TemplateRolloutView) }) },
    },
    handler: async ({ res, query }) => {
      res.json({ rollouts: await rollouts.listRollouts(deps.pool, query) });
    },
  });

  route({
    method: 'get',
    path: '/v1/rollouts/{rolloutId}',
    summary: 'A rollout’s progress by wave and by tenant',
    description:
      'Its waves’ counts, and its tenants a page at a time in wave and position order (`limit`, default 500; ' +
      '`nextCursor` while more follow).',
    params: RolloutParams,
    query: RolloutDetailQuery,
    access: { msp: 'template.read' },
    responses: { 200: { description: 'The rollout.', schema: TemplateRolloutDetailView } },
    errors: { 404: 'No such rollout.' },
    handler: async ({ res, params, query }) => {
      res.json(await rollouts.getRollout(deps.pool, params.rolloutId, query));
    },
  });

  for (const { step, summary, conflict } of STEPS) {
    route({
      method: 'post',
      path: `/v1/rollouts/{rolloutId}/${step}`,
      summary,
      description: 'An Update of the rollout workflow; audited on the MSP chain with the caller and their authority.',
      params: RolloutParams,
      body: RolloutActionBody,
      bodyOptional: true,
      access: { msp: 'template.assign' },
      responses: { 200: { description: 'The rollout after the step.', schema: TemplateRolloutView } },
      errors: { 404: 'No such rollout.', 409: conflict },
      handler: async ({ res, params, body, principal, authority }) => {
        res.json(
          await rollouts.stepRollout(deps, params.rolloutId, step, {
            actorId: principal.actorId,
            ...(body.comment ? { comment: body.comment } : {}),
            authority,
          }),
        );
      },
    });
  }

  return router;
}
