import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import type { Payload } from '@temporalio/common';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, inject, it, onTestFinished } from 'vitest';
import { createApp } from '../api/app.js';
import { startServer } from '../api/server.js';
import { grantWorkflowId } from '../core/grants/contract.js';
import { personWorkflowId } from '../core/lifecycle/contract.js';
import {
  generatePayloadKey,
  isEncrypted,
  parsePayloadKeys,
  PayloadDecryptionError,
  PayloadEncryptionCodec,
} from '../core/payload-codec.js';
import { createPostgresDirectory } from '../connectors/directory/postgres.js';
import { findTemporalCli } from '../runtime/find-binary.js';
import { apiClient } from './support/http.js';
import { apiDepsOf, eventually, startTestStack, TEST_PAYLOAD_KEYS, testPayloadCodec, type TestStack } from './support/stack.js';
import { seedTenancy, setPolicy, type TestTenancy } from './support/tenancy.js';

/**
 * Temporal is not a side door: whoever can read the namespace sees no tenant data. A grant and a
 * joiner run through the real stack with personal data in every free-text field; their histories,
 * read straight from Temporal, must hold none of it.
 */
const tag = randomBytes(4).toString('hex');
const SECRETS = {
  justification: `Justification-${tag} for the payroll incident`,
  approval: `Approval-comment-${tag}`,
  revocation: `Revoke-comment-${tag}`,
  displayName: `Jordan Secretperson-${tag}`,
  email: `jordan.${tag}@example.test`,
  /** An activity's error message: it reaches the history as the retried attempt's last failure. */
  failure: `Directory-outage-${tag}`,
};
const { History, MarkerRecordedEventAttributes } = proto.temporal.api.history.v1;
const { Payload: PayloadMessage, SearchAttributes } = proto.temporal.api.common.v1;
const { Failure } = proto.temporal.api.failure.v1;

let stack: TestStack;
let id: TestTenancy;
let failNextAssignment = false;
let grantId: string;
let personId: string;
const call = apiClient(() => stack.baseUrl);
const grants = () => `/v1/tenants/${id.tenantA}/grants`;

beforeAll(async () => {
  stack = await startTestStack({
    directory: (real) => ({
      ...real,
      assignRole: async (...args) => {
        if (failNextAssignment) {
          failNextAssignment = false;
          throw new Error(`${SECRETS.failure}: cannot reach the directory`);
        }
        return real.assignRole(...args);
      },
    }),
  });
  id = await seedTenancy(stack.pool);
  const directory = createPostgresDirectory(stack.pool);
  await directory.upsertRole(id.tenantA, { name: 'GlobalAdmin', privileged: true });
  await directory.upsertUser(id.tenantA, { id: 'alex', username: 'alex', displayName: 'alex' });
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
    expectedVersion: 1,
    document: { grants: { roles: { GlobalAdmin: { maxDurationMinutes: 60, approvalsRequired: 1, requestableBy: ['operator'] } } } },
  });
  expect(approval?.body.status).toBe('applied');

  const status = async (grant: string) => (await call(id.tokens.operator, 'GET', `${grants()}/${grant}`)).body.status as string;
  const created = await call(id.tokens.operator, 'POST', grants(), {
    subjectId: 'alex',
    role: 'GlobalAdmin',
    durationMinutes: 30,
    justification: SECRETS.justification,
  });
  expect(created.status).toBe(201);
  grantId = created.body.grantId as string;
  await eventually(
    () => status(grantId),
    (s) => s === 'pending_approval',
  );
  failNextAssignment = true;
  expect((await call(id.tokens.approverA, 'POST', `${grants()}/${grantId}/approve`, { comment: SECRETS.approval })).status).toBe(200);
  await eventually(
    () => status(grantId),
    (s) => s === 'active',
  );
  expect(failNextAssignment).toBe(false); // the activation's first attempt failed, as planned
  expect((await call(id.tokens.operator, 'POST', `${grants()}/${grantId}/revoke`, { comment: SECRETS.revocation })).status).toBe(200);
  await eventually(
    () => status(grantId),
    (s) => s === 'ended',
  );

  personId = `p-${tag}`;
  const joiner = await call(id.tokens.hrA, 'POST', `/v1/tenants/${id.tenantA}/hr-events`, {
    eventId: `${personId}-joiner`,
    personId,
    type: 'joiner',
    effectiveAt: new Date(Date.now() - 60_000).toISOString(),
    profile: { username: personId, displayName: SECRETS.displayName, email: SECRETS.email },
  });
  expect(joiner.status).toBeLessThan(300);
  await eventually(
    async () => (await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}/people/${personId}`)).body.person?.status as string,
    (s) => s === 'active',
  );
});
afterAll(async () => {
  await stack?.stop();
});

/** A workflow's history as Temporal stores and serves it: no data converter, no codec. */
async function rawHistory(workflowId: string): Promise<proto.temporal.api.history.v1.History> {
  const events: proto.temporal.api.history.v1.IHistoryEvent[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await stack.temporal.workflowService.getWorkflowExecutionHistory({
      namespace: inject('temporalNamespace'),
      execution: { workflowId },
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    events.push(...(page.history?.events ?? []));
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
  // Re-read from its wire form, so every nested message is an instance of its class.
  return History.decode(History.encode({ events }).finish());
}

/**
 * Every message of protobuf type `type` anywhere in `value` (events, their inputs, failures and
 * causes); a decoded message knows its type as `$type`. Skips what Temporal itself keeps in the
 * clear by design, never Tenure's data: search attributes (TenantId, the patch ids of
 * TemporalChangeVersion) and the SDK's patch markers.
 */
function find<T extends object>(value: unknown, type: { decode(bytes: Uint8Array): T }, found: T[] = []): T[] {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return found;
  const message = value as { $type?: unknown; markerName?: string };
  if (message.$type === SearchAttributes || (message.$type === MarkerRecordedEventAttributes && message.markerName === 'core_patch')) {
    return found;
  }
  if (message.$type === type) found.push(value as T);
  for (const child of Array.isArray(value) ? value : Object.values(value)) find(child, type, found);
  return found;
}

let histories: proto.temporal.api.history.v1.History[];
let bytes: Buffer;
let payloads: Payload[];

beforeAll(async () => {
  histories = [await rawHistory(grantWorkflowId(id.tenantA, grantId)), await rawHistory(personWorkflowId(id.tenantA, personId))];
  bytes = Buffer.concat(histories.map((h) => History.encode(h).finish()));
  payloads = histories.flatMap((h) => find(h, PayloadMessage));
});

describe('workflow data in Temporal', () => {
  it('a grant’s and a person’s histories, read straight from Temporal, hold no justification, comment, profile or error text', () => {
    for (const [field, secret] of Object.entries(SECRETS)) expect(bytes.includes(secret), `${field} in plaintext`).toBe(false);
    expect(payloads.length).toBeGreaterThan(10);
    expect(payloads.filter((p) => !isEncrypted(p))).toEqual([]);
    // Failures raised by Tenure's code carry their message only inside the sealed payload.
    const failures = histories.flatMap((h) => find(h, Failure)).filter((f) => f.source === 'TypeScriptSDK');
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.map((f) => [f.message, f.stackTrace, f.encodedAttributes && isEncrypted(f.encodedAttributes)])).toEqual(
      failures.map(() => ['Encoded failure', '', true]),
    );
  });

  it('the same payloads, decrypted with the key, do hold every one of them (so the check above looked at the right data)', async () => {
    const decoded = Buffer.concat((await testPayloadCodec.decode(payloads)).map((p) => PayloadMessage.encode(p).finish()));
    for (const [field, secret] of Object.entries(SECRETS)) expect(decoded.includes(secret), `${field} after decoding`).toBe(true);
  });

  it('after a key rotation (a new key first, the old one kept) they still decode; without the old key, the error names it', async () => {
    const rotated = new PayloadEncryptionCodec(parsePayloadKeys(`${generatePayloadKey('test-2')},${TEST_PAYLOAD_KEYS}`));
    expect(await rotated.decode(payloads)).toEqual(await testPayloadCodec.decode(payloads));
    const error = await new PayloadEncryptionCodec(parsePayloadKeys(generatePayloadKey('test-2')))
      .decode(payloads)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadDecryptionError);
    expect((error as Error).message).toContain('encrypted with key "test-1", which is not configured (configured: test-2)');
  });
});

const asJson = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  ...(p.data ? { data: Buffer.from(p.data).toString('base64') } : {}),
});
const codecEvents = async (action: string) =>
  (
    await stack.db.pool.query<{ actor_id: string; payload: { payloads: number; decrypted?: number; keyIds?: string[]; keyId?: string } }>(
      "SELECT actor_id, payload FROM audit_events WHERE tenant_id = 'msp' AND action = $1 ORDER BY seq",
      [action],
    )
  ).rows;

describe('the codec endpoint (/v1/codec, the remote codec server protocol)', () => {
  it('decodes a history’s payloads for an MSP operator, and records that on the MSP audit chain', async () => {
    const before = (await codecEvents('temporal.payloads_decoded')).length;
    const sample = payloads.slice(0, 20);
    const response = await call(id.tokens.operator, 'POST', '/v1/codec/decode', { payloads: sample.map(asJson) });
    expect(response.status).toBe(200);
    const decoded = (response.body.payloads as { metadata: Record<string, string>; data?: string }[]).map((p) => ({
      encoding: Buffer.from(p.metadata.encoding!, 'base64').toString(),
      data: Buffer.from(p.data ?? '', 'base64').toString(),
    }));
    expect(decoded).toHaveLength(sample.length);
    expect(decoded.every((p) => p.encoding !== 'binary/encrypted')).toBe(true);
    expect(decoded.some((p) => p.data.includes(SECRETS.justification))).toBe(true);
    const events = await codecEvents('temporal.payloads_decoded');
    expect(events).toHaveLength(before + 1);
    expect(events.at(-1)).toEqual({
      actor_id: id.actors.operator!.id,
      payload: { payloads: sample.length, decrypted: sample.length, keyIds: ['test-1'] },
    });
  });

  it('answers an MSP auditor 403 and a tenant’s own staff 403: decoding is for the MSP staff who run Temporal', async () => {
    const body = { payloads: payloads.slice(0, 1).map(asJson) };
    expect((await call(id.tokens.mspAuditor, 'POST', '/v1/codec/decode', body)).status).toBe(403);
    expect((await call(id.tokens.approverA, 'POST', '/v1/codec/decode', body)).status).toBe(403);
  });

  it('a payload that does not decrypt: 400 naming it, nothing audited', async () => {
    const before = (await codecEvents('temporal.payloads_decoded')).length;
    const altered = Buffer.from(payloads[0]!.data!);
    altered[altered.length - 1] = altered[altered.length - 1]! ^ 1;
    const response = await call(id.tokens.operator, 'POST', '/v1/codec/decode', {
      payloads: [asJson(payloads[1]!), asJson({ ...payloads[0]!, data: altered })],
    });
    expect(response.status).toBe(400);
    expect(response.body.error.issues).toEqual([
      { path: 'body.payloads.1', message: expect.stringContaining('a payload encrypted with key "test-1" does not decrypt') },
    ]);
    expect(await codecEvents('temporal.payloads_decoded')).toHaveLength(before);
  });

  it('encodes under the current key and decodes back; plaintext alone passes through unrecorded', async () => {
    const plain = { metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('"hello"').toString('base64') };
    const encodedBefore = (await codecEvents('temporal.payloads_encoded')).length;
    const decodedBefore = (await codecEvents('temporal.payloads_decoded')).length;
    const encoded = await call(id.tokens.mspAdmin, 'POST', '/v1/codec/encode', { payloads: [plain] });
    expect(encoded.status).toBe(200);
    const [sealed] = encoded.body.payloads as { metadata: Record<string, string>; data: string }[];
    expect(Buffer.from(sealed!.metadata['encryption-key-id']!, 'base64').toString()).toBe('test-1');
    expect((await call(id.tokens.operator, 'POST', '/v1/codec/decode', { payloads: [sealed] })).body).toEqual({ payloads: [plain] });
    expect((await call(id.tokens.operator, 'POST', '/v1/codec/decode', { payloads: [plain] })).body).toEqual({ payloads: [plain] });
    expect(await codecEvents('temporal.payloads_encoded')).toHaveLength(encodedBefore + 1);
    expect(await codecEvents('temporal.payloads_decoded')).toHaveLength(decodedBefore + 1);
  });

  it('lets the configured browser origin (the Temporal UI) call it: preflight before authentication, nothing for other origins', async () => {
    const ui = 'http://temporal-ui.example.test:8080';
    const app = createApp(apiDepsOf(stack, { config: { BODY_LIMIT: '100kb', IMPORT_BODY_LIMIT: '10mb', CODEC_CORS_ORIGINS: [ui] } }));
    const server = await startServer(app, '127.0.0.1', 0);
    onTestFinished(() => server.stop());
    const preflight = (origin: string) =>
      fetch(`${server.url}/v1/codec/decode`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type,x-namespace',
        },
      });
    const allowed = await preflight(ui);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ui);
    expect(allowed.headers.get('access-control-allow-headers')).toBe('Authorization, Content-Type, X-Namespace');
    const other = await preflight('http://elsewhere.example.test');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const decode = await fetch(`${server.url}/v1/codec/decode`, {
      method: 'POST',
      headers: { origin: ui, authorization: `Bearer ${id.tokens.operator}`, 'content-type': 'application/json', 'x-namespace': 'default' },
      body: JSON.stringify({ payloads: [] }),
    });
    expect(decode.status).toBe(200);
    expect(decode.headers.get('access-control-allow-origin')).toBe(ui);
  });

  it('the temporal CLI shows a grant’s history decoded through it with an operator’s token, and not with an auditor’s', async () => {
    const show = (token: string, timeout: string) =>
      promisify(execFile)(
        findTemporalCli(process.env.TEMPORAL_CLI_PATH),
        [
          'workflow',
          'show',
          '--address',
          inject('temporalAddress'),
          '--namespace',
          inject('temporalNamespace'),
          '--workflow-id',
          grantWorkflowId(id.tenantA, grantId),
          '--codec-endpoint',
          `${stack.baseUrl}/v1/codec`,
          '--codec-auth',
          `Bearer ${token}`,
          '--output',
          'json',
          '--command-timeout',
          timeout,
        ],
        { maxBuffer: 32 * 1024 * 1024 },
      ).then(
        ({ stdout }) => ({ ok: true, stdout }),
        (error: { stdout?: string; stderr?: string }) => ({ ok: false, stdout: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
      );
    // Its JSON shows each payload as it came back from the codec: data in base64.
    const dataIn = (output: string) =>
      [...output.matchAll(/"data": "([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1]!, 'base64').toString('utf8')).join('\n');
    const operator = await show(id.tokens.operator!, '60s');
    expect(operator.ok).toBe(true);
    expect(dataIn(operator.stdout)).toContain(SECRETS.justification);
    expect(dataIn(operator.stdout)).toContain(SECRETS.approval);
    // Refused by the codec endpoint, the CLI gives up (at the latest when its command times out).
    const auditor = await show(id.tokens.mspAuditor!, '5s');
    expect(auditor.ok).toBe(false);
    expect(dataIn(auditor.stdout)).not.toContain(SECRETS.justification);
  });
});
