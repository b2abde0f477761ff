import { ApplicationFailure } from '@temporalio/activity';
import { MSP_CHAIN } from '../../core/audit/chain.js';
import type { DirectoryResolver } from '../../core/directory/connector.js';
import { DIRECTORY_SETTING_NAMES, SETTING_CAPABILITY, type PartialDirectorySecuritySettings } from '../../core/directory/settings.js';
import {
  CLONE_CONFLICT,
  CLONE_REFUSED,
  clonePolicy,
  NOT_CLONED,
  type CloneCopied,
  type CloneSourceState,
  type TenantCloneResult,
} from '../../core/templates/clone.js';
import { planTemplate, readDirectoryState, renderForTenant } from '../../core/templates/plan.js';
import { storedTemplateDocument } from '../../core/templates/schemas.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import type { Pool } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { getAssignmentRow, getVersionRow, pinApplied, upsertAssignment } from '../../db/templates.js';
import { captureSourceState, cloneById, finishCloneRow, tenantNameTaken, type CloneRow } from '../../db/templates/clone.js';
import { currentPolicy, getTenantRow, insertPolicyVersion, insertTenant } from '../../db/tenancy.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent, type WorkflowEvent } from '../audit/record.js';
import { directoryCall } from '../directory/ledger.js';

type Who = Pick<WorkflowEvent, 'actor' | 'authority'>;

const conflictFailure = (field: 'slug' | 'name', message: string) =>
  ApplicationFailure.create({ type: CLONE_CONFLICT, message, nonRetryable: true, details: [{ field: `body.${field}` }] });
const refused = (message: string) => ApplicationFailure.create({ type: CLONE_REFUSED, message, nonRetryable: true });

/** What the clone copies, counted from the state read from the source. */
export function copiedOf(state: CloneSourceState): CloneCopied {
  return {
    roles: state.roles?.length ?? 0,
    privilegedRoles: state.roles?.filter((r) => r.privileged).length ?? 0,
    settings: Object.keys(state.settings).sort(),
    policyVersion: 1,
    pin: state.pin ? { templateId: state.pin.templateId, version: state.pin.version, appliedVersion: null } : null,
  };
}

/**
 * The steps of cloning a tenant. Each is safe to retry: the source is read once (the first state
 * read is kept with the clone's row), the tenant is created under the id the request stored, roles
 * and settings are written idempotently through the new tenant's connector, and every audit event
 * is written once by the id the workflow made.
 */
export function createCloneActivities({ pool, directories, clock }: { pool: Pool; directories: DirectoryResolver; clock: Clock }) {
  async function row(cloneId: string): Promise<CloneRow> {
    const found = await inScope(pool, mspScope, (client) => cloneById(client, cloneId));
    if (!found) throw refused(`no clone ${cloneId}`);
    return found;
  }

  return {
    /** Reads the source once, through its own connector, and keeps what was read with the clone's row. */
    async captureCloneSource(input: { cloneId: string; sourceTenantId: string }): Promise<CloneCopied & { notes: string[] }> {
      const clone = await row(input.cloneId);
      const stored = clone.source_state;
      if (stored) return { ...copiedOf(stored), notes: stored.notes };
      const loaded = await inScope(pool, mspScope, async (client) => {
        const policy = await currentPolicy(client, input.sourceTenantId);
        const pin = await getAssignmentRow(client, input.sourceTenantId);
        const version = pin ? await getVersionRow(client, pin.template_id, pin.version) : undefined;
        return { tenant: await getTenantRow(client, input.sourceTenantId), policy, pin, version };
      });
      if (!loaded.tenant || !loaded.policy) throw refused(`the source tenant ${input.sourceTenantId} does not exist`);
      const directory = await directoryCall(() => directories.directoryFor(input.sourceTenantId));
      const roles = directory.capabilities.roleLookup ? await directoryCall(() => directory.listAllRoles(input.sourceTenantId)) : null;
      const held = await directoryCall(() => directory.getSecuritySettings(input.sourceTenantId));
      const settings = Object.fromEntries(
        DIRECTORY_SETTING_NAMES.filter((name) => held[name] !== null).map((name) => [name, held[name]]),
      ) as PartialDirectorySecuritySettings;
      const notes: string[] = [];
      if (!roles) notes.push(`roles: roleLookup: not supported by the source's ${directory.kind} target; none were copied`);
      const missing = DIRECTORY_SETTING_NAMES.filter((name) => held[name] === null);
      if (missing.length) notes.push(`settings ${missing.join(', ')}: not held by the source's ${directory.kind} target; defaults kept`);
      let pin: CloneSourceState['pin'] = null;
      let copiedRoles = roles?.map((r) => ({ name: r.name, description: r.description, privileged: r.privileged })) ?? null;
      if (loaded.pin && loaded.version?.status === 'approved') {
        pin = { templateId: loaded.pin.template_id, version: loaded.pin.version, parameters: loaded.pin.parameters };
        // A description the pinned version wrote for the source (`Admins of {{tenant.name}}`) is
        // written anew for the clone; one the source changed by hand is copied as it is.
        const document = storedTemplateDocument(loaded.version.document);
        const forSource = renderForTenant(document, pin.parameters, loaded.tenant, 'parameters');
        const forClone = renderForTenant(document, pin.parameters, { name: clone.name, slug: clone.slug }, 'parameters');
        if ('document' in forSource && 'document' in forClone) {
          const before = new Map(forSource.document.directory.roles.map((r) => [r.name, r.description]));
          const after = new Map(forClone.document.directory.roles.map((r) => [r.name, r.description]));
          copiedRoles =
            copiedRoles?.map((r) =>
              before.get(r.name) === r.description ? { ...r, description: after.get(r.name) ?? r.description } : r,
            ) ?? null;
        }
      } else if (loaded.pin) {
        notes.push(
          `pin: version ${loaded.pin.version} of the source's template is ${loaded.version?.status ?? 'gone'}; a new pin needs an approved one`,
        );
      }
      const state: CloneSourceState = {
        target: directory.kind,
        roles: copiedRoles,
        settings,
        policyVersion: loaded.policy.version,
        policy: clonePolicy(TenantPolicyDocument.parse(loaded.policy.document)),
        pin,
        notes,
      };
      const kept = await inScope(pool, mspScope, (client) => captureSourceState(client, input.cloneId, state));
      return { ...copiedOf(kept), notes: kept.notes };
    },

    /**
     * Creates the tenant under the id stored with the request, with the source's policy (as
     * clonePolicy keeps it) as its version 1 and the source's pin, audited on the MSP chain and the
     * new tenant's. Already there (a retry after the commit): nothing more. A slug or name taken
     * since the request fails for good, naming the field.
     */
    async createClonedTenant(
      input: Who & {
        cloneId: string;
        tags: string[];
        events: { msp: string; tenant: string; pin: string };
      },
    ): Promise<{ created: boolean }> {
      const clone = await row(input.cloneId);
      const state = clone.source_state;
      if (!state) throw refused('the source was not read');
      return inScope(pool, mspScope, async (client) => {
        if (await getTenantRow(client, clone.new_tenant_id)) return { created: false };
        const taken = await tenantNameTaken(client, { slug: clone.slug, name: clone.name });
        if (taken.slug) throw conflictFailure('slug', `A tenant with slug "${clone.slug}" already exists.`);
        if (taken.name) throw conflictFailure('name', `A tenant named "${clone.name}" already exists.`);
        const tenant = await insertTenant(client, {
          id: clone.new_tenant_id,
          slug: clone.slug,
          name: clone.name,
          tags: [...input.tags].sort(),
          createdBy: input.actor.id,
        });
        await insertPolicyVersion(client, { tenantId: tenant.id, version: 1, document: state.policy, createdBy: input.actor.id });
        const target = { type: 'tenant', id: tenant.id };
        const clonedFrom = { tenantId: clone.source_tenant_id, policyVersion: state.policyVersion, cloneId: clone.clone_id };
        const after = { status: tenant.status, tags: tenant.tags, policyVersion: 1 };
        const event = (eventId: string, action: string, payload: Record<string, unknown>) => ({ ...input, eventId, action, payload });
        await appendWorkflowEvent(
          client,
          clock,
          MSP_CHAIN,
          target,
          event(input.events.msp, 'tenant.created', { slug: tenant.slug, name: tenant.name, after, clonedFrom }),
        );
        await appendWorkflowEvent(
          client,
          clock,
          tenant.id,
          target,
          event(input.events.tenant, 'tenant.created', { slug: tenant.slug, name: tenant.name, after, clonedFrom, policy: state.policy }),
        );
        if (state.pin) {
          await upsertAssignment(client, { tenantId: tenant.id, ...state.pin, assignedBy: input.actor.id });
          await appendWorkflowEvent(
            client,
            clock,
            tenant.id,
            { type: 'template', id: state.pin.templateId },
            event(input.events.pin, 'template.assigned', { before: null, after: state.pin, clonedFrom }),
          );
        }
        return { created: true };
      });
    },

    /** The source's roles and settings in the new tenant's directory, through its connector, audited once on its chain. */
    async copyClonedDirectory(input: Who & { cloneId: string; eventId: string }): Promise<{ roles: number; settings: string[] }> {
      const clone = await row(input.cloneId);
      const state = clone.source_state!;
      const tenantId = clone.new_tenant_id;
      const directory = await directoryCall(() => directories.directoryFor(tenantId));
      for (const role of state.roles ?? []) await directoryCall(() => directory.upsertRole(tenantId, role));
      const settings = Object.fromEntries(
        Object.entries(state.settings).filter(
          ([name]) => directory.capabilities[SETTING_CAPABILITY[name as keyof typeof SETTING_CAPABILITY]],
        ),
      ) as PartialDirectorySecuritySettings;
      await directoryCall(() => directory.applySecuritySettings(tenantId, settings));
      const copied = { roles: state.roles?.length ?? 0, settings: Object.keys(settings).sort() };
      await inScope(pool, tenantScope(tenantId), (client) =>
        appendWorkflowEvent(
          client,
          clock,
          tenantId,
          { type: 'directory', id: tenantId },
          {
            ...input,
            action: 'tenant.clone.directory_copied',
            payload: { target: directory.kind, roles: state.roles ?? [], settings, clonedFrom: clone.source_tenant_id },
          },
        ),
      );
      return copied;
    },

    /**
     * Reads the new tenant back against its pinned version, as an apply verifies: nothing the
     * target can hold may differ. Then the version counts as applied (`template.applied` on its
     * chain, once); otherwise it stays unapplied and the differences are named (the source had
     * drifted from its version), for an apply to settle.
     */
    async verifyClonedPin(
      input: Who & { cloneId: string; eventId: string },
    ): Promise<{ appliedVersion: number | null; differences: string[] }> {
      const clone = await row(input.cloneId);
      const pin = clone.source_state?.pin;
      if (!pin) return { appliedVersion: null, differences: [] };
      const tenantId = clone.new_tenant_id;
      const loaded = await inScope(pool, mspScope, async (client) => ({
        version: await getVersionRow(client, pin.templateId, pin.version),
        policy: await currentPolicy(client, tenantId),
        assignment: await getAssignmentRow(client, tenantId),
      }));
      if (!loaded.version || !loaded.policy) throw refused(`no template version ${pin.templateId}/${pin.version}`);
      if (loaded.assignment?.applied_version === pin.version) return { appliedVersion: pin.version, differences: [] };
      const rendered = renderForTenant(storedTemplateDocument(loaded.version.document), pin.parameters, clone, 'parameters');
      if ('issues' in rendered) return { appliedVersion: null, differences: rendered.issues.map((i) => `${i.path}: ${i.message}`) };
      const directory = await directoryCall(() => directories.directoryFor(tenantId));
      const state = await directoryCall(() => readDirectoryState(directory, tenantId));
      const plan = planTemplate(
        rendered.document,
        { tenantId, policyVersion: loaded.policy.version, policy: TenantPolicyDocument.parse(loaded.policy.document), ...state },
        { templateId: pin.templateId, version: pin.version, parameters: rendered.values, computedAt: clock.now().toISOString() },
      );
      const differences = plan.items.filter((i) => !i.unsupported).map((i) => i.path);
      if (differences.length) return { appliedVersion: null, differences };
      await inScope(pool, tenantScope(tenantId), async (client) => {
        await pinApplied(client, { tenantId, ...pin, by: input.actor.id });
        await appendWorkflowEvent(
          client,
          clock,
          tenantId,
          { type: 'template', id: pin.templateId },
          {
            ...input,
            action: 'template.applied',
            payload: {
              verified: true,
              pinned: { templateId: pin.templateId, version: pin.version },
              clonedFrom: clone.source_tenant_id,
              unsupported: plan.items.filter((i) => i.unsupported).map((i) => i.path),
            },
          },
        );
      });
      return { appliedVersion: pin.version, differences: [] };
    },

    /**
     * The outcome on the clone's row and as evidence: on the MSP chain, on the source's chain (who
     * cloned it into which tenant) and, once it exists, on the new tenant's; once each.
     */
    async finishClone(input: Who & { result: TenantCloneResult; events: { msp: string; source: string; tenant: string } }): Promise<void> {
      const { result } = input;
      const clone = await row(result.cloneId);
      const completed = result.status === 'completed';
      const action = completed ? 'tenant.cloned' : 'tenant.clone.failed';
      const payload = {
        cloneId: result.cloneId,
        sourceTenantId: result.sourceTenantId,
        tenantId: result.tenantId,
        slug: clone.slug,
        name: clone.name,
        copied: result.copied,
        notCopied: NOT_CLONED,
        notes: result.notes,
        failure: result.failure,
      };
      const target = { type: 'tenant', id: result.tenantId };
      const event = (eventId: string) => ({ ...input, eventId, action, payload });
      await inScope(pool, mspScope, async (client) => {
        await finishCloneRow(client, result.cloneId, result);
        await appendWorkflowEvent(client, clock, MSP_CHAIN, target, event(input.events.msp));
        // The source's own staff read its chain: they learn it was cloned and by whom, not the name
        // or slug of the other customer it was cloned into.
        const { slug: _slug, name: _name, failure, ...rest } = payload;
        const forSource = { ...rest, failure: failure ? { code: failure.code, field: failure.field } : null };
        await appendWorkflowEvent(client, clock, result.sourceTenantId, target, {
          ...input,
          eventId: input.events.source,
          action,
          payload: forSource,
        });
        // The new tenant's chain, when the tenant exists (a clone can fail after creating it).
        if (await getTenantRow(client, result.tenantId)) {
          await appendWorkflowEvent(client, clock, result.tenantId, target, event(input.events.tenant));
        }
      });
    },
  };
}
