import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemContext } from '../../core/audit/context.js';
import type { DemoActor } from '../../api/routes/console-session.js';
import { createCast, DEMO_CAST, seedDemoGrants, type Cast } from '../../runtime/demo.js';
import { builtConsole, launchBrowser, screenshot, seriousA11yViolations } from '../support/browser.js';
import { apiClient } from '../support/http.js';
import { startTestStack, type TestStack } from '../support/stack.js';

/**
 * The console on the real stack (API, Temporal, worker, PostgreSQL) in a real Chromium, one browser
 * context per persona: the operator asks for GlobalAdmin in Contoso, Contoso's approver approves it
 * from the inbox, the operator's grant page turns active by itself and is revoked; Fabrikam's
 * approver never sees it. Every page visited passes axe's serious/critical rules.
 */
let stack: TestStack;
let browser: Browser;
let cast: Cast;
const demoActors: DemoActor[] = [];
const call = apiClient(() => stack.baseUrl);
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  const dir = await builtConsole();
  stack = await startTestStack({ console: { dir, signIn: { demo: demoActors } } });
  cast = await createCast(stack.pool, systemContext('console test cast'), DEMO_CAST);
  await seedDemoGrants(stack.pool, cast, stack.directory);
  for (const [key, actor] of Object.entries(cast.actors)) {
    demoActors.push({
      key,
      displayName: actor.displayName,
      roles: actor.roles.map((r) => `${r.role}${r.tenant ? `@${r.tenant}` : ''}`).join(', '),
      token: actor.token,
    });
  }
  browser = await launchBrowser();
}, 400_000);

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  await stack?.stop();
});

async function persona(width = 1280, height = 900): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height } });
  contexts.push(context);
  return context.newPage();
}

async function expectAccessible(page: Page, name: string): Promise<void> {
  await screenshot(page, name);
  expect(await seriousA11yViolations(page), name).toEqual([]);
}

async function noHorizontalOverflow(page: Page): Promise<boolean> {
  return page.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth');
}

/** Opens the console and signs in through the demo picker as `key`'s actor. */
async function signInAs(page: Page, key: string, path = ''): Promise<void> {
  await page.goto(`${stack.baseUrl}/console/${path}`);
  const actor = cast.actors[key]!;
  await page.getByRole('button', { name: actor.displayName }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

describe('console: a grant from request to revocation, one browser context per persona', () => {
  let grantPath = '';
  let grantId = '';
  let operator: Page;
  const contoso = () => cast.tenants.contoso!.id;

  it('signs in through the demo picker; the token stays out of the URL; sign-in and home pages are accessible', async () => {
    operator = await persona();
    await operator.goto(`${stack.baseUrl}/console/`);
    await operator.getByRole('heading', { name: 'Demo: sign in as …' }).waitFor();
    await expectAccessible(operator, 'sign-in');
    await operator.getByRole('button', { name: cast.actors['msp-operator']!.displayName }).click();
    await operator.getByRole('heading', { name: /^Welcome/ }).waitFor();
    expect(operator.url()).not.toContain(cast.actors['msp-operator']!.token);
    await expectAccessible(operator, 'operator-home');
  });

  it('the request form knows the policy and shows the API’s refusal next to the ticket field', async () => {
    await operator.getByRole('link', { name: 'Request access' }).first().click();
    await operator.getByLabel('Tenant').selectOption({ label: 'Contoso Ltd' });
    // The roles this operator may request, from Contoso's grant policy.
    await operator.getByRole('option', { name: /^GlobalAdmin \(up to 240 min/ }).waitFor({ state: 'attached' });
    await operator.getByLabel('Role').selectOption('GlobalAdmin');
    await expect(operator.locator('#duration-hint').textContent()).resolves.toContain('1 to 240 minutes');
    await expect(operator.locator('#ticket-hint').textContent()).resolves.toContain('INC-\\d+');
    await operator.getByLabel('Account (directory user id)').fill('ana.lima');
    await operator.getByLabel('Duration (minutes)').fill('60');
    await operator.getByLabel('Justification').fill('Console test: rotate the break-glass certificate');
    await operator.getByLabel('Ticket').fill('CHG-7');
    await operator.getByRole('button', { name: 'Request access' }).click();
    const ticketError = operator.locator('#ticket-hint-error');
    await ticketError.waitFor();
    expect(await operator.getByLabel('Ticket').getAttribute('aria-describedby')).toContain('ticket-hint-error');
    await expectAccessible(operator, 'request-refused');

    await operator.getByLabel('Ticket').fill('INC-4711');
    await operator.getByRole('button', { name: 'Request access' }).click();
    await operator.waitForURL(/\/console\/grants\/[0-9a-f-]{36}\/[0-9a-f-]{36}$/);
    grantPath = new URL(operator.url()).pathname;
    grantId = grantPath.split('/').at(-1)!;
    await expect(operator.getByTestId('grant-status').textContent()).resolves.toBe('pending approval');
    await expectAccessible(operator, 'grant-pending');
  });

  it('Fabrikam’s approver sees nothing of it, and a Contoso grant URL is "not found"', async () => {
    const fabrikam = await persona();
    await signInAs(fabrikam, 'fabrikam-approver', 'inbox');
    await fabrikam.getByRole('heading', { name: 'Fabrikam Inc' }).waitFor();
    await fabrikam.getByText('Nothing waits for you').waitFor();
    expect(await fabrikam.getByText('GlobalAdmin for ana.lima').count()).toBe(0);
    expect(await fabrikam.getByRole('heading', { name: 'Contoso Ltd' }).count()).toBe(0);
    await expectAccessible(fabrikam, 'inbox-empty');
    await fabrikam.goto(`${stack.baseUrl}${grantPath}`);
    await fabrikam.getByText('Grant not found').waitFor();
    expect(await fabrikam.getByText('INC-4711').count()).toBe(0);
    await expectAccessible(fabrikam, 'grant-not-found');
  });

  it('Contoso’s approver sees who asked, what, for how long, why and the ticket, and approves with a comment', async () => {
    const approver = await persona();
    await signInAs(approver, 'contoso-approver', 'inbox');
    const entry = approver.getByRole('listitem').filter({ has: approver.getByRole('link', { name: 'GlobalAdmin for ana.lima' }) });
    await entry.waitFor();
    const text = await entry.textContent();
    expect(text).toContain('Grant request');
    expect(text).toContain('60 min');
    expect(text).toContain('Console test: rotate the break-glass certificate');
    expect(text).toContain('INC-4711');
    await entry.getByText(cast.actors['msp-operator']!.displayName).waitFor();
    await expectAccessible(approver, 'inbox');
    await entry.getByLabel(/^Comment/).fill('OK for the change window');
    await entry.getByRole('button', { name: 'Approve' }).click();
    await approver.getByText(/^Approved: grant request “GlobalAdmin for ana\.lima” — /).waitFor();
    await approver.getByText('GlobalAdmin for ana.lima', { exact: true }).waitFor({ state: 'detached' });
    await screenshot(approver, 'inbox-approved');
  });

  it('the operator’s grant page turns active without a reload, counts down, and ends when revoked', async () => {
    const navigations: string[] = [];
    operator.on('framenavigated', (frame) => {
      if (frame === operator.mainFrame()) navigations.push(frame.url());
    });
    await operator.getByTestId('grant-status').getByText('active', { exact: true }).waitFor({ timeout: 30_000 });
    await operator.getByRole('timer').waitFor();
    expect(navigations).toEqual([]);
    await expectAccessible(operator, 'grant-active');
    await operator.getByRole('button', { name: 'Revoke now' }).click();
    await operator.getByTestId('grant-status').getByText('ended', { exact: true }).waitFor({ timeout: 30_000 });
    await operator.getByText(/Ended: it was revoked/).waitFor();
    expect(navigations).toEqual([]);
    await expectAccessible(operator, 'grant-ended');
  });

  it('My grants lists it; at 390 px wide pages do not scroll sideways and stay accessible', async () => {
    await operator.getByRole('link', { name: 'My grants' }).first().click();
    const row = operator.getByRole('row').filter({ hasText: 'ana.lima' });
    await row.waitFor();
    expect(await row.textContent()).toContain('ended');
    await expectAccessible(operator, 'my-grants');

    const narrow = await persona(390, 844);
    await signInAs(narrow, 'msp-operator', 'grants');
    await narrow.getByRole('row').filter({ hasText: 'ana.lima' }).waitFor();
    expect(await noHorizontalOverflow(narrow)).toBe(true);
    await expectAccessible(narrow, 'my-grants-390');
    await narrow.goto(`${stack.baseUrl}${grantPath}`);
    await narrow.getByTestId('grant-status').waitFor();
    expect(await noHorizontalOverflow(narrow)).toBe(true);
    await expectAccessible(narrow, 'grant-390');
    await narrow.goto(`${stack.baseUrl}/console/request-access`);
    await narrow.getByLabel('Tenant').waitFor();
    expect(await noHorizontalOverflow(narrow)).toBe(true);
    await expectAccessible(narrow, 'request-390');
    const approver = await persona(390, 844);
    await signInAs(approver, 'contoso-approver', 'inbox');
    await approver.getByRole('heading', { name: 'Contoso Ltd' }).waitFor();
    expect(await noHorizontalOverflow(approver)).toBe(true);
    await expectAccessible(approver, 'inbox-390');
  });

  it('the auditor finds the grant’s events on an intact Contoso chain (checked through the API)', async () => {
    const auditor = cast.actors['msp-auditor']!.token;
    const events = await call(auditor, 'GET', `/v1/audit/${contoso()}/events?targetId=${grantId}&limit=100`);
    expect(events.status).toBe(200);
    const actions = (events.body.events as { action: string }[]).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['grant.requested', 'grant.approved', 'grant.activated', 'grant.revoked']));
    const verify = await call(auditor, 'GET', `/v1/audit/${contoso()}/verify`);
    expect(verify.body).toMatchObject({ intact: true, firstBadSeq: null });
  });

  it('signing out forgets the session and returns to sign-in', async () => {
    await operator.getByRole('button', { name: 'Sign out' }).click();
    await operator.getByRole('heading', { name: 'Sign in to Tenure' }).waitFor();
    expect(await operator.evaluate<number>('sessionStorage.length')).toBe(0);
    await operator.reload();
    await operator.getByRole('heading', { name: 'Sign in to Tenure' }).waitFor();
  });
});
