import { randomUUID } from 'node:crypto';
import { WorkflowIdConflictPolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { MSP_CHAIN, type Authority } from '../core/audit/chain.js';
import type { ActionContext } from '../core/audit/context.js';
import { resolverOf, type DirectoryDeps } from '../core/directory/connector.js';
import { AppError, badRequest, conflict, forbidden, notFound } from '../core/errors.js';
import {
  ApplyRejection,
  approveApplyUpdate,
  denyApplyUpdate,
  initialApplyView,
  TEMPLATE_APPLY_WORKFLOW_TYPE,
  templateApplySearchAttributes,
  templateApplyWorkflowId,
  TEMPLATES_TASK_QUEUE,
  TemplateRefusal,
  type TemplateApplyInput,
  type TemplateApplyView,
  type TemplateAssignmentView,
  type TemplateDiff,
  type TemplatePlan,
  type TemplateVersionStatus,
  type TemplateVersionView,
  type TemplateView,
} from '../core/templates/contract.js';
import { diffTemplateDocuments, planTemplate, readDirectoryState, renderForTenant, type TenantFacts } from '../core/templates/plan.js';
import { storedTemplateDocument, type TemplateDocument } from '../core/templates/schemas.js';
import { TenantPolicyDocument } from '../core/tenancy/schemas.js';
import { appendActionEvent as audit } from '../db/audit.js';
import type { Pool, PoolClient } from '../db/pool.js';
import { inScope, mspScope, tenantScope } from '../db/scope.js';
import { currentPolicy, getTenantRow } from '../db/tenancy.js';
import type { templateApplyWorkflow } from '../workflows/templates/apply.js';
import { openRollbackOf } from '../db/template-rollbacks.js';
import { deleteUnstartedApply, lockTemplateStarts } from '../db/template-starts.js';
import { tenantsInOpenRollouts } from '../db/rollouts.js';
import { updateRefusal } from './update-refusal.js';
import {
  getApplyRow,
  listApplyRows,
  openApplyOf,
  getAssignmentRow,
  getTemplateRow,
  getVersionRow,
  insertDraftVersion,
  insertTemplate,
  listAssignmentRows,
  listTemplateRows,
  listVersionRows,
  moveVersion,
  touchTemplate,
  updateDraftDocument,
  upsertApplyRow,
  upsertAssignment,
  type AssignmentRow,
  type TemplateRow,
  type TemplateVersionRow,
} from '../db/templates.js';

/**
 * Templates as controlled artefacts (MSP chain), tenants' pins (each tenant's chain) and
 * dry-runs (no writes at all). Every write is one transaction with its audit event.
 */
export interface TemplateDeps extends DirectoryDeps {
  pool: Pool;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function templateView(row: TemplateRow): TemplateView {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    createdAt: row.created_at.toISOString(),
    createdBy: row.created_by,
    updatedAt: row.updated_at.toISOString(),
    latestVersion: row.latest_version,
    latestApprovedVersion: row.latest_approved_version,
  };
}

const documentOf = (row: TemplateVersionRow): TemplateDocument => storedTemplateDocument(row.document);

function versionView(row: TemplateVersionRow): TemplateVersionView {
  return {
    templateId: row.template_id,
    version: row.version,
    status: row.status,
    document: documentOf(row),
    authors: row.authors,
    createdAt: row.created_at.toISOString(),
    createdBy: row.created_by,
    updatedAt: row.updated_at.toISOString(),
    proposedAt: iso(row.proposed_at),
    proposedBy: row.proposed_by,
    approvedAt: iso(row.approved_at),
    approvedBy: row.approved_by,
    deprecatedAt: iso(row.deprecated_at),
    deprecatedBy: row.deprecated_by,
    comment: row.comment,
  };
}

function assignmentView(row: AssignmentRow): TemplateAssignmentView {
  return {
    tenantId: row.tenant_id,
    templateId: row.template_id,
    templateName: row.template_name,
    version: row.version,
    parameters: row.parameters,
    assignedAt: row.assigned_at.toISOString(),
    assignedBy: row.assigned_by,
    appliedVersion: row.applied_version,
    appliedAt: iso(row.applied_at),
  };
}

const templateTarget = (id: string) => ({ type: 'template', id });
const versionTarget = (id: string, version: number) => ({ type: 'template_version', id: `${id}/${version}` });

async function lockedTemplate(client: PoolClient, templateId: string): Promise<TemplateRow> {
  const row = await getTemplateRow(client, templateId, true);
  if (!row) throw notFound('template');
  return row;
}

async function versionRow(client: PoolClient, templateId: string, version: number, forUpdate = false): Promise<TemplateVersionRow> {
  const row = await getVersionRow(client, templateId, version, forUpdate);
  if (!row) throw notFound('template version');
  return row;
}

const wrongStatus = (row: TemplateVersionRow, step: string, needs: TemplateVersionStatus) =>
  new AppError(409, TemplateRefusal.WrongStatus, `Version ${row.version} is ${row.status}; ${step} needs a ${needs} version.`);

// ---------------------------------------------------------------- templates and versions (MSP)

export async function createTemplate(
  pool: Pool,
  ctx: ActionContext,
  input: { name: string; description: string; document: TemplateDocument },
): Promise<{ template: TemplateView; version: TemplateVersionView }> {
  return inScope(pool, mspScope, async (client) => {
    const id = randomUUID();
    if (!(await insertTemplate(client, { id, name: input.name, description: input.description, createdBy: ctx.actor.id }))) {
      throw conflict(`A template named "${input.name}" exists.`);
    }
    const version = await insertDraftVersion(client, id, input.document, ctx.actor.id);
    await audit(client, ctx, {
      tenantId: MSP_CHAIN,
      action: 'template.created',
      target: templateTarget(id),
      payload: { name: input.name, description: input.description, version: version.version, after: { document: input.document } },
    });
    return { template: templateView((await getTemplateRow(client, id))!), version: versionView(version) };
  });
}

export async function listTemplates(pool: Pool): Promise<TemplateView[]> {
  return inScope(pool, mspScope, async (client) => (await listTemplateRows(client)).map(templateView));
}

export async function getTemplate(pool: Pool, templateId: string): Promise<TemplateView> {
  return inScope(pool, mspScope, async (client) => {
    const row = await getTemplateRow(client, templateId);
    if (!row) throw notFound('template');
    return templateView(row);
  });
}

export async function newVersion(
  pool: Pool,
  ctx: ActionContext,
  templateId: string,
  document: TemplateDocument,
): Promise<TemplateVersionView> {
  return inScope(pool, mspScope, async (client) => {
    await lockedTemplate(client, templateId);
    const row = await insertDraftVersion(client, templateId, document, ctx.actor.id);
    await touchTemplate(client, templateId);
    await audit(client, ctx, {
      tenantId: MSP_CHAIN,
      action: 'template.version.drafted',
      target: versionTarget(templateId, row.version),
      payload: { templateId, version: row.version, after: { document } },
    });
    return versionView(row);
  });
}

export async function listVersions(pool: Pool, templateId: string): Promise<TemplateVersionView[]> {
  return inScope(pool, mspScope, async (client) => {
    if (!(await getTemplateRow(client, templateId))) throw notFound('template');
    return (await listVersionRows(client, templateId)).map(versionView);
  });
}

export async function getVersion(pool: Pool, templateId: string, version: number): Promise<TemplateVersionView> {
  return inScope(pool, mspScope, async (client) => versionView(await versionRow(client, templateId, version)));
}

/** A draft's new document, based on the `updatedAt` the editor read (409 when another edit came first). */
export async function updateDraft(
  pool: Pool,
  ctx: ActionContext,
  templateId: string,
  version: number,
  input: { expectedUpdatedAt: string; document: TemplateDocument },
): Promise<TemplateVersionView> {
  return inScope(pool, mspScope, async (client) => {
    const before = await versionRow(client, templateId, version, true);
    if (before.status !== 'draft') throw wrongStatus(before, 'editing', 'draft');
    if (before.updated_at.toISOString() !== input.expectedUpdatedAt) {
      throw conflict(`The draft changed at ${before.updated_at.toISOString()}; read it again and edit that.`);
    }
    const after = (await updateDraftDocument(client, templateId, version, input.document, ctx.actor.id))!;
    await touchTemplate(client, templateId);
    await audit(client, ctx, {
      tenantId: MSP_CHAIN,
      action: 'template.version.edited',
      target: versionTarget(templateId, version),
      payload: {
        templateId,
        version,
        diff: diffTemplateDocuments(documentOf(before), input.document),
        after: { document: input.document },
      },
    });
    return versionView(after);
  });
}

export type VersionStep = 'propose' | 'approve' | 'reject' | 'deprecate';

const STEPS: Record<VersionStep, { from: TemplateVersionStatus; to: TemplateVersionStatus; action: string }> = {
  propose: { from: 'draft', to: 'proposed', action: 'template.version.proposed' },
  approve: { from: 'proposed', to: 'approved', action: 'template.version.approved' },
  // Back to its authors, with the reason in the comment.
  reject: { from: 'proposed', to: 'draft', action: 'template.version.rejected' },
  deprecate: { from: 'approved', to: 'deprecated', action: 'template.version.deprecated' },
};

/**
 * One step of a version's life. Approving and rejecting are for someone who neither wrote nor
 * proposed it (403 `template_self_approval`); the database refuses an approval by an author too.
 */
export async function moveTemplateVersion(
  pool: Pool,
  ctx: ActionContext,
  templateId: string,
  version: number,
  step: VersionStep,
  comment: string | null,
): Promise<TemplateVersionView> {
  const { from, to, action } = STEPS[step];
  return inScope(pool, mspScope, async (client) => {
    const before = await versionRow(client, templateId, version, true);
    if (before.status !== from) throw wrongStatus(before, step === 'propose' ? 'proposing' : `${step.replace(/e$/, '')}ing`, from);
    if ((step === 'approve' || step === 'reject') && before.authors.includes(ctx.actor.id)) {
      throw new AppError(403, TemplateRefusal.SelfApproval, `An author or the proposer of version ${version} cannot ${step} it.`);
    }
    const after = (await moveVersion(client, templateId, version, { from, to, actor: ctx.actor.id, comment }))!;
    await touchTemplate(client, templateId);
    await audit(client, ctx, {
      tenantId: MSP_CHAIN,
      action,
      target: versionTarget(templateId, version),
      payload: {
        templateId,
        version,
        before: { status: before.status },
        after: { status: after.status },
        authors: after.authors,
        comment,
      },
    });
    return versionView(after);
  });
}

export async function diffVersions(pool: Pool, templateId: string, from: number, to: number): Promise<TemplateDiff> {
  return inScope(pool, mspScope, async (client) => {
    const [a, b] = [await versionRow(client, templateId, from), await versionRow(client, templateId, to)];
    const items = diffTemplateDocuments(documentOf(a), documentOf(b));
    return { templateId, from, to, items, loosens: items.some((i) => i.effect === 'loosens') };
  });
}

/** The tenants pinned to the template, each with its version. */
export async function listAssignments(pool: Pool, templateId: string): Promise<TemplateAssignmentView[]> {
  return inScope(pool, mspScope, async (client) => {
    if (!(await getTemplateRow(client, templateId))) throw notFound('template');
    return (await listAssignmentRows(client, templateId)).map(assignmentView);
  });
}

// ---------------------------------------------------------------- tenants: pin and dry-run

async function tenantFacts(client: PoolClient, tenantId: string): Promise<TenantFacts> {
  const tenant = await getTenantRow(client, tenantId);
  if (!tenant) throw notFound('tenant');
  return { name: tenant.name, slug: tenant.slug };
}

/** The version rendered for the tenant with its values; 400 naming the fields when that cannot be done. */
function rendered(
  document: TemplateDocument,
  supplied: Record<string, string>,
  tenant: TenantFacts,
  at: string,
): { document: TemplateDocument; values: Record<string, string> } {
  const result = renderForTenant(document, supplied, tenant, at);
  if ('issues' in result) throw badRequest('The template cannot be rendered for this tenant with these parameters.', result.issues);
  return result;
}

/**
 * Pins the tenant to an approved version with its parameter values (checked by rendering the
 * version for the tenant). Changes nothing in the tenant's directory or policy: a rollout applies.
 */
export async function assignTemplate(
  pool: Pool,
  ctx: ActionContext,
  tenantId: string,
  input: { templateId: string; version: number; parameters: Record<string, string> },
): Promise<TemplateAssignmentView> {
  return inScope(pool, mspScope, async (client) => {
    const tenant = await tenantFacts(client, tenantId);
    const version = await getVersionRow(client, input.templateId, input.version);
    if (!version) throw badRequest('No such template version.', [{ path: 'body.version', message: 'no such template version' }]);
    if (version.status !== 'approved') throw wrongStatus(version, 'assigning', 'approved');
    rendered(documentOf(version), input.parameters, tenant, 'body.parameters');
    const before = await getAssignmentRow(client, tenantId);
    await upsertAssignment(client, { tenantId, ...input, assignedBy: ctx.actor.id });
    const after = (await getAssignmentRow(client, tenantId))!;
    const pin = (row: AssignmentRow | undefined) =>
      row ? { templateId: row.template_id, version: row.version, parameters: row.parameters } : null;
    await audit(client, ctx, {
      tenantId,
      action: 'template.assigned',
      target: templateTarget(input.templateId),
      payload: { before: pin(before), after: pin(after) },
    });
    return assignmentView(after);
  });
}

/** Read in the MSP scope: the pin names its template, which is the MSP's (the route has checked the caller's standing). */
export async function getAssignment(pool: Pool, tenantId: string): Promise<TemplateAssignmentView> {
  return inScope(pool, mspScope, async (client) => {
    const row = await getAssignmentRow(client, tenantId);
    if (!row)
      throw new AppError(
        404,
        TemplateRefusal.NotPinned,
        'The tenant is pinned to no template: assign one with PUT /v1/tenants/{tenantId}/template.',
      );
    return assignmentView(row);
  });
}

/**
 * What the version would change in the tenant now: its directory read through the tenant's
 * connector, its policy as in force. Reads only; nothing is written, not even an audit event.
 * Without a template or version, the tenant's pin is planned; parameters override its values.
 */
export async function dryRun(
  deps: TemplateDeps,
  tenantId: string,
  input: { templateId?: string; version?: number; parameters?: Record<string, string> },
): Promise<TemplatePlan> {
  const { tenant, assignment, version, policy } = await inScope(deps.pool, mspScope, async (client) => {
    const facts = await tenantFacts(client, tenantId);
    const pin = await getAssignmentRow(client, tenantId);
    const templateId = input.templateId ?? pin?.template_id;
    if (!templateId) {
      throw badRequest('The tenant is assigned no template: name one.', [
        { path: 'body.templateId', message: 'required: no template is assigned' },
      ]);
    }
    const number = input.version ?? (pin?.template_id === templateId ? pin.version : undefined);
    if (number === undefined) {
      throw badRequest('Name the version to plan.', [
        { path: 'body.version', message: 'required: the tenant is not pinned to this template' },
      ]);
    }
    const row = await getVersionRow(client, templateId, number);
    if (!row) throw notFound('template version');
    const current = await currentPolicy(client, tenantId);
    if (!current) throw notFound('tenant');
    return { tenant: facts, assignment: pin, version: row, policy: current };
  });
  const supplied = { ...(assignment?.template_id === version.template_id ? assignment.parameters : {}), ...(input.parameters ?? {}) };
  const { document, values } = rendered(documentOf(version), supplied, tenant, 'body.parameters');
  const directory = await resolverOf(deps).directoryFor(tenantId);
  return planTemplate(
    document,
    {
      tenantId,
      policyVersion: policy.version,
      policy: TenantPolicyDocument.parse(policy.document),
      ...(await readDirectoryState(directory, tenantId)),
    },
    { templateId: version.template_id, version: version.version, parameters: values, computedAt: new Date().toISOString() },
  );
}

// ---------------------------------------------------------------- applying the pin to one tenant

export interface TemplateApplyDeps extends TemplateDeps {
  temporal: Client;
}

/**
 * Starts applying the tenant's pin (`rollout/<rolloutId>/<tenantId>`): the workflow plans, waits
 * for the tenant's approvers when the plan loosens control, snapshots, applies, reads back and
 * pins. The gate's timeout is the tenant's own (`governance.policyChangeTimeoutDays`) unless given.
 */
export async function startApply(
  deps: TemplateApplyDeps,
  ctx: ActionContext,
  tenantId: string,
  options: { approvalTimeoutMinutes?: number },
): Promise<{ rolloutId: string; tenantId: string; workflowId: string }> {
  const rolloutId = randomUUID();
  const workflowId = templateApplyWorkflowId(rolloutId, tenantId);
  // One at a time per tenant, so two applies never interleave their snapshots and writes: the check
  // and the apply's row (a placeholder its workflow's first step overwrites) are one locked step, so
  // two requests at once cannot both find the tenant free.
  const input = await inScope(deps.pool, mspScope, async (client): Promise<TemplateApplyInput> => {
    await lockTemplateStarts(client);
    const pin = await getAssignmentRow(client, tenantId);
    const policy = await currentPolicy(client, tenantId);
    if (!policy) throw notFound('tenant');
    if (!pin) throw conflict('The tenant is pinned to no template: assign one first.');
    const open = await openApplyOf(client, tenantId);
    if (open) throw conflict(`An apply is under way for the tenant (rollout ${open}); wait for it, or decide its gate.`);
    const rollingBack = await openRollbackOf(client, tenantId);
    if (rollingBack) throw conflict(`An apply of the tenant (rollout ${rollingBack}) is being rolled back; wait for it.`);
    const [waiting] = await tenantsInOpenRollouts(client, [tenantId]);
    if (waiting) throw conflict(`The tenant waits for its turn in rollout ${waiting.rolloutId}; cancel it there first.`);
    const timeoutSeconds = options.approvalTimeoutMinutes
      ? options.approvalTimeoutMinutes * 60
      : TenantPolicyDocument.parse(policy.document).governance.policyChangeTimeoutDays * 86_400;
    const prepared: TemplateApplyInput = {
      rolloutId,
      tenantId,
      templateId: pin.template_id,
      version: pin.version,
      parameters: pin.parameters,
      requester: ctx.actor,
      authority: ctx.authority,
      approvalTimeoutSeconds: timeoutSeconds,
    };
    // The apply's row until its workflow's first step writes its own (revision 0: that one replaces it).
    await upsertApplyRow(client, initialApplyView(prepared, workflowId, new Date().toISOString()));
    return prepared;
  });
  try {
    await deps.temporal.workflow.start<typeof templateApplyWorkflow>(TEMPLATE_APPLY_WORKFLOW_TYPE, {
      taskQueue: TEMPLATES_TASK_QUEUE,
      workflowId,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      args: [input],
      typedSearchAttributes: templateApplySearchAttributes(tenantId),
    });
  } catch (error) {
    // Nobody will run it: the placeholder must not hold the tenant.
    await inScope(deps.pool, mspScope, (client) => deleteUnstartedApply(client, tenantId, rolloutId)).catch(() => undefined);
    throw error;
  }
  return { rolloutId, tenantId, workflowId };
}

export async function getApply(
  pool: Pool,
  tenantId: string,
  rolloutId: string,
): Promise<TemplateApplyView & { plan: TemplatePlan | null }> {
  const row = await inScope(pool, tenantScope(tenantId), (client) => getApplyRow(client, tenantId, rolloutId));
  if (!row) throw notFound('template apply');
  return { ...row.view, plan: row.plan };
}

/** A tenant's applies, e.g. those waiting at its approvers' gate (`awaiting_approval`). */
export async function listApplies(
  pool: Pool,
  tenantId: string,
  filter: { status?: TemplateApplyView['status']; limit: number },
): Promise<TemplateApplyView[]> {
  return inScope(pool, tenantScope(tenantId), (client) => listApplyRows(client, tenantId, filter.status, filter.limit));
}

const APPLY_UPDATES = { approve: approveApplyUpdate, deny: denyApplyUpdate } as const;

/** A tenant approver's decision at the gate; refusals come from the workflow's validators. */
export async function decideApply(
  deps: TemplateApplyDeps,
  tenantId: string,
  rolloutId: string,
  decision: 'approve' | 'deny',
  args: { actorId: string; comment?: string; authority: Authority },
): Promise<TemplateApplyView> {
  const current = await getApply(deps.pool, tenantId, rolloutId);
  const handle = deps.temporal.workflow.getHandle(templateApplyWorkflowId(rolloutId, tenantId));
  try {
    return await handle.executeUpdate(APPLY_UPDATES[decision], {
      args: [{ actorId: args.actorId, comment: args.comment ?? null, authority: args.authority }],
    });
  } catch (error) {
    const refusal = updateRefusal(error, {
      [ApplyRejection.SelfApproval]: forbidden,
      [ApplyRejection.NotTenantApprover]: forbidden,
      [ApplyRejection.Unavailable]: (message) => new AppError(503, 'unavailable', message),
      [ApplyRejection.InvalidInput]: (message) => badRequest(message),
    });
    if (refusal) throw refusal;
    if (error instanceof WorkflowNotFoundError) throw conflict(`The apply is ${current.status}; this decision no longer applies.`);
    throw error;
  }
}
