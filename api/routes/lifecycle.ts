import express, { type Router } from 'express';
import { z } from 'zod';
import { badRequest } from '../../core/errors.js';
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
import { authorizeTenant } from '../auth.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { hiddenUnlessStanding, routeSet } from '../route.js';
import { parse } from '../validate.js';

const TenantParams = z.strictObject({ tenantId: Uuid });
const PersonParams = z.strictObject({ tenantId: Uuid, personId: PersonId });

/** Media types the bulk import reads as text; JSON bodies carry `{ "rows": [...] }`. */
const IMPORT_TYPES = { csv: ['text/csv'], ndjson: ['application/x-ndjson', 'application/ndjson', 'application/jsonl'] } as const;
const ImportRows = z.strictObject({ rows: z.array(z.unknown()).min(1).max(100_000) });
const ImportText = z.string().regex(/\S/, 'not blank');

/** A person is read in a tenant the caller has standing in, with `person.read` there. */
const personAccess = {
  check: (req: express.Request, { tenantId }: { tenantId: string }) => {
    hiddenUnlessStanding(req, tenantId, 'person');
    return { authority: authorizeTenant(req, 'person.read', tenantId), state: undefined };
  },
  forbidden: 'Requires `person.read`.',
  hidden: true,
};

export interface LifecycleRouteOptions {
  /** Largest CSV/NDJSON import body, e.g. `10mb`. */
  importBodyLimit: string;
}

export function lifecycleRoutes(deps: lifecycle.LifecycleDeps, registry: OpenAPIRegistry, options: LifecycleRouteOptions): Router {
  const { router, route } = routeSet(registry, 'lifecycle');

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/hr-events',
    summary: 'Submit an HR event (joiner, mover, leaver)',
    description:
      'Idempotent by `eventId`: sending the same event again returns the first receipt (200); the same id with another body is 409. ' +
      "A joiner starts the person's lifecycle; a mover or leaver for a person who never joined is 404. " +
      'A joiner for an existing directory account the lifecycle did not create is 409 unless the lifecycle policy sets `adoptExistingAccounts`. ' +
      'The event applies at `effectiveAt` (a future time waits durably).',
    params: TenantParams,
    body: HrEventBody,
    access: { tenant: 'person.event' },
    responses: {
      202: { description: 'Accepted; applies at its effective time.', schema: SubmitHrEventResultSchema },
      200: { description: 'A duplicate of an event already received: its first receipt.', schema: SubmitHrEventResultSchema },
    },
    errors: {
      409: "The event id was received before with another body, the event does not fit the person's state, or the joiner's account exists and is not the lifecycle's.",
    },
    handler: async ({ res, params: { tenantId }, body, actor }) => {
      const result = await lifecycle.submitHrEvent(deps, actor(), tenantId, body);
      res
        .status(result.receipt.duplicate ? 200 : 202)
        .location(`/v1/tenants/${tenantId}/people/${encodeURIComponent(body.personId)}`)
        .json(result);
    },
  });

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/hr-events/preview',
    summary: 'Preview what an HR event would change',
    description: "Decided by the tenant's current lifecycle rules against the person's current state; changes nothing.",
    params: TenantParams,
    body: HrEventBody,
    access: { tenant: 'person.event' },
    responses: { 200: { description: 'What would change.', schema: LifecyclePreviewSchema } },
    handler: async ({ res, params, body }) => {
      res.json(await lifecycle.previewHrEvent(deps.pool, params.tenantId, body));
    },
  });

  route({
    method: 'post',
    path: '/v1/tenants/{tenantId}/hr-events/import',
    summary: 'Bulk import HR events (CSV or NDJSON)',
    description:
      'Body as `text/csv` (header row: eventId, personId, type, effectiveAt, username, displayName, email and one column per declared attribute), ' +
      '`application/x-ndjson` (one HR event per line) or JSON `{ "rows": [...] }`. Every row is validated and submitted on its own: ' +
      'the answer lists each row with its status and, for a bad row, the offending fields; valid rows are processed even when others are not.',
    params: TenantParams,
    access: { tenant: 'person.event' },
    // Read after authorization, so a caller without standing cannot make us parse megabytes.
    readBody: express.text({ type: [...IMPORT_TYPES.csv, ...IMPORT_TYPES.ndjson], limit: options.importBodyLimit }),
    documentedBody: {
      'text/csv': { schema: ImportText },
      'application/x-ndjson': { schema: ImportText },
      'application/json': { schema: ImportRows },
    },
    responses: { 200: { description: 'Per-row results.', schema: ImportResultSchema } },
    handler: async ({ req, res, params: { tenantId }, actor }) => {
      const format = req.is([...IMPORT_TYPES.csv])
        ? 'csv'
        : req.is([...IMPORT_TYPES.ndjson])
          ? 'ndjson'
          : req.is('application/json')
            ? 'rows'
            : undefined;
      let source: lifecycle.ImportSource;
      if (format === 'rows') {
        source = { format, rows: parse(ImportRows, req.body, 'body').rows };
      } else if (format) {
        if (typeof req.body !== 'string' || req.body.trim() === '')
          throw badRequest('The import body is empty.', [{ path: 'body', message: 'no rows' }]);
        source = { format, text: req.body };
      } else {
        throw badRequest('Send the import as text/csv, application/x-ndjson or application/json.', [
          { path: 'headers.content-type', message: `unsupported: ${req.headers['content-type'] ?? '(none)'}` },
        ]);
      }
      res.json(await lifecycle.importHrEvents(deps, actor(), tenantId, source));
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/people',
    summary: 'List people and their lifecycle state',
    params: TenantParams,
    query: PersonListQuery,
    access: { tenant: 'person.read' },
    responses: {
      200: {
        description: 'Ordered by person id.',
        schema: z.object({ people: z.array(PersonViewSchema), nextCursor: z.string().nullable() }),
      },
    },
    handler: async ({ res, params, query }) => {
      const people = await lifecycle.listPeople(deps.pool, params.tenantId, {
        limit: query.limit + 1,
        ...(query.status ? { status: query.status } : {}),
        ...(query.after ? { afterPersonId: query.after } : {}),
      });
      const page = people.slice(0, query.limit);
      res.json({ people: page, nextCursor: people.length > query.limit ? page.at(-1)!.personId : null });
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/people/{personId}',
    summary: 'Read a person: state, entitlements and open grants',
    params: PersonParams,
    access: personAccess,
    responses: { 200: { description: 'The person.', schema: PersonDetailsSchema } },
    handler: async ({ res, params }) => {
      res.json(await lifecycle.getPerson(deps.pool, params.tenantId, params.personId));
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/people/{personId}/timeline',
    summary: "A person's HR events and audit trail",
    params: PersonParams,
    query: TimelineQuery,
    access: personAccess,
    responses: { 200: { description: 'In order received / chain order.', schema: PersonTimelineSchema } },
    handler: async ({ res, params, query }) => {
      res.json(
        await lifecycle.getTimeline(deps.pool, params.tenantId, params.personId, {
          limit: query.limit,
          ...(query.afterSeq !== undefined ? { afterSeq: query.afterSeq } : {}),
        }),
      );
    },
  });

  return router;
}
