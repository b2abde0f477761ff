import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantWorkflowId } from '../core/grants/contract.js';
import { startTracing, tracingRequested, type Tracing } from '../runtime/tracing.js';
import { apiClient } from './support/http.js';
import { eventually, startTestStack, type TestStack } from './support/stack.js';
import { seedTenancy, setPolicy, type TestTenancy } from './support/tenancy.js';

/** OpenTelemetry: one request is one trace, from the API through the workflow and its activities to PostgreSQL. */
const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let stack: TestStack;
let id: TestTenancy;
const call = apiClient(() => stack.baseUrl);

beforeAll(async () => {
  tracing = await startTracing({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  stack = await startTestStack({ tracing });
  id = await seedTenancy(stack.pool);
  await stack.directory.upsertRole(id.tenantA, { name: 'HelpdeskAdmin' });
  await stack.directory.upsertUser(id.tenantA, { id: 'dana', username: 'dana', displayName: 'Dana' });
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
    expectedVersion: 1,
    document: { grants: { roles: { HelpdeskAdmin: { maxDurationMinutes: 30, approvalsRequired: 0 } }, justificationRequired: false } },
  });
  expect(approval?.body.status).toBe('applied');
});
afterAll(async () => {
  await stack?.stop();
  await tracing?.shutdown();
});

/** The chain of parents of `span` within `spans`, nearest first. */
function ancestors(span: ReadableSpan, spans: ReadableSpan[]): ReadableSpan[] {
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  const chain: ReadableSpan[] = [];
  for (
    let parent = span.parentSpanId && byId.get(span.parentSpanId);
    parent;
    parent = parent.parentSpanId && byId.get(parent.parentSpanId)
  ) {
    chain.push(parent);
  }
  return chain;
}

describe('tracing', () => {
  it('is off unless the OTEL_* variables ask for traces', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true);
  });

  it('follows one grant request as one trace: API, Temporal client, workflow, activities and their SQL', async () => {
    exporter.reset();
    const created = await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantA}/grants`, {
      subjectId: 'dana',
      role: 'HelpdeskAdmin',
      endAt: new Date(Date.now() + 4000).toISOString(),
    });
    expect(created.status).toBe(201);
    const grantId = created.body.grantId as string;
    const workflowId = grantWorkflowId(id.tenantA, grantId);
    // The workflow's own span ends with the workflow: the grant runs to its expiry, seconds away.
    await eventually(
      async () => (await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}/grants/${grantId}`)).body.status as string,
      (status) => status === 'ended',
      60_000,
    );
    // Spans made inside the workflow carry its info (workflowId); activity spans carry temporalWorkflowId.
    const ofWorkflow = (span: ReadableSpan) =>
      span.attributes.workflowId === workflowId || span.attributes.temporalWorkflowId === workflowId;
    await eventually(
      async () => {
        await tracing.flush();
        return exporter.getFinishedSpans().filter((s) => s.name === 'RunWorkflow:grantWorkflow' && ofWorkflow(s));
      },
      (spans) => spans.length === 1,
      30_000,
    );
    const spans = exporter.getFinishedSpans();
    const request = spans.find(
      (s) =>
        s.kind === SpanKind.SERVER && s.attributes['http.method'] === 'POST' && String(s.attributes['http.target']).endsWith(`/grants`),
    );
    expect(request, 'the POST …/grants server span').toBeDefined();
    const traceId = request!.spanContext().traceId;

    // Every span Temporal made for this workflow belongs to the request's trace: one trace, not several.
    const temporalSpans = spans.filter(ofWorkflow);
    expect(new Set(temporalSpans.map((s) => s.spanContext().traceId))).toEqual(new Set([traceId]));
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    const names = inTrace.map((s) => s.name);
    expect(names).toContain('StartWorkflow:grantWorkflow');
    expect(names).toContain('RunWorkflow:grantWorkflow');
    // Activation and the expiry (its record, removal and read-back in one activity), each
    // scheduled by the workflow and run by the worker.
    for (const activity of ['grantAccess', 'endGrantAccess']) {
      expect(names).toContain(`StartActivity:${activity}`);
      expect(names).toContain(`RunActivity:${activity}`);
    }

    // The activities' statements are spans too, under their activity.
    const activityStatements = inTrace.filter(
      (s) => s.attributes['db.system'] === 'postgresql' && ancestors(s, inTrace).some((a) => a.name.startsWith('RunActivity:')),
    );
    expect(activityStatements.length).toBeGreaterThan(0);
    // …and every span of the trace hangs from the request's span.
    for (const span of inTrace) if (span !== request) expect(ancestors(span, inTrace)).toContain(request);
  });
});
