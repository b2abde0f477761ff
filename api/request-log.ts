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

/** What a request carries for its log: set once per request, read by the accessor and the listener below. */
interface LogState {
  logger: Logger;
  id: string;
  started: number;
  log?: Logger;
  extra?: Record<string, unknown>;
}
const STATE = Symbol('request log');
type WithState = IncomingMessage & { [STATE]?: LogState };

const levelOf = (res: ServerResponse, error: unknown): Level =>
  error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info';

/** When the response is done (finished, closed or failed): one line, if its level is enabled. */
function completed(this: ServerResponse & { req: WithState }, error?: unknown): void {
  this.off('close', completed);
  this.off('finish', completed);
  this.off('error', completed);
  const req = this.req;
  const state = req[STATE]!;
  const level = levelOf(this, error);
  if (!state.logger.isLevelEnabled(level)) return;
  const line = state.logger.child({ reqId: state.id }).child({ req });
  const responseTime = Date.now() - state.started;
  if (error || this.statusCode >= 500) {
    line[level]({ res: this, err: error ?? new Error(`failed with status code ${this.statusCode}`), responseTime }, 'request errored');
  } else {
    const message = !req.readableAborted && this.writableEnded ? 'request completed' : 'request aborted';
    line[level]({ res: this, responseTime }, message);
  }
}

/**
 * `req.log` on the app's request prototype, so a request pays for its logger only when it logs
 * (and defining it per request would cost more than the rest of this middleware).
 */
function installLogAccessor(prototype: object): void {
  if (Object.prototype.hasOwnProperty.call(prototype, 'log')) return;
  Object.defineProperty(prototype, 'log', {
    configurable: true,
    get(this: WithState) {
      const state = this[STATE];
      if (!state) return undefined;
      return (state.log ??= state.logger.child(state.extra ? { reqId: state.id, ...state.extra } : { reqId: state.id }));
    },
    set(this: WithState, value: Logger) {
      const state = this[STATE];
      if (state) state.log = value;
      else Object.defineProperty(this, 'log', { value, writable: true, configurable: true, enumerable: true });
    },
  });
}

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
    installLogAccessor(Object.getPrototypeOf(req) as object);
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    req.id = id;
    (req as WithState)[STATE] = { logger, id, started: Date.now() };
    if (!options.ignore(req)) {
      res.on('close', completed);
      res.on('finish', completed);
      res.on('error', completed);
    }
    next();
  };
}

/** Adds bindings (e.g. the actor) to `req.log`, without making the logger before it is used. */
export function bindRequestLog(req: Request, bindings: Record<string, unknown>): void {
  const state = (req as WithState)[STATE];
  if (!state) req.log = req.log.child(bindings);
  else if (state.log) state.log = state.log.child(bindings);
  else state.extra = { ...state.extra, ...bindings };
}
