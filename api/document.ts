import { pino } from 'pino';
import { createApp, type ApiDeps } from './app.js';

/**
 * The OpenAPI document, built from the same route registrations the running API serves, without
 * connecting to anything: the routes only keep their dependencies until a request arrives. The
 * console's typed client is generated from it, so console and API cannot drift apart.
 */
export function buildApiDocument(version: string): object {
  const inert = new Proxy(
    {},
    {
      get: (_target, property) => {
        throw new Error(`buildApiDocument: a route used ${String(property)} while registering`);
      },
    },
  );
  const deps: ApiDeps = {
    config: { BODY_LIMIT: '1mb', IMPORT_BODY_LIMIT: '1mb' },
    pool: inert as ApiDeps['pool'],
    directory: inert as ApiDeps['directory'],
    temporal: { options: { namespace: 'default' } } as ApiDeps['temporal'],
    payloadCodec: inert as ApiDeps['payloadCodec'],
    logger: pino({ level: 'silent' }),
    version,
  };
  const document = (createApp(deps).locals as { openapiDocument: () => object }).openapiDocument();
  return document;
}
