import { readFile } from 'node:fs/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemContext } from '../../core/audit/context.js';
import { createCast, DEMO_CAST, seedDemoGrants, type Cast } from '../../runtime/demo.js';
import { builtConsole, launchBrowser, screenshot, seriousA11yViolations } from '../support/browser.js';
import { apiClient, bodyOf, type Json } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { mspStaff } from '../support/tenancy.js';

/**
 * The operator, reviewer and auditor pages of the console in a real browser against the real
 * stack (API, worker, Temporal, PostgreSQL) seeded as the demo MSP: each persona signs in with
 * its own token in its own browser context, and every page is checked with axe and at 390 px.
 */
let stack: TestStack;
let cast: Cast;
let browser: Browser;
const call = apiClient(() => stack.baseUrl);
const SLOW = 120_000;
const contexts: BrowserContext[] = [];

const tenant = (slug: string) => cast.tenants[slug]!.id;
const token = (key: string) => cast.actors[key]!.token;

/** A signed-in page for one persona: the token where the console's token store keeps it. */
async function signedIn(key: string, width = 1280): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height: 900 }, acceptDownloads: true });
  contexts.push(context);
  // Strings, not functions, for what runs in the page: the Node-side typecheck has no DOM types.
  const session = JSON.stringify({ token: token(key), method: 'demo' });
  await context.addInitScript(`sessionStorage.setItem('tenure.console.session', ${JSON.stringify(session)})`);
  return context.newPage();
}

async function open(page: Page, path: string): Promise<void> {
  await page.goto(`${stack.baseUrl}/console/${path}`);
  await page.getByRole('heading', { level: 1 }).first().waitFor();
}

/** One tenant's row of GET /v1/overview, as the MSP operator reads it. */
async function overviewOf(slug: string): Promise<Json> {
  const { tenants } = bodyOf(await call(token('msp-operator'), 'GET', '/v1/overview'));
  return (tenants as Json[]).find((t) => t.slug === slug)!;
}

/** No serious or critical axe violation, and nothing wider than the viewport (tables scroll inside their own box). */
async function checkPage(page: Page): Promise<void> {
  expect(await seriousA11yViolations(page)).toEqual([]);
  const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
  expect(overflow).toBeLessThanOrEqual(0);
}

/** The same page at a phone's width. */
async function checkNarrow(key: string, path: string, ready: (page: Page) => Promise<unknown>): Promise<Page> {
  const page = await signedIn(key, 390);
  await open(page, path);
  await ready(page);
  await checkPage(page);
  return page;
}

beforeAll(async () => {
  const consoleDir = await builtConsole();
  stack = await startTestStack({ console: { dir: consoleDir } });
  cast = await createCast(stack.pool, systemContext('console pages test'), DEMO_CAST);
  await seedDemoGrants(stack.pool, cast, stack.directory);
  browser = await launchBrowser();
}, 400_000);

afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  await stack?.stop();
});

describe('the MSP overview', () => {
  it('counts a pending and an active grant in Contoso and nothing in Fabrikam, and refuses tenant roles', async () => {
    const contoso = tenant('contoso');
    const operator = token('msp-operator');
    // GlobalAdmin needs one approval (pending); HelpdeskAdmin none (active once the workflow activates it).
    const pending = bodyOf(
      await call(operator, 'POST', `/v1/tenants/${contoso}/grants`, {
        subjectId: 'ana.lima',
        role: 'GlobalAdmin',
        durationMinutes: 60,
        ticket: 'INC-100',
        justification: 'console test',
      }),
      201,
    );
    const active = bodyOf(
      await call(operator, 'POST', `/v1/tenants/${contoso}/grants`, {
        subjectId: 'ben.okafor',
        role: 'HelpdeskAdmin',
        durationMinutes: 60,
        ticket: 'INC-101',
        justification: 'console test',
      }),
      201,
    );
    await eventually(
      async () => bodyOf(await call(operator, 'GET', `/v1/tenants/${contoso}/grants/${active.grantId}`)).status,
      (status) => status === 'active',
      SLOW,
    );
    expect(bodyOf(await call(operator, 'GET', `/v1/tenants/${contoso}/grants/${pending.grantId}`)).status).toBe('pending_approval');
    expect((await call(token('contoso-approver'), 'GET', '/v1/overview')).status).toBe(403);

    const page = await signedIn('msp-operator');
    await open(page, 'overview');
    const row = (slug: string, count: string) => page.locator(`tr[data-tenant="${slug}"] td[data-count="${count}"]`);
    await expect.poll(() => row('contoso', 'pending').innerText()).toMatch(/^1\b/);
    expect(await row('contoso', 'active').innerText()).toBe('1');
    expect(await row('fabrikam', 'pending').innerText()).toBe('0');
    expect(await row('fabrikam', 'active').innerText()).toBe('0');
    // Standing privilege comes from each target; once read, it is a number for both tenants.
    await expect.poll(() => row('fabrikam', 'standing').innerText(), { timeout: 30_000 }).toMatch(/^\d+$/);
    await checkPage(page);
    await screenshot(page, 'console-overview');

    // The active count links to the tenant's active grants.
    await page.getByRole('link', { name: /Active grants in Contoso/ }).click();
    await page.getByRole('heading', { name: 'Grants: active' }).waitFor();
    await expect.poll(() => page.getByRole('region', { name: 'Grants Active' }).innerText()).toContain('ben.okafor');

    await checkNarrow('msp-operator', 'overview', (p) => p.locator('tr[data-tenant="contoso"]').waitFor());
  });
});

describe('people', () => {
  it('finds a joiner and shows their lifecycle events and audit trail on their timeline', async () => {
    const contoso = tenant('contoso');
    bodyOf(
      await call(token('contoso-hr-feed'), 'POST', `/v1/tenants/${contoso}/hr-events`, {
        eventId: 'dana-join-1',
        personId: 'dana.ruiz',
        type: 'joiner',
        effectiveAt: new Date(Date.now() - 60_000).toISOString(),
        attributes: { department: 'Finance' },
        profile: { username: 'dana.ruiz', displayName: 'Dana Ruiz', email: 'dana.ruiz@contoso.example' },
      }),
      202,
    );
    await eventually(
      async () => bodyOf(await call(token('msp-operator'), 'GET', `/v1/tenants/${contoso}/people/dana.ruiz`)).person.status,
      (status) => status === 'active',
      SLOW,
    );

    const page = await signedIn('msp-operator');
    await open(page, `people/${contoso}`);
    const searchBox = page.getByLabel('Search by name, id or email');
    // A search is in the address; back takes the box (and the list) to the one before it.
    await searchBox.fill('nobody-by-this-name');
    await expect.poll(() => new URL(page.url()).searchParams.get('q')).toBe('nobody-by-this-name');
    await searchBox.fill('dana');
    await expect.poll(() => new URL(page.url()).searchParams.get('q')).toBe('dana');
    await page.goBack();
    await expect.poll(() => new URL(page.url()).searchParams.get('q')).toBe('nobody-by-this-name');
    await expect.poll(() => searchBox.inputValue()).toBe('nobody-by-this-name');
    await expect.poll(() => page.getByRole('link', { name: 'Dana Ruiz' }).count()).toBe(0);
    await searchBox.fill('dana');
    await page.getByRole('link', { name: 'Dana Ruiz' }).click();
    await page.getByRole('heading', { name: 'Dana Ruiz' }).waitFor();
    const rows = page.getByRole('region', { name: 'Timeline' }).locator('tbody tr');
    await expect.poll(() => rows.count()).toBeGreaterThan(1);
    await expect.poll(() => page.locator('tr[data-kind="lifecycle"]').innerText()).toContain('HR joiner');
    expect(await page.locator('tr[data-kind="audit"]').count()).toBeGreaterThan(0);
    expect(await page.locator('.facts').innerText()).toContain('FinanceReaders');
    // The kind filter leaves only lifecycle events.
    await page.getByLabel('Kind').selectOption('lifecycle');
    expect(await page.locator('tr[data-kind="audit"]').count()).toBe(0);
    await checkPage(page);
    await screenshot(page, 'console-person-timeline');

    await checkNarrow('msp-operator', `people/${contoso}/dana.ruiz`, (p) => p.locator('tr[data-kind]').first().waitFor());
  });
});

describe('reviews and evidence', () => {
  let runId: string;

  it('lets the tenant reviewer decide one item by keyboard and accept the recommendations for the rest', async () => {
    const contoso = tenant('contoso');
    const operator = token('msp-operator');
    // Privileged access given outside Tenure, beside the active grant: three items to review.
    await stack.directory.assignRole(contoso, 'chen.wei', 'GlobalAdmin');
    await stack.directory.assignRole(contoso, 'ana.lima', 'HelpdeskAdmin');
    const definition = bodyOf(
      await call(operator, 'POST', '/v1/campaigns', {
        name: 'Console review',
        definition: { scope: { tenantIds: [contoso] }, stages: [{ durationMinutes: 600 }], nonResponse: 'keep' },
      }),
      201,
    );
    runId = bodyOf(await call(operator, 'POST', `/v1/campaigns/${definition.id}/runs`), 202).runId as string;
    const items = async (): Promise<Json[]> =>
      bodyOf(await call(token('contoso-reviewer'), 'GET', `/v1/tenants/${contoso}/reviews/items?assignedTo=me&limit=1000`)).items as Json[];
    const all = await eventually(items, (list) => list.length === 3, SLOW);
    expect(await overviewOf('contoso')).toMatchObject({ openReviewItems: 3, activeGrants: 1 });

    const page = await signedIn('contoso-reviewer');
    // One tenant: /reviews goes straight to it.
    await open(page, 'reviews');
    await page.waitForURL(`**/reviews/${contoso}`);
    const first = all[0]!;
    const group = page.getByRole('group', { name: `Decide ${first.role} for ${first.subjectId}` });
    await group.waitFor();
    await checkPage(page);
    // Keyboard only: Tab to the item's Keep button, Enter.
    const keep = group.getByRole('button', { name: 'Keep' });
    for (let i = 0; i < 80 && !(await keep.evaluate((element) => element === element.ownerDocument.activeElement)); i++)
      await page.keyboard.press('Tab');
    expect(await keep.evaluate((element) => element === element.ownerDocument.activeElement)).toBe(true);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Recorded 1 decision' }).count()).toBe(1);
    await expect.poll(() => keep.getAttribute('aria-pressed')).toBe('true');
    await screenshot(page, 'console-review-inbox');

    // The filter: only what the reviewer has not decided yet.
    await page.getByLabel('Your decision').selectOption('false');
    await expect.poll(() => page.locator(`tr[data-subject="${first.subjectId}"]`).count()).toBe(0);
    const accept = page.getByRole('button', { name: /Accept recommendations \(\d+\)/ });
    const rest = all.length - 1;
    await expect.poll(() => accept.innerText()).toBe(`Accept recommendations (${rest})`);
    await accept.click();
    await expect
      .poll(() =>
        page
          .getByRole('status')
          .filter({ hasText: `Recorded ${rest} decision` })
          .count(),
      )
      .toBe(1);

    const decided = await items();
    expect(decided.every((item) => item.myDecision !== null)).toBe(true);
    for (const item of decided.filter((i) => i.itemId !== first.itemId)) expect(item.myDecision).toBe(item.recommendation);
    expect(decided.find((i) => i.itemId === first.itemId)!.myDecision).toBe('keep');

    await checkNarrow('contoso-reviewer', `reviews/${contoso}`, (p) => p.getByRole('region', { name: 'Review items' }).waitFor());
  });

  it('shows the auditor the events, an intact chain, an export with the events, and the campaign report', async () => {
    const contoso = tenant('contoso');
    // Close the review so its report exists.
    bodyOf(
      await call(token('contoso-approver'), 'POST', `/v1/tenants/${contoso}/reviews/${runId}/deadline`, {
        closesAt: new Date().toISOString(),
      }),
    );
    await eventually(
      async () =>
        (bodyOf(await call(token('msp-operator'), 'GET', `/v1/tenants/${contoso}/reviews`)).reviews as Json[]).find(
          (r) => r.runId === runId,
        ),
      (review) => review?.status === 'completed',
      SLOW,
    );

    expect(await overviewOf('contoso')).toMatchObject({ openReviewItems: 0 });

    const page = await signedIn('msp-auditor');
    await open(page, `audit/${contoso}`);
    await expect.poll(() => page.locator('[data-chain]').getAttribute('data-chain'), { timeout: 30_000 }).toBe('intact');
    await page.locator('tr[data-action="tenant.created"]').waitFor();

    // Filter by event type.
    await page.getByLabel(/Event type/).fill('grant.requested');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.locator('tr[data-action="tenant.created"]').count()).toBe(0);
    await expect.poll(() => page.locator('tr[data-action="grant.requested"]').count()).toBe(2);
    await page.getByLabel(/Event type/).fill('');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.locator('tr[data-action="tenant.created"]').waitFor();
    await checkPage(page);
    await screenshot(page, 'console-audit');

    // The export is fetched with the token in the Authorization header and saved from a Blob.
    const requests: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/export')) requests.push(`${request.url()} ${request.headers().authorization ? 'bearer' : 'none'}`);
    });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export NDJSON' }).click()]);
    expect(download.suggestedFilename()).toMatch(new RegExp(`^audit-${contoso}-\\d+\\.ndjson$`));
    const lines = (await readFile(await download.path(), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Json);
    expect(lines.length).toBeGreaterThan(5);
    expect(lines.every((event) => event.tenantId === contoso)).toBe(true);
    expect(lines.map((event) => event.seq)).toEqual(lines.map((_, i) => i + 1));
    expect(lines.some((event) => event.action === 'grant.requested')).toBe(true);
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatch(/ bearer$/);
    expect(requests[0]).not.toContain(token('msp-auditor'));

    // The campaign report of the run, as JSON.
    const reports = page.getByRole('region', { name: 'Finished reviews' });
    const [report] = await Promise.all([
      page.waitForEvent('download'),
      reports.getByRole('button', { name: `JSON report of run ${runId.slice(0, 8)}` }).click(),
    ]);
    const body = JSON.parse(await readFile(await report.path(), 'utf8')) as Json;
    expect(body.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(body.report)).toContain(runId);

    await checkNarrow('msp-auditor', `audit/${contoso}`, (p) => p.locator('[data-chain]').waitFor());
  });
});

describe('template baselines', () => {
  it('shows the tenants × settings matrix with the drifted tenant highlighted, and that tenant’s drift item by path', async () => {
    const [contoso, fabrikam] = [tenant('contoso'), tenant('fabrikam')];
    const operator = token('msp-operator');
    const owner = await mspStaff(call, token('msp-admin'), 'Tina Template (template owner)', ['template_owner']);
    const created = bodyOf(
      await call(owner.token, 'POST', '/v1/templates', {
        name: 'console-baseline',
        document: {
          directory: {
            roles: [{ name: 'GlobalAdmin', description: 'Full administrative access', privileged: true }],
            settings: { mfaRequired: true, lockoutThreshold: 5 },
          },
        },
      }),
      201,
    );
    const templateId = created.template.id as string;
    bodyOf(await call(owner.token, 'POST', `/v1/templates/${templateId}/versions/1/propose`, {}));
    bodyOf(await call(token('msp-admin'), 'POST', `/v1/templates/${templateId}/versions/1/approve`, {}));
    for (const tenantId of [contoso, fabrikam]) {
      bodyOf(await call(operator, 'PUT', `/v1/tenants/${tenantId}/template`, { templateId, version: 1 }));
      const started = bodyOf(await call(operator, 'POST', `/v1/tenants/${tenantId}/template/apply`, {}), 202);
      const applied = await eventually(
        async () => bodyOf(await call(operator, 'GET', `/v1/tenants/${tenantId}/template/applies/${started.rolloutId}`)),
        (view) => ['applied', 'failed', 'skipped', 'denied'].includes(view.status as string),
        SLOW,
      );
      expect(applied.status).toBe('applied');
    }
    // Contoso's lockouts are switched off at its directory after the apply; the check finds it.
    await stack.directory.applySecuritySettings(contoso, { lockoutThreshold: 0 });
    const checked = bodyOf(await call(operator, 'POST', `/v1/tenants/${contoso}/template/drift/check`, {}));
    expect(checked.items.map((i: Json) => [i.path, i.status])).toContainEqual(['directory.settings.lockoutThreshold', 'open']);

    const page = await signedIn('msp-auditor');
    await open(page, `baselines?template=${templateId}`);
    const row = (slug: string) => page.locator(`tr[data-tenant="${slug}"]`);
    await row('contoso').waitFor({ timeout: SLOW });
    expect(await page.locator('[data-summary]').innerText()).toMatch(/^2 tenants, 1 deviating, 0 unreadable/);
    const deviating = row('contoso').locator('td[data-deviates]');
    expect(await deviating.count()).toBe(1);
    expect(await deviating.innerText()).toMatch(/^0\b[\s\S]*Expected 5, by the applied template version/);
    expect(await row('fabrikam').locator('td[data-deviates]').count()).toBe(0);
    expect(await row('fabrikam').locator('td[data-count="deviations"]').innerText()).toBe('0');
    // Only the tenants that deviate.
    // The box follows the address, which the router updates in a transition: a click, then its state
    // (Playwright's check() reads the state straight after the click and can see the old one).
    const onlyDeviating = page.getByLabel('Only tenants that deviate');
    await onlyDeviating.click();
    await expect.poll(() => onlyDeviating.isChecked()).toBe(true);
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
    await checkPage(page);
    await screenshot(page, 'console-baselines');
    // The same report as CSV, fetched with the token in a header.
    const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    const text = await readFile(await csv.path(), 'utf8');
    expect(text.split('\n')[0]).toContain('settings.lockoutThreshold.deviates');
    expect(text.trim().split('\n')).toHaveLength(3);

    // Contoso's own page lists the item by path, expected and actual.
    await row('contoso').getByRole('link', { name: 'Contoso' }).click();
    const item = page.locator('tr[data-path="directory.settings.lockoutThreshold"]');
    await item.waitFor();
    expect(await item.getAttribute('data-status')).toBe('open');
    expect(await item.locator('td[data-label="Expected"]').innerText()).toBe('5');
    expect(await item.locator('td[data-label="Actual"]').innerText()).toBe('0');
    expect(await page.locator('[data-drift-status]').getAttribute('data-drift-status')).toBe('drifted');
    await checkPage(page);
    await checkNarrow('msp-auditor', `baselines/${contoso}`, (p) => p.locator('tr[data-path]').first().waitFor());
    await checkNarrow('msp-operator', `baselines?template=${templateId}`, (p) => p.locator('tr[data-tenant]').first().waitFor());

    // The overview's drift count links there.
    const overview = await signedIn('msp-operator');
    await open(overview, 'overview');
    await overview.getByRole('link', { name: /Open drift items in Contoso/ }).click();
    await overview.locator('tr[data-path="directory.settings.lockoutThreshold"]').waitFor();

    // Contoso's approver reads Contoso's drift, but not the MSP's report, and nothing of Fabrikam's.
    const approver = await signedIn('contoso-approver');
    await open(approver, `baselines/${contoso}`);
    await approver.locator('tr[data-path="directory.settings.lockoutThreshold"]').waitFor();
    expect(await approver.getByRole('link', { name: 'All tenants’ baselines' }).count()).toBe(0);
    expect(await approver.getByRole('link', { name: 'Baselines' }).count()).toBe(0);
    await open(approver, `baselines/${fabrikam}`);
    await expect.poll(() => approver.getByRole('alert').first().innerText(), { timeout: 20_000 }).toContain('not in a tenant you can see');
  });
});

describe('another tenant', () => {
  it('is not found for a tenant-bound user, on every page of this area', async () => {
    const fabrikam = tenant('fabrikam');
    const page = await signedIn('contoso-reviewer');
    for (const path of [
      `reviews/${fabrikam}`,
      `audit/${fabrikam}`,
      `people/${fabrikam}`,
      `people/${fabrikam}/ana.lima`,
      `baselines/${fabrikam}`,
    ]) {
      await open(page, path);
      await expect.poll(() => page.getByRole('alert').first().innerText(), { timeout: 20_000 }).toContain('not in a tenant you can see');
      expect(await page.content()).not.toContain('Fiona');
      await checkPage(page);
    }
    // No tenant picker offers Fabrikam to someone bound to Contoso only.
    await open(page, `reviews/${tenant('contoso')}`);
    expect(await page.getByLabel('Tenant').count()).toBe(0);
  });
});
