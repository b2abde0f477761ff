import { describe, expect, it } from 'vitest';
import { consoleSignInFrom, type DemoActor } from '../../api/routes/console-session.js';

const demo: DemoActor[] = [{ key: 'msp-admin', displayName: 'Alice Admin', roles: 'msp_admin', token: 'tnr_demo' }];
const base = { NODE_ENV: 'development', OIDC_ISSUER: undefined, OIDC_CONSOLE_CLIENT_ID: undefined, OIDC_CONSOLE_SCOPES: 'openid' } as const;

describe('console sign-in modes from the configuration', () => {
  it('offers the demo picker when the demo is seeded outside production', () => {
    expect(consoleSignInFrom(base, demo)).toEqual({ demo });
  });

  it('never offers the demo picker in production, even with the demo seeded', () => {
    expect(consoleSignInFrom({ ...base, NODE_ENV: 'production' }, demo)).toEqual({});
  });

  it('offers no demo picker without a demo seed', () => {
    expect(consoleSignInFrom(base, undefined)).toEqual({});
    expect(consoleSignInFrom(base, [])).toEqual({});
  });

  it('offers OIDC only once the console has its own client id', () => {
    const issuer = 'https://login.example/tenant';
    expect(consoleSignInFrom({ ...base, OIDC_ISSUER: issuer }, undefined)).toEqual({});
    expect(
      consoleSignInFrom(
        { ...base, OIDC_ISSUER: issuer, OIDC_CONSOLE_CLIENT_ID: 'tenure-console', OIDC_CONSOLE_SCOPES: 'openid api://tenure/access' },
        undefined,
      ),
    ).toEqual({
      oidc: { issuer, clientId: 'tenure-console', scopes: 'openid api://tenure/access' },
    });
  });
});
