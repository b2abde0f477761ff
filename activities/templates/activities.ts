import canonicalize from 'canonicalize';
import { ApplicationFailure } from '@temporalio/activity';
import type { DirectoryConnector, DirectoryResolver } from '../../core/directory/connector.js';
import { DIRECTORY_SETTING_NAMES, SETTING_CAPABILITY, type PartialDirectorySecuritySettings } from '../../core/directory/settings.js';
import { APPLY_NOT_VERIFIED, APPLY_REFUSED, type TemplateApplyView, type TemplatePlan } from '../../core/templates/contract.js';
import { planTemplate, readDirectoryState, renderForTenant } from '../../core/templates/plan.js';
import { storedTemplateDocument, type TemplateDocument } from '../../core/templates/schemas.js';
import { renderPath } from '../../core/tenancy/policy-diff.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { countingApprovers, currentPolicy, getTenantRow } from '../../db/tenancy.js';
import { getApplyRow, getVersionRow, insertSnapshot, openApplyOf, pinApplied, setApplyPlan, upsertApplyRow } from '../../db/templates.js';
import { openRollbackOf, pinState } from '../../db/template-rollbacks.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent, type WorkflowEvent } from '../audit/record.js';
import { directoryCall } from '../directory/ledger.js';
import type { WebhookTransport } from '../tenancy/webhook-http.js';
import { refreshTenantDrift } from './drift.js';
import { writeNextPolicy } from './policy-write.js';

export interface RecordApplyEventInput extends WorkflowEvent {
  view: TemplateApplyView;
}

/** Which version, for which tenant, with which values: every step renders and plans afresh from it. */
export interface ApplyStepInput {
  rolloutId: string;
  tenantId: string;
  templateId: string;
  version: number;
  parameters: Record<string, string>;
}

export interface ApplyResult {
  roles: number;
  settings: number;
  /** The tenant policy version the apply wrote, or null when the policy already matched. */
  policyVersion: number | null;
  /** What the target cannot hold (`<capability>: not supported by target`), listed, never skipped silently. */
  unsupported: string[];
}

const refused = (message: string) => ApplicationFailure.create({ type: APPLY_REFUSED, message, nonRetryable: true });

/**
 * The steps of applying a template version to one tenant. Each reads the tenant afresh and is safe
 * to retry: roles and settings are written idempotently through the connector, the policy only
 * when it differs, the snapshot and audit events once by the ids the workflow made.
 */
export function createTemplateActivities({
  pool,
  directories,
  clock,
  webhooks,
}: {
  pool: Pool;
  directories: DirectoryResolver;
  clock: Clock;
  webhooks?: WebhookTransport;
}) {
  const targetOf = (tenantId: string): Promise<DirectoryConnector> => directoryCall(() => directories.directoryFor(tenantId));

  /** The version rendered for the tenant, the tenant's policy as in force, and the plan against its directory now. */
  async function planNow(input: ApplyStepInput): Promise<{ document: TemplateDocument; plan: TemplatePlan; policy: TenantPolicyDocument }> {
    const loaded = await inScope(pool, mspScope, async (client) => ({
      tenant: await getTenantRow(client, input.tenantId),
      version: await getVersionRow(client, input.templateId, input.version),
      policy: await currentPolicy(client, input.tenantId),
    }));
    if (loaded.tenant?.status !== 'active') throw refused('the tenant is not active');
    if (!loaded.version || !loaded.policy) throw refused(`no template version ${input.templateId}/${input.version}`);
    if (loaded.version.status !== 'approved') throw refused(`template version ${input.version} is ${loaded.version.status}, not approved`);
    const rendered = renderForTenant(storedTemplateDocument(loaded.version.document), input.parameters, loaded.tenant, 'parameters');
    if ('issues' in rendered) throw refused(`the version cannot be rendered for the tenant: ${JSON.stringify(rendered.issues)}`);
    const policy = TenantPolicyDocument.parse(loaded.policy.document);
    const directory = await targetOf(input.tenantId);
    const state = await directoryCall(() => readDirectoryState(directory, input.tenantId));
    const plan = planTemplate(
      rendered.document,
      { tenantId: input.tenantId, policyVersion: loaded.policy.version, policy, ...state },
      { templateId: input.templateId, version: input.version, parameters: rendered.values, computedAt: clock.now().toISOString() },
    );
    return { document: rendered.document, plan, policy };
  }

  return {
    async recordApplyEvent(input: RecordApplyEventInput): Promise<{ seq: number }> {
      return inScope(pool, tenantScope(input.view.tenantId), async (client) => {
        await upsertApplyRow(client, input.view);
        const event = await appendWorkflowEvent(
          client,
          clock,
          input.view.tenantId,
          { type: 'template', id: input.view.templateId },
          {
            ...input,
            payload: { ...input.payload, status: input.view.status, rolloutId: input.view.rolloutId, version: input.view.version },
          },
        );
        return { seq: event.seq };
      });
    },

    /**
     * Whether `actorId` is one of the tenant's own approvers now (active, not MSP staff, bound as
     * tenant_approver in the tenant), the rule the API's route applies. A denial ends the apply at
     * once, so the gate asks before taking one: a denial sent straight to Temporal in anyone else's
     * name is refused and nothing is recorded.
     */
    async confirmApplyDecider(input: { tenantId: string; actorId: string }): Promise<{ counts: boolean }> {
      const counting = await inScope(pool, mspScope, (client) => countingApprovers(client, [input.actorId], input.tenantId));
      return { counts: counting.includes(input.actorId) };
    },

    /** The plan the run starts from, stored with the read model; the gate and its quorum follow from it. */
    async planApply(
      input: ApplyStepInput,
    ): Promise<{ summary: TemplatePlan['summary']; needsApproval: boolean; approvalsRequired: number }> {
      // One apply (or rollback) per tenant at a time. The API checks before starting one, but two
      // started at once both get here: each sees the other and both stop, changing nothing.
      const busy = await inScope(pool, tenantScope(input.tenantId), async (client) => {
        const apply = await openApplyOf(client, input.tenantId, input.rolloutId);
        const rollback = await openRollbackOf(client, input.tenantId);
        return apply ? `an apply of rollout ${apply}` : rollback ? `a rollback of rollout ${rollback}` : null;
      });
      if (busy) throw refused(`${busy} is under way for the tenant; one at a time, so nothing was changed`);
      const { plan, policy } = await planNow(input);
      await inScope(pool, tenantScope(input.tenantId), (client) => setApplyPlan(client, input.tenantId, input.rolloutId, plan));
      return { summary: plan.summary, needsApproval: plan.needsTenantApproval, approvalsRequired: policy.governance.policyChangeApprovals };
    },

    /** The tenant's roles, security settings and policy before the apply, kept once under `snapshotId`. */
    async snapshotTenant(input: ApplyStepInput & { snapshotId: string }): Promise<{ snapshotId: string }> {
      const directory = await targetOf(input.tenantId);
      const state = await directoryCall(() => readDirectoryState(directory, input.tenantId));
      await inScope(pool, tenantScope(input.tenantId), async (client) => {
        const policy = await currentPolicy(client, input.tenantId);
        // The pin before the apply: what a rollback re-pins (activities/templates/rollback.ts).
        const pin = await pinState(client, input.tenantId);
        await insertSnapshot(client, {
          tenantId: input.tenantId,
          snapshotId: input.snapshotId,
          rolloutId: input.rolloutId,
          state: { target: state.target.kind, roles: state.roles, settings: state.settings, policyVersion: policy?.version ?? null, pin },
        });
      });
      return { snapshotId: input.snapshotId };
    },

    /**
     * Writes what the plan says through the tenant's connector and, for the policy sections, as
     * the tenant's next policy version (audited on its chain under `policyEventId`). A plan that
     * loosens control now, without the tenant's approval, is refused: nothing is written. So is one
     * that, approved, now holds a change the tenant's approvers decide (one that loosens, or any
     * when they decide every change) which was not in the plan they approved: the tenant approved
     * that plan, not whatever the tenant's state makes of the version since.
     */
    async applyVersion(
      input: ApplyStepInput & {
        approved: boolean;
        policyEventId: string;
        actor: WorkflowEvent['actor'];
        authority: WorkflowEvent['authority'];
      },
    ): Promise<ApplyResult> {
      const { document, plan, policy } = await planNow(input);
      if (plan.needsTenantApproval && !input.approved) {
        throw refused('the plan now loosens the tenant’s control, which its approvers have not approved');
      }
      if (input.approved) {
        const approved = await inScope(pool, tenantScope(input.tenantId), (client) => getApplyRow(client, input.tenantId, input.rolloutId));
        // The gate's Update cannot tell the tenant's approver from MSP staff (it takes an actor id): an
        // approval sent straight to the workflow counts only from the tenant's own approvers, still
        // bound now and not who started the apply, as the API's route would have required.
        const approverIds = (approved?.view.approvals ?? []).map((a) => a.approverId).filter((a) => a !== approved?.view.requesterId);
        const counting = await inScope(pool, mspScope, (client) => countingApprovers(client, approverIds, input.tenantId));
        if (counting.length < policy.governance.policyChangeApprovals) {
          throw refused(
            `only ${counting.length} of the gate's approvals come from the tenant's own approvers; ` +
              `${policy.governance.policyChangeApprovals} are required`,
          );
        }
        const change = (item: TemplatePlan['items'][number]) => `${item.path}\u0000${item.effect}\u0000${canonicalize(item.after ?? null)}`;
        const approvedChanges = new Set((approved?.plan?.items ?? []).map(change));
        const decided = (item: TemplatePlan['items'][number]) => item.effect === 'loosens' || policy.governance.approveEveryChange;
        const unapproved = plan.items.filter((item) => !item.unsupported && decided(item) && !approvedChanges.has(change(item)));
        if (unapproved.length) {
          throw refused(
            `the plan changed since the tenant's approvers approved it: ${unapproved.map((item) => item.path).join(', ')} ` +
              'would change as they did not approve; start the apply again for a new decision',
          );
        }
      }
      const directory = await targetOf(input.tenantId);
      const { tenantId } = input;
      // The roles the plan creates or changes (a role already as the version says is left alone).
      const changed = plan.items.filter((i) => i.area === 'directory.roles' && !i.unsupported).map((i) => i.path);
      const roles = document.directory.roles.filter((r) => {
        const at = renderPath(['directory', 'roles', r.name]);
        return changed.some((path) => path === at || path.startsWith(`${at}.`));
      });
      for (const role of roles) await directoryCall(() => directory.upsertRole(tenantId, role));

      const settings: PartialDirectorySecuritySettings = Object.fromEntries(
        DIRECTORY_SETTING_NAMES.filter(
          (name) => document.directory.settings[name] !== undefined && directory.capabilities[SETTING_CAPABILITY[name]],
        ).map((name) => [name, document.directory.settings[name]]),
      );
      await directoryCall(() => directory.applySecuritySettings(tenantId, settings));

      let policyVersion: number | null = null;
      if (plan.items.some((i) => i.area === 'policy')) {
        const proposed = TenantPolicyDocument.parse({
          ...policy,
          ...(document.policy.grants ? { grants: document.policy.grants } : {}),
          ...(document.policy.lifecycle ? { lifecycle: document.policy.lifecycle } : {}),
        });
        const named = [...Object.keys(proposed.grants.roles), ...proposed.lifecycle.rules.flatMap((r) => r.roles)];
        if (named.length && directory.capabilities.roleLookup) {
          const known = new Set((await directoryCall(() => directory.getRoles(tenantId, [...new Set(named)]))).map((r) => r.name));
          const missing = [...new Set(named)].filter((name) => !known.has(name));
          if (missing.length) throw refused(`the policy names roles the tenant's directory does not have: ${missing.join(', ')}`);
        }
        // Null when an earlier attempt wrote it already.
        policyVersion = await writeNextPolicy(
          { pool, clock },
          {
            tenantId,
            document: proposed,
            event: { eventId: input.policyEventId, actor: input.actor, authority: input.authority },
            payload: { diff: plan.items.filter((i) => i.area === 'policy'), templateId: input.templateId, templateVersion: input.version },
          },
        );
      }
      return {
        roles: roles.length,
        settings: Object.keys(settings).length,
        policyVersion,
        unsupported: [...new Set(plan.items.flatMap((i) => (i.unsupported ? [`${i.path}: ${i.unsupported}`] : [])))],
      };
    },

    /** Reads the tenant back: nothing the target can hold may still differ from the version (retried while it does). */
    async verifyApply(input: ApplyStepInput): Promise<{ remaining: number }> {
      const { plan } = await planNow(input);
      const remaining = plan.items.filter((i) => !i.unsupported);
      if (remaining.length) {
        throw ApplicationFailure.create({
          type: APPLY_NOT_VERIFIED,
          message: `reading back still shows ${remaining.length} difference(s): ${remaining.map((i) => i.path).join(', ')}`,
        });
      }
      return { remaining: 0 };
    },

    /**
     * Pins the tenant to the exact version applied and verified, then checks its drift against
     * that version at once, so its drift status is fresh the moment the apply ends.
     */
    async pinApplied(input: ApplyStepInput & { by: string }): Promise<void> {
      await inScope(pool, tenantScope(input.tenantId), (client) =>
        pinApplied(client, {
          tenantId: input.tenantId,
          templateId: input.templateId,
          version: input.version,
          parameters: input.parameters,
          by: input.by,
        }),
      );
      await refreshTenantDrift({ pool, directories, clock, ...(webhooks ? { webhooks } : {}) }, input.tenantId, {
        kind: 'apply',
        rolloutId: input.rolloutId,
        duringApply: true,
      });
    },
  };
}
