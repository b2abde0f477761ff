import { describe, expect, it } from 'vitest';
import { cronProblem, isTimeZone } from '../../core/campaigns/cron.js';
import { escapeHtml, reportHtml } from '../../core/campaigns/report-html.js';
import type { ReviewReport } from '../../core/campaigns/report.js';
import { recommend } from '../../core/campaigns/review.js';
import { CampaignDefinitionDocument } from '../../core/campaigns/schemas.js';
import { standingEndsAt, standingReasons, type StandingFacts } from '../../core/campaigns/standing.js';

/** The pure rules behind the report page, the standing-privilege reasons, service-account recommendations and recurrences. */
describe('cron recurrences', () => {
  it.each(['0 9 * * MON-FRI', '*/15 * * * *', '30 6 1 JAN,JUL *', '0 0 * * 7', '@daily', '5-10/2 0-23 1-31 1-12 0-6'])(
    'accepts %s',
    (cron) => {
      expect(cronProblem(cron)).toBeUndefined();
    },
  );
  it.each([
    ['60 * * * *', /minute: 60 is outside 0-59/],
    ['* 24 * * *', /hour: 24 is outside 0-23/],
    ['* * 0 * *', /day of month: 0 is outside 1-31/],
    ['* * * 13 *', /month: 13 is outside 1-12/],
    ['* * * * 8', /day of week: 8 is outside 0-7/],
    ['10-5 * * * *', /runs backwards/],
    ['*/0 * * * *', /step/],
    ['* * * *', /five fields/],
    ['0 9 * * mon', /capitals/],
    ['@sometimes', /shorthand/],
  ])('refuses %s, saying why', (cron, why) => {
    expect(cronProblem(cron)).toMatch(why);
  });

  it('knows IANA zones in their own spelling, and aliases', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Asia/Kolkata')).toBe(true);
    expect(isTimeZone('europe/berlin')).toBe(false);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
  });

  it('makes a definition take an interval or a cron in a zone, never both', () => {
    const parsed = CampaignDefinitionDocument.parse({ stages: [{ durationMinutes: 1 }], schedule: { cron: '@weekly' } });
    expect(parsed.schedule).toEqual({ cron: '@weekly', paused: false });
    const both = CampaignDefinitionDocument.safeParse({
      stages: [{ durationMinutes: 1 }],
      schedule: { cron: '@weekly', intervalMinutes: 5 },
    });
    expect(both.error?.issues.map((i) => i.path.join('.'))).toEqual(['schedule.cron']);
  });
});

describe('the report page', () => {
  it('escapes every character that could open markup or an attribute', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&\``)).toBe('&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&#96;');
    expect(escapeHtml({ k: '<b>' })).toBe('{&quot;k&quot;:&quot;&lt;b&gt;&quot;}');
  });

  it('renders every item, hostile names included, with no markup of their own', () => {
    const report: ReviewReport = {
      tenantId: 't',
      runId: 'r',
      definitionId: 'd',
      generatedAt: '2030-01-01T00:00:00.000Z',
      settings: { note: '</pre><script>x()</script>' },
      reviewers: [{ reviewerId: 'rev', stage: 1, via: 'tenant_reviewer', items: 1 }],
      counts: { outcomes: { revoke: 1 }, results: { applied_verified: 1 } },
      items: [
        {
          itemId: 'i-1',
          subjectId: '<img src=x onerror=alert(1)>',
          role: 'Admin',
          sources: [],
          recommendation: 'revoke',
          recommendationReason: 'because',
          decisions: [
            { stage: 1, reviewerId: 'rev', decision: 'revoke', justification: '"><svg onload=1>', decidedAt: 'then', changes: 2 },
          ],
          outcome: 'revoke',
          outcomeBy: 'decision',
          outcomeReason: 'decided revoke',
          guardrail: null,
          result: 'applied_verified',
          resultDetail: { ended: ['manual:<x>'] },
          resultAt: 'now',
        },
      ],
    };
    const html = reportHtml(report, { tenantName: 'A & <B>', hash: 'h'.repeat(64), recorded: null, reviewerNames: { rev: '<Rev>' } });
    expect(html).not.toMatch(/<(script|img|svg)/i);
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('&lt;Rev&gt; (rev)');
    expect(html).toContain('changed 2×');
    expect(html).toContain('A &amp; &lt;B&gt;');
    expect(html).toContain('not found in the chain');
    expect(html).toContain('<dt>Review</dt><dd><strong>completed</strong></dd>');
    expect(html).not.toContain('This review was cancelled');

    // Cancelled: a section that says who stopped it, why (their words escaped) and what was left undecided.
    const cancelled: ReviewReport = {
      ...report,
      status: 'cancelled',
      cancellation: {
        cancelledAt: '2030-01-02T00:00:00.000Z',
        cancelledBy: 'op',
        authority: { cancelledWithRun: 'r' },
        comment: '<script>postponed()</script>',
        stage: 1,
        settled: { revoke: 1, keep: 0, held: 0 },
        decided: 1,
        undecided: 1,
      },
      items: [...report.items, { ...report.items[0]!, itemId: 'i-2', decisions: [], outcome: null, outcomeBy: null, result: null }],
    };
    const page = reportHtml(cancelled, { tenantName: 'A', hash: 'h'.repeat(64), recorded: null, reviewerNames: { op: 'Operator O' } });
    expect(page).not.toMatch(/<(script|img|svg)/i);
    expect(page).toContain('This review was cancelled');
    expect(page).toContain('&lt;script&gt;postponed()&lt;/script&gt;');
    expect(page).toContain('Operator O (op)');
    expect(page).toContain('<dt>Not decided</dt><dd>1 item(s)</dd>');
    expect(page).toContain('<strong>not decided</strong>');
  });
});

describe('standing privilege', () => {
  const now = Date.parse('2030-06-01T00:00:00Z');
  const facts = (over: Partial<StandingFacts>): StandingFacts => ({
    subjectStatus: 'active',
    personStatus: null,
    serviceAccount: false,
    owner: null,
    sources: [{ type: 'manual', id: 'CHG-1', expiresAt: null }],
    lastReviewedAt: '2030-05-20T00:00:00Z',
    ...over,
  });

  it('names each reason that applies, and none for access that ends, is owned, reviewed and held by an active person', () => {
    expect(standingReasons(facts({}), now, 30)).toEqual(['no_end_date']);
    expect(standingReasons(facts({ sources: [{ type: 'grant', id: 'g', expiresAt: null }] }), now, 30)).toEqual([]);
    expect(standingReasons(facts({ sources: [] }), now, 30)).toEqual(['no_end_date', 'no_owner']);
    expect(standingReasons(facts({ serviceAccount: true }), now, 30)).toEqual(['no_end_date', 'no_owner']);
    expect(standingReasons(facts({ serviceAccount: true, owner: 'ops' }), now, 30)).toEqual(['no_end_date']);
    expect(standingReasons(facts({ lastReviewedAt: '2030-01-01T00:00:00Z' }), now, 30)).toEqual(['no_end_date', 'not_reviewed']);
    expect(standingReasons(facts({ lastReviewedAt: null }), now, 30)).toContain('not_reviewed');
    expect(standingReasons(facts({ subjectStatus: 'disabled' }), now, 30)).toContain('holder_inactive');
    expect(standingReasons(facts({ personStatus: 'left' }), now, 30)).toContain('holder_inactive');
  });

  it('says access ends only when every source ends, at the latest end', () => {
    expect(
      standingEndsAt([
        { type: 'manual', id: 'a', expiresAt: '2030-01-02T00:00:00Z' },
        { type: 'grant', id: 'g', expiresAt: '2030-01-03T00:00:00Z' },
      ]),
    ).toBe('2030-01-03T00:00:00Z');
    expect(
      standingEndsAt([
        { type: 'manual', id: 'a', expiresAt: '2030-01-02T00:00:00Z' },
        { type: 'birthright', id: 'r', expiresAt: null },
      ]),
    ).toBeNull();
  });
});

describe('service-account recommendations', () => {
  const base = { subjectStatus: 'active', lastActivityAt: null, sources: [{ type: 'manual', id: 'CHG-1' }] };
  it('follow ownership instead of sign-ins', () => {
    expect(recommend({ ...base, serviceAccount: { owner: 'ops@x' } }, Date.now(), 30)).toEqual({
      recommendation: 'keep',
      reason: 'a service account owned by ops@x → keep',
    });
    expect(recommend({ ...base, serviceAccount: { owner: null } }, Date.now(), 30).recommendation).toBe('revoke');
    expect(recommend(base, Date.now(), 30).reason).toBe('no sign-in in 30 days → revoke');
    expect(recommend({ ...base, subjectStatus: 'disabled', serviceAccount: { owner: 'ops' } }, Date.now(), 30).reason).toBe(
      'the account is disabled → revoke',
    );
  });
});
