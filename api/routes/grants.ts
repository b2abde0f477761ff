import type { RouteConfig } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import { canSeeTenant } from '../../core/tenancy/authz.js';
import { notFound } from '../../core/errors.js';
import { DecisionBody, ExtendBody, GrantListQuery, GrantViewSchema, RequestGrantBody } from '../../core/grants/schemas.js';
import { Uuid } from '../../core/tenancy/schemas.js';
import * as grants from '../../usecases/grants.js';
import { authorizeTenant, principalOf } from '../auth.js';
import { requestIdOf } from '../errors.js';
import { errorResponses, type OpenAPIRegistry } from '../openapi.js';
import { parse } from '../validate.js';

const TenantParams = z.strictObject({ tenantId: Uuid });
const GrantParams = z.strictObject({ tenantId: Uuid, grantId: Uuid });
const IdempotencyKey = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,200}$/, '1-200 letters, digits or . _ : -')
  .optional();

const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });
const auth = { 401: { description: 'No valid bearer token.' }, 403: { description: 'Authenticated, but not allowed.' } };

export function grantRoutes(deps: grants.GrantDeps, registry: OpenAPIRegistry): Router {
  const router = Router();
  const doc = (
    method: RouteConfig['method'],
    path: string,
    summary: string,
    extra: Pick<RouteConfig, 'responses' | 'request' | 'description'>,
  ) => registry.registerPath({ method, path, summary, tags: ['grants'], security: [{ bearer: [] }], ...extra });

  /** The grant, or the same 404 for "absent" and "not yours". */
  const visibleGrant = async (req: Parameters<typeof principalOf>[0], tenantId: string, grantId: string) => {
    if (!canSeeTenant(principalOf(req), tenantId)) throw notFound('grant');
    return grants.getGrant(deps.pool, tenantId, grantId);
  };

  doc('post', '/v1/tenants/{tenantId}/grants', 'Request a time-bound grant', {
    description: 'Send an `Idempotency-Key` header to make retries safe: the same key returns the same grant.',
    request: {
      params: TenantParams,
      headers: z.object({ 'idempotency-key': IdempotencyKey }),
      body: { content: { 'application/json': { schema: RequestGrantBody } } },
    },
    responses: {
      201: json(GrantViewSchema, 'Requested.'),
      400: errorResponses[400],
      404: errorResponses[404],
      409: errorResponses[409],
      ...auth,
    },
  });
  router.post('/v1/tenants/:tenantId/grants', async (req, res) => {
    const { tenantId } = parse(TenantParams, req.params, 'params');
    const principal = principalOf(req);
    if (!canSeeTenant(principal, tenantId)) throw notFound('tenant');
    const policy = await grants.loadGrantPolicy(deps.pool, tenantId);
    grants.authorizeRequester(principal, tenantId, policy.grants);
    const { 'idempotency-key': idempotencyKey } = parse(z.object({ 'idempotency-key': IdempotencyKey }), req.headers, 'headers');
    const body = parse(RequestGrantBody, req.body, 'body');
    const { view } = await grants.requestGrant(deps, principal, tenantId, policy, body, { idempotencyKey, requestId: requestIdOf(req) });
    res.status(201).location(`/v1/tenants/${tenantId}/grants/${view.grantId}`).json(view);
  });

  doc('get', '/v1/tenants/{tenantId}/grants', 'List grants', {
    request: { params: TenantParams, query: GrantListQuery },
    responses: {
      200: json(z.object({ grants: z.array(GrantViewSchema), nextCursor: z.string().nullable() }), 'Newest first.'),
      400: errorResponses[400],
      404: errorResponses[404],
      ...auth,
    },
  });
  router.get('/v1/tenants/:tenantId/grants', async (req, res) => {
    const { tenantId } = parse(TenantParams, req.params, 'params');
    authorizeTenant(req, 'grant.read', tenantId);
    const query = parse(GrantListQuery, req.query, 'query');
    res.json(await grants.listGrants(deps.pool, tenantId, query));
  });

  doc('get', '/v1/tenants/{tenantId}/grants/{grantId}', 'Read a grant', {
    request: { params: GrantParams },
    responses: { 200: json(GrantViewSchema, 'The grant.'), 400: errorResponses[400], 404: errorResponses[404], ...auth },
  });
  router.get('/v1/tenants/:tenantId/grants/:grantId', async (req, res) => {
    const { tenantId, grantId } = parse(GrantParams, req.params, 'params');
    const grant = await visibleGrant(req, tenantId, grantId);
    if (grant.requesterId !== principalOf(req).actorId) authorizeTenant(req, 'grant.read', tenantId, 'grant');
    res.json(grant);
  });

  for (const decision of ['approve', 'deny', 'extend', 'revoke', 'relinquish'] as const) {
    const schema = decision === 'extend' ? ExtendBody : DecisionBody;
    doc('post', `/v1/tenants/{tenantId}/grants/{grantId}/${decision}`, `${decision[0]!.toUpperCase()}${decision.slice(1)} a grant`, {
      request: { params: GrantParams, body: { content: { 'application/json': { schema } } } },
      responses: {
        200: json(GrantViewSchema, 'Accepted; the grant after the decision.'),
        400: errorResponses[400],
        404: errorResponses[404],
        409: { ...errorResponses[409], description: 'The decision no longer applies (already decided, already ended).' },
        ...auth,
      },
    });
    router.post(`/v1/tenants/:tenantId/grants/:grantId/${decision}`, async (req, res) => {
      const { tenantId, grantId } = parse(GrantParams, req.params, 'params');
      const grant = await visibleGrant(req, tenantId, grantId);
      const principal = principalOf(req);
      const policy = await grants.loadGrantPolicy(deps.pool, tenantId);
      const bindings = grants.authorizeDecision(principal, tenantId, decision, grant, policy.grants);
      const body = parse(schema, req.body ?? {}, 'body') as { comment?: string; additionalMinutes?: number; justification?: string };
      const authority = {
        roles: [...new Set(bindings.map((b) => b.role))].sort(),
        bindingIds: bindings.map((b) => b.id).sort(),
        requestId: requestIdOf(req),
        ...(principal.actorId === grant.requesterId ? { requester: true } : {}),
      };
      res.json(await grants.decide(deps, tenantId, grant, decision, { actorId: principal.actorId, ...body, authority }));
    });
  }

  return router;
}
