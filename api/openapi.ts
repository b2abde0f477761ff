import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';

export type { OpenAPIRegistry };

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
      description:
        'Time-bound, tenant-scoped access workflows for managed-service identity operations. ' +
        'Text never contains NUL (U+0000) or a lone UTF-16 surrogate: a request that carries one is a 400.',
    },
  });
}
