import type { Router } from 'express';
import { z } from 'zod';
import { ActionDecisionBody, ActionListQuery, ActionViewSchema, RequestActionBody } from '../../core/actions/schemas.js';
import { Uuid } from '../../core/tenancy/schemas.js';
import * as actions from '../../usecases/actions.js';
import { authorityFrom, authorizeTenant, principalOf } from '../auth.js';
import { IdempotencyHeaders } from '../headers.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { hiddenUnlessStanding, routeSet } from '../route.js';

const TenantParams = z.strictObject({ tenantId: Uuid });
const ActionParams = z.strictObject({ tenantId: Uuid, actionId: Uuid });

export function actionRoutes(deps: actions.ActionDeps, registry: OpenAPIRegistry): Router {
  const { router, route } = routeSet(registry, 'actions');

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/actions',
    summary: 'Request a remote action on a directory user',
    description:
      'Unlock, reset MFA, revoke sessions, force a password reset or disable an account. The tenant’s action policy says ' +
      'which actions it allows, who may request them and how many of its approvers must approve; a request it refuses, ' +
      'or one the tenant’s directory cannot carry out (a capability it lacks), is a 400 naming the field. ' +
      'Send an `Idempotency-Key` header to make retries safe: the same key returns the same action.',
    params: TenantParams,
    headers: IdempotencyHeaders,
    body: RequestActionBody,
    access: {
      // Gate before the body is read: the caller must hold a role this tenant lets request some action.
      check: async (req, { tenantId }) => {
        hiddenUnlessStanding(req, tenantId, 'tenant');
        const policy = await actions.loadActionPolicy(deps.pool, tenantId);
        return { authority: authorityFrom(req, actions.authorizeRequester(principalOf(req), tenantId, policy.actions)), state: policy };
      },
      forbidden: "Needs a role the tenant's action policy lets request this action.",
      hidden: true,
    },
    responses: { 201: { description: 'Requested.', schema: ActionViewSchema } },
    errors: { 409: 'The idempotency key was used for another request.' },
    handler: async ({ res, params, headers, body, principal, authority, state: policy }) => {
      const { view } = await actions.requestAction(deps, principal, params.tenantId, policy, body, {
        idempotencyKey: headers['idempotency-key'],
        authority,
      });
      res.status(201).location(`/v1/tenants/${params.tenantId}/actions/${view.actionId}`).json(view);
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/actions',
    summary: 'List remote actions',
    params: TenantParams,
    query: ActionListQuery,
    access: { tenant: 'action.read' },
    responses: {
      200: { description: 'Newest first.', schema: z.object({ actions: z.array(ActionViewSchema), nextCursor: z.string().nullable() }) },
    },
    handler: async ({ res, params, query }) => {
      res.json(await actions.listActions(deps.pool, params.tenantId, query));
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/actions/{actionId}',
    summary: 'Read a remote action',
    description: 'Its requester may always read it; anyone else needs `action.read` in the tenant.',
    params: ActionParams,
    access: {
      check: async (req, { tenantId, actionId }) => {
        hiddenUnlessStanding(req, tenantId, 'action');
        const action = await actions.getAction(deps.pool, tenantId, actionId);
        if (action.requesterId !== principalOf(req).actorId) authorizeTenant(req, 'action.read', tenantId, 'action');
        return { state: action };
      },
      forbidden: 'Needs `action.read` in the tenant, unless the caller requested the action.',
      hidden: true,
    },
    responses: { 200: { description: 'The action.', schema: ActionViewSchema } },
    handler: ({ res, state: action }) => {
      res.json(action);
    },
  });

  for (const decision of ['approve', 'deny', 'cancel'] as const) {
    route({
      method: 'post',
      path: `/v1/tenants/{tenantId}/actions/{actionId}/${decision}`,
      summary: `${decision[0]!.toUpperCase()}${decision.slice(1)} a remote action`,
      params: ActionParams,
      body: ActionDecisionBody,
      bodyOptional: true,
      access: {
        check: async (req, { tenantId, actionId }) => {
          hiddenUnlessStanding(req, tenantId, 'action');
          const action = await actions.getAction(deps.pool, tenantId, actionId);
          const principal = principalOf(req);
          const bindings = actions.authorizeDecision(principal, tenantId, decision, action);
          const requester = principal.actorId === action.requesterId;
          return { authority: { ...authorityFrom(req, bindings), ...(requester ? { requester: true } : {}) }, state: action };
        },
        forbidden:
          'Approve and deny: a tenant_approver of the tenant, never MSP staff and never the requester. Cancel: the requester, an operator or an MSP admin.',
        hidden: true,
      },
      responses: { 200: { description: 'Accepted; the action after the decision.', schema: ActionViewSchema } },
      errors: { 409: 'The decision no longer applies (already decided, under way or ended).' },
      handler: async ({ res, params, body, principal, authority, state: action }) => {
        res.json(await actions.decide(deps, params.tenantId, action, decision, { actorId: principal.actorId, ...body, authority }));
      },
    });
  }

  return router;
}
