import {
  ActivityFailure,
  ChildWorkflowFailure,
  ParentClosePolicy,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  startChild,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import type { ActorType, Authority } from '../../core/audit/chain.js';
import { DIRECTORY_TARGET_REJECTED } from '../../core/directory/connector.js';
import { boundedTargetRetry, readBackRetry } from '../../core/temporal.js';
import { templateApplySearchAttributes, templateRollbackWorkflowId } from '../../core/templates/contract.js';
import {
  initialRollbackView,
  ROLLBACK_REFUSED,
  rolloutRollbackQuery,
  templateRollbackQuery,
  TEMPLATE_ROLLBACK_WORKFLOW_TYPE,
  type RollbackCandidate,
  type RolloutRollbackCounts,
  type RolloutRollbackInput,
  type RolloutRollbackView,
  type TemplateRollbackInput,
  type TemplateRollbackView,
} from '../../core/templates/rollback.js';

const {
  recordRollbackEvent,
  repinPrevious,
  recordRolloutRollbackEvent,
  noteRolloutRollback,
  listRollbackCandidates,
  countRollbackCandidates,
} = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 ms', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});
// Bounded like the apply: a target that does not answer for minutes fails this tenant's rollback, visibly.
const { restoreSnapshot } = proxyActivities<Activities>({
  startToCloseTimeout: '60 seconds',
  retry: boundedTargetRetry([DIRECTORY_TARGET_REJECTED, ROLLBACK_REFUSED]),
});
const { verifyRollback } = proxyActivities<Activities>({
  startToCloseTimeout: '60 seconds',
  retry: readBackRetry([DIRECTORY_TARGET_REJECTED, ROLLBACK_REFUSED]),
});

const iso = (ms: number) => new Date(ms).toISOString();
const system = { id: 'system', type: 'system' as const };

/**
 * One tenant's rollback of its apply: restore the snapshot (paths changed since the apply are
 * conflicts, left alone), read back until the tenant equals the snapshot but for those, re-pin
 * the version applied before. No tenant gate: it restores the tenant's own prior state. Every
 * step is one event on the tenant's chain, written once by the id made here.
 */
export async function templateRollbackWorkflow(input: TemplateRollbackInput): Promise<TemplateRollbackView> {
  const view: TemplateRollbackView = initialRollbackView(input, workflowInfo().workflowId, iso(Date.now()));
  const step = {
    rolloutId: input.rolloutId,
    tenantId: input.tenantId,
    snapshotId: input.snapshotId,
    templateId: input.templateId,
    version: input.version,
  };
  const authority: Authority = {
    rolloutId: input.rolloutId,
    templateId: input.templateId,
    templateVersion: input.version,
    snapshotId: input.snapshotId,
    rollback: view.workflowId,
  };
  setHandler(templateRollbackQuery, () => view);

  async function record(action: string, actor: { id: string; type: ActorType }, extra: Authority = {}, payload = {}) {
    view.revision++;
    await recordRollbackEvent({
      eventId: uuid4(),
      action,
      actor,
      authority: { ...authority, ...extra },
      payload,
      view: { ...view, conflicts: [...view.conflicts] },
    });
  }
  async function failed(stage: 'restore' | 'verify', error: unknown): Promise<TemplateRollbackView> {
    if (!(error instanceof ActivityFailure)) throw error;
    view.status = 'failed';
    view.outcome = `${stage}: ${error.cause?.message ?? error.message}`;
    await record('template.rollback.failed', system, {}, { stage, error: view.outcome, conflicts: view.conflicts });
    return view;
  }

  await record('template.rollback.requested', input.requester, input.authority, { parentWorkflowId: input.parentWorkflowId });

  try {
    const result = await restoreSnapshot({ ...step, policyEventId: uuid4(), actor: system, authority });
    Object.assign(view, {
      restored: result.restored,
      unchanged: result.unchanged,
      conflicts: result.conflicts,
      unsupported: result.unsupported,
      policyVersion: result.policyVersion,
    });
  } catch (error) {
    return failed('restore', error);
  }
  view.status = 'verifying';
  view.restoredAt = iso(Date.now());
  await record(
    'template.rollback.restored',
    system,
    {},
    {
      restored: view.restored,
      unchanged: view.unchanged,
      conflicts: view.conflicts,
      unsupported: view.unsupported,
      policyVersion: view.policyVersion,
    },
  );

  try {
    await verifyRollback({ ...step, conflicts: view.conflicts.map((c) => c.path) });
  } catch (error) {
    return failed('verify', error);
  }
  const repinned = await repinPrevious(step);
  view.pin = repinned.pin;
  if (repinned.conflict) view.conflicts = [...view.conflicts, repinned.conflict];
  // Exactly the snapshot, or the snapshot but for listed paths: the tenant's later changes, or what the target cannot do.
  view.status = view.conflicts.length || view.unsupported.length ? 'rolled_back_with_conflicts' : 'rolled_back';
  view.verifiedAt = iso(Date.now());
  await record(
    'template.rollback.verified',
    system,
    {},
    {
      verified: true,
      pin: view.pin,
      conflicts: view.conflicts.map((c) => c.path),
    },
  );
  return view;
}

const noCounts = (): RolloutRollbackCounts => ({
  total: 0,
  started: 0,
  rolledBack: 0,
  withConflicts: 0,
  failed: 0,
  alreadyRequested: 0,
});

/**
 * A whole rollout's rollback: every tenant of it whose apply took a snapshot, read page by page
 * from the applies' read model, rolled back by its own `templateRollbackWorkflow` child, at most
 * `window` at once. Continues as new after each page, carrying the cursor and the counts. A tenant
 * whose rollback was requested on its own is answered by that one. Its start and end are events
 * on the MSP chain; its progress is the query and the read model.
 */
export async function rolloutRollbackWorkflow(input: RolloutRollbackInput): Promise<RolloutRollbackView> {
  const carried = input.carried;
  const running = new Set<string>();
  const view: RolloutRollbackView = {
    rolloutId: input.rolloutId,
    workflowId: workflowInfo().workflowId,
    status: 'running',
    requesterId: input.requester.id,
    counts: carried ? { ...carried.counts } : noCounts(),
    running: [],
    startedAt: carried?.startedAt ?? iso(Date.now()),
    completedAt: null,
    revision: carried?.revision ?? 0,
  };
  const snapshotView = (): RolloutRollbackView => ({ ...view, counts: { ...view.counts }, running: [...running].sort() });
  setHandler(rolloutRollbackQuery, snapshotView);
  const baseAuthority: Authority = { rolloutId: input.rolloutId, rollback: view.workflowId };

  if (!carried) {
    view.counts.total = await countRollbackCandidates({ rolloutId: input.rolloutId });
    view.revision++;
    await recordRolloutRollbackEvent({
      eventId: uuid4(),
      action: 'rollout.rollback.requested',
      actor: input.requester,
      authority: { ...input.authority, ...baseAuthority },
      payload: { window: input.window },
      view: snapshotView(),
    });
  }

  const page = await listRollbackCandidates({ rolloutId: input.rolloutId, after: carried?.after ?? null, limit: input.pageSize });
  const children: Promise<void>[] = [];
  for (const candidate of page) {
    if (candidate.requested) {
      view.counts.alreadyRequested++;
      continue;
    }
    await condition(() => running.size < Math.max(1, input.window));
    children.push(rollBack(candidate));
  }
  await Promise.all(children);

  if (page.length === input.pageSize) {
    view.revision++;
    await noteRolloutRollback(snapshotView());
    await continueAsNew<typeof rolloutRollbackWorkflow>({
      ...input,
      carried: {
        after: page.at(-1)!.tenantId,
        counts: view.counts,
        startedAt: view.startedAt,
        revision: view.revision,
      },
    });
  }

  view.status = 'completed';
  view.completedAt = iso(Date.now());
  view.revision++;
  await recordRolloutRollbackEvent({
    eventId: uuid4(),
    action: 'rollout.rollback.completed',
    actor: system,
    authority: baseAuthority,
    payload: {},
    view: snapshotView(),
  });
  return snapshotView();

  async function rollBack(candidate: RollbackCandidate): Promise<void> {
    running.add(candidate.tenantId);
    try {
      const child = await startChild<typeof templateRollbackWorkflow>(TEMPLATE_ROLLBACK_WORKFLOW_TYPE, {
        workflowId: templateRollbackWorkflowId(input.rolloutId, candidate.tenantId),
        args: [
          {
            rolloutId: input.rolloutId,
            tenantId: candidate.tenantId,
            snapshotId: candidate.snapshotId,
            templateId: candidate.templateId,
            version: candidate.version,
            requester: input.requester,
            authority: { ...input.authority, ...baseAuthority },
            parentWorkflowId: view.workflowId,
          },
        ],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        typedSearchAttributes: templateApplySearchAttributes(candidate.tenantId),
      });
      view.counts.started++;
      const result = await child.result();
      if (result.status === 'rolled_back') view.counts.rolledBack++;
      else if (result.status === 'rolled_back_with_conflicts') view.counts.withConflicts++;
      else view.counts.failed++;
    } catch (error) {
      // Requested on its own meanwhile (@temporalio/common's error, matched by name: workflows import only @temporalio/workflow).
      if (error instanceof Error && error.name === 'WorkflowExecutionAlreadyStartedError') view.counts.alreadyRequested++;
      else if (error instanceof ChildWorkflowFailure) view.counts.failed++;
      else throw error;
    } finally {
      running.delete(candidate.tenantId);
    }
    view.revision++;
    await noteRolloutRollback(snapshotView());
  }
}
