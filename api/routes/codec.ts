import type { RequestHandler, Router } from 'express';
import type { Payload } from '@temporalio/common';
import { z } from 'zod';
import type { OpenAPIRegistry } from '../openapi.js';
import { decodePayloads, encodePayloads, type CodecDeps } from '../../usecases/codec.js';
import { routeSet } from '../route.js';

/**
 * Temporal's remote codec server protocol (`POST <endpoint>/decode` and `/encode`), so the
 * Temporal UI and CLI can show workflow data to the MSP staff allowed to see it. Payloads are
 * in their protobuf JSON form: metadata values and data in base64.
 */
const Base64 = z
  .string()
  .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'must be standard base64')
  .meta({ description: 'Bytes in standard base64.' });
const JsonPayload = z
  .object({
    metadata: z.record(z.string(), Base64).optional().meta({ description: 'Metadata values in base64, e.g. `encoding`.' }),
    data: Base64.optional(),
  })
  .meta({ id: 'TemporalPayload' });
const Payloads = z.strictObject({ payloads: z.array(JsonPayload).max(1000) }).meta({ id: 'TemporalPayloads' });
type JsonPayload = z.output<typeof JsonPayload>;

const fromJson = ({ metadata, data }: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(metadata ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')])),
  ...(data === undefined ? {} : { data: Buffer.from(data, 'base64') }),
});
const toJson = ({ metadata, data }: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(metadata ?? {}).map(([key, value]) => [key, Buffer.from(value).toString('base64')])),
  ...(data ? { data: Buffer.from(data).toString('base64') } : {}),
});

const ACCESS = { msp: 'temporal.codec' } as const;

export function codecRoutes(deps: CodecDeps, registry: OpenAPIRegistry): Router {
  const { router, route } = routeSet(registry, 'codec');

  route({
    method: 'post',
    path: '/v1/codec/decode',
    summary: 'Decode Temporal payloads (remote codec server)',
    description:
      'Decrypts workflow payloads Tenure encrypted; others pass through unchanged. Point the Temporal UI or CLI at ' +
      '`<api>/v1/codec` (e.g. `temporal workflow show --codec-endpoint … --codec-auth "Bearer <token>"`). ' +
      'Each call that decrypts something is recorded on the MSP audit chain (`temporal.payloads_decoded`).',
    body: Payloads,
    access: ACCESS,
    responses: { 200: { description: 'The payloads, decoded, in the same order.', schema: Payloads } },
    handler: async ({ res, body, actor }) => {
      const decoded = await decodePayloads(deps, actor(), body.payloads.map(fromJson));
      res.json({ payloads: decoded.map(toJson) });
    },
  });

  route({
    method: 'post',
    path: '/v1/codec/encode',
    summary: 'Encode Temporal payloads (remote codec server)',
    description:
      'Encrypts payloads under the current key, as a Tenure worker or client would; recorded on the MSP audit chain ' +
      '(`temporal.payloads_encoded`). With TEMPORAL_PAYLOAD_ENCRYPTION=off they come back unchanged.',
    body: Payloads,
    access: ACCESS,
    responses: { 200: { description: 'The payloads, encoded, in the same order.', schema: Payloads } },
    handler: async ({ res, body, actor }) => {
      const encoded = await encodePayloads(deps, actor(), body.payloads.map(fromJson));
      res.json({ payloads: encoded.map(toJson) });
    },
  });

  return router;
}

/**
 * Lets the listed browser origins (the Temporal UI's, CODEC_CORS_ORIGINS) call the codec endpoint:
 * answers their preflight before authentication, which a preflight never carries. Any other origin
 * gets no CORS headers, so a browser keeps its pages out.
 */
export function codecCors(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  return (req, res, next) => {
    res.vary('Origin');
    const origin = req.headers.origin;
    if (typeof origin !== 'string' || !allowed.has(origin)) return next();
    res.setHeader('Access-Control-Allow-Origin', origin);
    if (req.method !== 'OPTIONS') return next();
    res.setHeader('Access-Control-Allow-Methods', 'POST');
    res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Namespace');
    res.setHeader('Access-Control-Max-Age', '600');
    res.status(204).end();
  };
}
