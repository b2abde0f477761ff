import * as oauth from 'oauth4webapi';
import type { components } from '../api/schema';
import type { StoredSession } from './token-store';

export type OidcSettings = NonNullable<components['schemas']['ConsoleConfig']['oidc']>;

/**
 * Sign-in with the organisation's OIDC provider: Authorization Code with PKCE, the console being a
 * public client (no secret). The verifier and state wait in this tab's sessionStorage between the
 * redirect out and the redirect back; the access token then becomes the console's session.
 */
const PENDING = 'tenure.console.oidc';

interface Pending {
  verifier: string;
  state: string;
  nonce: string;
  /** The console page to return to after signing in. */
  returnTo: string;
}

const redirectUri = (settings: OidcSettings) => new URL(settings.redirectPath, window.location.origin).href;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * oauth4webapi talks HTTPS only. Plain HTTP is allowed for a provider on this machine's loopback
 * address alone (a development or test provider): nothing on that path crosses a network.
 */
function requestOptions(settings: OidcSettings): { [oauth.allowInsecureRequests]?: boolean } {
  const issuer = new URL(settings.issuer);
  return issuer.protocol === 'http:' && LOOPBACK_HOSTS.has(issuer.hostname) ? { [oauth.allowInsecureRequests]: true } : {};
}

async function authorizationServer(settings: OidcSettings): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(settings.issuer);
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...requestOptions(settings) }));
}

/** Leaves for the provider's sign-in page. */
export async function startOidcSignIn(settings: OidcSettings, returnTo: string): Promise<void> {
  const as = await authorizationServer(settings);
  if (!as.authorization_endpoint) throw new Error('The identity provider names no authorization endpoint.');
  const pending: Pending = {
    verifier: oauth.generateRandomCodeVerifier(),
    state: oauth.generateRandomState(),
    nonce: oauth.generateRandomNonce(),
    returnTo,
  };
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('client_id', settings.clientId);
  url.searchParams.set('redirect_uri', redirectUri(settings));
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', settings.scopes);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(pending.verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('state', pending.state);
  url.searchParams.set('nonce', pending.nonce);
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  window.location.assign(url.href);
}

/**
 * Back from the provider: checks the state, trades the code and the verifier for an access token.
 * The code leaves the address bar at once, whatever the outcome.
 */
export async function completeOidcSignIn(settings: OidcSettings): Promise<{ session: StoredSession; returnTo: string }> {
  const callback = new URL(window.location.href);
  window.history.replaceState(null, '', '/console/');
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  if (!raw) throw new Error('This sign-in was not started from this tab. Start again.');
  const pending = JSON.parse(raw) as Pending;
  const as = await authorizationServer(settings);
  const client: oauth.Client = { client_id: settings.clientId };
  const params = oauth.validateAuthResponse(as, client, callback, pending.state);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.None(),
    params,
    redirectUri(settings),
    pending.verifier,
    requestOptions(settings),
  );
  const result = await oauth.processAuthorizationCodeResponse(as, client, response, {
    expectedNonce: settings.scopes.split(' ').includes('openid') ? pending.nonce : oauth.expectNoNonce,
  });
  const expiresAt = result.expires_in ? Date.now() + result.expires_in * 1000 : undefined;
  return {
    session: { token: result.access_token, method: 'oidc', ...(expiresAt ? { expiresAt } : {}) },
    returnTo: pending.returnTo,
  };
}

/** Whether this page load is the provider's redirect back. */
export function isOidcCallback(settings: OidcSettings | null | undefined): boolean {
  return Boolean(settings) && window.location.pathname === settings!.redirectPath;
}
