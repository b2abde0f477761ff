import type { Router } from 'express';
import { z } from 'zod';
import { DecisionBody, ExtendBody, GrantListQuery, GrantViewSchema, RequestGrantBody } from '../../core/grants/schemas.js';
import { Uuid } from '../../core/tenancy/schemas.js';
import * as grants from '../../usecases/grants.js';
import { authorityFrom, authorizeTenant, principalOf } from '../auth.js';
import { requestIdOf } from '../errors.js';
import { IdempotencyHeaders } from '../headers.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { hiddenUnlessStanding, routeSet } from '../route.js';

const TenantParams = z.strictObject({ tenantId: Uuid });
const GrantParams = z.strictObject({ tenantId: Uuid, grantId: Uuid });

export function grantRoutes(deps: grants.GrantDeps, registry: OpenAPIRegistry): Router {
  const { router, route } = routeSet(registry, 'grants');

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/grants',
    summary: 'Request a time-bound grant',
    description:
      'Send an `Idempotency-Key` header to make retries safe: the same key returns the same grant. ' +
      "The tenant's grant policy decides the rest (grantable role, maximum duration, justification, ticket format); " +
      'a request it refuses is a 400 naming the field.',
    params: TenantParams,
    headers: IdempotencyHeaders,
    body: RequestGrantBody,
    access: {
      // Gate before the body is read: the caller must hold a role this tenant lets request something.
      check: async (req, { tenantId }) => {
        hiddenUnlessStanding(req, tenantId, 'tenant');
        const policy = await grants.loadGrantPolicy(deps.pool, tenantId);
        return { authority: authorityFrom(req, grants.authorizeRequester(principalOf(req), tenantId, policy.grants)), state: policy };
      },
      forbidden: "Needs a role the tenant's grant policy lets request this role.",
      hidden: true,
    },
    responses: { 201: { description: 'Requested.', schema: GrantViewSchema } },
    errors: { 409: 'Conflicts with the current state (e.g. the idempotency key was used for another request).' },
    handler: async ({ req, res, params, headers, body, principal, state: policy }) => {
      const { view } = await grants.requestGrant(deps, principal, params.tenantId, policy, body, {
        idempotencyKey: headers['idempotency-key'],
        requestId: requestIdOf(req),
      });
      res.status(201).location(`/v1/tenants/${params.tenantId}/grants/${view.grantId}`).json(view);
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/grants',
    summary: 'List grants',
    params: TenantParams,
    query: GrantListQuery,
    access: { tenant: 'grant.read' },
    responses: {
      200: { description: 'Newest first.', schema: z.object({ grants: z.array(GrantViewSchema), nextCursor: z.string().nullable() }) },
    },
    handler: async ({ res, params, query }) => {
      res.json(await grants.listGrants(deps.pool, params.tenantId, query));
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/grants/{grantId}',
    summary: 'Read a grant',
    description: 'Its requester may always read it; anyone else needs `grant.read` in the tenant.',
    params: GrantParams,
    access: {
      check: async (req, { tenantId, grantId }) => {
        hiddenUnlessStanding(req, tenantId, 'grant');
        const grant = await grants.getGrant(deps.pool, tenantId, grantId);
        if (grant.requesterId !== principalOf(req).actorId) authorizeTenant(req, 'grant.read', tenantId, 'grant');
        return { state: grant };
      },
      forbidden: 'Needs `grant.read` in the tenant, unless the caller requested the grant.',
      hidden: true,
    },
    responses: { 200: { description: 'The grant.', schema: GrantViewSchema } },
    handler: ({ res, state: grant }) => {
      res.json(grant);
    },
  });

  for (const decision of ['approve', 'deny', 'extend', 'revoke', 'relinquish'] as const) {
    route({
      method: 'post',
      path: `/v1/tenants/{tenantId}/grants/{grantId}/${decision}`,
      summary: `${decision[0]!.toUpperCase()}${decision.slice(1)} a grant`,
      params: GrantParams,
      body: decision === 'extend' ? ExtendBody : DecisionBody,
      bodyOptional: decision !== 'extend',
      access: {
        check: async (req, { tenantId, grantId }) => {
          hiddenUnlessStanding(req, tenantId, 'grant');
          const grant = await grants.getGrant(deps.pool, tenantId, grantId);
          const principal = principalOf(req);
          const policy = await grants.loadGrantPolicy(deps.pool, tenantId);
          const bindings = grants.authorizeDecision(principal, tenantId, decision, grant, policy.grants);
          const requester = principal.actorId === grant.requesterId;
          return { authority: { ...authorityFrom(req, bindings), ...(requester ? { requester: true } : {}) }, state: grant };
        },
        forbidden: 'Approve and deny: a tenant_approver of the tenant, never the requester; the grant policy says who else may decide.',
        hidden: true,
      },
      responses: { 200: { description: 'Accepted; the grant after the decision.', schema: GrantViewSchema } },
      errors: { 409: 'The decision no longer applies (already decided, already ended).' },
      handler: async ({ res, params, body, principal, authority, state: grant }) => {
        const input = body as { comment?: string; additionalMinutes?: number; justification?: string };
        res.json(await grants.decide(deps, params.tenantId, grant, decision, { actorId: principal.actorId, ...input, authority }));
      },
    });
  }

  return router;
}
