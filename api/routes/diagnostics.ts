import type { Router } from 'express';
import { z } from 'zod';
import { PingId, PingRequest, PingView } from '../../core/diagnostics/schemas.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { getPing, startPing, type DiagnosticsDeps } from '../../usecases/diagnostics.js';
import { routeSet } from '../route.js';

const PingParams = z.strictObject({ pingId: PingId });

export function diagnosticsRoutes(deps: DiagnosticsDeps, registry: OpenAPIRegistry): Router {
  const { router, route } = routeSet(registry, 'diagnostics');

  route({
    method: 'post',
    path: '/v1/diagnostics/pings',
    summary: 'Start a diagnostics ping workflow',
    description: 'Proves the path API → Temporal → worker → PostgreSQL. Poll the returned Location until status is `done`.',
    body: PingRequest,
    access: { msp: 'diagnostics.run' },
    responses: { 201: { description: 'Started.', schema: PingView } },
    handler: async ({ res, body }) => {
      const view = await startPing(deps, body);
      res.status(201).location(`/v1/diagnostics/pings/${view.pingId}`).json(view);
    },
  });

  route({
    method: 'get',
    path: '/v1/diagnostics/pings/{pingId}',
    summary: 'Read a diagnostics ping',
    params: PingParams,
    access: { msp: 'diagnostics.run' },
    responses: { 200: { description: 'The ping.', schema: PingView } },
    errors: { 404: 'No such ping.' },
    handler: async ({ res, params }) => {
      res.json(await getPing(deps, params.pingId));
    },
  });

  return router;
}
