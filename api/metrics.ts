import type { RequestHandler } from 'express';
import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DirectoryHealth } from '../core/directory/connector.js';

export interface HttpMetrics {
  registry: Registry;
  middleware: RequestHandler;
}

/**
 * Request counts and latency by method, matched route (not raw path, to bound cardinality) and
 * status; and each tenant's target directory as its last call found it.
 */
export function createHttpMetrics(options: { directoryHealth?: () => DirectoryHealth[] } = {}): HttpMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tenure_api_' });
  const directoryHealth = options.directoryHealth;
  if (directoryHealth) {
    const labelNames = ['tenant_id', 'target'] as const;
    // Each gauge reads the health when scraped, so the two always agree with the registry.
    const gauge = (name: string, help: string, value: (h: DirectoryHealth) => number) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset();
          for (const h of directoryHealth()) this.set({ tenant_id: h.tenantId, target: h.target }, value(h));
        },
      });
    gauge(
      'tenure_directory_up',
      "1 when this process's last call to the tenant's target directory reached it; 0 when the target was unreachable or its secret could not be read",
      (h) => (h.up ? 1 : 0),
    );
    gauge(
      'tenure_directory_last_call_timestamp_seconds',
      "When this process last called the tenant's target directory (Unix time)",
      (h) => Date.parse(h.at) / 1000,
    );
  }
  const duration = new Histogram({
    name: 'tenure_http_request_duration_seconds',
    help: 'HTTP request duration in seconds',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const middleware: RequestHandler = (req, res, next) => {
    const end = duration.startTimer();
    res.once('finish', () => {
      const matched = req.route as { path?: unknown } | undefined;
      const route = matched ? `${req.baseUrl}${String(matched.path)}` : 'unmatched';
      end({ method: req.method, route, status_code: String(res.statusCode) });
    });
    next();
  };
  return { registry, middleware };
}
