import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { ErrorBody } from './errors.js';

export type { OpenAPIRegistry };

export const errorResponses = {
  400: { description: 'Invalid input; `issues` names each offending field.', content: { 'application/json': { schema: ErrorBody } } },
  404: { description: 'Not found.', content: { 'application/json': { schema: ErrorBody } } },
  409: { description: 'Conflicts with the current state.', content: { 'application/json': { schema: ErrorBody } } },
} as const;

export function createRegistry(): OpenAPIRegistry {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API token (`tnr_…`) or, when OIDC is configured, an access token from the identity provider.',
  });
  return registry;
}

export function buildDocument(registry: OpenAPIRegistry, version: string) {
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Tenure API',
      version,
      description: 'Time-bound, tenant-scoped access workflows for managed-service identity operations.',
    },
  });
}
