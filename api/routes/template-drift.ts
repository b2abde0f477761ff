import type { Request, Router } from 'express';
import { z } from 'zod';
import { forbidden } from '../../core/errors.js';
import { allowingBindings, tenantApproverBindings } from '../../core/tenancy/authz.js';
import {
  CreateDriftExceptionRequest,
  DriftCheckView,
  DriftExceptionDecisionBody,
  DriftExceptionView,
  DriftScheduleControlBody,
  DriftScheduleView,
  TenantDriftView,
} from '../../core/templates/drift-schemas.js';
import { Uuid } from '../../core/tenancy/schemas.js';
import * as drift from '../../usecases/templates/drift.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { authorityFrom, principalOf } from '../auth.js';
import { hiddenUnlessStanding, routeSet } from '../route.js';

const TenantParams = z.strictObject({ tenantId: Uuid });
const ExceptionParams = z.strictObject({ tenantId: Uuid, exceptionId: Uuid });

/** MSP staff who operate the tenant (`template.assign`) or the tenant's own approvers. */
function operatorOrTenantApprover(req: Request, { tenantId }: { tenantId: string }, what: string) {
  hiddenUnlessStanding(req, tenantId, 'drift exception');
  const principal = principalOf(req);
  const bindings = [...allowingBindings(principal, 'template.assign', tenantId), ...tenantApproverBindings(principal, tenantId)];
  if (!bindings.length) throw forbidden(`Only the tenant’s operators or its own approvers ${what}.`);
  return { authority: authorityFrom(req, bindings), state: undefined };
}

export function templateDriftRoutes(deps: drift.DriftDeps, registry: OpenAPIRegistry): Router {
  const { pool } = deps;
  const { router, route } = routeSet(registry, 'templates');

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/template/drift',
    summary: 'The tenant’s drift from the version applied to it: items and exceptions',
    description:
      'Compared with the exact version applied (`appliedVersion`, with the parameter values it was applied with). Statuses are as of ' +
      'this read: an item an active exception covers is `accepted`; once the exception ends or runs out it is `open` again.',
    params: TenantParams,
    access: { tenant: 'template.plan', hiddenAs: 'tenant' },
    responses: { 200: { description: 'The tenant’s drift.', schema: TenantDriftView } },
    handler: async ({ res, params }) => {
      res.json(await drift.getTenantDrift(pool, params.tenantId));
    },
  });

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/template/drift/check',
    summary: 'Check the tenant’s drift now and answer it (remediating and alerting as the version’s drift modes say)',
    params: TenantParams,
    access: { tenant: 'template.assign' },
    responses: { 200: { description: 'The tenant’s drift after the check, and what the check did.', schema: DriftCheckView } },
    handler: async ({ res, params, actor }) => {
      res.json(await drift.checkTenantDrift(deps, actor(), params.tenantId));
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/template/drift/exceptions',
    summary: 'The tenant’s drift exceptions, newest first, each with its status now',
    params: TenantParams,
    access: { tenant: 'template.plan', hiddenAs: 'tenant' },
    responses: { 200: { description: 'Exceptions.', schema: z.object({ exceptions: z.array(DriftExceptionView) }) } },
    handler: async ({ res, params }) => {
      res.json({ exceptions: await drift.listTenantDriftExceptions(pool, params.tenantId) });
    },
  });

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/template/drift/exceptions',
    summary: 'Ask to accept a deviation on one path, with an owner, a justification and an expiry (operators, the tenant’s approvers)',
    description:
      'It suppresses nothing until another of the tenant’s own approvers approves it. The expiry is required and at most 365 days ' +
      'ahead; once it passes, the path is drift again.',
    params: TenantParams,
    body: CreateDriftExceptionRequest,
    access: {
      check: (req, params) => operatorOrTenantApprover(req, params, 'ask for a drift exception'),
      forbidden: 'An operator or MSP admin of the tenant, or one of its own approvers.',
      hidden: true,
    },
    responses: { 201: { description: 'Created, pending the tenant’s approval.', schema: DriftExceptionView } },
    handler: async ({ res, params, body, actor }) => {
      const created = await drift.createDriftException(pool, actor(), params.tenantId, body);
      res.status(201).location(`/v1/tenants/${params.tenantId}/template/drift/exceptions/${created.id}`).json(created);
    },
  });

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/template/drift/exceptions/{exceptionId}/approve',
    summary: 'Approve a pending drift exception (the tenant’s own approvers; never MSP staff, never who asked for it)',
    params: ExceptionParams,
    body: DriftExceptionDecisionBody,
    bodyOptional: true,
    access: {
      check: (req, { tenantId }) => {
        hiddenUnlessStanding(req, tenantId, 'drift exception');
        const bindings = tenantApproverBindings(principalOf(req), tenantId);
        if (!bindings.length) throw forbidden('Only the tenant’s own approvers approve a drift exception.');
        return { authority: authorityFrom(req, bindings), state: undefined };
      },
      forbidden: 'A tenant_approver of the tenant itself; never MSP staff, never who asked for the exception.',
      hidden: true,
    },
    responses: { 200: { description: 'Approved: the path’s drift is accepted until the expiry.', schema: DriftExceptionView } },
    errors: { 404: 'No such exception in the tenant.', 409: 'The exception is not pending (approved, ended or run out).' },
    handler: async ({ res, params, body, actor }) => {
      res.json(await drift.approveDriftExceptionFor(pool, actor(), params.tenantId, params.exceptionId, body.comment ?? null));
    },
  });

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/template/drift/exceptions/{exceptionId}/expire',
    summary: 'End a drift exception now (operators, the tenant’s approvers): its path is drift again',
    params: ExceptionParams,
    body: DriftExceptionDecisionBody,
    bodyOptional: true,
    access: {
      check: (req, params) => operatorOrTenantApprover(req, params, 'end a drift exception'),
      forbidden: 'An operator or MSP admin of the tenant, or one of its own approvers.',
      hidden: true,
    },
    responses: { 200: { description: 'Ended.', schema: DriftExceptionView } },
    errors: { 404: 'No such exception in the tenant.', 409: 'The exception has already ended or run out.' },
    handler: async ({ res, params, body, actor }) => {
      res.json(await drift.expireDriftException(pool, actor(), params.tenantId, params.exceptionId, body.comment ?? null));
    },
  });

  route({
    method: 'get',
    path: '/v1/templates/drift-schedule',
    summary: 'The drift Schedule: interval, paused or not, next and recent scans',
    access: { msp: 'template.assign' },
    responses: { 200: { description: 'The Schedule.', schema: DriftScheduleView } },
    errors: { 404: 'The service has not created the Schedule (it does at start).' },
    handler: async ({ res }) => {
      res.json(await drift.getDriftSchedule(deps));
    },
  });

  for (const action of ['pause', 'unpause', 'trigger'] as const) {
    route({
      method: 'post',
      path: `/v1/templates/drift-schedule/${action}`,
      summary:
        action === 'trigger'
          ? 'Scan every tenant now (after a scan still running)'
          : `${action === 'pause' ? 'Pause' : 'Unpause'} the drift Schedule`,
      body: DriftScheduleControlBody,
      bodyOptional: true,
      access: { msp: 'template.assign' },
      responses: { 200: { description: 'The Schedule after the step.', schema: DriftScheduleView } },
      errors: { 404: 'The service has not created the Schedule (it does at start).' },
      handler: async ({ res, body, actor }) => {
        res.json(await drift.controlDriftSchedule(deps, actor(), action, body.note));
      },
    });
  }

  return router;
}
