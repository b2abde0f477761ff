import { createRequire } from 'node:module';
import type { ProxyTracerProvider } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import type { WorkerTracing } from '../worker/worker.js';

/**
 * OpenTelemetry for one process: the Node SDK with the HTTP and PostgreSQL instrumentations, and
 * Temporal's interceptors, so one request is one trace from the API through the Temporal client,
 * the workflow and its activities down to their SQL. Configured by the standard OTEL_* variables
 * and off unless they ask for traces: when off, nothing of it is even loaded.
 */
export interface Tracing {
  /** Put first on every Temporal client: starts, signals and updates carry the caller's trace. */
  workflowClientInterceptors: WorkflowClientInterceptor[];
  /** What a worker adds (activity spans, the workflow span sink); its bundle must be `tracing: true`. */
  worker: WorkerTracing;
  /** Exports what is still buffered. */
  flush(): Promise<void>;
  /** Flushes and stops; instrumentations stay patched but record nothing. */
  shutdown(): Promise<void>;
}

let active: Tracing | undefined;

/** The tracing this process started, if any. */
export function activeTracing(): Tracing | undefined {
  return active;
}

/**
 * Whether the OTEL_* variables ask for traces: an exporter other than `none` in
 * OTEL_TRACES_EXPORTER, or an OTLP endpoint; OTEL_SDK_DISABLED=true wins over both.
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (exporters.includes('none')) return false;
  return exporters.length > 0 || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Probes and metric scrapes would be most of the traces and say nothing. */
const UNTRACED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** The CommonJS modules the instrumentations patch (their prototypes, so objects made earlier are covered too). */
const INSTRUMENTED_MODULES = ['http', 'https', 'pg', 'pg-pool'];

export interface StartTracingOptions {
  /** Span processors to use instead of the ones OTEL_TRACES_EXPORTER names (tests: an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
  serviceVersion?: string;
}

/**
 * Starts the OpenTelemetry Node SDK for this process (once). The SDK reads the exporter, endpoint,
 * headers, sampler, service name and resource attributes from the standard OTEL_* variables.
 */
export async function startTracing(options: StartTracingOptions = {}): Promise<Tracing> {
  if (active) return active;
  const [{ trace }, { NodeSDK }, { HttpInstrumentation }, { PgInstrumentation }, otelTemporal] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-pg'),
    import('@temporalio/interceptors-opentelemetry'),
  ]);
  const { Resource: ResourceClass } = await import('@opentelemetry/resources');
  const sdk = new NodeSDK({
    resource: new ResourceClass({
      'service.name': process.env.OTEL_SERVICE_NAME ?? 'tenure',
      ...(options.serviceVersion ? { 'service.version': options.serviceVersion } : {}),
    }),
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
    // Traces only: the service's metrics are on /metrics, its logs on stdout.
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.has((request.url ?? '').split('?')[0] ?? ''),
      }),
      // Statements are recorded without their parameters (tenant data stays out of traces).
      new PgInstrumentation({ enhancedDatabaseReporting: false }),
    ],
  });
  sdk.start();
  // This project is ESM: its imports of these modules did not pass through `require`, where the
  // instrumentations hook in. Requiring them now patches the same module objects in place.
  const require = createRequire(import.meta.url);
  for (const name of INSTRUMENTED_MODULES) require(name);

  // The workflow spans are made inside the sandbox and leave it through a sink, to the same
  // processor and resource as every other span of this process.
  const provider = (trace.getTracerProvider() as ProxyTracerProvider).getDelegate() as unknown as {
    getActiveSpanProcessor(): SpanProcessor;
    resource: Resource;
  };
  const processor = provider.getActiveSpanProcessor();
  active = {
    workflowClientInterceptors: [new otelTemporal.OpenTelemetryWorkflowClientInterceptor()],
    worker: {
      interceptors: {
        activity: [
          (ctx) => ({
            inbound: new otelTemporal.OpenTelemetryActivityInboundInterceptor(ctx),
            outbound: new otelTemporal.OpenTelemetryActivityOutboundInterceptor(ctx),
          }),
        ],
      },
      workflowClientInterceptors: [new otelTemporal.OpenTelemetryWorkflowClientInterceptor()],
      sinks: { exporter: otelTemporal.makeWorkflowExporter(processor, provider.resource) },
    },
    flush: () => processor.forceFlush(),
    async shutdown() {
      active = undefined;
      await sdk.shutdown();
    },
  };
  return active;
}
