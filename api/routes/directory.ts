import type { Router } from 'express';
import { z } from 'zod';
import { DirectoryTestRequest, DirectoryTestResultSchema } from '../../core/directory/schemas.js';
import { Uuid } from '../../core/tenancy/schemas.js';
import { testDirectory, type DirectoryTargetDeps } from '../../usecases/directory/targets.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { routeSet } from '../route.js';

const TenantParams = z.strictObject({ tenantId: Uuid });

export function directoryRoutes(deps: DirectoryTargetDeps, registry: OpenAPIRegistry): Router {
  const { router, route } = routeSet(registry, 'directory');

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/directory/test',
    summary: "Check the tenant's target directory: connectivity and capabilities",
    description:
      'Builds the connector of the tenant’s current target (reading its secret where the reference points), reads a user ' +
      'and looks up roles where the target can, and answers what the connector declares. Changes nothing. A target that ' +
      'fails answers 200 with `ok: false` and the failing check, whose message names the target and the operation and never a secret.',
    params: TenantParams,
    body: DirectoryTestRequest,
    bodyOptional: true,
    access: { tenant: 'directory.test' },
    responses: { 200: { description: 'The outcome of each check.', schema: DirectoryTestResultSchema } },
    handler: async ({ res, params }) => {
      res.json(await testDirectory(deps, params.tenantId));
    },
  });

  return router;
}
