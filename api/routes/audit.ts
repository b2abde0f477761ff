import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import { MSP_CHAIN } from '../../core/audit/chain.js';
import {
  AuditEventPage,
  AuditExportQuery,
  AuditListQuery,
  ChainId,
  ChainVerification,
  type ExportFormat,
} from '../../core/audit/schemas.js';
import type { Pool } from '../../db/pool.js';
import { exportChainEvents, listChainEvents, verifyChain, type ChainHead } from '../../usecases/audit.js';
import { authorizeMsp, authorizeTenant } from '../auth.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { routeSet } from '../route.js';

const ChainParams = z.strictObject({ chainId: ChainId });

const CONTENT_TYPES: Record<ExportFormat, string> = {
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

/** Errors a response stream fails with when the client hung up. */
const CLIENT_GONE = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE']);

/** `audit.read` on the chain: MSP-wide roles for `msp`, the tenant's otherwise. */
const chainAccess = {
  check: (req: Request, { chainId }: { chainId: string }) => ({
    authority: chainId === MSP_CHAIN ? authorizeMsp(req, 'audit.read') : authorizeTenant(req, 'audit.read', chainId, 'audit chain'),
    state: undefined,
  }),
  forbidden: 'Requires `audit.read` on the tenant (MSP-wide for `msp`).',
  hidden: true,
};

const EXPORT_HEADERS = ['Content-Type', 'Content-Disposition', 'Cache-Control', 'X-Audit-Head-Seq', 'X-Audit-Head-Hash'];

function startExport(res: Response, chainId: string, format: ExportFormat, head: ChainHead): Response {
  res.status(200);
  res.setHeader('Content-Type', CONTENT_TYPES[format]);
  res.setHeader('Content-Disposition', `attachment; filename="audit-${chainId}-${head.seq}.${format}"`);
  res.setHeader('Cache-Control', 'no-store');
  // With these the receiver can prove that an unfiltered export was not cut short at the end.
  res.setHeader('X-Audit-Head-Seq', String(head.seq));
  res.setHeader('X-Audit-Head-Hash', head.hash);
  return res;
}

export function auditRoutes(deps: { pool: Pool }, registry: OpenAPIRegistry): Router {
  const { router, route } = routeSet(registry, 'audit');

  route({
    method: 'get',
    path: '/v1/audit/{chainId}/events',
    summary: 'List audit events of a chain',
    description: 'Events in seq order, filtered, one page at a time. Requires `audit.read` on the tenant (or MSP-wide for `msp`).',
    params: ChainParams,
    query: AuditListQuery,
    access: chainAccess,
    responses: { 200: { description: 'One page of events.', schema: AuditEventPage } },
    errors: { 404: 'No such tenant, or none you have standing in.' },
    handler: async ({ res, params, query }) => {
      res.json(await listChainEvents(deps, params.chainId, query));
    },
  });

  route({
    method: 'get',
    path: '/v1/audit/{chainId}/export',
    summary: 'Export audit events of a chain',
    description:
      'Streams every matching event. NDJSON lines are the events exactly as hashed, so an unfiltered export can be ' +
      'verified offline (`tenure audit verify --file`) against the `X-Audit-Head-Seq` / `X-Audit-Head-Hash` headers. ' +
      'CSV has a header row; nested objects are JSON strings. A text cell starting with `=`, `+`, `-`, `@`, tab, ' +
      "carriage return or `'` gets a leading `'` so spreadsheets do not run it as a formula; drop one leading `'` to read the value.",
    params: ChainParams,
    query: AuditExportQuery,
    access: chainAccess,
    responses: {
      200: {
        description: 'The events, in seq order up to the chain head at the start of the export.',
        headers: z.object({ 'X-Audit-Head-Seq': z.string(), 'X-Audit-Head-Hash': z.string() }),
        content: { 'application/x-ndjson': { schema: z.string() }, 'text/csv': { schema: z.string() } },
      },
    },
    errors: { 404: 'No such tenant, or none you have standing in.' },
    handler: async ({ req, res, params: { chainId }, query }) => {
      try {
        await exportChainEvents(deps, chainId, query, (head) => startExport(res, chainId, query.format, head));
      } catch (error) {
        // Failed before the stream began (e.g. unknown chain): an ordinary JSON error response.
        if (!res.headersSent && !res.destroyed) {
          for (const header of EXPORT_HEADERS) res.removeHeader(header);
          throw error;
        }
        // Mid-stream there is no status left to send: cutting the connection keeps a partial
        // export from looking complete. A client that hung up is not an error of ours.
        if (CLIENT_GONE.has((error as { code?: string }).code ?? '')) req.log.info({ chainId }, 'audit export aborted by the client');
        else req.log.error({ err: error, chainId }, 'audit export failed mid-stream');
        res.destroy();
      }
    },
  });

  route({
    method: 'get',
    path: '/v1/audit/{chainId}/verify',
    summary: 'Verify a chain',
    description: 'Recomputes every hash and link from the stored events and compares the last one with the chain head.',
    params: ChainParams,
    access: chainAccess,
    responses: {
      200: { description: 'Whether the chain is intact, and if not, where it first breaks.', schema: ChainVerification },
    },
    errors: { 404: 'No such tenant, or none you have standing in.' },
    handler: async ({ res, params }) => {
      res.json(await verifyChain(deps, params.chainId));
    },
  });

  return router;
}
