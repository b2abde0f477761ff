import type { Router } from 'express';
import swaggerUi from 'swagger-ui-express';
import { z } from 'zod';
import type { HttpMetrics } from '../metrics.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { routeSet } from '../route.js';

export type ReadinessCheck = () => Promise<void>;

export interface OpsDeps {
  /** Where these endpoints are documented. */
  registry: OpenAPIRegistry;
  readiness: Record<string, ReadinessCheck>;
  metrics: HttpMetrics;
  /** More Prometheus text appended to /metrics, e.g. the Temporal runtime's when the worker runs in-process. */
  extraMetrics?: () => Promise<string>;
  openapiDocument: () => object;
}

const READINESS_TIMEOUT_MS = 3000;

function withTimeout(check: ReadinessCheck): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${READINESS_TIMEOUT_MS} ms`)), READINESS_TIMEOUT_MS);
    check()
      .then(resolve, reject)
      .finally(() => clearTimeout(timer));
  });
}

const Readiness = z
  .object({
    status: z.enum(['ready', 'not_ready']),
    checks: z.record(z.string(), z.object({ ok: z.boolean() })),
  })
  .meta({ id: 'Readiness' });

const Ok = z.object({ status: z.literal('ok') });

export function opsRoutes(deps: OpsDeps): Router {
  const { router, route } = routeSet(deps.registry, 'operations');

  route({
    method: 'get',
    path: '/healthz',
    summary: 'Liveness',
    access: { public: true },
    responses: { 200: { description: 'The process is up.', schema: Ok } },
    handler: ({ res }) => {
      res.json({ status: 'ok' });
    },
  });

  route({
    method: 'get',
    path: '/readyz',
    summary: 'Readiness: PostgreSQL and Temporal reachable',
    access: { public: true },
    responses: {
      200: { description: 'Ready.', schema: Readiness },
      503: { description: 'A dependency is unreachable; `checks` says which (the reason is only in the server log).', schema: Readiness },
    },
    handler: async ({ req, res }) => {
      const entries = await Promise.all(
        Object.entries(deps.readiness).map(async ([name, check]) => {
          try {
            await withTimeout(check);
            return [name, null] as const;
          } catch (error) {
            return [name, error as Error] as const;
          }
        }),
      );
      // Unauthenticated callers learn which dependency is down, never why: error text names hosts and ports.
      const failures = entries.filter(([, error]) => error !== null);
      for (const [name, error] of failures) req.log.warn({ dependency: name, err: error }, 'not ready');
      const checks = Object.fromEntries(entries.map(([name, error]) => [name, { ok: error === null }]));
      const ready = failures.length === 0;
      res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks });
    },
  });

  route({
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    access: { public: true },
    responses: { 200: { description: 'Prometheus text format.', content: { 'text/plain': { schema: z.string() } } } },
    handler: async ({ req, res }) => {
      let text = await deps.metrics.registry.metrics();
      if (deps.extraMetrics) {
        try {
          text += '\n' + (await deps.extraMetrics());
        } catch (error) {
          req.log.warn({ err: error }, 'could not read the worker runtime metrics');
        }
      }
      res.type(deps.metrics.registry.contentType).send(text);
    },
  });

  // The document and its viewer describe the API; they are not part of it.
  router.get('/openapi.json', (_req, res) => {
    res.json(deps.openapiDocument());
  });
  router.use(
    '/docs',
    swaggerUi.serveFiles(undefined, { swaggerOptions: { url: '/openapi.json' } }),
    swaggerUi.setup(undefined, { customSiteTitle: 'Tenure API', swaggerOptions: { url: '/openapi.json' } }),
  );

  return router;
}
