import { pipeline } from 'node:stream/promises';
import type { Router } from 'express';
import { z } from 'zod';
import { RbacReportQuery, RbacReportViewSchema } from '../../core/templates/report.js';
import * as report from '../../usecases/templates/report.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { routeSet } from '../route.js';

/**
 * The cross-tenant RBAC drift report. Mounted before the templates router, whose
 * `/v1/templates/{templateId}` would otherwise take `rbac-report` for an id.
 */
export function templateReportRoutes(deps: report.RbacReportDeps, registry: OpenAPIRegistry): Router {
  const { router, route } = routeSet(registry, 'templates');

  route({
    method: 'get',
    path: '/v1/templates/rbac-report',
    summary: 'Cross-tenant RBAC drift report: tenants × settings, deviations flagged (JSON or CSV)',
    description:
      'One row per active tenant (or per tenant pinned to `templateId`): its template pin (assigned and applied version), the ' +
      'security settings (MFA, password, lockout, session) and every role privileged anywhere in the report with its member ' +
      'count, read now through each tenant’s own connector. Each cell has `value`, `expected`, `basis` (`template`: the ' +
      'tenant’s applied version; `majority`: the most common value among the tenants; `latest`, `pin`, `none`) and ' +
      '`deviates`. A tenant whose target cannot be read is listed with `readable: false` and its `error`. CSV (`format=csv` ' +
      'or `Accept: text/csv`): one row per tenant, four columns per cell (value, `.expected`, `.basis`, `.deviates`), ' +
      "formula-like cells neutralised with a leading `'`.",
    query: RbacReportQuery,
    access: { msp: 'template.read' },
    responses: {
      200: {
        description: 'The report.',
        content: { 'application/json': { schema: RbacReportViewSchema }, 'text/csv': { schema: z.string() } },
      },
    },
    errors: { 404: 'No such template.' },
    handler: async ({ req, res, query }) => {
      const format = query.format ?? (req.accepts(['application/json', 'text/csv']) === 'text/csv' ? 'csv' : 'json');
      const view = await report.rbacReport(deps, { templateId: query.templateId });
      if (format === 'json') return void res.json(view);
      res.type('text/csv');
      res.setHeader('Content-Disposition', 'attachment; filename="rbac-report.csv"');
      await pipeline(report.rbacReportCsv(view), res);
    },
  });

  return router;
}
