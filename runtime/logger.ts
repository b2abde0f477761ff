import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines on stdout; `component` tells api, worker and the embedded services apart. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { service: 'tenure', ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
