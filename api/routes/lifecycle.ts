import express, { type Router } from 'express';
import { z } from 'zod';
import { badRequest } from '../../core/errors.js';
import { Uuid } from '../../core/tenancy/schemas.js';
import { HrEventBody, PersonId } from '../../core/lifecycle/schemas.js';
import { IMPORT_FAILED_STATUSES } from '../../core/lifecycle/contract.js';
import {
  HrImportListQuery,
  HrImportListSchema,
  HrImportProgressSchema,
  HrImportQuery,
  HrImportViewSchema,
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
import { IdempotencyHeaders } from '../headers.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { hiddenUnlessStanding, routeSet } from '../route.js';
import { parse } from '../validate.js';

const TenantParams = z.strictObject({ tenantId: Uuid });
const PersonParams = z.strictObject({ tenantId: Uuid, personId: PersonId });
const ImportParams = z.strictObject({ tenantId: Uuid, importId: Uuid });
const importPath = (tenantId: string, importId: string) => `/v1/tenants/${tenantId}/hr-events/imports/${importId}`;

/** Media types the bulk import reads as text; JSON bodies carry `{ "rows": [...] }`. */
const IMPORT_TYPES = { csv: ['text/csv'], ndjson: ['application/x-ndjson', 'application/ndjson', 'application/jsonl'] } as const;
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
  /** Most rows in one import (IMPORT_MAX_ROWS). */
  importMaxRows: number;
}

export function lifecycleRoutes(deps: lifecycle.LifecycleDeps, registry: OpenAPIRegistry, options: LifecycleRouteOptions): Router {
  const { router, route } = routeSet(registry, 'lifecycle');
  // The documented cap is the configured one.
  const ImportRows = z.strictObject({ rows: z.array(z.unknown()).min(1).max(options.importMaxRows) });

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
    summary: 'Bulk import HR events (CSV or NDJSON) as a job',
    description:
      'Body as `text/csv` (header row: eventId, personId, type, effectiveAt, username, displayName, email and one column per declared attribute), ' +
      '`application/x-ndjson` (one HR event per line) or JSON `{ "rows": [...] }`, with at most the configured number of rows (IMPORT_MAX_ROWS). ' +
      'Every row is stored, then a durable job submits each valid one on its own, like `POST …/hr-events`; a bad row is reported on its own ' +
      '(row number and field) and never stops the others. Answers 202 with the job; `Location` is its progress. ' +
      'Send an `Idempotency-Key` header to make a retry safe: the same key and body from the same caller answer the same job.',
    params: TenantParams,
    headers: IdempotencyHeaders,
    access: { tenant: 'person.event' },
    // Read after authorization, so a caller without standing cannot make us parse megabytes.
    readBody: express.text({ type: [...IMPORT_TYPES.csv, ...IMPORT_TYPES.ndjson], limit: options.importBodyLimit }),
    // Text a row cannot be stored with fails that row, not the whole import.
    bodyCheckedPerRow: true,
    documentedBody: {
      'text/csv': { schema: ImportText },
      'application/x-ndjson': { schema: ImportText },
      'application/json': { schema: ImportRows },
    },
    responses: {
      202: {
        description: 'Stored; the job runs. `Location` is its progress.',
        schema: HrImportViewSchema,
        headers: z.object({ Location: z.string().describe('The import: GET it for progress and row results.') }),
      },
    },
    errors: { 409: 'The idempotency key was already used for a different import.' },
    handler: async ({ req, res, params: { tenantId }, headers, actor }) => {
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
      const job = await lifecycle.startHrImport(deps, actor(), tenantId, source, {
        maxRows: options.importMaxRows,
        idempotencyKey: headers['idempotency-key'],
      });
      res.status(202).location(importPath(tenantId, job.importId)).json(job);
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/hr-events/imports',
    summary: 'List bulk imports, newest first',
    params: TenantParams,
    query: HrImportListQuery,
    access: { tenant: 'person.event' },
    responses: { 200: { description: 'One page of imports.', schema: HrImportListSchema } },
    handler: async ({ res, params, query }) => {
      res.json(
        await lifecycle.listHrImports(deps.pool, params.tenantId, {
          limit: query.limit,
          ...(query.after ? { afterImportId: query.after } : {}),
        }),
      );
    },
  });

  route({
    method: 'get',
    path: '/v1/tenants/{tenantId}/hr-events/imports/{importId}',
    summary: "A bulk import's progress and row results",
    description:
      'Status, rows total, done and failed, counts by row status, and one page of row results in row order (`after`, `limit`; ' +
      '`status=failed` for only the invalid and rejected rows).',
    params: ImportParams,
    query: HrImportQuery,
    access: { tenant: 'person.event' },
    responses: { 200: { description: 'The import and one page of its rows.', schema: HrImportProgressSchema } },
    handler: async ({ res, params, query }) => {
      res.json(
        await lifecycle.getHrImport(deps.pool, params.tenantId, params.importId, {
          limit: query.limit,
          ...(query.after !== undefined ? { afterRow: query.after } : {}),
          ...(query.status ? { statuses: query.status === 'failed' ? IMPORT_FAILED_STATUSES : [query.status] } : {}),
        }),
      );
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
        description: 'Ordered by person id; `q` and `status` narrow the list, and the cursor pages the narrowed list.',
        schema: z.object({ people: z.array(PersonViewSchema), nextCursor: z.string().nullable() }),
      },
    },
    handler: async ({ res, params, query }) => {
      const people = await lifecycle.listPeople(deps.pool, params.tenantId, {
        limit: query.limit + 1,
        ...(query.status ? { status: query.status } : {}),
        ...(query.after ? { afterPersonId: query.after } : {}),
        ...(query.q?.trim() ? { search: query.q.trim() } : {}),
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
