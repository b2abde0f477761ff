import { describe, expect, it } from 'vitest';
import { flowOf, nextReminder } from '../../core/campaigns/review.js';
import { CampaignDefinitionDocument } from '../../core/campaigns/schemas.js';

/** The pure rules behind reminders and the flow settings (core/campaigns/review.ts). */
const MIN = 60_000;

describe('nextReminder', () => {
  const opened = 0;
  const closes = 7 * 24 * 60 * MIN;

  it('picks the earliest offset not yet sent, as a time before the deadline', () => {
    expect(nextReminder([60, 2 * 24 * 60], [], closes, opened)).toEqual({ offset: 2 * 24 * 60, at: closes - 2 * 24 * 60 * MIN });
    expect(nextReminder([60, 2 * 24 * 60], [2 * 24 * 60], closes, opened)).toEqual({ offset: 60, at: closes - 60 * MIN });
    expect(nextReminder([60], [60], closes, opened)).toBeUndefined();
  });

  it('never sends an offset longer than the stage, and follows a moved deadline', () => {
    expect(nextReminder([10 * 24 * 60], [], closes, opened)).toBeUndefined();
    const later = closes + 5 * 24 * 60 * MIN;
    expect(nextReminder([10 * 24 * 60], [], later, opened)).toEqual({ offset: 10 * 24 * 60, at: later - 10 * 24 * 60 * MIN });
  });
});

describe('flowOf', () => {
  it('gives the defaults to a definition stored before the flow settings existed', () => {
    const old = { stages: [{ durationMinutes: 60, strategy: 'first_decision' }] } as unknown as CampaignDefinitionDocument;
    expect(flowOf(old)).toEqual({ remindersBefore: [], escalation: null, reiteration: null, remediation: 'at_close' });
  });

  it('orders reminder offsets from the earliest to the latest before the deadline', () => {
    const doc = CampaignDefinitionDocument.parse({
      stages: [{ durationMinutes: 60 }],
      reminders: { beforeDeadlineMinutes: [5, 30, 10] },
      remediation: 'on_decision',
    });
    expect(flowOf(doc)).toMatchObject({ remindersBefore: [30, 10, 5], remediation: 'on_decision' });
  });

  it('refuses an offset given twice and a reiteration of zero rounds, naming the field', () => {
    const bad = CampaignDefinitionDocument.safeParse({
      stages: [{ durationMinutes: 60 }],
      reminders: { beforeDeadlineMinutes: [5, 5] },
      reiteration: { times: 0, durationMinutes: 10 },
    });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['reiteration.times', 'reminders.beforeDeadlineMinutes']);
  });
});
