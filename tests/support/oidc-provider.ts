import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';

/**
 * A real OpenID provider on 127.0.0.1 (panva's certified `oidc-provider`) for browser tests of the
 * console's sign-in. Its own login and consent pages (the library's development interactions:
 * any password is accepted, the login name is the subject). One public client, PKCE S256 only,
 * whose access tokens are JWTs for one resource: the API's audience.
 */
export interface TestOidcProvider {
  issuer: string;
  jwksUrl: string;
  /** Every request the provider answered (method and URL), to check what went through it. */
  requests: string[];
  stop(): Promise<void>;
}

export interface TestOidcProviderOptions {
  clientId: string;
  redirectUri: string;
  /** The resource indicator whose access tokens the API accepts (`aud`), e.g. OIDC_AUDIENCE. */
  audience: string;
  /** The scope the resource grants, which the console asks for. */
  apiScope: string;
  /** Login name (the subject) → display name; other login names are refused. */
  accounts: Record<string, string>;
}

export async function startOidcProvider(options: TestOidcProviderOptions): Promise<TestOidcProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'test-rs256', alg: 'RS256', use: 'sig' };
  const clientOrigin = new URL(options.redirectUri).origin;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: options.clientId,
        token_endpoint_auth_method: 'none',
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    claims: { openid: ['sub'], profile: ['name'] },
    scopes: ['openid', 'profile'],
    findAccount: (_ctx, sub) => {
      const name = options.accounts[sub];
      if (name === undefined) return undefined;
      return { accountId: sub, claims: () => ({ sub, name }) };
    },
    // Only the console's own origin may call the token endpoint from a browser.
    clientBasedCORS: (_ctx, origin) => origin === clientOrigin,
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => options.audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== options.audience) throw new errors.InvalidTarget();
          return {
            scope: options.apiScope,
            audience: options.audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  const requests: string[] = [];
  const handle = provider.callback();
  server.on('request', (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    void handle(req, res);
  });

  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
