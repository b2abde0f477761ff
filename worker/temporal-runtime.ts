import type { LogLevel, LogMetadata } from '@temporalio/common';
import { Runtime, type Logger as TemporalLogger } from '@temporalio/worker';
import type { Logger } from 'pino';

let installed: { metricsAddress: string | undefined } | undefined;

/** The SDK's logger interface, backed by our pino logger so its lines are JSON too. */
function temporalLogger(logger: Logger): TemporalLogger {
  const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace',
    DEBUG: 'debug',
    INFO: 'info',
    WARN: 'warn',
    ERROR: 'error',
  };
  const log = (level: LogLevel, message: string, meta?: LogMetadata) => logger[levels[level]](meta ?? {}, message);
  return {
    log,
    trace: (m, meta) => log('TRACE', m, meta),
    debug: (m, meta) => log('DEBUG', m, meta),
    info: (m, meta) => log('INFO', m, meta),
    warn: (m, meta) => log('WARN', m, meta),
    error: (m, meta) => log('ERROR', m, meta),
  };
}

/**
 * Installs the Temporal runtime once per process: SDK logs through our logger, the runtime's
 * Prometheus metrics on `metricsBindAddress`, and no signal handlers of its own, because Tenure
 * shuts its parts down in order itself.
 */
export function installTemporalRuntime(logger: Logger, metricsBindAddress?: string): { metricsAddress: string | undefined } {
  if (installed) return installed;
  Runtime.install({
    logger: temporalLogger(logger.child({ component: 'temporal-sdk' })),
    shutdownSignals: [],
    telemetryOptions: {
      logging: { forward: {}, filter: 'WARN' },
      ...(metricsBindAddress ? { metrics: { prometheus: { bindAddress: metricsBindAddress } } } : {}),
    },
  });
  installed = { metricsAddress: metricsBindAddress };
  return installed;
}
