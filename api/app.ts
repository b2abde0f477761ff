import { randomUUID } from 'node:crypto';
import express, { type Express } from 'express';
import { pinoHttp } from 'pino-http';
import type { Client } from '@temporalio/client';
import type { Config } from '../core/config.js';
import type { PayloadEncryptionCodec } from '../core/payload-codec.js';
import { DEFAULT_TASK_QUEUE_PREFIX } from '../core/temporal.js';
import type { DirectoryConnector, DirectoryResolver } from '../core/directory/connector.js';
import { DEFAULT_IMPORT_MAX_ROWS } from '../core/lifecycle/contract.js';
import { ping, type Pool } from '../db/pool.js';
import type { Logger } from 'pino';
import { authenticate, type OidcSettings } from './auth.js';
import { createPrincipalSource, type PrincipalSource } from './principals.js';
import { consoleRoutes, type ConsoleOptions } from './console.js';
import { consoleSessionRoutes } from './routes/console-session.js';
import { errorHandler, notFoundHandler } from './errors.js';
import { createHttpMetrics } from './metrics.js';
import { buildDocument, createRegistry } from './openapi.js';
import { actionRoutes } from './routes/actions.js';
import { auditRoutes } from './routes/audit.js';
import { codecCors, codecRoutes } from './routes/codec.js';
import { campaignRoutes } from './routes/campaigns.js';
import { diagnosticsRoutes } from './routes/diagnostics.js';
import { directoryRoutes } from './routes/directory.js';
import { grantRoutes } from './routes/grants.js';
import { lifecycleRoutes } from './routes/lifecycle.js';
import { templateCloneRoutes } from './routes/template-clone.js';
import { templateReportRoutes } from './routes/template-report.js';
import { templateRoutes } from './routes/templates.js';
import { rolloutRoutes } from './routes/rollouts.js';
import { templateDriftRoutes } from './routes/template-drift.js';
import { templateRollbackRoutes } from './routes/template-rollbacks.js';
import { tenancyRoutes } from './routes/tenancy.js';
import { opsRoutes } from './routes/ops.js';
import { methodNotAllowed } from './route.js';

export interface ApiDeps {
  config: Pick<Config, 'BODY_LIMIT' | 'IMPORT_BODY_LIMIT'> &
    Partial<Pick<Config, 'WEBHOOK_ALLOW_PRIVATE_NETWORKS' | 'IMPORT_MAX_ROWS' | 'CODEC_CORS_ORIGINS' | 'TEMPORAL_TASK_QUEUE_PREFIX'>>;
  pool: Pool;
  /** The built-in directory; give it a pool of its own (see createPostgresDirectory). */
  directory: DirectoryConnector;
  /** Each tenant's own target (connectors/directory/registry.ts); every tenant on `directory` when absent. */
  directories?: DirectoryResolver;
  temporal: Client;
  /** The codec `temporal` runs with, served to operators at /v1/codec. */
  payloadCodec: PayloadEncryptionCodec;
  logger: Logger;
  version: string;
  extraMetrics?: () => Promise<string>;
  /**
   * Who callers are (api/principals.ts), started by the caller; when absent, every request looks
   * its caller up and records token use at once.
   */
  principals?: PrincipalSource;
  /** OIDC bearer-token validation; API tokens work without it. */
  oidc?: OidcSettings;
  /** The web console at /console (api/console.ts); not served when absent. */
  console?: ConsoleOptions;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * A request as pino-http logs it; a console page's query is left out. The console is a browser
 * app whose addresses may carry what a provider sends back (the OIDC callback's authorization code
 * and state), so no query on its paths is written, whichever page a provider is set to return to.
 */
function withoutConsoleQuery<T extends { url?: string; query?: unknown }>(req: T): T {
  if (typeof req.url !== 'string' || !CONSOLE_WITH_QUERY.test(req.url)) return req;
  return { ...req, url: `${req.url.slice(0, req.url.indexOf('?'))}?[redacted]`, query: '[redacted]' };
}
const CONSOLE_WITH_QUERY = /^\/console(?:\/[^?]*)?\?/;

export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);

  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (req, res) => {
        const incoming = req.headers['x-request-id'];
        const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/metrics' },
      quietReqLogger: true,
      // Bearer tokens are credentials: never write them to logs.
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]'], censor: '[redacted]' },
      // The OIDC provider's redirect back to the console carries the authorization code (and state): credentials too.
      serializers: { req: withoutConsoleQuery },
    }),
  );
  const metrics = createHttpMetrics({ directoryHealth: () => deps.directories?.health?.() ?? [] });
  app.use(metrics.middleware);
  app.use(express.json({ limit: deps.config.BODY_LIMIT, strict: true }));

  const registry = createRegistry();
  let document: object | undefined;
  const openapiDocument = () => (document ??= buildDocument(registry, deps.version));
  // The console's generated client is built from this (api/document.ts), without a server.
  app.locals.openapiDocument = openapiDocument;
  // Operational endpoints answer without authentication; everything under /v1 needs it.
  app.use(
    opsRoutes({
      registry,
      metrics,
      extraMetrics: deps.extraMetrics,
      openapiDocument,
      readiness: {
        postgres: () => ping(deps.pool),
        temporal: async () => {
          await deps.temporal.connection.withDeadline(Date.now() + 2500, () => deps.temporal.workflowService.getSystemInfo({}));
        },
      },
    }),
  );

  // Documented whether or not the console is served, so its typed client always has them.
  app.use(consoleSessionRoutes(deps.console?.signIn ?? {}, registry));
  if (deps.console) app.use(consoleRoutes(deps.console));

  // A browser's preflight carries no credentials: the Temporal UI's is answered before authentication.
  app.use('/v1/codec', codecCors(deps.config.CODEC_CORS_ORIGINS ?? []));
  const principals =
    deps.principals ?? createPrincipalSource({ pool: deps.pool, logger: deps.logger, cacheSeconds: 0, useFlushSeconds: 0 });
  app.use('/v1', authenticate(principals, deps.oidc));
  const directories = { directory: deps.directory, ...(deps.directories ? { directories: deps.directories } : {}) };
  app.use(
    tenancyRoutes(
      {
        pool: deps.pool,
        ...directories,
        temporal: deps.temporal,
        allowPrivateWebhooks: deps.config.WEBHOOK_ALLOW_PRIVATE_NETWORKS ?? false,
      },
      registry,
    ),
  );
  app.use(auditRoutes({ pool: deps.pool }, registry));
  app.use(grantRoutes({ pool: deps.pool, ...directories, temporal: deps.temporal }, registry));
  app.use(
    lifecycleRoutes({ pool: deps.pool, ...directories, temporal: deps.temporal }, registry, {
      importBodyLimit: deps.config.IMPORT_BODY_LIMIT,
      importMaxRows: deps.config.IMPORT_MAX_ROWS ?? DEFAULT_IMPORT_MAX_ROWS,
    }),
  );
  app.use(
    campaignRoutes(
      {
        pool: deps.pool,
        ...directories,
        temporal: deps.temporal,
        taskQueuePrefix: deps.config.TEMPORAL_TASK_QUEUE_PREFIX ?? DEFAULT_TASK_QUEUE_PREFIX,
      },
      registry,
    ),
  );
  app.use(actionRoutes({ pool: deps.pool, ...directories, temporal: deps.temporal }, registry));
  app.use(diagnosticsRoutes({ temporal: deps.temporal }, registry));
  app.use(codecRoutes({ pool: deps.pool, codec: deps.payloadCodec, namespace: deps.temporal.options.namespace }, registry));
  app.use(directoryRoutes({ pool: deps.pool, ...directories }, registry));
  // Before the template routes: `/v1/templates/drift-schedule` must not be read as a template id.
  app.use(
    templateDriftRoutes(
      { pool: deps.pool, temporal: deps.temporal, taskQueuePrefix: deps.config.TEMPORAL_TASK_QUEUE_PREFIX ?? DEFAULT_TASK_QUEUE_PREFIX },
      registry,
    ),
  );
  app.use(templateReportRoutes({ pool: deps.pool, ...directories }, registry));
  app.use(templateCloneRoutes({ pool: deps.pool, temporal: deps.temporal }, registry));
  app.use(templateRoutes({ pool: deps.pool, ...directories, temporal: deps.temporal }, registry));
  app.use(rolloutRoutes({ pool: deps.pool, temporal: deps.temporal }, registry));
  app.use(templateRollbackRoutes({ pool: deps.pool, temporal: deps.temporal }, registry));

  app.use(methodNotAllowed(registry));
  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
