import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/** `json`: one JSON object per line (log shippers, production). `pretty`: one readable, coloured line for a person at a terminal. */
export type LogFormat = 'json' | 'pretty';

/**
 * LOG_FORMAT=json|pretty as asked; `auto` is pretty on a terminal outside production and JSON
 * everywhere else (a pipe, a file, a container, NODE_ENV=production).
 */
export function resolveLogFormat(
  setting: 'json' | 'pretty' | 'auto',
  nodeEnv: string,
  stdout: { isTTY?: boolean } = process.stdout,
): LogFormat {
  if (setting !== 'auto') return setting;
  return stdout.isTTY && nodeEnv !== 'production' ? 'pretty' : 'json';
}

/** pino-http's request log as one line: `GET /v1/tenants 200 12ms`, then its message. */
function messageFormat(log: Record<string, unknown>, messageKey: string): string {
  const req = log.req as { method?: string; url?: string } | undefined;
  const res = log.res as { statusCode?: number } | undefined;
  const text = log[messageKey];
  const message = typeof text === 'string' ? text : '';
  if (!req?.method) return message;
  const took = typeof log.responseTime === 'number' ? ` ${log.responseTime}ms` : '';
  return `${req.method} ${req.url} ${res?.statusCode ?? ''}${took}${message === 'request completed' ? '' : ` ${message}`}`;
}

/** Log lines on stdout; `component` tells api, worker and the embedded services apart. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}, format: LogFormat = 'json'): Logger {
  const options = {
    level,
    base: { service: 'tenure', ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (format === 'json') return pino({ ...options, formatters: { level: (label) => ({ level: label }) } });
  return pino(
    options,
    pretty({
      sync: true,
      // Colour as pino-pretty decides: on a terminal, unless NO_COLOR; FORCE_COLOR forces it.
      translateTime: 'SYS:HH:MM:ss.l',
      // The request's headers stay in the JSON format; here a request is one line (with its reqId, which
      // error bodies quote). A process has one role, named in the banner.
      ignore: 'pid,hostname,service,role,req,res,responseTime',
      singleLine: true,
      messageFormat,
    }),
  );
}
