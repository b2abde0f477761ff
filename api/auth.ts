import type { Request, RequestHandler } from 'express';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Authority } from '../core/audit/chain.js';
import { allowingBindings, canSeeTenant, type Binding, type Permission, type Principal } from '../core/tenancy/authz.js';
import type { Config } from '../core/config.js';
import { principalFrom, type PrincipalSource } from './principals.js';
import { API_TOKEN_PREFIX, hashApiToken } from '../core/tenancy/tokens.js';
import { requestIdOf } from './errors.js';
import type { ActionContext } from '../core/audit/context.js';
import { forbidden, notFound, unauthorized } from '../core/errors.js';

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

async function principalFromApiToken(principals: PrincipalSource, token: string): Promise<Principal> {
  const principal = principalFrom(await principals.lookup({ tokenHash: hashApiToken(token) }), 'api_token');
  // One message for unknown, revoked and expired tokens: a caller learns nothing from it.
  if (!principal) throw unauthorized('The token is invalid, expired or revoked.');
  await principals.used(principal.tokenId!);
  return principal;
}

export interface OidcSettings {
  issuer: string;
  audience: string;
  /** Besides the audience, the clients a token's `azp` may name. */
  clientIds: string[];
  jwks: JWTVerifyGetKey;
  clockToleranceSeconds: number;
}

/**
 * Asymmetric algorithms only: with an HMAC algorithm allowed, anyone holding the issuer's public
 * key material (or a confused JWKS) could mint tokens; `none` is never accepted by jose anyway.
 */
export const OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** Access tokens per RFC 9068 say `at+jwt`; many providers say `JWT`. Anything else (an ID token's `id+jwt`, …) is refused. */
const ACCEPTED_TYPES = new Set(['jwt', 'at+jwt', 'application/at+jwt']);

export function oidcFromConfig(
  config: Pick<Config, 'OIDC_ISSUER' | 'OIDC_AUDIENCE' | 'OIDC_CLIENT_IDS' | 'OIDC_JWKS_URL' | 'AUTH_CLOCK_SKEW_SECONDS'> &
    Partial<Pick<Config, 'OIDC_CONSOLE_CLIENT_ID'>>,
): OidcSettings | undefined {
  if (!config.OIDC_ISSUER || !config.OIDC_JWKS_URL) return undefined;
  // loadConfig refuses this already; a hand-built config must not fall back to "any audience".
  if (!config.OIDC_AUDIENCE) throw new Error('OIDC needs OIDC_AUDIENCE, the `aud` this API expects in bearer tokens');
  return {
    issuer: config.OIDC_ISSUER,
    audience: config.OIDC_AUDIENCE,
    // The console's own client signs people in with PKCE; its access tokens name it in `azp`.
    clientIds: [...new Set([...config.OIDC_CLIENT_IDS, ...(config.OIDC_CONSOLE_CLIENT_ID ? [config.OIDC_CONSOLE_CLIENT_ID] : [])])],
    jwks: createRemoteJWKSet(new URL(config.OIDC_JWKS_URL), { cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 }),
    clockToleranceSeconds: config.AUTH_CLOCK_SKEW_SECONDS,
  };
}

async function principalFromJwt(principals: PrincipalSource, oidc: OidcSettings, token: string): Promise<Principal> {
  let subject: string | undefined;
  try {
    const { payload, protectedHeader } = await jwtVerify(token, oidc.jwks, {
      issuer: oidc.issuer,
      audience: oidc.audience,
      algorithms: OIDC_ALGORITHMS,
      clockTolerance: oidc.clockToleranceSeconds,
      requiredClaims: ['sub', 'exp'],
    });
    if (protectedHeader.typ !== undefined && !ACCEPTED_TYPES.has(protectedHeader.typ.toLowerCase())) {
      throw unauthorized('The bearer token is not valid.');
    }
    // `azp` names the client the token was issued to: one issued to another application is not ours.
    const azp = payload.azp;
    if (azp !== undefined && (typeof azp !== 'string' || (azp !== oidc.audience && !oidc.clientIds.includes(azp)))) {
      throw unauthorized('The bearer token is not valid.');
    }
    subject = payload.sub;
  } catch (error) {
    if (error instanceof joseErrors.JOSEError) throw unauthorized('The bearer token is not valid.');
    throw error; // e.g. the JWKS endpoint is unreachable: our problem, not the caller's
  }
  const principal = principalFrom(await principals.lookup({ oidcSubject: subject! }), 'oidc');
  if (!principal) throw unauthorized('The bearer token is not valid.');
  return principal;
}

/** Every /v1 route: a valid API token or OIDC bearer token, or 401 before anything else runs. */
export function authenticate(principals: PrincipalSource, oidc: OidcSettings | undefined): RequestHandler {
  return async (req, res, next) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer ([A-Za-z0-9._~+/=-]{10,4096})$/.exec(header) : null;
    if (!match) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw unauthorized('Send an API token or an OIDC access token as `Authorization: Bearer <token>`.');
    }
    const token = match[1]!;
    res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
    if (token.startsWith(API_TOKEN_PREFIX)) req.principal = await principalFromApiToken(principals, token);
    else if (oidc && token.split('.').length === 3) req.principal = await principalFromJwt(principals, oidc, token);
    else throw unauthorized('The bearer token is not valid.');
    res.removeHeader('WWW-Authenticate');
    req.log = req.log.child({ actorId: req.principal.actorId });
    next();
  };
}

export function principalOf(req: Request): Principal {
  if (!req.principal) throw unauthorized('Not authenticated.');
  return req.principal;
}

/** The audit authority: which bindings allowed the call, and the request it came in. */
export function authorityFrom(req: Request, bindings: Binding[]): Authority {
  return {
    roles: [...new Set(bindings.map((b) => b.role))].sort(),
    bindingIds: bindings.map((b) => b.id).sort(),
    requestId: requestIdOf(req),
  };
}

/**
 * Authorises an action in one tenant. A caller with no standing in the tenant gets the same 404
 * as for an object that does not exist; one with standing but the wrong role gets 403.
 */
export function authorizeTenant(req: Request, permission: Permission, tenantId: string, hiddenAs = 'tenant'): Authority {
  const principal = principalOf(req);
  if (!canSeeTenant(principal, tenantId)) throw notFound(hiddenAs);
  const bindings = allowingBindings(principal, permission, tenantId);
  if (bindings.length === 0) throw forbidden(`Your roles do not allow ${permission} in this tenant.`);
  return authorityFrom(req, bindings);
}

/** Authorises an MSP-wide action: only MSP-wide bindings count. */
export function authorizeMsp(req: Request, permission: Permission): Authority {
  const bindings = allowingBindings(principalOf(req), permission, null);
  if (bindings.length === 0) throw forbidden(`Your roles do not allow ${permission}.`);
  return authorityFrom(req, bindings);
}

/** Who is acting, and on which authority, for the audit events of an API write. */
export function actionContext(req: Request, authority: Authority): ActionContext {
  const principal = principalOf(req);
  return { actor: { id: principal.actorId, type: principal.kind === 'service_account' ? 'service' : 'user' }, authority };
}
