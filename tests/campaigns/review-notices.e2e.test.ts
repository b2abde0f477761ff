import { createHmac, randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { reviewQuery, TENANT_REVIEW_WORKFLOW_TYPE, tenantReviewWorkflowId, type TenantReviewInput } from '../../core/campaigns/contract.js';
import { CampaignDefinitionDocument } from '../../core/campaigns/schemas.js';
import type { Principal } from '../../core/tenancy/authz.js';
import { createPool, type Pool } from '../../db/pool.js';
import { inScope, mspScope } from '../../db/scope.js';
import { currentPolicy, insertPolicyVersion } from '../../db/tenancy.js';
import { decideItems, listReviewItems } from '../../usecases/campaigns.js';
import type { tenantReviewWorkflow } from '../../workflows/campaigns/review.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { eventually } from '../support/stack.js';
import { seedTenancy, type TestTenancy } from '../support/tenancy.js';
import { startWebhookReceiver, type ReceivedHook } from '../support/webhook-receiver.js';
import { createWorkflowWorker, startTimeSkippingEnvironment, until } from '../support/workflow-harness.js';

/**
 * Reminders and escalation on the time-skipping server with the real activities, PostgreSQL and
 * the tenant's signed webhook (a receiver on 127.0.0.1): a seven-day stage, an escalation after
 * three days that replaces the silent reviewer with the tenant's approver, reminders two days and
 * one hour before the deadline. Each notice is in the reviewer's inbox and reaches the webhook
 * once, signed with the tenant's secret.
 */
let env: TestWorkflowEnvironment;
let db: TestDatabase;
let pool: Pool;
let id: TestTenancy;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
let received: ReceivedHook[];
const DAY_MS = 86_400_000;
const DAY = 24 * 60;

beforeAll(async () => {
  receiver = await startWebhookReceiver();
  received = receiver.received;
  env = await startTimeSkippingEnvironment();
  db = await createTestDatabase();
  pool = createPool({ connectionString: db.appUrl, max: 5 });
  id = await seedTenancy(pool);
  const url = receiver.url;
  await inScope(pool, mspScope, async (client) => {
    const policy = (await currentPolicy(client, id.tenantA))!;
    await insertPolicyVersion(client, {
      tenantId: id.tenantA,
      version: policy.version + 1,
      document: { ...policy.document, notificationWebhookUrl: url },
      createdBy: 'test',
    });
  });
  const directory = createPostgresDirectory(pool);
  await directory.upsertRole(id.tenantA, { name: 'GlobalAdmin', privileged: true });
  for (const user of ['pat', 'quinn']) {
    await directory.upsertUser(id.tenantA, { id: user, username: user, displayName: user });
    await directory.assignRole(id.tenantA, user, 'GlobalAdmin');
  }
}, 180_000);

afterAll(async () => {
  await env?.teardown();
  await pool?.end();
  await db?.drop();
  await receiver?.close();
});

const reviewer = (key: 'reviewerA' | 'approverA', role: 'tenant_reviewer' | 'tenant_approver'): Principal => ({
  actorId: id.actors[key]!.id,
  kind: 'tenant_staff',
  displayName: key,
  bindings: [{ id: randomUUID(), role, tenantId: id.tenantA }],
  via: 'api_token',
});

describe('reminders and escalation (time-skipping server, real activities, signed webhook)', () => {
  it('escalates the item nobody answered to the approver, reminds whoever still owes a decision, each notice in the inbox and signed on the webhook once', async () => {
    const activities = createActivities({
      pool,
      directory: createPostgresDirectory(pool),
      allowPrivateWebhooks: true,
      temporal: env.client,
    });
    const { worker, taskQueue }: { worker: Worker; taskQueue: string } = await createWorkflowWorker(env, 'review-notices', activities);
    const input: TenantReviewInput = {
      runId: randomUUID(),
      tenantId: id.tenantA,
      definitionId: randomUUID(),
      definitionVersion: 1,
      parentWorkflowId: '',
      definition: CampaignDefinitionDocument.parse({
        items: { roles: ['GlobalAdmin'] },
        stages: [{ durationMinutes: 7 * DAY }],
        reminders: { beforeDeadlineMinutes: [2 * DAY, 60] },
        escalation: { afterMinutes: 3 * DAY, action: 'replace', chain: ['tenant_approver'] },
      }),
    };
    const events = (action: string) =>
      db.pool
        .query('SELECT actor_id, payload, workflow_id FROM audit_events WHERE tenant_id = $1 AND action = $2 ORDER BY seq', [
          id.tenantA,
          action,
        ])
        .then((r) => r.rows);
    const inbox = async (who: Principal) => listReviewItems(pool, who, id.tenantA, { assignedTo: 'me', runId: input.runId, limit: 100 });

    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof tenantReviewWorkflow>(TENANT_REVIEW_WORKFLOW_TYPE, {
        taskQueue,
        workflowId: tenantReviewWorkflowId(id.tenantA, input.runId),
        args: [input],
      });
      await until(handle, reviewQuery, (v) => v.status === 'open', 60_000);
      const first = await inbox(reviewer('reviewerA', 'tenant_reviewer'));
      expect(first.items.map((i) => i.subjectId).sort()).toEqual(['pat', 'quinn']);
      const pat = first.items.find((i) => i.subjectId === 'pat')!;
      await decideItems(
        { pool, temporal: env.client },
        reviewer('reviewerA', 'tenant_reviewer'),
        { actor: { id: id.actors.reviewerA!.id, type: 'user' }, authority: { roles: ['tenant_reviewer'] } },
        id.tenantA,
        { decisions: [{ itemId: pat.itemId, decision: 'keep' }] },
      );

      // Three days on: quinn's item, unanswered, goes to the approver instead of the reviewer.
      await env.sleep(3 * DAY_MS + 60_000);
      const escalated = await eventually(
        () => events('review.escalated'),
        (rows) => rows.length === 1,
        30_000,
      );
      expect(escalated[0]!.payload).toMatchObject({ stage: 1, action: 'replace', escalated: 1, replaced: 1, unescalated: 0 });
      const approverInbox = await inbox(reviewer('approverA', 'tenant_approver'));
      expect(approverInbox.items.map((i) => i.subjectId)).toEqual(['quinn']);
      expect(approverInbox.notices).toEqual([expect.objectContaining({ kind: 'escalation', items: 1, stage: 1 })]);
      // The reviewer keeps only the item they answered (still theirs to change until the close).
      expect((await inbox(reviewer('reviewerA', 'tenant_reviewer'))).items.map((i) => i.subjectId)).toEqual(['pat']);

      // Two days before the deadline: only the approver still owes a decision.
      await env.sleep(2 * DAY_MS);
      const reminded = await eventually(
        () => events('review.reminders_sent'),
        (rows) => rows.length === 1,
        30_000,
      );
      expect(reminded[0]!.payload.reviewers).toEqual([expect.objectContaining({ reviewerId: id.actors.approverA!.id, items: 1 })]);
      await eventually(
        async () => received.filter((r) => JSON.parse(r.body).type === 'review.reminder').length,
        (n) => n === 1,
        30_000,
      );
      const notices = (await inbox(reviewer('approverA', 'tenant_approver'))).notices!;
      expect(notices.map((n) => n.kind).sort()).toEqual(['escalation', 'reminder']);

      expect(await handle.result()).toMatchObject({ status: 'completed' });
    });

    // The reminder an hour before the deadline too; each event once, from the review's workflow.
    expect(await events('review.reminders_sent')).toHaveLength(2);
    for (const e of [...(await events('review.reminders_sent')), ...(await events('review.escalated'))])
      expect(e.workflow_id).toBe(tenantReviewWorkflowId(id.tenantA, input.runId));
    const hooks = await eventually(
      async () => received.filter((r) => JSON.parse(r.body).notice?.runId === input.runId),
      (r) => r.length === 3,
      30_000,
    );
    expect(hooks.map((r) => JSON.parse(r.body).type).sort()).toEqual(['review.escalation', 'review.reminder', 'review.reminder']);
    expect(new Set(hooks.map((r) => r.headers['x-tenure-event-id'])).size).toBe(3);
    const { secret } = (await db.pool.query('SELECT secret FROM tenant_webhook_secrets WHERE tenant_id = $1', [id.tenantA])).rows[0];
    for (const hook of hooks) {
      const expected = createHmac('sha256', secret).update(`${hook.headers['x-tenure-timestamp']}.${hook.body}`).digest('hex');
      expect(hook.headers['x-tenure-signature']).toBe(`sha256=${expected}`);
      expect(JSON.parse(hook.body).notice).toMatchObject({ reviewerId: id.actors.approverA!.id, stage: 1, items: 1 });
    }
    // Keep was decided; quinn had no answer and the policy keeps: nothing revoked.
    const { rows } = await db.pool.query('SELECT subject_id, outcome, outcome_by FROM review_items WHERE run_id = $1 ORDER BY subject_id', [
      input.runId,
    ]);
    expect(rows).toEqual([
      { subject_id: 'pat', outcome: 'keep', outcome_by: 'decision' },
      { subject_id: 'quinn', outcome: 'keep', outcome_by: 'non_response' },
    ]);
  });
});
