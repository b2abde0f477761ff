import { Router } from 'express';
import { z } from 'zod';
import { visibleTenants } from '../../core/tenancy/authz.js';
import {
  ActorView,
  BindingView,
  CreateActorRequest,
  CreateBindingRequest,
  CreatedTokenView,
  CreateTokenRequest,
  CreateTenantRequest,
  PolicyView,
  PutPolicyRequest,
  TenantPolicyDocument,
  TenantView,
  TokenView,
  UpdateTenantRequest,
  Uuid,
} from '../../core/tenancy/schemas.js';
import * as identity from '../../usecases/tenancy/index.js';
import { actionContext, authorizeMsp, authorizeTenant, principalOf } from '../auth.js';
import type { RouteConfig } from '@asteasolutions/zod-to-openapi';
import { errorResponses, type OpenAPIRegistry } from '../openapi.js';
import { parse } from '../validate.js';

const TenantParams = z.strictObject({ tenantId: Uuid });
const VersionParams = z.strictObject({ tenantId: Uuid, version: z.coerce.number().int().min(1) });
const ActorParams = z.strictObject({ actorId: Uuid });
const BindingParams = z.strictObject({ bindingId: Uuid });
const TokenParams = z.strictObject({ tokenId: Uuid });
const TenantListQuery = z.strictObject({ status: z.enum(['active', 'suspended']).optional() });
const BindingListQuery = z.strictObject({ actorId: Uuid.optional(), tenantId: Uuid.optional() });
const TokenListQuery = z.strictObject({ actorId: Uuid.optional() });
const Me = z
  .object({
    actorId: Uuid,
    kind: z.string(),
    displayName: z.string(),
    via: z.enum(['api_token', 'oidc']),
    bindings: z.array(z.object({ id: Uuid, role: z.string(), tenantId: Uuid.nullable() })),
  })
  .meta({ id: 'Me' });

const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });
const auth = { 401: { description: 'No valid bearer token.' }, 403: { description: 'Authenticated, but the roles do not allow this.' } };

export function identityRoutes(deps: identity.TenancyDeps, registry: OpenAPIRegistry): Router {
  const { pool } = deps;
  const router = Router();
  const doc = (method: RouteConfig['method'], path: string, summary: string, extra: Pick<RouteConfig, 'responses' | 'request'>) =>
    registry.registerPath({ method, path, summary, tags: ['identity'], security: [{ bearer: [] }], ...extra });

  // ------------------------------------------------------------ who am I
  doc('get', '/v1/me', 'The authenticated caller and its role bindings', { responses: { 200: json(Me, 'The caller.'), ...auth } });
  router.get('/v1/me', (req, res) => {
    const p = principalOf(req);
    res.json({ actorId: p.actorId, kind: p.kind, displayName: p.displayName, via: p.via, bindings: p.bindings });
  });

  // ------------------------------------------------------------ tenants
  doc('post', '/v1/tenants', 'Create a tenant (MSP admins)', {
    request: { body: { content: { 'application/json': { schema: CreateTenantRequest } } } },
    responses: { 201: json(TenantView, 'Created.'), 400: errorResponses[400], 409: errorResponses[409], ...auth },
  });
  router.post('/v1/tenants', async (req, res) => {
    const authority = authorizeMsp(req, 'tenant.create');
    const body = parse(CreateTenantRequest, req.body, 'body');
    const tenant = await identity.createTenant(pool, actionContext(req, authority), {
      slug: body.slug,
      name: body.name,
      policy: body.policy ?? TenantPolicyDocument.parse({}),
    });
    res.status(201).location(`/v1/tenants/${tenant.id}`).json(tenant);
  });

  doc('get', '/v1/tenants', 'List the tenants the caller may see', {
    request: { query: TenantListQuery },
    responses: { 200: json(z.object({ tenants: z.array(TenantView) }), 'Tenants, by slug.'), 400: errorResponses[400], ...auth },
  });
  router.get('/v1/tenants', async (req, res) => {
    const query = parse(TenantListQuery, req.query, 'query');
    res.json({ tenants: await identity.listTenants(pool, visibleTenants(principalOf(req)), query.status) });
  });

  doc('get', '/v1/tenants/{tenantId}', 'Read a tenant', {
    request: { params: TenantParams },
    responses: { 200: json(TenantView, 'The tenant.'), 400: errorResponses[400], 404: errorResponses[404], ...auth },
  });
  router.get('/v1/tenants/:tenantId', async (req, res) => {
    const { tenantId } = parse(TenantParams, req.params, 'params');
    authorizeTenant(req, 'tenant.read', tenantId);
    res.json(await identity.getTenant(pool, tenantId));
  });

  doc('patch', '/v1/tenants/{tenantId}', 'Rename a tenant (MSP admins)', {
    request: { params: TenantParams, body: { content: { 'application/json': { schema: UpdateTenantRequest } } } },
    responses: { 200: json(TenantView, 'Updated.'), 400: errorResponses[400], 404: errorResponses[404], ...auth },
  });
  router.patch('/v1/tenants/:tenantId', async (req, res) => {
    const { tenantId } = parse(TenantParams, req.params, 'params');
    const authority = authorizeTenant(req, 'tenant.update', tenantId);
    const body = parse(UpdateTenantRequest, req.body, 'body');
    res.json(await identity.renameTenant(pool, actionContext(req, authority), tenantId, body.name));
  });

  for (const [verb, status] of [
    ['suspend', 'suspended'],
    ['resume', 'active'],
  ] as const) {
    doc('post', `/v1/tenants/{tenantId}/${verb}`, `${verb === 'suspend' ? 'Suspend' : 'Resume'} a tenant (MSP admins)`, {
      request: { params: TenantParams },
      responses: { 200: json(TenantView, 'The tenant after the change.'), 400: errorResponses[400], 404: errorResponses[404], ...auth },
    });
    router.post(`/v1/tenants/:tenantId/${verb}`, async (req, res) => {
      const { tenantId } = parse(TenantParams, req.params, 'params');
      const authority = authorizeTenant(req, 'tenant.update', tenantId);
      res.json(await identity.setTenantStatus(pool, actionContext(req, authority), tenantId, status));
    });
  }

  // ------------------------------------------------------------ tenant policy (versioned)
  doc('get', '/v1/tenants/{tenantId}/policy', 'Current tenant policy', {
    request: { params: TenantParams },
    responses: { 200: json(PolicyView, 'The newest version.'), 400: errorResponses[400], 404: errorResponses[404], ...auth },
  });
  router.get('/v1/tenants/:tenantId/policy', async (req, res) => {
    const { tenantId } = parse(TenantParams, req.params, 'params');
    authorizeTenant(req, 'policy.read', tenantId);
    res.json(await identity.getPolicy(pool, tenantId));
  });

  doc('put', '/v1/tenants/{tenantId}/policy', 'Change the tenant policy (creates a new version)', {
    request: { params: TenantParams, body: { content: { 'application/json': { schema: PutPolicyRequest } } } },
    responses: {
      201: json(PolicyView, 'The new version.'),
      400: errorResponses[400],
      404: errorResponses[404],
      409: errorResponses[409],
      ...auth,
    },
  });
  router.put('/v1/tenants/:tenantId/policy', async (req, res) => {
    const { tenantId } = parse(TenantParams, req.params, 'params');
    const authority = authorizeTenant(req, 'policy.write', tenantId);
    const body = parse(PutPolicyRequest, req.body, 'body');
    const policy = await identity.putPolicy(deps, actionContext(req, authority), tenantId, body.expectedVersion, body.document);
    res.status(201).location(`/v1/tenants/${tenantId}/policy/versions/${policy.version}`).json(policy);
  });

  doc('get', '/v1/tenants/{tenantId}/policy/versions', 'Every version of the tenant policy, newest first', {
    request: { params: TenantParams },
    responses: {
      200: json(z.object({ versions: z.array(PolicyView) }), 'Versions.'),
      400: errorResponses[400],
      404: errorResponses[404],
      ...auth,
    },
  });
  router.get('/v1/tenants/:tenantId/policy/versions', async (req, res) => {
    const { tenantId } = parse(TenantParams, req.params, 'params');
    authorizeTenant(req, 'policy.read', tenantId);
    res.json({ versions: await identity.listPolicyVersions(pool, tenantId) });
  });

  doc('get', '/v1/tenants/{tenantId}/policy/versions/{version}', 'One version of the tenant policy', {
    request: { params: VersionParams },
    responses: { 200: json(PolicyView, 'The version.'), 400: errorResponses[400], 404: errorResponses[404], ...auth },
  });
  router.get('/v1/tenants/:tenantId/policy/versions/:version', async (req, res) => {
    const { tenantId, version } = parse(VersionParams, req.params, 'params');
    authorizeTenant(req, 'policy.read', tenantId);
    res.json(await identity.getPolicy(pool, tenantId, version));
  });

  // ------------------------------------------------------------ webhook signing secret
  const Secret = z.object({ secret: z.string(), createdAt: z.string() }).meta({ id: 'WebhookSecret' });
  for (const [path, rotate] of [
    ['/webhook-secret', false],
    ['/webhook-secret/rotate', true],
  ] as const) {
    doc(
      rotate ? 'post' : 'get',
      `/v1/tenants/{tenantId}${path}`,
      rotate ? 'Replace the webhook signing secret (MSP admins)' : 'The webhook signing secret, created on first read (MSP admins)',
      {
        request: { params: TenantParams },
        responses: {
          200: json(Secret, 'Verify `X-Tenure-Signature: sha256=HMAC_SHA256(secret, "<X-Tenure-Timestamp>.<body>")`.'),
          400: errorResponses[400],
          404: errorResponses[404],
          ...auth,
        },
      },
    );
    router[rotate ? 'post' : 'get'](`/v1/tenants/:tenantId${path}`, async (req, res) => {
      const { tenantId } = parse(TenantParams, req.params, 'params');
      const authority = authorizeTenant(req, 'tenant.update', tenantId);
      res.json(await identity.webhookSecret(pool, actionContext(req, authority), tenantId, rotate));
    });
  }

  // ------------------------------------------------------------ actors
  doc('post', '/v1/actors', 'Create an actor: MSP staff, tenant staff or a service account (MSP admins)', {
    request: { body: { content: { 'application/json': { schema: CreateActorRequest } } } },
    responses: { 201: json(ActorView, 'Created.'), 400: errorResponses[400], 409: errorResponses[409], ...auth },
  });
  router.post('/v1/actors', async (req, res) => {
    const authority = authorizeMsp(req, 'actor.manage');
    const body = parse(CreateActorRequest, req.body, 'body');
    const actor = await identity.createActor(pool, actionContext(req, authority), body);
    res.status(201).location(`/v1/actors/${actor.id}`).json(actor);
  });

  doc('get', '/v1/actors', 'List actors', { responses: { 200: json(z.object({ actors: z.array(ActorView) }), 'Actors.'), ...auth } });
  router.get('/v1/actors', async (req, res) => {
    authorizeMsp(req, 'actor.read');
    parse(z.strictObject({}), req.query, 'query');
    res.json({ actors: await identity.listActors(pool) });
  });

  doc('get', '/v1/actors/{actorId}', 'Read an actor', {
    request: { params: ActorParams },
    responses: { 200: json(ActorView, 'The actor.'), 400: errorResponses[400], 404: errorResponses[404], ...auth },
  });
  router.get('/v1/actors/:actorId', async (req, res) => {
    const { actorId } = parse(ActorParams, req.params, 'params');
    authorizeMsp(req, 'actor.read');
    res.json(await identity.getActor(pool, actorId));
  });

  doc('post', '/v1/actors/{actorId}/disable', 'Disable an actor: its tokens and sign-ins stop working', {
    request: { params: ActorParams },
    responses: { 200: json(ActorView, 'The actor.'), 400: errorResponses[400], 404: errorResponses[404], ...auth },
  });
  router.post('/v1/actors/:actorId/disable', async (req, res) => {
    const { actorId } = parse(ActorParams, req.params, 'params');
    const authority = authorizeMsp(req, 'actor.manage');
    res.json(await identity.disableActor(pool, actionContext(req, authority), actorId));
  });

  // ------------------------------------------------------------ role bindings
  doc('post', '/v1/role-bindings', 'Bind a role to an actor, MSP-wide or in one tenant (MSP admins)', {
    request: { body: { content: { 'application/json': { schema: CreateBindingRequest } } } },
    responses: { 201: json(BindingView, 'Created.'), 400: errorResponses[400], 409: errorResponses[409], ...auth },
  });
  router.post('/v1/role-bindings', async (req, res) => {
    const authority = authorizeMsp(req, 'binding.manage');
    const body = parse(CreateBindingRequest, req.body, 'body');
    const binding = await identity.createBinding(pool, actionContext(req, authority), body);
    res.status(201).location(`/v1/role-bindings/${binding.id}`).json(binding);
  });

  doc('get', '/v1/role-bindings', 'List role bindings', {
    request: { query: BindingListQuery },
    responses: { 200: json(z.object({ bindings: z.array(BindingView) }), 'Bindings.'), 400: errorResponses[400], ...auth },
  });
  router.get('/v1/role-bindings', async (req, res) => {
    authorizeMsp(req, 'actor.read');
    const query = parse(BindingListQuery, req.query, 'query');
    res.json({ bindings: await identity.listBindings(pool, query) });
  });

  doc('delete', '/v1/role-bindings/{bindingId}', 'Remove a role binding (MSP admins)', {
    request: { params: BindingParams },
    responses: { 204: { description: 'Removed.' }, 400: errorResponses[400], 404: errorResponses[404], ...auth },
  });
  router.delete('/v1/role-bindings/:bindingId', async (req, res) => {
    const { bindingId } = parse(BindingParams, req.params, 'params');
    const authority = authorizeMsp(req, 'binding.manage');
    await identity.deleteBinding(pool, actionContext(req, authority), bindingId);
    res.status(204).end();
  });

  // ------------------------------------------------------------ API tokens
  doc('post', '/v1/tokens', 'Create an API token; the secret is in this response only (MSP admins)', {
    request: { body: { content: { 'application/json': { schema: CreateTokenRequest } } } },
    responses: { 201: json(CreatedTokenView, 'Created.'), 400: errorResponses[400], ...auth },
  });
  router.post('/v1/tokens', async (req, res) => {
    const authority = authorizeMsp(req, 'token.manage');
    const body = parse(CreateTokenRequest, req.body, 'body');
    const token = await identity.createToken(pool, actionContext(req, authority), {
      actorId: body.actorId,
      name: body.name,
      ...(body.expiresAt ? { expiresAt: new Date(body.expiresAt) } : {}),
    });
    res.status(201).location(`/v1/tokens/${token.id}`).json(token);
  });

  doc('get', '/v1/tokens', 'List API tokens (never their secrets)', {
    request: { query: TokenListQuery },
    responses: { 200: json(z.object({ tokens: z.array(TokenView) }), 'Tokens.'), 400: errorResponses[400], ...auth },
  });
  router.get('/v1/tokens', async (req, res) => {
    authorizeMsp(req, 'token.manage');
    const query = parse(TokenListQuery, req.query, 'query');
    res.json({ tokens: await identity.listTokens(pool, query.actorId) });
  });

  doc('delete', '/v1/tokens/{tokenId}', 'Revoke an API token (MSP admins)', {
    request: { params: TokenParams },
    responses: { 200: json(TokenView, 'The revoked token.'), 400: errorResponses[400], 404: errorResponses[404], ...auth },
  });
  router.delete('/v1/tokens/:tokenId', async (req, res) => {
    const { tokenId } = parse(TokenParams, req.params, 'params');
    const authority = authorizeMsp(req, 'token.manage');
    res.json(await identity.revokeToken(pool, actionContext(req, authority), tokenId));
  });

  return router;
}
