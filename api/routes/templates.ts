import type { Router } from 'express';
import { z } from 'zod';
import { forbidden } from '../../core/errors.js';
import { tenantApproverBindings } from '../../core/tenancy/authz.js';
import {
  ApplyStartedView,
  AssignTemplateRequest,
  CreateTemplateRequest,
  DryRunRequest,
  NewTemplateVersionRequest,
  StartApplyRequest,
  TemplateApplyView,
  TemplateApplyWithPlanView,
  TemplateAssignmentView,
  TemplateDecisionBody,
  TemplateDiffQuery,
  TemplateDiffView,
  TemplatePlanView,
  TemplateVersionNumber,
  TemplateVersionView,
  TemplateView,
  UpdateDraftRequest,
} from '../../core/templates/schemas.js';
import { Uuid } from '../../core/tenancy/schemas.js';
import { APPLY_STATUSES } from '../../core/templates/contract.js';
import * as templates from '../../usecases/templates.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { authorityFrom, principalOf } from '../auth.js';
import { hiddenUnlessStanding, routeSet } from '../route.js';

const TemplateParams = z.strictObject({ templateId: Uuid });
const VersionParams = z.strictObject({ templateId: Uuid, version: TemplateVersionNumber });
const TenantParams = z.strictObject({ tenantId: Uuid });
const ApplyParams = z.strictObject({ tenantId: Uuid, rolloutId: Uuid });
const ApplyListQuery = z.strictObject({
  status: z.enum(APPLY_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export function templateRoutes(deps: templates.TemplateApplyDeps, registry: OpenAPIRegistry): Router {
  const { pool } = deps;
  const { router, route } = routeSet(registry, 'templates');

  route({
    method: 'post',
    path: '/v1/templates',
    summary: 'Create a template with its first version, a draft (template owners)',
    description:
      'A template holds directory roles, directory security settings (MFA, password, lockout, session) and Tenure policy ' +
      'sections (grants, lifecycle), with `{{parameter}}` placeholders in its text that each tenant’s assignment fills in.',
    body: CreateTemplateRequest,
    access: { msp: 'template.write' },
    responses: {
      201: { description: 'Created.', schema: z.object({ template: TemplateView, version: TemplateVersionView }) },
    },
    errors: { 409: 'A template with this name exists.' },
    handler: async ({ res, body, actor }) => {
      const created = await templates.createTemplate(pool, actor(), body);
      res.status(201).location(`/v1/templates/${created.template.id}`).json(created);
    },
  });

  route({
    method: 'get',
    path: '/v1/templates',
    summary: 'List templates',
    access: { msp: 'template.read' },
    responses: { 200: { description: 'By name.', schema: z.object({ templates: z.array(TemplateView) }) } },
    handler: async ({ res }) => {
      res.json({ templates: await templates.listTemplates(pool) });
    },
  });

  route({
    method: 'get',
    path: '/v1/templates/{templateId}',
    summary: 'Read a template',
    params: TemplateParams,
    access: { msp: 'template.read' },
    responses: { 200: { description: 'The template.', schema: TemplateView } },
    errors: { 404: 'No such template.' },
    handler: async ({ res, params }) => {
      res.json(await templates.getTemplate(pool, params.templateId));
    },
  });

  route({
    method: 'get',
    path: '/v1/templates/{templateId}/versions',
    summary: 'List a template’s versions, oldest first',
    params: TemplateParams,
    access: { msp: 'template.read' },
    responses: { 200: { description: 'Versions.', schema: z.object({ versions: z.array(TemplateVersionView) }) } },
    errors: { 404: 'No such template.' },
    handler: async ({ res, params }) => {
      res.json({ versions: await templates.listVersions(pool, params.templateId) });
    },
  });

  route({
    method: 'post',
    path: '/v1/templates/{templateId}/versions',
    summary: 'Start a new version, a draft (template owners)',
    params: TemplateParams,
    body: NewTemplateVersionRequest,
    access: { msp: 'template.write' },
    responses: { 201: { description: 'The draft.', schema: TemplateVersionView } },
    errors: { 404: 'No such template.' },
    handler: async ({ res, params, body, actor }) => {
      const version = await templates.newVersion(pool, actor(), params.templateId, body.document);
      res.status(201).location(`/v1/templates/${params.templateId}/versions/${version.version}`).json(version);
    },
  });

  route({
    method: 'get',
    path: '/v1/templates/{templateId}/versions/{version}',
    summary: 'Read a version',
    params: VersionParams,
    access: { msp: 'template.read' },
    responses: { 200: { description: 'The version.', schema: TemplateVersionView } },
    errors: { 404: 'No such template version.' },
    handler: async ({ res, params }) => {
      res.json(await templates.getVersion(pool, params.templateId, params.version));
    },
  });

  route({
    method: 'put',
    path: '/v1/templates/{templateId}/versions/{version}',
    summary: 'Edit a draft (template owners); its editor joins its authors',
    params: VersionParams,
    body: UpdateDraftRequest,
    access: { msp: 'template.write' },
    responses: { 200: { description: 'The draft after the edit.', schema: TemplateVersionView } },
    errors: { 404: 'No such template version.', 409: 'The version is not a draft, or it changed since `expectedUpdatedAt`.' },
    handler: async ({ res, params, body, actor }) => {
      res.json(await templates.updateDraft(pool, actor(), params.templateId, params.version, body));
    },
  });

  const steps: { step: templates.VersionStep; summary: string; permission: 'template.write' | 'template.approve'; description?: string }[] =
    [
      {
        step: 'propose',
        summary: 'Propose a draft for approval (template owners); the proposer joins its authors',
        permission: 'template.write',
      },
      {
        step: 'approve',
        summary: 'Approve a proposed version: it becomes immutable and assignable',
        permission: 'template.approve',
        description: 'A template owner or MSP admin who is none of its authors and did not propose it (403 otherwise).',
      },
      {
        step: 'reject',
        summary: 'Send a proposed version back to draft, with the reason as comment',
        permission: 'template.approve',
        description: 'A template owner or MSP admin who is none of its authors and did not propose it (403 otherwise).',
      },
      { step: 'deprecate', summary: 'Deprecate an approved version: no new tenant is pinned to it', permission: 'template.approve' },
    ];
  for (const { step, summary, permission, description } of steps) {
    route({
      method: 'post',
      path: `/v1/templates/{templateId}/versions/{version}/${step}`,
      summary,
      ...(description ? { description } : {}),
      params: VersionParams,
      body: TemplateDecisionBody,
      bodyOptional: true,
      access: { msp: permission },
      responses: { 200: { description: 'The version after the step.', schema: TemplateVersionView } },
      errors: { 404: 'No such template version.', 409: 'The version is not in the status this step needs.' },
      handler: async ({ res, params, body, actor }) => {
        res.json(await templates.moveTemplateVersion(pool, actor(), params.templateId, params.version, step, body.comment ?? null));
      },
    });
  }

  route({
    method: 'get',
    path: '/v1/templates/{templateId}/diff',
    summary: 'What changes between two versions: JSON paths with before and after, classified',
    description: 'Each path says whether it loosens or tightens control, by the same rules as a change to a tenant’s own policy.',
    params: TemplateParams,
    query: TemplateDiffQuery,
    access: { msp: 'template.read' },
    responses: { 200: { description: 'The diff, by path.', schema: TemplateDiffView } },
    errors: { 404: 'No such template or version.' },
    handler: async ({ res, params, query }) => {
      res.json(await templates.diffVersions(pool, params.templateId, query.from, query.to));
    },
  });

  route({
    method: 'get',
    path: '/v1/templates/{templateId}/assignments',
    summary: 'The tenants pinned to the template, each with its version',
    params: TemplateParams,
    access: { msp: 'template.read' },
    responses: { 200: { description: 'Assignments, by tenant.', schema: z.object({ assignments: z.array(TemplateAssignmentView) }) } },
    errors: { 404: 'No such template.' },
    handler: async ({ res, params }) => {
      res.json({ assignments: await templates.listAssignments(pool, params.templateId) });
    },
  });

  // ------------------------------------------------------------ a tenant's pin and dry-run
  route({
    method: 'put',
    path: '/v1/tenants/{tenantId}/template',
    summary: 'Pin the tenant to an approved template version, with its parameter values',
    description: 'Changes nothing in the tenant’s directory or policy; a rollout applies the version.',
    params: TenantParams,
    body: AssignTemplateRequest,
    access: { tenant: 'template.assign' },
    responses: { 200: { description: 'The tenant’s pin.', schema: TemplateAssignmentView } },
    errors: { 409: 'The version is not approved (a draft, proposed or deprecated).' },
    handler: async ({ res, params, body, actor }) => {
      res.json(await templates.assignTemplate(pool, actor(), params.tenantId, body));
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/template',
    summary: 'The tenant’s pin: template, exact version, parameters, and the version last applied',
    params: TenantParams,
    access: { tenant: 'template.plan', hiddenAs: 'template assignment' },
    responses: { 200: { description: 'The pin.', schema: TemplateAssignmentView } },
    errors: { 404: 'The tenant is pinned to no template (`template_not_pinned`), or the caller has no standing there (`not_found`).' },
    handler: async ({ res, params }) => {
      res.json(await templates.getAssignment(pool, params.tenantId));
    },
  });

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/template/dry-run',
    summary: 'Plan a template version for the tenant: what would be created, changed or removed; changes nothing',
    description:
      'Reads the tenant’s directory through its connector and its policy as in force. Each change says whether it loosens ' +
      'control (the rules of tenant policy changes) and whether it touches a privileged role; a setting the target cannot ' +
      'hold is listed with `unsupported`, never left out. Any version of any status may be planned.',
    params: TenantParams,
    body: DryRunRequest,
    bodyOptional: true,
    access: { tenant: 'template.plan' },
    responses: { 200: { description: 'The plan.', schema: TemplatePlanView } },
    handler: async ({ res, params, body }) => {
      res.json(await templates.dryRun(deps, params.tenantId, body));
    },
  });

  // ------------------------------------------------------------ applying the pin (one tenant's part of a rollout)
  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/template/apply',
    summary: 'Apply the tenant’s pinned version: plan, the tenant’s approval gate if it loosens control, snapshot, apply, read back, pin',
    description:
      'Starts `rollout/<rolloutId>/<tenantId>`. A plan that loosens the tenant’s control (or any plan, when the tenant decides every ' +
      'change) waits for a quorum of its own approvers (`governance.policyChangeApprovals`); on timeout the tenant is skipped and ' +
      'nothing changes. Follow it at `Location`.',
    params: TenantParams,
    body: StartApplyRequest,
    bodyOptional: true,
    access: { tenant: 'template.assign' },
    responses: { 202: { description: 'Started.', schema: ApplyStartedView } },
    errors: { 409: 'The tenant is pinned to no template, an apply or rollback is under way for it, or it waits in an open rollout.' },
    handler: async ({ res, params, body, actor }) => {
      const started = await templates.startApply(deps, actor(), params.tenantId, body);
      res.status(202).location(`/v1/tenants/${params.tenantId}/template/applies/${started.rolloutId}`).json(started);
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/template/applies',
    summary: 'The tenant’s applies, newest first; `status=awaiting_approval` lists those waiting at its approvers’ gate',
    params: TenantParams,
    query: ApplyListQuery,
    access: { tenant: 'template.plan' },
    responses: { 200: { description: 'Newest first.', schema: z.object({ applies: z.array(TemplateApplyView) }) } },
    handler: async ({ res, params, query }) => {
      res.json({ applies: await templates.listApplies(pool, params.tenantId, query) });
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/template/applies/{rolloutId}',
    summary: 'One apply: its status, gate, snapshot, what it changed, and the plan it started from',
    params: ApplyParams,
    access: { tenant: 'template.plan', hiddenAs: 'template apply' },
    responses: { 200: { description: 'The apply.', schema: TemplateApplyWithPlanView } },
    handler: async ({ res, params }) => {
      res.json(await templates.getApply(pool, params.tenantId, params.rolloutId));
    },
  });

  for (const decision of ['approve', 'deny'] as const) {
    route({
      method: 'post',
      path: `/v1/tenants/{tenantId}/template/applies/{rolloutId}/${decision}`,
      summary: `${decision === 'approve' ? 'Approve' : 'Deny'} applying a template that loosens the tenant’s control (its approvers)`,
      params: ApplyParams,
      body: TemplateDecisionBody,
      bodyOptional: true,
      access: {
        check: (req, { tenantId }) => {
          hiddenUnlessStanding(req, tenantId, 'template apply');
          const bindings = tenantApproverBindings(principalOf(req), tenantId);
          if (!bindings.length) throw forbidden('Only the tenant’s own approvers decide a template apply.');
          return { authority: authorityFrom(req, bindings), state: undefined };
        },
        forbidden: 'A tenant_approver of the tenant itself; never MSP staff, never who started the apply.',
        hidden: true,
      },
      responses: { 200: { description: 'Accepted; the apply after the decision.', schema: TemplateApplyView } },
      errors: { 409: 'The apply is not waiting for the tenant (not gated, decided, or ended).' },
      handler: async ({ res, params, body, principal, authority }) => {
        res.json(
          await templates.decideApply(deps, params.tenantId, params.rolloutId, decision, {
            actorId: principal.actorId,
            ...(body.comment ? { comment: body.comment } : {}),
            authority,
          }),
        );
      },
    });
  }

  return router;
}
