import type { Router } from 'express';
import { z } from 'zod';
import { notFound } from '../../core/errors.js';
import type { Config } from '../../core/config.js';
import type { OpenAPIRegistry } from '../openapi.js';
import { routeSet } from '../route.js';

/** A demo actor the console may sign in as: only ever the seeded demo MSP's, never in production. */
export interface DemoActor {
  key: string;
  displayName: string;
  /** e.g. `tenant_approver@contoso`, as `npm start` prints them. */
  roles: string;
  token: string;
}

/** How people sign in to the console; each mode is off unless given. */
export interface ConsoleSignIn {
  /** The demo MSP's actors (`npm start` with DEMO_SEED, outside production). */
  demo?: DemoActor[];
  /** The organisation's OIDC provider: the console is a public client using Authorization Code with PKCE. */
  oidc?: { issuer: string; clientId: string; scopes: string };
}

/**
 * The sign-in modes a deployment offers: the demo picker only with the demo seeded and never in
 * production; OIDC once the console has a client id at the provider.
 */
export function consoleSignInFrom(
  config: Pick<Config, 'NODE_ENV' | 'OIDC_ISSUER' | 'OIDC_CONSOLE_CLIENT_ID' | 'OIDC_CONSOLE_SCOPES'>,
  demo: DemoActor[] | undefined,
): ConsoleSignIn {
  return {
    ...(demo?.length && config.NODE_ENV !== 'production' ? { demo } : {}),
    ...(config.OIDC_ISSUER && config.OIDC_CONSOLE_CLIENT_ID
      ? { oidc: { issuer: config.OIDC_ISSUER, clientId: config.OIDC_CONSOLE_CLIENT_ID, scopes: config.OIDC_CONSOLE_SCOPES } }
      : {}),
  };
}

export const OIDC_CALLBACK_PATH = '/console/oidc/callback';
/** Endpoints under /console that are not pages: the page fallback leaves them alone (another method is a 405). */
export const CONSOLE_API_PATHS: ReadonlySet<string> = new Set(['/console/config.json', '/console/demo-sign-in']);

const ConsoleConfig = z
  .object({
    modes: z.array(z.enum(['token', 'demo', 'oidc'])),
    demo: z.object({ actors: z.array(z.object({ key: z.string(), displayName: z.string(), roles: z.string() })) }).nullable(),
    oidc: z.object({ issuer: z.string(), clientId: z.string(), scopes: z.string(), redirectPath: z.string() }).nullable(),
  })
  .meta({ id: 'ConsoleConfig' });

const DemoSignInBody = z.strictObject({ actor: z.string().min(1).max(100) }).meta({ id: 'DemoSignIn' });
const DemoSession = z.object({ token: z.string(), displayName: z.string() }).meta({ id: 'DemoSession' });

/**
 * What the console's sign-in page needs before anyone is signed in: which modes exist, and the demo
 * picker's own sign-in. Public, like the page itself; the demo one answers 404 unless the demo is on.
 */
export function consoleSessionRoutes(signIn: ConsoleSignIn, registry: OpenAPIRegistry): Router {
  const { router, route } = routeSet(registry, 'console');
  // Read per request: a test stack fills the list once its cast exists.
  const demoActors = () => (signIn.demo?.length ? signIn.demo : undefined);

  route({
    method: 'get',
    path: '/console/config.json',
    summary: 'The console’s sign-in modes: an API token always; the demo picker and OIDC (PKCE) when configured',
    access: { public: true },
    responses: { 200: { description: 'The modes and what each needs.', schema: ConsoleConfig } },
    handler: ({ res }) => {
      const demo = demoActors();
      res.set('Cache-Control', 'no-store').json({
        modes: ['token', ...(demo ? (['demo'] as const) : []), ...(signIn.oidc ? (['oidc'] as const) : [])],
        demo: demo ? { actors: demo.map(({ key, displayName, roles }) => ({ key, displayName, roles })) } : null,
        oidc: signIn.oidc ? { ...signIn.oidc, redirectPath: OIDC_CALLBACK_PATH } : null,
      });
    },
  });

  // Off means absent: 404 before the body is validated, whatever it holds.
  router.post('/console/demo-sign-in', (_req, _res, next) => {
    next(demoActors() ? undefined : notFound('demo sign-in'));
  });
  route({
    method: 'post',
    path: '/console/demo-sign-in',
    summary: 'Sign in to the console as one of the demo MSP’s actors (demo only: 404 in production or without the demo seed)',
    description:
      'Hands out the demo actor’s API token, which the console keeps in the tab’s sessionStorage. Exists only while ' +
      '`npm start` runs with its demo seed outside production; the token never appears in a URL or a log.',
    body: DemoSignInBody,
    access: { public: true },
    responses: { 200: { description: 'The demo actor’s token.', schema: DemoSession } },
    errors: { 404: 'The demo is off (production, or no demo seed), or there is no such demo actor.' },
    handler: ({ res, body }) => {
      const actor = demoActors()?.find((a) => a.key === body.actor);
      if (!actor) throw notFound('demo actor');
      res.set('Cache-Control', 'no-store').json({ token: actor.token, displayName: actor.displayName });
    },
  });

  return router;
}
