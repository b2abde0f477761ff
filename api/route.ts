import type { RouteConfig, ZodMediaTypeObject } from '@asteasolutions/zod-to-openapi';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { z } from 'zod';
import type { Authority } from '../core/audit/chain.js';
import { badRequest, notFound } from '../core/errors.js';
import { unstorableText } from '../core/unstorable.js';
import { canSeeTenant, type Permission, type Principal } from '../core/tenancy/authz.js';
import type { ActionContext } from '../core/audit/context.js';
import { actionContext, authorityFrom, authorizeMsp, authorizeTenant, principalOf } from './auth.js';
import { ErrorBody, requestIdOf } from './errors.js';
import type { OpenAPIRegistry } from './openapi.js';
import { parse } from './validate.js';

/**
 * One declaration per endpoint: the helper registers the express handler, validates every part
 * of the request (400 with field paths), authorizes, builds the audit authority and documents
 * the endpoint from the same object, so the OpenAPI document cannot disagree with the server.
 */

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type Schema = z.ZodType | undefined;
type Out<S extends Schema> = S extends z.ZodType ? z.output<S> : undefined;

/** Who may call the endpoint. Every form except `public` needs an authenticated caller (401). */
export type Access<P, S> =
  /** No authentication (operational endpoints). */
  | { public: true }
  /** Any authenticated caller; the use case filters what it returns by the caller's standing. */
  | { caller: true }
  /** An MSP-wide permission: only MSP-wide bindings count. */
  | { msp: Permission }
  /** A permission in the tenant of `params.tenantId`; no standing there is the same 404 as "absent". */
  | { tenant: Permission; hiddenAs?: string }
  /** A rule that needs more than a permission (e.g. the tenant policy or the object itself). */
  | { check: (req: Request, params: P) => Promise<Granted<S>> | Granted<S>; forbidden: string; hidden?: boolean };

/** What a custom check found: the audit authority and whatever it loaded on the way. */
export interface Granted<S> {
  authority?: Authority;
  state: S;
}

export interface Reply {
  description: string;
  /** JSON body, or other media types (e.g. a stream) when `content` is given. */
  schema?: z.ZodType;
  content?: Record<string, ZodMediaTypeObject>;
  headers?: z.ZodObject;
}

export interface RouteContext<P, Q, B, H, S> {
  req: Request;
  res: Response;
  params: P;
  query: Q;
  body: B;
  headers: H;
  principal: Principal;
  /** The bindings and request id that allowed this call, for its audit events. */
  authority: Authority;
  /** Who is acting, and on which authority, for the use case's audit events. */
  actor: () => ActionContext;
  state: S;
}

export interface RouteSpec<P extends Schema, Q extends Schema, B extends Schema, H extends Schema, S> {
  method: Method;
  /** OpenAPI form, e.g. `/v1/tenants/{tenantId}`. */
  path: string;
  summary: string;
  description?: string;
  params?: P;
  query?: Q;
  body?: B;
  headers?: H;
  /** A missing body is read as `{}` (every field of `body` is optional). */
  bodyOptional?: boolean;
  access: Access<Out<P>, S>;
  /** Success answers by status. */
  responses: Record<number, Reply>;
  /** Error answers beyond those the declaration implies (400, 401, 403, 404), with their meaning. */
  errors?: Partial<Record<404 | 409, string>>;
  /**
   * Reads the body after authorization and before validation, for a body the app-wide JSON parser
   * does not read (e.g. CSV); `documentedBody` then says what it accepts.
   */
  readBody?: RequestHandler;
  documentedBody?: Record<string, ZodMediaTypeObject>;
  /**
   * The handler refuses unstorable text row by row (a bulk import reports such a row as failed),
   * so one bad row does not refuse the whole body.
   */
  bodyCheckedPerRow?: boolean;
  handler: (ctx: RouteContext<Out<P>, Out<Q>, Out<B>, Out<H>, S>) => Promise<void> | void;
}

const errorContent = { 'application/json': { schema: ErrorBody } };
const reply = (r: Reply) => ({
  description: r.description,
  ...(r.headers ? { headers: r.headers } : {}),
  ...(r.content ? { content: r.content } : r.schema ? { content: { 'application/json': { schema: r.schema } } } : {}),
});

function authorize<P, S>(req: Request, access: Access<P, S>, params: P): Promise<Granted<S>> | Granted<S> | { authority?: Authority } {
  if ('public' in access || 'caller' in access) return {};
  if ('msp' in access) return { authority: authorizeMsp(req, access.msp) };
  if ('tenant' in access) {
    const { tenantId } = params as { tenantId: string };
    return { authority: authorizeTenant(req, access.tenant, tenantId, access.hiddenAs) };
  }
  return access.check(req, params);
}

/**
 * PostgreSQL cannot store U+0000 or a lone UTF-16 surrogate, so one anywhere in the query or body
 * is the caller's error (400 naming the field), never a failed insert (500).
 */
function refuseUnstorable(value: unknown, path: string): void {
  const issues = unstorableText(value, path);
  if (issues.length) throw badRequest('Text may not contain NUL (U+0000) or a lone UTF-16 surrogate.', issues);
}

/** The same 404 for "absent" and "not yours", for checks that load the object first. */
export function hiddenUnlessStanding(req: Request, tenantId: string, what: string): void {
  if (!canSeeTenant(principalOf(req), tenantId)) throw notFound(what);
}

export interface RouteSet {
  router: Router;
  route: <P extends Schema, Q extends Schema, B extends Schema, H extends Schema, S = undefined>(spec: RouteSpec<P, Q, B, H, S>) => void;
}

/** A router whose endpoints are each declared once and documented under `tag`. */
export function routeSet(registry: OpenAPIRegistry, tag: string): RouteSet {
  const router = Router();
  const paths: string[] = [];
  // Express tries every layer of every router in turn; a request for none of this set's paths
  // leaves the router after one test (`next('router')`) instead of being matched against each.
  let only: RegExp | null | undefined;
  router.use((req, _res, next) => {
    // Built on first use, once every route is declared; null (no shortcut) when the router holds
    // more than its declared routes or is mounted below the root, where req.path is not the full path.
    only ??= router.stack.length === paths.length + 1 ? pathPattern(paths) : null;
    if (only && req.baseUrl === '' && !only.test(req.path)) next('router');
    else next();
  });
  const route: RouteSet['route'] = (spec) => {
    paths.push(spec.path);
    const open = 'public' in spec.access;
    const permission = 'msp' in spec.access ? spec.access.msp : 'tenant' in spec.access ? spec.access.tenant : undefined;
    const hasInput = Boolean(spec.params || spec.query || spec.body || spec.headers || spec.documentedBody);
    const mayBeHidden = Boolean(spec.errors?.[404]) || 'tenant' in spec.access || ('check' in spec.access && spec.access.hidden === true);
    const responses: RouteConfig['responses'] = {};
    for (const [status, r] of Object.entries(spec.responses)) responses[status] = reply(r);
    if (hasInput) responses[400] = { description: 'Invalid input; `issues` names each offending field.', content: errorContent };
    if (!open) responses[401] = { description: 'No valid bearer token.', content: errorContent };
    if (permission || 'check' in spec.access) {
      const why = 'check' in spec.access ? spec.access.forbidden : `Requires \`${permission}\`.`;
      responses[403] = { description: `Authenticated, but not allowed. ${why}`, content: errorContent };
    }
    if (mayBeHidden)
      responses[404] = {
        description: spec.errors?.[404] ?? 'Not found, or in a tenant where the caller has no standing (the same answer).',
        content: errorContent,
      };
    if (spec.errors?.[409]) responses[409] = { description: spec.errors[409], content: errorContent };
    const request: NonNullable<RouteConfig['request']> = {};
    if (spec.params) request.params = spec.params as never;
    if (spec.query) request.query = spec.query as never;
    if (spec.headers) request.headers = spec.headers as never;
    if (spec.body) request.body = { required: !spec.bodyOptional, content: { 'application/json': { schema: spec.body } } };
    else if (spec.documentedBody) request.body = { required: true, content: spec.documentedBody };
    registry.registerPath({
      method: spec.method,
      path: spec.path,
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      tags: [tag],
      ...(open ? {} : { security: [{ bearer: [] }] }),
      ...(Object.keys(request).length ? { request } : {}),
      responses,
    });

    // Authorized before any body is validated (or, with `readBody`, read), so a caller without
    // standing learns nothing from the validation errors and cannot make us parse megabytes.
    const gate: RequestHandler = async (req, res, next) => {
      const params = spec.params ? parse(spec.params, req.params, 'params') : undefined;
      const granted = await authorize(req, spec.access, params as never);
      res.locals.route = { params, granted };
      next();
    };
    const handle: RequestHandler = async (req, res) => {
      const { params, granted } = res.locals.route as { params: unknown; granted: Granted<unknown> };
      refuseUnstorable(req.query, 'query');
      if (!spec.bodyCheckedPerRow) refuseUnstorable(req.body, 'body');
      const headers = spec.headers ? parse(spec.headers, req.headers, 'headers') : undefined;
      const query = spec.query ? parse(spec.query, req.query, 'query') : undefined;
      const body = spec.body ? parse(spec.body, spec.bodyOptional ? (req.body ?? {}) : req.body, 'body') : undefined;
      const authority = granted.authority ?? authorityFrom(req, []);
      await spec.handler({
        req,
        res,
        params: params as never,
        query: query as never,
        body: body as never,
        headers: headers as never,
        principal: open ? (undefined as never) : principalOf(req),
        authority,
        actor: () => actionContext(req, authority),
        state: granted.state as never,
      });
    };
    const expressPath = spec.path.replace(/\{(\w+)\}/g, ':$1');
    router[spec.method](expressPath, gate, ...(spec.readBody ? [spec.readBody] : []), handle);
  };
  return { router, route };
}

/**
 * One pattern for OpenAPI-form paths (`/v1/tenants/{tenantId}`), at least as permissive as Express's
 * own matching of them (any case, an optional trailing slash, a parameter being any segment).
 */
function pathPattern(paths: string[]): RegExp {
  const one = (path: string) => path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]+');
  return new RegExp(`^(?:${paths.map(one).join('|')})/?$`, 'i');
}

/**
 * A documented path asked with a method it does not have: 405 with the methods it does have,
 * instead of the 404 for an unknown path. Built from the OpenAPI registry, the one list of routes.
 */
export function methodNotAllowed(registry: OpenAPIRegistry): RequestHandler {
  let table: { pattern: RegExp; allow: string[] }[] | undefined;
  const build = () => {
    const byPath = new Map<string, Set<string>>();
    for (const def of registry.definitions) {
      if (def.type !== 'route') continue;
      const methods = byPath.get(def.route.path) ?? new Set<string>();
      methods.add(def.route.method.toUpperCase());
      if (def.route.method === 'get') methods.add('HEAD');
      byPath.set(def.route.path, methods);
    }
    return [...byPath].map(([path, methods]) => ({
      pattern: new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]+')}/?$`),
      allow: [...methods],
    }));
  };
  return (req, res, next) => {
    table ??= build();
    const allowed = new Set(table.filter((entry) => entry.pattern.test(req.path)).flatMap((entry) => entry.allow));
    if (allowed.size === 0) return next();
    const allow = [...allowed].sort().join(', ');
    res.setHeader('Allow', allow);
    res.status(405).json({
      error: { code: 'method_not_allowed', message: `${req.method} is not allowed here; use ${allow}.`, requestId: requestIdOf(req) },
    });
  };
}
