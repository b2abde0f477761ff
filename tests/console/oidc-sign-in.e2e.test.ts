import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oidcFromConfig } from '../../api/auth.js';
import { createApp } from '../../api/app.js';
import { consoleSignInFrom, OIDC_CALLBACK_PATH } from '../../api/routes/console-session.js';
import { loadConfig } from '../../core/config.js';
import { builtConsole, launchBrowser, screenshot, seriousA11yViolations } from '../support/browser.js';
import { apiClient, bodyOf } from '../support/http.js';
import { startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { apiDepsOf, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, type TestTenancy } from '../support/tenancy.js';

/**
 * The console's "Sign in with your organisation" against a real OpenID provider on 127.0.0.1
 * (tests/support/oidc-provider.ts): Authorization Code with PKCE in a real Chromium, the provider's
 * own login and consent pages, its JWT access token accepted by the API for the actor whose
 * `oidcSubject` is the account. No token may show in any URL the browser asked for, nor in the
 * API's logs (captured at debug level); a tampered or orphaned callback says what went wrong.
 */
const CLIENT_ID = 'tenure-console';
const AUDIENCE = 'urn:tenure:api';
const API_SCOPE = 'tenure.access';
const SUBJECT = 'olga@idp.test';
const DISPLAY_NAME = 'Olga OIDC';
const SESSION_KEY = 'tenure.console.session';

let stack: TestStack;
let tenancy: TestTenancy;
let idp: TestOidcProvider;
let server: Server;
let baseUrl = '';
let browser: Browser;
const logLines: string[] = [];
const contexts: BrowserContext[] = [];
const call = apiClient(() => baseUrl);

beforeAll(async () => {
  const dir = await builtConsole();
  stack = await startTestStack();
  tenancy = await seedTenancy(stack.pool);
  // The API's address first: the provider needs the console's redirect URI, the API the issuer.
  server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  idp = await startOidcProvider({
    clientId: CLIENT_ID,
    redirectUri: `${baseUrl}${OIDC_CALLBACK_PATH}`,
    audience: AUDIENCE,
    apiScope: API_SCOPE,
    accounts: { [SUBJECT]: DISPLAY_NAME },
  });
  const config = loadConfig({
    OIDC_ISSUER: idp.issuer,
    OIDC_AUDIENCE: AUDIENCE,
    OIDC_JWKS_URL: idp.jwksUrl,
    OIDC_CONSOLE_CLIENT_ID: CLIENT_ID,
    OIDC_CONSOLE_SCOPES: `openid profile ${API_SCOPE}`,
  });
  // Every line the API logs, at debug level, to look for tokens in afterwards.
  const logger = pino({ level: 'debug', base: { service: 'tenure' } }, { write: (line: string) => void logLines.push(line) });
  const app = createApp({
    ...apiDepsOf(stack, { config, logger }),
    oidc: oidcFromConfig(config),
    console: { dir, connectOrigins: [new URL(idp.issuer).origin], signIn: consoleSignInFrom({ ...config, NODE_ENV: 'test' }, undefined) },
  });
  server.on('request', app);
  const admin = tenancy.tokens.mspAdmin!;
  const actor = bodyOf(
    await call(admin, 'POST', '/v1/actors', { kind: 'msp_staff', displayName: DISPLAY_NAME, oidcSubject: SUBJECT }),
    201,
  );
  bodyOf(await call(admin, 'POST', '/v1/role-bindings', { actorId: actor.id, role: 'operator', tenantId: null }), 201);
  browser = await launchBrowser();
}, 400_000);

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  if (server) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await idp?.stop();
  await stack?.stop();
});

/** A fresh browser context that records every URL it requests or navigates to. */
async function freshPage(visited: string[]): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  context.on('request', (request) => void visited.push(request.url()));
  page.on('framenavigated', (frame) => void visited.push(frame.url()));
  return page;
}

async function expectAccessible(page: Page, name: string): Promise<void> {
  await screenshot(page, name);
  expect(await seriousA11yViolations(page), name).toEqual([]);
}

const JWT = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}/;

describe('console: sign-in with a real OpenID provider (Authorization Code with PKCE)', () => {
  it('signs in on the provider’s pages, lands signed in as the mapped actor, calls the API, signs out; no token in any URL or log', async () => {
    const visited: string[] = [];
    const page = await freshPage(visited);
    await page.goto(`${baseUrl}/console/`);
    const start = page.getByRole('button', { name: 'Sign in with your organisation' });
    await start.waitFor();
    await expectAccessible(page, 'oidc-sign-in');
    await start.click();

    // The provider's own login page, then its consent page.
    await page.waitForURL((url) => url.origin === idp.issuer);
    await page.locator('input[name="login"]').fill(SUBJECT);
    await page.locator('input[name="password"]').fill('any password');
    await page.locator('button[type="submit"]').click();
    await page.getByRole('button', { name: /continue/i }).click();

    // Back in the console, signed in as the actor whose oidcSubject is the account.
    await page.getByRole('heading', { name: `Welcome, ${DISPLAY_NAME}` }).waitFor();
    expect(new URL(page.url()).search).toBe('');
    await expectAccessible(page, 'oidc-signed-in');
    const session = JSON.parse((await page.evaluate<string | null>(`sessionStorage.getItem('${SESSION_KEY}')`)) ?? '{}') as {
      token?: string;
      method?: string;
    };
    expect(session.method).toBe('oidc');
    expect(session.token).toMatch(JWT);
    const token = session.token!;
    expect(await page.evaluate<number>('sessionStorage.length')).toBe(1); // the PKCE verifier is gone

    // An API page: the operator's grants, through the OIDC access token.
    const tenantsCall = page.waitForResponse((response) => new URL(response.url()).pathname.startsWith('/v1/tenants'));
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'My grants' }).click();
    expect((await tenantsCall).status()).toBe(200);
    await page.getByRole('heading', { name: 'My grants' }).waitFor();
    expect(await page.getByRole('alert').count()).toBe(0);

    // The provider was really used: an authorization with PKCE S256, a code traded at its token endpoint.
    expect(idp.requests.some((r) => r.startsWith('GET /auth?') && r.includes('code_challenge_method=S256'))).toBe(true);
    expect(idp.requests.some((r) => r.startsWith('POST /token'))).toBe(true);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in with your organisation' }).waitFor();
    expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);

    // Neither the access token nor any other JWT (the ID token) in a URL the browser asked for, nor in the API's logs.
    expect(visited.length).toBeGreaterThan(5);
    expect(visited.filter((url) => url.includes(token) || JWT.test(url) || /(access|id|refresh)_token=/.test(url))).toEqual([]);
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.filter((line) => line.includes(token) || JWT.test(line))).toEqual([]);
    // The authorization code did pass through a URL (the flow's redirect back), but never into a log.
    const callback = visited.map((url) => new URL(url)).find((url) => url.pathname === OIDC_CALLBACK_PATH && url.searchParams.has('code'));
    const code = callback?.searchParams.get('code');
    expect(code).toBeTruthy();
    expect(logLines.some((line) => line.includes(OIDC_CALLBACK_PATH))).toBe(true);
    expect(logLines.filter((line) => line.includes(code!))).toEqual([]);
  });

  it('refuses a callback whose state was tampered with, saying so, and drops the code from the address bar', async () => {
    const page = await freshPage([]);
    await page.goto(`${baseUrl}/console/`);
    await page.getByRole('button', { name: 'Sign in with your organisation' }).click();
    await page.waitForURL((url) => url.origin === idp.issuer);
    // Back at the callback with a state this tab never sent (the verifier waits in sessionStorage).
    await page.goto(`${baseUrl}${OIDC_CALLBACK_PATH}?code=forged-code&state=tampered&iss=${encodeURIComponent(idp.issuer)}`);
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/did not complete/);
    expect(await alert.textContent()).toMatch(/state/i);
    expect(new URL(page.url()).search).toBe('');
    expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
    await page.getByRole('button', { name: 'Sign in with your organisation' }).waitFor();
    await expectAccessible(page, 'oidc-callback-tampered-state');
  });

  it('refuses a callback this tab never started (no code verifier), saying so', async () => {
    const page = await freshPage([]);
    await page.goto(`${baseUrl}${OIDC_CALLBACK_PATH}?code=some-code&state=some-state`);
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/not started from this tab/);
    expect(new URL(page.url()).search).toBe('');
    await expectAccessible(page, 'oidc-callback-no-verifier');
  });
});
