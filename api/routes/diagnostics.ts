import { Router } from 'express';
import { z } from 'zod';
import { PingId, PingRequest, PingView } from '../../core/diagnostics/schemas.js';
import { authorizeMsp } from '../auth.js';
import { errorResponses, type OpenAPIRegistry } from '../openapi.js';
import { getPing, startPing, type DiagnosticsDeps } from '../../usecases/diagnostics.js';
import { parse } from '../validate.js';

const PingParams = z.strictObject({ pingId: PingId });

export function diagnosticsRoutes(deps: DiagnosticsDeps, registry: OpenAPIRegistry): Router {
  const router = Router();

  registry.registerPath({
    method: 'post',
    path: '/v1/diagnostics/pings',
    summary: 'Start a diagnostics ping workflow',
    description: 'Proves the path API → Temporal → worker → PostgreSQL. Poll the returned Location until status is `done`.',
    tags: ['diagnostics'],
    security: [{ bearer: [] }],
    request: { body: { content: { 'application/json': { schema: PingRequest } } } },
    responses: { 201: { description: 'Started.', content: { 'application/json': { schema: PingView } } }, 400: errorResponses[400] },
  });
  router.post('/v1/diagnostics/pings', async (req, res) => {
    authorizeMsp(req, 'diagnostics.run');
    const body = parse(PingRequest, req.body, 'body');
    const view = await startPing(deps, body);
    res.status(201).location(`/v1/diagnostics/pings/${view.pingId}`).json(view);
  });

  registry.registerPath({
    method: 'get',
    path: '/v1/diagnostics/pings/{pingId}',
    summary: 'Read a diagnostics ping',
    tags: ['diagnostics'],
    security: [{ bearer: [] }],
    request: { params: PingParams },
    responses: {
      200: { description: 'The ping.', content: { 'application/json': { schema: PingView } } },
      400: errorResponses[400],
      404: errorResponses[404],
    },
  });
  router.get('/v1/diagnostics/pings/:pingId', async (req, res) => {
    const { pingId } = parse(PingParams, req.params, 'params');
    authorizeMsp(req, 'diagnostics.run');
    res.json(await getPing(deps, pingId));
  });

  return router;
}
