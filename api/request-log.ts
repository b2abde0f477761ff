import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler } from 'express';
import { pino, type Level, type Logger } from 'pino';

declare module 'node:http' {
  interface IncomingMessage {
    /** The request id: the caller's `X-Request-Id` when well-formed, else a new UUID. */
    id: string;
    /** A logger bound to the request id (and, once authenticated, the actor); made on first use. */
    log: Logger;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface RequestLogOptions {
  /** Requests not logged when they complete (they still get an id and `req.log`). */
  ignore: (req: IncomingMessage) => boolean;
  /** Paths (pino redaction syntax) never written, e.g. `req.headers.authorization`. */
  redact: string[];
  /** Rewrites a request as logged (after pino's standard request serializer). */
  serializeRequest?: (req: ReturnType<typeof pino.stdSerializers.req>) => unknown;
}

const levelOf = (res: ServerResponse, error: unknown): Level =>
  error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info';

/**
 * Every request's id (`X-Request-Id`), `req.log`, and one line when it completes: what pino-http
 * wrote here before (the same fields, messages and levels: info, warn for 4xx, error for 5xx), but
 * paying for a request's loggers only when something is written. pino-http makes two child
 * loggers per request, serialising and redacting the whole request, before it knows whether the
 * level is enabled; under load that was a third of what `/healthz` cost.
 */
export function requestLogging(base: Logger, options: RequestLogOptions): RequestHandler {
  const custom = options.serializeRequest;
  const logger = base.child(
    {},
    {
      serializers: {
        req: custom ? pino.stdSerializers.wrapRequestSerializer(custom as never) : pino.stdSerializers.req,
        res: pino.stdSerializers.res,
        err: pino.stdSerializers.err,
      },
      redact: { paths: options.redact, censor: '[redacted]' },
    },
  );
  return (req, res, next) => {
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    req.id = id;
    let log: Logger | undefined;
    let extra: Record<string, unknown> | undefined;
    Object.defineProperty(req, 'log', {
      configurable: true,
      enumerable: true,
      get: () => (log ??= logger.child(extra ? { reqId: id, ...extra } : { reqId: id })),
      set: (value: Logger) => (log = value),
    });
    (req as RequestWithBindings)[BIND] = (bindings) => {
      if (log) log = log.child(bindings);
      else extra = { ...extra, ...bindings };
    };
    if (!options.ignore(req)) {
      const started = Date.now();
      const done = (error?: unknown) => {
        res.off('close', done);
        res.off('finish', done);
        res.off('error', done);
        const level = levelOf(res, error);
        if (!logger.isLevelEnabled(level)) return;
        const line = logger.child({ reqId: id }).child({ req });
        const responseTime = Date.now() - started;
        if (error || res.statusCode >= 500) {
          const err = error ?? new Error(`failed with status code ${res.statusCode}`);
          line[level]({ res, err, responseTime }, 'request errored');
        } else {
          line[level]({ res, responseTime }, !req.readableAborted && res.writableEnded ? 'request completed' : 'request aborted');
        }
      };
      res.on('close', done);
      res.on('finish', done);
      res.on('error', done);
    }
    next();
  };
}

const BIND = Symbol('bind request log');
type RequestWithBindings = Request & { [BIND]?: (bindings: Record<string, unknown>) => void };

/** Adds bindings (e.g. the actor) to `req.log`, without making the logger before it is used. */
export function bindRequestLog(req: Request, bindings: Record<string, unknown>): void {
  const bind = (req as RequestWithBindings)[BIND];
  if (bind) bind(bindings);
  else req.log = req.log.child(bindings);
}
