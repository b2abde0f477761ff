import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCampaignActivities, reviewItemId } from '../../activities/campaigns/activities.js';
import { createLedgerActivities } from '../../activities/directory/ledger.js';
import { createPostgresDirectory, type PostgresDirectory } from '../../connectors/directory/postgres.js';
import { systemClock } from '../../activities/index.js';
import { systemResolver } from '../../activities/tenancy/webhook-http.js';
import { CampaignDefinitionDocument } from '../../core/campaigns/schemas.js';
import { singleDirectory, type DirectoryConnector } from '../../core/directory/connector.js';
import { insertItems, insertReview, setOutcomes, type ItemSource } from '../../db/campaigns.js';
import { createPool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { apiClient, bodyOf } from '../support/http.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';
import { seedTenancy, setPolicy, type TestTenancy } from '../support/tenancy.js';

/**
 * Remediation under the faults the campaigns fault run injects, one at a time and on purpose: an
 * attempt dies after its revoke landed and before its result was written, and the retry must
 * report what that attempt did (`applied_verified`), never `already_absent`. Also the worker's cap
 * on remediation calls to targets. The activities run here, against the real database, the
 * built-in directory and, for grants, the real grant workflow on this stack's worker.
 */
let stack: TestStack;
let id: TestTenancy;
let directory: PostgresDirectory;
let closeDirectoryPool = async () => undefined as void;
const call = apiClient(() => stack.baseUrl);
const ROLE = 'GlobalAdmin';
const definition = CampaignDefinitionDocument.parse({ stages: [{ durationMinutes: 60 }] });
const webhooks = { allowPrivateNetworks: true, resolve: systemResolver };

/** A worker death between a revoke and its result: the next read-back of `subjectId` fails once it is armed. */
const dieOnReadBack = new Set<string>();
/** Target calls under way now, and the most seen at once. */
const inFlight = { now: 0, max: 0 };
let slowTarget = 0;

function faultyDirectory(real: DirectoryConnector): DirectoryConnector {
  const counted = async <T>(fn: () => Promise<T>): Promise<T> => {
    inFlight.now++;
    inFlight.max = Math.max(inFlight.max, inFlight.now);
    try {
      if (slowTarget) await new Promise((r) => setTimeout(r, slowTarget));
      return await fn();
    } finally {
      inFlight.now--;
    }
  };
  return new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'hasRole')
        return (tenantId: string, subjectId: string, role: string) =>
          counted(async () => {
            if (dieOnReadBack.delete(subjectId)) throw new Error('the worker died before the result was written');
            return target.hasRole(tenantId, subjectId, role);
          });
      if (prop === 'removeRole')
        return async (tenantId: string, subjectId: string, role: string) => {
          await counted(() => target.removeRole(tenantId, subjectId, role));
          // Removed: the attempt dies on the read-back that would have written its result.
          if (subjectId.startsWith('die-')) dieOnReadBack.add(subjectId);
        };
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

beforeAll(async () => {
  stack = await startTestStack();
  id = await seedTenancy(stack.pool);
  // A pool of its own, as the worker's: ledger steps hold a connection while they call the directory.
  const directoryPool = createPool({ connectionString: stack.db.appUrl, max: 5 });
  closeDirectoryPool = () => directoryPool.end();
  directory = createPostgresDirectory(directoryPool);
  await directory.upsertRole(id.tenantA, { name: ROLE, privileged: true });
  const { approval } = await setPolicy(call, { proposer: id.tokens.mspAdmin!, approver: id.tokens.approverA! }, id.tenantA, {
    expectedVersion: 1,
    document: { grants: { roles: { [ROLE]: { maxDurationMinutes: 600, approvalsRequired: 0 } } } },
  });
  expect(approval?.body.status).toBe('applied');
}, 180_000);

afterAll(async () => {
  await closeDirectoryPool();
  await stack?.stop();
});

/** One attempt of the remediation activity for the review of `runId`, in an activity context as its workflow gives it. */
function remediateOnce(acts: ReturnType<typeof activities>, runId: string) {
  const workflowId = `review/${id.tenantA}/${runId}`;
  const env = new MockActivityEnvironment({ workflowExecution: { workflowId, runId: randomUUID() } });
  return env.run((input: Parameters<typeof acts.remediateReviewItems>[0]) => acts.remediateReviewItems(input), {
    tenantId: id.tenantA,
    runId,
    limit: 200,
    workflowId,
  });
}

function activities(remediationConcurrency?: number) {
  return createCampaignActivities({
    pool: stack.pool,
    directories: singleDirectory(faultyDirectory(directory)),
    clock: systemClock,
    temporal: stack.temporal,
    webhooks,
    ...(remediationConcurrency ? { remediationConcurrency } : {}),
  });
}

/** A review of its own whose items, each `{ subjectId, sources }`, were settled revoke by a decision. */
async function settledRevokes(items: { subjectId: string; sources: ItemSource[] }[]): Promise<{ runId: string; itemIds: string[] }> {
  const runId = randomUUID();
  const tenantId = id.tenantA;
  const itemIds = items.map((i) => reviewItemId(runId, i.subjectId, ROLE));
  await inScope(stack.pool, tenantScope(tenantId), async (client) => {
    await insertReview(client, {
      tenantId,
      runId,
      definitionId: randomUUID(),
      workflowId: `review/${tenantId}/${runId}`,
      stageCount: 1,
      settings: definition,
    });
    await insertItems(
      client,
      tenantId,
      runId,
      items.map((i, n) => ({
        id: itemIds[n]!,
        subject_id: i.subjectId,
        subject_status: 'active',
        role: ROLE,
        privileged: true,
        sources: i.sources,
        last_activity_at: null,
        break_glass: false,
        service_account: false,
        recommendation: 'revoke',
        recommendation_reason: 'test',
      })),
    );
    await setOutcomes(
      client,
      tenantId,
      itemIds.map((itemId) => ({
        id: itemId,
        outcome: 'revoke',
        outcome_by: 'decision',
        outcome_reason: 'revoked by the reviewer',
        result: null,
        result_detail: null,
      })),
    );
  });
  return { runId, itemIds };
}

async function itemRow(itemId: string) {
  const { rows } = await stack.db.pool.query('SELECT result, result_detail FROM review_items WHERE tenant_id = $1 AND id = $2', [
    id.tenantA,
    itemId,
  ]);
  return rows[0] as { result: string | null; result_detail: Record<string, unknown> | null };
}

/** The result events an item got, by action (each result is written and audited once). */
async function resultEvents(itemId: string): Promise<string[]> {
  const { rows } = await stack.db.pool.query<{ action: string }>(
    `SELECT action FROM audit_events WHERE tenant_id = $1 AND target_type = 'review_item' AND target_id = $2
        AND action IN ('review.item_applied_verified', 'review.item_already_absent') ORDER BY seq`,
    [id.tenantA, itemId],
  );
  return rows.map((r) => r.action);
}

describe('a retried remediation reports what its own earlier attempt did', () => {
  it('access nothing recorded explains, removed by an attempt that died before writing its result: applied_verified', async () => {
    const subjectId = `die-unrecorded-${randomUUID().slice(0, 8)}`;
    await directory.upsertUser(id.tenantA, { id: subjectId, username: subjectId, displayName: subjectId });
    await directory.assignRole(id.tenantA, subjectId, ROLE);
    const { runId, itemIds } = await settledRevokes([{ subjectId, sources: [] }]);
    const acts = activities();

    await expect(remediateOnce(acts, runId)).rejects.toThrow(/died before the result was written/);
    // The removal landed; its result did not.
    expect(await directory.hasRole(id.tenantA, subjectId, ROLE)).toBe(false);
    expect(await itemRow(itemIds[0]!)).toMatchObject({ result: null });

    expect(await remediateOnce(acts, runId)).toEqual({ processed: 1, remaining: 0, retrying: 0 });
    expect(await itemRow(itemIds[0]!)).toMatchObject({ result: 'applied_verified', result_detail: { ended: [] } });
    expect(await resultEvents(itemIds[0]!)).toEqual(['review.item_applied_verified']);
  });

  it('a grant whose revocation finished after an attempt died before writing its result: applied_verified', async () => {
    const subjectId = `grant-${randomUUID().slice(0, 8)}`;
    await directory.upsertUser(id.tenantA, { id: subjectId, username: subjectId, displayName: subjectId });
    const grantId = bodyOf(
      await call(id.tokens.operator, 'POST', `/v1/tenants/${id.tenantA}/grants`, {
        subjectId,
        role: ROLE,
        durationMinutes: 300,
        justification: 'review me',
      }),
      201,
    ).grantId as string;
    await eventually(() => directory.hasRole(id.tenantA, subjectId, ROLE), Boolean, 90_000);
    const { runId, itemIds } = await settledRevokes([{ subjectId, sources: [{ type: 'grant', id: grantId }] }]);
    const acts = activities();

    // The revoke Update is sent; the attempt dies on its read-back, before any result is written.
    dieOnReadBack.add(subjectId);
    await expect(remediateOnce(acts, runId)).rejects.toThrow(/died before the result was written/);
    expect(await itemRow(itemIds[0]!)).toMatchObject({ result: null });
    // Meanwhile the grant's own workflow finishes the revocation.
    await eventually(
      async () => bodyOf(await call(id.tokens.operator, 'GET', `/v1/tenants/${id.tenantA}/grants/${grantId}`)),
      (g) => g.status === 'ended',
      90_000,
    );
    expect(await directory.hasRole(id.tenantA, subjectId, ROLE)).toBe(false);

    expect(await remediateOnce(acts, runId)).toEqual({ processed: 1, remaining: 0, retrying: 0 });
    expect(await itemRow(itemIds[0]!)).toMatchObject({ result: 'applied_verified', result_detail: { ended: [`grant:${grantId}`] } });
    expect(await resultEvents(itemIds[0]!)).toEqual(['review.item_applied_verified']);
  });

  it('access already gone before any attempt is still already_absent', async () => {
    const subjectId = `gone-${randomUUID().slice(0, 8)}`;
    await directory.upsertUser(id.tenantA, { id: subjectId, username: subjectId, displayName: subjectId });
    const ledger = createLedgerActivities({ pool: stack.pool, directories: singleDirectory(directory) });
    await ledger.grantAccess({ tenantId: id.tenantA, subjectId, role: ROLE, sourceType: 'manual', sourceId: 'CHG-gone' });
    const { runId, itemIds } = await settledRevokes([{ subjectId, sources: [{ type: 'manual', id: 'CHG-gone' }] }]);
    // Someone else ended it first, for their own reason.
    await ledger.endAccess({ tenantId: id.tenantA, subjectId, role: ROLE, sourceType: 'manual', sourceId: 'CHG-gone', reason: 'expired' });

    expect(await remediateOnce(activities(), runId)).toEqual({ processed: 1, remaining: 0, retrying: 0 });
    expect(await itemRow(itemIds[0]!)).toMatchObject({ result: 'already_absent' });
  });
});

describe('a template entitlement revoked by a review', () => {
  it('is ended in the ledger and its role removed from the target, proven by reading it back: applied_verified', async () => {
    const subjectId = `tpl-${randomUUID().slice(0, 8)}`;
    await directory.upsertUser(id.tenantA, { id: subjectId, username: subjectId, displayName: subjectId });
    const ledger = createLedgerActivities({ pool: stack.pool, directories: singleDirectory(directory) });
    await ledger.grantAccess({ tenantId: id.tenantA, subjectId, role: ROLE, sourceType: 'template', sourceId: 'baseline-admins' });
    expect(await directory.hasRole(id.tenantA, subjectId, ROLE)).toBe(true);
    const { runId, itemIds } = await settledRevokes([{ subjectId, sources: [{ type: 'template', id: 'baseline-admins' }] }]);

    expect(await remediateOnce(activities(), runId)).toEqual({ processed: 1, remaining: 0, retrying: 0 });
    expect(await itemRow(itemIds[0]!)).toMatchObject({
      result: 'applied_verified',
      result_detail: { ended: ['template:baseline-admins'] },
    });
    expect(await directory.hasRole(id.tenantA, subjectId, ROLE)).toBe(false);
    const { rows } = await stack.db.pool.query(
      "SELECT end_reason FROM entitlements WHERE tenant_id = $1 AND subject_id = $2 AND source_type = 'template'",
      [id.tenantA, subjectId],
    );
    expect(rows).toEqual([{ end_reason: 'review_revoked' }]);
    expect(await resultEvents(itemIds[0]!)).toEqual(['review.item_applied_verified']);
  });
});

describe('the worker’s cap on remediation calls to targets', () => {
  it('holds across every review the worker remediates at once, whatever each batch’s lanes', async () => {
    const runs = [];
    for (let r = 0; r < 3; r++) {
      const subjects = Array.from({ length: 6 }, (_, n) => `cap-${r}-${n}-${randomUUID().slice(0, 6)}`);
      for (const subjectId of subjects) {
        await directory.upsertUser(id.tenantA, { id: subjectId, username: subjectId, displayName: subjectId });
        await directory.assignRole(id.tenantA, subjectId, ROLE);
      }
      runs.push(await settledRevokes(subjects.map((subjectId) => ({ subjectId, sources: [] }))));
    }
    const acts = activities(2);
    Object.assign(inFlight, { now: 0, max: 0 });
    slowTarget = 20;
    try {
      const batches = await Promise.all(runs.map(({ runId }) => remediateOnce(acts, runId)));
      expect(batches).toEqual(runs.map(() => ({ processed: 6, remaining: 0, retrying: 0 })));
    } finally {
      slowTarget = 0;
    }
    // Three reviews, each batch with six items in its lanes: never more than two at the target.
    expect(inFlight.max).toBeLessThanOrEqual(2);
    for (const { itemIds } of runs) for (const itemId of itemIds) expect((await itemRow(itemId)).result).toBe('applied_verified');
  });
});
