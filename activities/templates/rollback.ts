import { ApplicationFailure } from '@temporalio/activity';
import { MSP_CHAIN } from '../../core/audit/chain.js';
import type { DirectoryConnector, DirectoryResolver } from '../../core/directory/connector.js';
import type { PartialDirectorySecuritySettings } from '../../core/directory/settings.js';
import { readDirectoryState, renderForTenant } from '../../core/templates/plan.js';
import {
  ROLLBACK_NOT_VERIFIED,
  ROLLBACK_REFUSED,
  type RollbackCandidate,
  type RollbackConflict,
  type RollbackRestoreResult,
  type RollbackStepInput,
  type RolloutRollbackView,
  type TemplateRollbackView,
} from '../../core/templates/rollback.js';
import { planRollback, type RollbackFacts, type RollbackPlan, type SnapshotState } from '../../core/templates/rollback-plan.js';
import { storedTemplateDocument } from '../../core/templates/schemas.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import {
  listRollbackRows,
  pinState,
  restorePin,
  rollbackCandidates,
  rolloutApplyCounts,
  upsertRollbackRow,
  upsertRolloutRollbackRow,
} from '../../db/template-rollbacks.js';
import { getApplyRow, getSnapshotState, getVersionRow } from '../../db/templates.js';
import { currentPolicy, getTenantRow, policyVersion as policyAt } from '../../db/tenancy.js';
import type { Clock } from '../index.js';
import type { WebhookTransport } from '../tenancy/webhook-http.js';
import { refreshTenantDrift } from './drift.js';
import { appendWorkflowEvent, type WorkflowEvent } from '../audit/record.js';
import { directoryCall } from '../directory/ledger.js';
import { writeNextPolicy } from './policy-write.js';

const refused = (message: string) => ApplicationFailure.create({ type: ROLLBACK_REFUSED, message, nonRetryable: true });

/**
 * The steps of rolling back one tenant's apply, and the whole rollout's bookkeeping. Each step
 * reads the snapshot and the tenant afresh and is safe to retry: a path already restored reads as
 * unchanged, the policy is written only while it still is what the apply left, the pin moves back
 * only from the apply's version, and audit events are written once by the ids the workflow made.
 */
export function createTemplateRollbackActivities({
  pool,
  directories,
  clock,
  webhooks,
}: {
  pool: Pool;
  directories: DirectoryResolver;
  clock: Clock;
  /** For drift alerts the re-pin's drift check raises (see refreshTenantDrift). */
  webhooks?: WebhookTransport;
}) {
  const targetOf = (tenantId: string): Promise<DirectoryConnector> => directoryCall(() => directories.directoryFor(tenantId));

  /** The snapshot, what the apply left (the version rendered with the apply's values) and the tenant now, then the plan. */
  async function planNow(input: RollbackStepInput): Promise<{ plan: RollbackPlan; facts: RollbackFacts; directory: DirectoryConnector }> {
    const loaded = await inScope(pool, mspScope, async (client) => {
      const snapshot = (await getSnapshotState(client, input.tenantId, input.snapshotId)) as SnapshotState | undefined;
      return {
        snapshot,
        snapshotPolicy: snapshot?.policyVersion ? await policyAt(client, input.tenantId, snapshot.policyVersion) : undefined,
        apply: await getApplyRow(client, input.tenantId, input.rolloutId),
        tenant: await getTenantRow(client, input.tenantId),
        version: await getVersionRow(client, input.templateId, input.version),
        policy: await currentPolicy(client, input.tenantId),
      };
    });
    if (!loaded.snapshot) throw refused(`no snapshot ${input.snapshotId} for the tenant`);
    if (!loaded.tenant || !loaded.policy) throw refused('no such tenant');
    if (!loaded.version) throw refused(`no template version ${input.templateId}/${input.version}`);
    const parameters = loaded.apply?.plan?.parameters ?? {};
    const rendered = renderForTenant(storedTemplateDocument(loaded.version.document), parameters, loaded.tenant, 'parameters');
    if ('issues' in rendered)
      throw refused(`the applied version cannot be rendered for the tenant again: ${JSON.stringify(rendered.issues)}`);
    const directory = await targetOf(input.tenantId);
    const state = await directoryCall(() => readDirectoryState(directory, input.tenantId));
    const facts: RollbackFacts = {
      snapshot: loaded.snapshot,
      snapshotPolicy: loaded.snapshotPolicy ? { version: loaded.snapshotPolicy.version, document: loaded.snapshotPolicy.document } : null,
      applied: rendered.document,
      current: {
        roles: state.roles,
        settings: state.settings,
        policy: { version: loaded.policy.version, document: loaded.policy.document },
      },
      capabilities: { roleDelete: directory.capabilities.roleDelete },
    };
    const plan = planRollback(facts);
    // A role the apply created that someone has been given since is the tenant's now: never deleted.
    for (const step of plan.steps.filter((s) => s.kind === 'deleteRole')) {
      const members = await directoryCall(() => directory.listMembers(input.tenantId, step.name));
      if (!members.length) continue;
      plan.steps = plan.steps.filter((s) => s !== step);
      plan.conflicts.push({
        path: step.path,
        snapshot: null,
        applied: facts.applied.directory.roles.find((r) => r.name === step.name) ?? null,
        current: { members: members.length },
        reason: `role ${step.name} was created by the apply but has ${members.length} member(s) now; the rollback leaves it`,
      });
    }
    return { plan, facts, directory };
  }

  return {
    async recordRollbackEvent(input: WorkflowEvent & { view: TemplateRollbackView }): Promise<{ seq: number }> {
      return inScope(pool, tenantScope(input.view.tenantId), async (client) => {
        await upsertRollbackRow(client, input.view);
        const event = await appendWorkflowEvent(
          client,
          clock,
          input.view.tenantId,
          { type: 'template', id: input.view.templateId },
          {
            ...input,
            payload: {
              ...input.payload,
              status: input.view.status,
              rolloutId: input.view.rolloutId,
              version: input.view.version,
              snapshotId: input.view.snapshotId,
            },
          },
        );
        return { seq: event.seq };
      });
    },

    /**
     * Writes the snapshot back where the tenant still holds what the apply left: roles the apply
     * created are deleted, roles it changed get their description and privileged flag back, the
     * settings their values, and the policy its snapshot version's document as the tenant's next
     * version (`policy.updated` under `policyEventId`, the rollback as authority). Paths changed
     * since the apply are conflicts, left as they are.
     */
    async restoreSnapshot(
      input: RollbackStepInput & { policyEventId: string; actor: WorkflowEvent['actor']; authority: WorkflowEvent['authority'] },
    ): Promise<RollbackRestoreResult> {
      const { plan, directory } = await planNow(input);
      const { tenantId } = input;
      const restored: string[] = [];
      // The policy first: it stops naming a role the apply created before that role goes.
      let policyVersion: number | null = null;
      const policyStep = plan.steps.find((s) => s.kind === 'policy');
      if (policyStep) {
        policyVersion = await writeNextPolicy(
          { pool, clock },
          {
            tenantId,
            document: TenantPolicyDocument.parse(policyStep.document),
            from: policyStep.from,
            event: { eventId: input.policyEventId, actor: input.actor, authority: input.authority },
            payload: {
              restoredFrom: { snapshotId: input.snapshotId },
              rollback: { rolloutId: input.rolloutId, templateId: input.templateId, templateVersion: input.version },
            },
          },
        );
        // Changed since the plan (or written meanwhile): the next attempt plans again and sees which.
        if (policyVersion === null) throw new Error('the policy changed while it was being restored; trying again');
        restored.push('policy');
      }
      for (const step of plan.steps) {
        if (step.kind === 'deleteRole') await directoryCall(() => directory.deleteRole(tenantId, step.name));
        if (step.kind === 'restoreRole') await directoryCall(() => directory.upsertRole(tenantId, step.role));
        if (step.kind === 'deleteRole' || step.kind === 'restoreRole') restored.push(step.path);
      }
      const settings: PartialDirectorySecuritySettings = Object.fromEntries(
        plan.steps.flatMap((s) => (s.kind === 'setting' ? [[s.name, s.value]] : [])),
      );
      if (Object.keys(settings).length) {
        await directoryCall(() => directory.applySecuritySettings(tenantId, settings));
        restored.push(...plan.steps.filter((s) => s.kind === 'setting').map((s) => s.path));
      }
      return { restored, unchanged: plan.unchanged, conflicts: plan.conflicts, unsupported: plan.unsupported, policyVersion };
    },

    /**
     * Reads the tenant back: every path but the listed conflicts (and what the target cannot do)
     * must equal the snapshot. Retried while it does not (a target may show writes late).
     */
    async verifyRollback(input: RollbackStepInput & { conflicts: string[] }): Promise<{ verified: true }> {
      const { plan } = await planNow(input);
      const accepted = new Set(input.conflicts);
      const differing = [...plan.steps.map((s) => s.path), ...plan.conflicts.map((c) => c.path).filter((p) => !accepted.has(p))];
      if (differing.length) {
        throw ApplicationFailure.create({
          type: ROLLBACK_NOT_VERIFIED,
          message: `reading back still shows ${differing.length} path(s) differing from the snapshot: ${differing.join(', ')}`,
        });
      }
      return { verified: true };
    },

    /**
     * Pins the applied version back to the one before the apply, while the pin still shows the
     * apply's version; a pin that moved on since is a conflict, and one never moved is unchanged.
     */
    async repinPrevious(
      input: RollbackStepInput,
    ): Promise<{ pin: { from: number | null; to: number | null } | null; conflict: RollbackConflict | null }> {
      const outcome = await inScope(pool, tenantScope(input.tenantId), async (client) => {
        const snapshot = (await getSnapshotState(client, input.tenantId, input.snapshotId)) as SnapshotState | undefined;
        const now = await pinState(client, input.tenantId);
        const conflict = (reason: string, previous: unknown) => ({
          pin: null,
          conflict: { path: 'pin', snapshot: previous, applied: { version: input.version }, current: now, reason },
        });
        if (snapshot?.pin === undefined)
          return conflict('the snapshot predates recording the previous pin; the pin is left as it is', null);
        const previous = snapshot.pin?.templateId === input.templateId ? snapshot.pin : null;
        const to = previous?.appliedVersion ?? null;
        const nowVersion = now?.templateId === input.templateId ? now.appliedVersion : null;
        if (now?.templateId === input.templateId && nowVersion === to && to !== input.version) return { pin: null, conflict: null };
        if (now?.templateId === input.templateId && nowVersion === input.version) {
          await restorePin(client, {
            tenantId: input.tenantId,
            templateId: input.templateId,
            from: input.version,
            to,
            toAt: previous?.appliedAt ?? null,
            toParameters: previous?.appliedParameters ?? null,
            assigned:
              previous?.version !== undefined && previous.parameters
                ? { version: previous.version, parameters: previous.parameters }
                : undefined,
          });
          return { pin: { from: input.version, to }, conflict: null };
        }
        return conflict('the pin moved on after the apply; it is left as it is', { appliedVersion: to });
      });
      // Drift is fresh at once: against the version the tenant is pinned back to (none: its drift items resolve).
      await refreshTenantDrift({ pool, directories, clock, ...(webhooks ? { webhooks } : {}) }, input.tenantId, {
        kind: 'rollback',
        rolloutId: input.rolloutId,
        duringRollback: true,
      });
      return outcome;
    },

    // ------------------------------------------------------------ the whole rollout

    async recordRolloutRollbackEvent(input: WorkflowEvent & { view: RolloutRollbackView }): Promise<{ seq: number }> {
      return inScope(pool, mspScope, async (client) => {
        await upsertRolloutRollbackRow(client, input.view);
        const event = await appendWorkflowEvent(
          client,
          clock,
          MSP_CHAIN,
          { type: 'rollout', id: input.view.rolloutId },
          { ...input, payload: { ...input.payload, status: input.view.status, counts: input.view.counts } },
        );
        return { seq: event.seq };
      });
    },

    /** Progress only (no audit event): the read model follows the running window. */
    async noteRolloutRollback(view: RolloutRollbackView): Promise<void> {
      await inScope(pool, mspScope, (client) => upsertRolloutRollbackRow(client, view));
    },

    /** The rollout's tenants whose apply took a snapshot: what its rollback covers. */
    async countRollbackCandidates(input: { rolloutId: string }): Promise<number> {
      return (await inScope(pool, mspScope, (client) => rolloutApplyCounts(client, input.rolloutId))).snapshotted;
    },

    /** A page of the rollout's tenants that took a snapshot, after `after` by tenant id. */
    async listRollbackCandidates(input: {
      rolloutId: string;
      after: string | null;
      limit: number;
    }): Promise<(RollbackCandidate & { requested: boolean })[]> {
      return inScope(pool, mspScope, (client) => rollbackCandidates(client, input.rolloutId, input.after, input.limit));
    },

    /** How the rollout's tenant rollbacks ended, from their read model (those requested on their own included). */
    async rolloutRollbackOutcomes(input: { rolloutId: string }): Promise<Record<string, number>> {
      const rows = await inScope(pool, mspScope, (client) => listRollbackRows(client, input.rolloutId));
      const counts: Record<string, number> = {};
      for (const row of rows) counts[row.status] = (counts[row.status] ?? 0) + 1;
      return counts;
    },
  };
}
