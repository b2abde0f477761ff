import type { Router } from 'express';
import { z } from 'zod';
import { visibleTenants } from '../../core/tenancy/authz.js';
import { conflict } from '../../core/errors.js';
import { OverviewPage, OverviewQuery } from '../../core/tenancy/overview.js';
import {
  ActorView,
  BindingView,
  CreateActorRequest,
  CreateBindingRequest,
  CreatedTokenView,
  CreateTokenRequest,
  CreateTenantRequest,
  PolicyChangeDecisionBody,
  PolicyChangeListQuery,
  PolicyChangeViewSchema,
  PolicyView,
  PolicyWithPendingView,
  PutPolicyRequest,
  TenantPolicyDocument,
  TenantView,
  TokenView,
  UpdateTenantRequest,
  Uuid,
  INT4_MAX,
} from '../../core/tenancy/schemas.js';
import * as tenancy from '../../usecases/tenancy/index.js';
import { authorityFrom, principalOf } from '../auth.js';
import { requestIdOf } from '../errors.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { hiddenUnlessStanding, routeSet } from '../route.js';

const TenantParams = z.strictObject({ tenantId: Uuid });
const VersionParams = z.strictObject({ tenantId: Uuid, version: z.coerce.number().int().min(1).max(INT4_MAX) });
const ChangeParams = z.strictObject({ tenantId: Uuid, changeId: Uuid });
const ActorParams = z.strictObject({ actorId: Uuid });
const TenantActorParams = z.strictObject({ tenantId: Uuid, actorId: Uuid });
const ActorCard = z
  .object({ actorId: Uuid, displayName: z.string(), kind: z.enum(['msp_staff', 'tenant_staff', 'service_account']) })
  .meta({ id: 'ActorCard' });
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

const Secret = z.object({ secret: z.string(), createdAt: z.string() }).meta({ id: 'WebhookSecret' });

export function tenancyRoutes(deps: tenancy.TenancyDeps & tenancy.PolicyChangeDeps, registry: OpenAPIRegistry): Router {
  const { pool } = deps;
  const { router, route } = routeSet(registry, 'tenancy');

  // ------------------------------------------------------------ who am I
  route({
    method: 'get',
    path: '/v1/me',
    summary: 'The authenticated caller and its role bindings',
    access: { caller: true },
    responses: { 200: { description: 'The caller.', schema: Me } },
    handler: ({ res, principal: p }) => {
      res.json({ actorId: p.actorId, kind: p.kind, displayName: p.displayName, via: p.via, bindings: p.bindings });
    },
  });

  // ------------------------------------------------------------ tenants
  route({
    method: 'post',
    path: '/v1/tenants',
    summary: 'Create a tenant (MSP admins)',
    body: CreateTenantRequest,
    access: { msp: 'tenant.create' },
    responses: { 201: { description: 'Created.', schema: TenantView } },
    errors: { 409: 'A tenant with this slug exists.' },
    handler: async ({ res, body, actor }) => {
      const policy = body.policy ?? TenantPolicyDocument.parse({});
      tenancy.checkWebhookDestination(deps, policy, 'body.policy.notificationWebhookUrl');
      const tenant = await tenancy.createTenant(pool, actor(), { slug: body.slug, name: body.name, tags: body.tags ?? [], policy });
      res.status(201).location(`/v1/tenants/${tenant.id}`).json(tenant);
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants',
    summary: 'List the tenants the caller may see',
    query: TenantListQuery,
    access: { caller: true },
    responses: { 200: { description: 'Tenants, by slug.', schema: z.object({ tenants: z.array(TenantView) }) } },
    handler: async ({ res, query, principal }) => {
      res.json({ tenants: await tenancy.listTenants(pool, visibleTenants(principal), query.status) });
    },
  });

  route({
    method: 'get',
    path: '/v1/overview',
    summary: 'What needs attention in each tenant (MSP staff)',
    description:
      'Per tenant, in slug order: requests waiting for its approvers, privileged grants in effect, undecided review items of ' +
      'open reviews, and open template drift from the stored checks. Read from PostgreSQL only (standing privilege, which ' +
      'is read from each target, is at `/v1/standing-privilege`).',
    query: OverviewQuery,
    access: { msp: 'overview.read' },
    responses: { 200: { description: 'One page of tenants.', schema: OverviewPage } },
    handler: async ({ res, query }) => {
      res.json(await tenancy.tenantOverview(pool, query));
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}',
    summary: 'Read a tenant',
    params: TenantParams,
    access: { tenant: 'tenant.read' },
    responses: { 200: { description: 'The tenant.', schema: TenantView } },
    handler: async ({ res, params }) => {
      res.json(await tenancy.getTenant(pool, params.tenantId));
    },
  });

  route({
    method: 'patch',
    path: '/v1/tenants/{tenantId}',
    summary: 'Rename or retag a tenant (MSP admins)',
    description: '`tags` replaces the set of tags; campaigns may scope by tag.',
    params: TenantParams,
    body: UpdateTenantRequest,
    access: { tenant: 'tenant.update' },
    responses: { 200: { description: 'Updated.', schema: TenantView } },
    handler: async ({ res, params, body, actor }) => {
      res.json(await tenancy.updateTenant(pool, actor(), params.tenantId, { name: body.name, tags: body.tags }));
    },
  });

  for (const [verb, status] of [
    ['suspend', 'suspended'],
    ['resume', 'active'],
  ] as const) {
    route({
      method: 'post',
      path: `/v1/tenants/{tenantId}/${verb}`,
      summary: `${verb === 'suspend' ? 'Suspend' : 'Resume'} a tenant (MSP admins)`,
      params: TenantParams,
      access: { tenant: 'tenant.update' },
      responses: { 200: { description: 'The tenant after the change.', schema: TenantView } },
      handler: async ({ res, params, actor }) => {
        res.json(await tenancy.setTenantStatus(pool, actor(), params.tenantId, status));
      },
    });
  }

  // ------------------------------------------------------------ tenant policy (versioned)
  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/policy',
    summary: 'Current tenant policy, with the changes waiting for the tenant’s approvers',
    params: TenantParams,
    access: { tenant: 'policy.read' },
    responses: { 200: { description: 'The newest version and `pendingChanges`.', schema: PolicyWithPendingView } },
    handler: async ({ res, params }) => {
      res.json(await tenancy.getPolicyWithPending(pool, params.tenantId));
    },
  });

  route({
    method: 'put',
    path: '/v1/tenants/{tenantId}/policy',
    summary: 'Change the tenant policy: applied at once if it only tightens, otherwise the tenant’s approvers decide',
    description:
      'A change that only tightens the tenant’s control (or changes nothing) is the next version at once (201). ' +
      'One that loosens it (see `diff` of the answer), or any change when the tenant set `governance.approveEveryChange`, ' +
      'is a pending change (202, `Location` names it) that the tenant’s own approvers decide; the policy is unchanged until they approve.',
    params: TenantParams,
    body: PutPolicyRequest,
    access: { tenant: 'policy.write' },
    responses: {
      201: { description: 'Applied: the new version.', schema: PolicyView },
      202: { description: 'Waiting for the tenant’s approvers: the pending change.', schema: PolicyChangeViewSchema },
    },
    errors: { 409: '`expectedVersion` is not the current version.' },
    handler: async ({ req, res, params: { tenantId }, body, actor }) => {
      const outcome = await tenancy.changePolicy(deps, actor(), tenantId, body.expectedVersion, body.document, requestIdOf(req));
      if ('applied' in outcome) {
        const policy = outcome.applied;
        res.status(201).location(`/v1/tenants/${tenantId}/policy/versions/${policy.version}`).json(policy);
      } else {
        res.status(202).location(`/v1/tenants/${tenantId}/policy/changes/${outcome.pending.changeId}`).json(outcome.pending);
      }
    },
  });

  // ------------------------------------------------------------ policy changes (the tenant decides)
  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/policy/changes',
    summary: 'Policy changes proposed for the tenant, newest first',
    params: TenantParams,
    query: PolicyChangeListQuery,
    access: { tenant: 'policy.read' },
    responses: { 200: { description: 'Changes.', schema: z.object({ changes: z.array(PolicyChangeViewSchema) }) } },
    handler: async ({ res, params, query }) => {
      res.json({ changes: await tenancy.listPolicyChanges(pool, params.tenantId, query.status ? { status: query.status } : {}) });
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/policy/changes/{changeId}',
    summary: 'One policy change: its diff, approvals and outcome',
    params: ChangeParams,
    access: { tenant: 'policy.read', hiddenAs: 'policy change' },
    responses: { 200: { description: 'The change.', schema: PolicyChangeViewSchema } },
    errors: { 404: 'No such change, or in a tenant where the caller has no standing (the same answer).' },
    handler: async ({ res, params }) => {
      res.json(await tenancy.getPolicyChange(pool, params.tenantId, params.changeId));
    },
  });

  for (const decision of ['approve', 'deny', 'withdraw'] as const) {
    route({
      method: 'post',
      path: `/v1/tenants/{tenantId}/policy/changes/{changeId}/${decision}`,
      summary: {
        approve: 'Approve a pending policy change (the tenant’s approvers)',
        deny: 'Deny a pending policy change (the tenant’s approvers)',
        withdraw: 'Withdraw a pending policy change (its proposer or an MSP admin)',
      }[decision],
      params: ChangeParams,
      body: PolicyChangeDecisionBody,
      bodyOptional: true,
      access: {
        check: async (req, { tenantId, changeId }) => {
          hiddenUnlessStanding(req, tenantId, 'policy change');
          const change = await tenancy.getPolicyChange(pool, tenantId, changeId);
          const bindings = tenancy.authorizePolicyChangeDecision(principalOf(req), tenantId, decision, change);
          return { authority: authorityFrom(req, bindings), state: change };
        },
        forbidden:
          'Approve and deny: a tenant_approver of the tenant (tenant staff), never the proposer. Withdraw: the proposer or an MSP admin.',
        hidden: true,
      },
      responses: { 200: { description: 'Accepted; the change after the decision.', schema: PolicyChangeViewSchema } },
      errors: {
        409: 'The decision no longer applies (already decided, withdrawn or timed out; the approver already approved), or the policy moved on while the change waited (`conflicted`: nothing was written).',
      },
      handler: async ({ res, params, body, principal, authority }) => {
        const view = await tenancy.decidePolicyChange(deps, params.tenantId, params.changeId, decision, {
          actorId: principal.actorId,
          comment: body.comment ?? null,
          authority,
        });
        if (view.status === 'conflicted') {
          throw conflict(view.reason ?? 'The policy moved on while the change waited for approval; nothing was written. Propose it again.');
        }
        res.json(view);
      },
    });
  }

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/policy/versions',
    summary: 'Every version of the tenant policy, newest first',
    params: TenantParams,
    access: { tenant: 'policy.read' },
    responses: { 200: { description: 'Versions.', schema: z.object({ versions: z.array(PolicyView) }) } },
    handler: async ({ res, params }) => {
      res.json({ versions: await tenancy.listPolicyVersions(pool, params.tenantId) });
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/policy/versions/{version}',
    summary: 'One version of the tenant policy',
    params: VersionParams,
    access: { tenant: 'policy.read' },
    responses: { 200: { description: 'The version.', schema: PolicyView } },
    handler: async ({ res, params }) => {
      res.json(await tenancy.getPolicy(pool, params.tenantId, params.version));
    },
  });

  // ------------------------------------------------------------ webhook signing secret
  for (const [path, rotate] of [
    ['/webhook-secret', false],
    ['/webhook-secret/rotate', true],
  ] as const) {
    route({
      method: rotate ? 'post' : 'get',
      path: `/v1/tenants/{tenantId}${path}`,
      summary: rotate
        ? 'Replace the webhook signing secret (MSP admins)'
        : 'The webhook signing secret, created on first read (MSP admins)',
      params: TenantParams,
      access: { tenant: 'tenant.update' },
      responses: {
        200: { description: 'Verify `X-Tenure-Signature: sha256=HMAC_SHA256(secret, "<X-Tenure-Timestamp>.<body>")`.', schema: Secret },
      },
      handler: async ({ res, params, actor }) => {
        res.json(await tenancy.webhookSecret(pool, actor(), params.tenantId, rotate));
      },
    });
  }

  // ------------------------------------------------------------ actors
  route({
    method: 'post',
    path: '/v1/actors',
    summary: 'Create an actor: MSP staff, tenant staff or a service account (MSP admins)',
    body: CreateActorRequest,
    access: { msp: 'actor.manage' },
    responses: { 201: { description: 'Created.', schema: ActorView } },
    errors: { 409: 'Conflicts with an existing actor.' },
    handler: async ({ res, body, actor }) => {
      const created = await tenancy.createActor(pool, actor(), body);
      res.status(201).location(`/v1/actors/${created.id}`).json(created);
    },
  });

  route({
    method: 'get',
    path: '/v1/actors',
    summary: 'List actors',
    query: z.strictObject({}),
    access: { msp: 'actor.read' },
    responses: { 200: { description: 'Actors.', schema: z.object({ actors: z.array(ActorView) }) } },
    handler: async ({ res }) => {
      res.json({ actors: await tenancy.listActors(pool) });
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/actors/{actorId}',
    summary: 'Who an actor is, for the tenant’s own people: its name and kind (e.g. who asked for a grant)',
    description:
      'Anyone with standing in the tenant. Only actors who can act in the tenant are found: MSP staff, and the ' +
      'tenant’s own staff and service accounts; anyone else is 404, as if absent.',
    params: TenantActorParams,
    access: { tenant: 'tenant.read', hiddenAs: 'actor' },
    responses: { 200: { description: 'The actor’s name and kind.', schema: ActorCard } },
    errors: { 404: 'No such actor in this tenant’s view, or no standing in the tenant.' },
    handler: async ({ res, params }) => {
      res.json(await tenancy.actorInTenant(pool, params.tenantId, params.actorId));
    },
  });

  route({
    method: 'get',
    path: '/v1/actors/{actorId}',
    summary: 'Read an actor',
    params: ActorParams,
    access: { msp: 'actor.read' },
    responses: { 200: { description: 'The actor.', schema: ActorView } },
    errors: { 404: 'No such actor.' },
    handler: async ({ res, params }) => {
      res.json(await tenancy.getActor(pool, params.actorId));
    },
  });

  route({
    method: 'post',
    path: '/v1/actors/{actorId}/disable',
    summary: 'Disable an actor: its tokens and sign-ins stop working',
    params: ActorParams,
    access: { msp: 'actor.manage' },
    responses: { 200: { description: 'The actor.', schema: ActorView } },
    errors: { 404: 'No such actor.' },
    handler: async ({ res, params, actor }) => {
      res.json(await tenancy.disableActor(pool, actor(), params.actorId));
    },
  });

  // ------------------------------------------------------------ role bindings
  route({
    method: 'post',
    path: '/v1/role-bindings',
    summary: 'Bind a role to an actor, MSP-wide or in one tenant (MSP admins)',
    body: CreateBindingRequest,
    access: { msp: 'binding.manage' },
    responses: { 201: { description: 'Created.', schema: BindingView } },
    errors: { 409: 'The actor already holds this binding, or may not hold this role here.' },
    handler: async ({ res, body, actor }) => {
      const binding = await tenancy.createBinding(pool, actor(), body);
      res.status(201).location(`/v1/role-bindings/${binding.id}`).json(binding);
    },
  });

  route({
    method: 'get',
    path: '/v1/role-bindings',
    summary: 'List role bindings',
    query: BindingListQuery,
    access: { msp: 'actor.read' },
    responses: { 200: { description: 'Bindings.', schema: z.object({ bindings: z.array(BindingView) }) } },
    handler: async ({ res, query }) => {
      res.json({ bindings: await tenancy.listBindings(pool, query) });
    },
  });

  route({
    method: 'delete',
    path: '/v1/role-bindings/{bindingId}',
    summary: 'Remove a role binding (MSP admins)',
    params: BindingParams,
    access: { msp: 'binding.manage' },
    responses: { 204: { description: 'Removed.' } },
    errors: { 404: 'No such binding.' },
    handler: async ({ res, params, actor }) => {
      await tenancy.deleteBinding(pool, actor(), params.bindingId);
      res.status(204).end();
    },
  });

  // ------------------------------------------------------------ API tokens
  route({
    method: 'post',
    path: '/v1/tokens',
    summary: 'Create an API token; the secret is in this response only (MSP admins)',
    body: CreateTokenRequest,
    access: { msp: 'token.manage' },
    responses: { 201: { description: 'Created.', schema: CreatedTokenView } },
    handler: async ({ res, body, actor }) => {
      const token = await tenancy.createToken(pool, actor(), {
        actorId: body.actorId,
        name: body.name,
        ...(body.expiresAt ? { expiresAt: new Date(body.expiresAt) } : {}),
      });
      res.status(201).location(`/v1/tokens/${token.id}`).json(token);
    },
  });

  route({
    method: 'get',
    path: '/v1/tokens',
    summary: 'List API tokens (never their secrets)',
    query: TokenListQuery,
    access: { msp: 'token.manage' },
    responses: { 200: { description: 'Tokens.', schema: z.object({ tokens: z.array(TokenView) }) } },
    handler: async ({ res, query }) => {
      res.json({ tokens: await tenancy.listTokens(pool, query.actorId) });
    },
  });

  route({
    method: 'delete',
    path: '/v1/tokens/{tokenId}',
    summary: 'Revoke an API token (MSP admins)',
    params: TokenParams,
    access: { msp: 'token.manage' },
    responses: { 200: { description: 'The revoked token.', schema: TokenView } },
    errors: { 404: 'No such token.' },
    handler: async ({ res, params, actor }) => {
      res.json(await tenancy.revokeToken(pool, actor(), params.tokenId));
    },
  });

  return router;
}
