import type { RouteConfig } from '@asteasolutions/zod-to-openapi';
import express, { Router } from 'express';
import { z } from 'zod';
import type { Authority } from '../../core/audit/chain.js';
import { allowingBindings, canSeeTenant, type Permission } from '../../core/tenancy/authz.js';
import { badRequest, notFound } from '../../core/errors.js';
import { Uuid } from '../../core/tenancy/schemas.js';
import { HrEventBody, PersonId } from '../../core/lifecycle/schemas.js';
import {
  ImportResultSchema,
  LifecyclePreviewSchema,
  PersonDetailsSchema,
  PersonListQuery,
  PersonTimelineSchema,
  PersonViewSchema,
  SubmitHrEventResultSchema,
  TimelineQuery,
} from '../../core/lifecycle/views.js';
import * as lifecycle from '../../usecases/lifecycle.js';
import { actionContext, authorizeTenant, principalOf } from '../auth.js';
import { requestIdOf } from '../errors.js';
import { errorResponses, type OpenAPIRegistry } from '../openapi.js';
import { parse } from '../validate.js';

const TenantParams = z.strictObject({ tenantId: Uuid });
const PersonParams = z.strictObject({ tenantId: Uuid, personId: PersonId });

/** Media types the bulk import reads as text; JSON bodies carry `{ "rows": [...] }`. */
const IMPORT_TYPES = { csv: ['text/csv'], ndjson: ['application/x-ndjson', 'application/ndjson', 'application/jsonl'] } as const;

const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });
const auth = { 401: { description: 'No valid bearer token.' }, 403: { description: 'Authenticated, but not allowed.' } };

export interface LifecycleRouteOptions {
  /** Largest CSV/NDJSON import body, e.g. `10mb`. */
  importBodyLimit: string;
}

export function lifecycleRoutes(deps: lifecycle.LifecycleDeps, registry: OpenAPIRegistry, options: LifecycleRouteOptions): Router {
  const router = Router();
  const doc = (
    method: RouteConfig['method'],
    path: string,
    summary: string,
    extra: Pick<RouteConfig, 'responses' | 'request' | 'description'>,
  ) => registry.registerPath({ method, path, summary, tags: ['lifecycle'], security: [{ bearer: [] }], ...extra });

  /** Authorizes in the tenant and returns the audit authority: the bindings that allowed it and the request id. */
  const authorityFor = (req: express.Request, permission: Permission, tenantId: string): Authority => {
    authorizeTenant(req, permission, tenantId);
    const bindings = allowingBindings(principalOf(req), permission, tenantId);
    return {
      roles: [...new Set(bindings.map((b) => b.role))].sort(),
      bindingIds: bindings.map((b) => b.id).sort(),
      requestId: requestIdOf(req),
    };
  };

  doc('post', '/v1/tenants/{tenantId}/hr-events', 'Submit an HR event (joiner, mover, leaver)', {
    description:
      'Idempotent by `eventId`: sending the same event again returns the first receipt (200); the same id with another body is 409. ' +
      "A joiner starts the person's lifecycle; a mover or leaver for a person who never joined is 404. " +
      'The event applies at `effectiveAt` (a future time waits durably).',
    request: { params: TenantParams, body: { content: { 'application/json': { schema: HrEventBody } } } },
    responses: {
      202: json(SubmitHrEventResultSchema, 'Accepted; applies at its effective time.'),
      200: json(SubmitHrEventResultSchema, 'A duplicate of an event already received: its first receipt.'),
      400: errorResponses[400],
      404: errorResponses[404],
      409: errorResponses[409],
      ...auth,
    },
  });
  router.post('/v1/tenants/:tenantId/hr-events', async (req, res) => {
    const { tenantId } = parse(TenantParams, req.params, 'params');
    const authority = authorityFor(req, 'person.event', tenantId);
    const body = parse(HrEventBody, req.body, 'body');
    const result = await lifecycle.submitHrEvent(deps, actionContext(req, authority), tenantId, body);
    res
      .status(result.receipt.duplicate ? 200 : 202)
      .location(`/v1/tenants/${tenantId}/people/${encodeURIComponent(body.personId)}`)
      .json(result);
  });

  doc('post', '/v1/tenants/{tenantId}/hr-events/preview', 'Preview what an HR event would change', {
    description: "Decided by the tenant's current lifecycle rules against the person's current state; changes nothing.",
    request: { params: TenantParams, body: { content: { 'application/json': { schema: HrEventBody } } } },
    responses: { 200: json(LifecyclePreviewSchema, 'What would change.'), 400: errorResponses[400], 404: errorResponses[404], ...auth },
  });
  router.post('/v1/tenants/:tenantId/hr-events/preview', async (req, res) => {
    const { tenantId } = parse(TenantParams, req.params, 'params');
    authorizeTenant(req, 'person.event', tenantId);
    const body = parse(HrEventBody, req.body, 'body');
    res.json(await lifecycle.previewHrEvent(deps.pool, tenantId, body));
  });

  doc('post', '/v1/tenants/{tenantId}/hr-events/import', 'Bulk import HR events (CSV or NDJSON)', {
    description:
      'Body as `text/csv` (header row: eventId, personId, type, effectiveAt, username, displayName, email and one column per declared attribute), ' +
      '`application/x-ndjson` (one HR event per line) or JSON `{ "rows": [...] }`. Every row is validated and submitted on its own: ' +
      'the answer lists each row with its status and, for a bad row, the offending fields; valid rows are processed even when others are not.',
    request: {
      params: TenantParams,
      body: {
        content: {
          'text/csv': { schema: z.string() },
          'application/x-ndjson': { schema: z.string() },
          'application/json': { schema: z.object({ rows: z.array(z.unknown()) }) },
        },
      },
    },
    responses: { 200: json(ImportResultSchema, 'Per-row results.'), 400: errorResponses[400], 404: errorResponses[404], ...auth },
  });
  router.post(
    '/v1/tenants/:tenantId/hr-events/import',
    // Authorized before the body is read, so a caller without standing cannot make us parse megabytes.
    (req, res, next) => {
      const { tenantId } = parse(TenantParams, req.params, 'params');
      res.locals.authority = authorityFor(req, 'person.event', tenantId);
      next();
    },
    express.text({ type: [...IMPORT_TYPES.csv, ...IMPORT_TYPES.ndjson], limit: options.importBodyLimit }),
    async (req, res) => {
      const { tenantId } = parse(TenantParams, req.params, 'params');
      const authority = res.locals.authority as Authority;
      const format = req.is([...IMPORT_TYPES.csv])
        ? 'csv'
        : req.is([...IMPORT_TYPES.ndjson])
          ? 'ndjson'
          : req.is('application/json')
            ? 'rows'
            : undefined;
      let source: lifecycle.ImportSource;
      if (format === 'rows') {
        source = { format, rows: parse(z.strictObject({ rows: z.array(z.unknown()).min(1).max(100_000) }), req.body, 'body').rows };
      } else if (format) {
        if (typeof req.body !== 'string' || req.body.trim() === '')
          throw badRequest('The import body is empty.', [{ path: 'body', message: 'no rows' }]);
        source = { format, text: req.body };
      } else {
        throw badRequest('Send the import as text/csv, application/x-ndjson or application/json.', [
          { path: 'headers.content-type', message: `unsupported: ${req.headers['content-type'] ?? '(none)'}` },
        ]);
      }
      res.json(await lifecycle.importHrEvents(deps, actionContext(req, authority), tenantId, source));
    },
  );

  doc('get', '/v1/tenants/{tenantId}/people', 'List people and their lifecycle state', {
    request: { params: TenantParams, query: PersonListQuery },
    responses: {
      200: json(z.object({ people: z.array(PersonViewSchema), nextCursor: z.string().nullable() }), 'Ordered by person id.'),
      400: errorResponses[400],
      404: errorResponses[404],
      ...auth,
    },
  });
  router.get('/v1/tenants/:tenantId/people', async (req, res) => {
    const { tenantId } = parse(TenantParams, req.params, 'params');
    authorizeTenant(req, 'person.read', tenantId);
    const query = parse(PersonListQuery, req.query, 'query');
    const people = await lifecycle.listPeople(deps.pool, tenantId, {
      limit: query.limit + 1,
      ...(query.status ? { status: query.status } : {}),
      ...(query.after ? { afterPersonId: query.after } : {}),
    });
    const page = people.slice(0, query.limit);
    res.json({ people: page, nextCursor: people.length > query.limit ? page.at(-1)!.personId : null });
  });

  /** The same 404 for "absent" and "not yours". */
  const visible = (req: express.Request, tenantId: string) => {
    if (!canSeeTenant(principalOf(req), tenantId)) throw notFound('person');
    authorizeTenant(req, 'person.read', tenantId);
  };

  doc('get', '/v1/tenants/{tenantId}/people/{personId}', 'Read a person: state, entitlements and open grants', {
    request: { params: PersonParams },
    responses: { 200: json(PersonDetailsSchema, 'The person.'), 400: errorResponses[400], 404: errorResponses[404], ...auth },
  });
  router.get('/v1/tenants/:tenantId/people/:personId', async (req, res) => {
    const { tenantId, personId } = parse(PersonParams, req.params, 'params');
    visible(req, tenantId);
    res.json(await lifecycle.getPerson(deps.pool, tenantId, personId));
  });

  doc('get', '/v1/tenants/{tenantId}/people/{personId}/timeline', "A person's HR events and audit trail", {
    request: { params: PersonParams, query: TimelineQuery },
    responses: {
      200: json(PersonTimelineSchema, 'In order received / chain order.'),
      400: errorResponses[400],
      404: errorResponses[404],
      ...auth,
    },
  });
  router.get('/v1/tenants/:tenantId/people/:personId/timeline', async (req, res) => {
    const { tenantId, personId } = parse(PersonParams, req.params, 'params');
    visible(req, tenantId);
    const query = parse(TimelineQuery, req.query, 'query');
    res.json(
      await lifecycle.getTimeline(deps.pool, tenantId, personId, {
        limit: query.limit,
        ...(query.afterSeq !== undefined ? { afterSeq: query.afterSeq } : {}),
      }),
    );
  });

  return router;
}
