import { Router, type Request, type Response } from 'express';
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
import { exportChainEvents, listChainEvents, verifyChain, type ChainHead } from '../../usecases/audit/evidence.js';
import { authorizeMsp, authorizeTenant } from '../auth.js';
import { ErrorBody } from '../errors.js';
import { errorResponses, type OpenAPIRegistry } from '../openapi.js';
import { parse } from '../validate.js';

const ChainParams = z.strictObject({ chainId: ChainId });

const CONTENT_TYPES: Record<ExportFormat, string> = {
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

/** Errors a response stream fails with when the client hung up. */
const CLIENT_GONE = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE']);

const authResponses = {
  401: { description: 'No valid bearer token.', content: { 'application/json': { schema: ErrorBody } } },
  403: { description: 'Your roles do not allow reading this chain.', content: { 'application/json': { schema: ErrorBody } } },
  404: { description: 'No such tenant, or none you have standing in.', content: { 'application/json': { schema: ErrorBody } } },
};

/** Validates the chain id and authorises `audit.read` on it: MSP-wide roles for `msp`, the tenant's otherwise. */
function authorizedChain(req: Request): string {
  const { chainId } = parse(ChainParams, req.params, 'params');
  if (chainId === MSP_CHAIN) authorizeMsp(req, 'audit.read');
  else authorizeTenant(req, 'audit.read', chainId, 'audit chain');
  return chainId;
}

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
  const router = Router();

  registry.registerPath({
    method: 'get',
    path: '/v1/audit/{chainId}/events',
    summary: 'List audit events of a chain',
    description: 'Events in seq order, filtered, one page at a time. Requires `audit.read` on the tenant (or MSP-wide for `msp`).',
    tags: ['audit'],
    security: [{ bearer: [] }],
    request: { params: ChainParams, query: AuditListQuery },
    responses: {
      200: { description: 'One page of events.', content: { 'application/json': { schema: AuditEventPage } } },
      400: errorResponses[400],
      ...authResponses,
    },
  });
  router.get('/v1/audit/:chainId/events', async (req, res) => {
    const chainId = authorizedChain(req);
    const query = parse(AuditListQuery, req.query, 'query');
    res.json(await listChainEvents(deps, chainId, query));
  });

  registry.registerPath({
    method: 'get',
    path: '/v1/audit/{chainId}/export',
    summary: 'Export audit events of a chain',
    description:
      'Streams every matching event. NDJSON lines are the events exactly as hashed, so an unfiltered export can be ' +
      'verified offline (`tenure audit verify --file`) against the `X-Audit-Head-Seq` / `X-Audit-Head-Hash` headers. ' +
      'CSV has a header row; nested objects are JSON strings.',
    tags: ['audit'],
    security: [{ bearer: [] }],
    request: { params: ChainParams, query: AuditExportQuery },
    responses: {
      200: {
        description: 'The events, in seq order up to the chain head at the start of the export.',
        headers: z.object({ 'X-Audit-Head-Seq': z.string(), 'X-Audit-Head-Hash': z.string() }),
        content: { 'application/x-ndjson': { schema: z.string() }, 'text/csv': { schema: z.string() } },
      },
      400: errorResponses[400],
      ...authResponses,
    },
  });
  router.get('/v1/audit/:chainId/export', async (req, res) => {
    const chainId = authorizedChain(req);
    const query = parse(AuditExportQuery, req.query, 'query');
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
  });

  registry.registerPath({
    method: 'get',
    path: '/v1/audit/{chainId}/verify',
    summary: 'Verify a chain',
    description: 'Recomputes every hash and link from the stored events and compares the last one with the chain head.',
    tags: ['audit'],
    security: [{ bearer: [] }],
    request: { params: ChainParams },
    responses: {
      200: {
        description: 'Whether the chain is intact, and if not, where it first breaks.',
        content: { 'application/json': { schema: ChainVerification } },
      },
      400: errorResponses[400],
      ...authResponses,
    },
  });
  router.get('/v1/audit/:chainId/verify', async (req, res) => {
    const chainId = authorizedChain(req);
    res.json(await verifyChain(deps, chainId));
  });

  return router;
}
