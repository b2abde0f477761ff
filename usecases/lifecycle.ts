import { createHash, randomUUID } from 'node:crypto';
import canonicalize from 'canonicalize';
import {
  WithStartWorkflowOperation,
  WorkflowIdConflictPolicy,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import type { AuditEvent } from '../core/audit/chain.js';
import {
  HR_IMPORT_WORKFLOW_TYPE,
  hrImportWorkflowId,
  LIFECYCLE_TASK_QUEUE,
  PERSON_WORKFLOW_TYPE,
  personQuery,
  PersonRejection,
  personSearchAttributes,
  personWorkflowId,
  submitHrEventUpdate,
  type HrEvent,
  type HrEventReceipt,
  type HrImportInput,
  type HrImportRowResult,
  type HrImportRowStatus,
  type HrImportView,
  type PersonView,
  type PersonWorkflowInput,
  type SubmittedHrEvent,
} from '../core/lifecycle/contract.js';
import { AppError, badRequest, conflict, notFound, toFieldIssues, type FieldIssue } from '../core/errors.js';
import { parseHrEventImport, type ImportFormat, type ParsedRow } from '../core/lifecycle/import.js';
import { previewEvent, unknownAttributes, type LifecyclePreview } from '../core/lifecycle/rules.js';
import { HrEventBody } from '../core/lifecycle/schemas.js';
import type { LifecyclePolicy } from '../core/lifecycle/policy.js';
import { TenantPolicyDocument } from '../core/tenancy/schemas.js';
import { tenantSearchAttributes } from '../core/temporal.js';
import { unstorableText } from '../core/unstorable.js';
import { listAuditEvents } from '../db/audit.js';
import { currentPolicy, policyVersion } from '../db/tenancy.js';
import { openEntitlements, type Entitlement } from '../db/directory/ledger.js';
import {
  getPersonRow,
  firstJoinerReceivedAt,
  lifecycleProvisioned,
  listHrEvents,
  listPeopleRows,
  openGrantsOf,
  registerHrEvent,
  withdrawHrEvent,
  type HrEventRecord,
  type PersonGrantRef,
} from '../db/lifecycle.js';
import {
  deleteHrImport,
  getHrImport as getHrImportRow,
  hrImportByIdempotencyKey,
  insertHrImport,
  listHrImportRows,
  listHrImports as listHrImportRecords,
  type HrImportRecord,
  type NewHrImportRow,
} from '../db/hr-imports.js';
import type { Pool } from '../db/pool.js';
import { inScope, readInScope, tenantScope } from '../db/scope.js';
import type { ActionContext } from '../core/audit/context.js';
import { resolverOf, type DirectoryDeps } from '../core/directory/connector.js';
import type { hrImportWorkflow } from '../workflows/lifecycle/import.js';
import type { personWorkflow } from '../workflows/lifecycle/workflow.js';

/** The directories are read at submission: a joiner must not take over an account the lifecycle did not create. */
export interface LifecycleDeps extends DirectoryDeps {
  pool: Pool;
  temporal: Client;
  /** Continue-as-new threshold passed to new person workflows (tests use small values). */
  maxEventsPerRun?: number;
}

export interface LoadedLifecyclePolicy {
  version: number;
  lifecycle: LifecyclePolicy;
}

/** The tenant's current lifecycle rules and the policy version they belong to; 404 for an unknown tenant. */
export async function loadLifecyclePolicy(pool: Pool, tenantId: string): Promise<LoadedLifecyclePolicy> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const row = await currentPolicy(client, tenantId);
    if (!row) throw notFound('tenant');
    return { version: row.version, lifecycle: TenantPolicyDocument.parse(row.document).lifecycle };
  });
}

/** Problems an event has under the tenant's rules (field paths without a prefix). */
export function policyIssues(policy: LifecyclePolicy, event: HrEventBody): FieldIssue[] {
  return unknownAttributes(policy, event.attributes).map((name) => ({
    path: `attributes.${name}`,
    message: `unknown attribute; this tenant declares: ${policy.attributes.join(', ') || '(none)'}`,
  }));
}

export interface SubmitHrEventResult {
  receipt: HrEventReceipt;
  person: PersonView;
}

const prefixed = (issues: FieldIssue[], prefix: string) => issues.map((i) => ({ ...i, path: `${prefix}${i.path}` }));

function normalise(body: HrEventBody): HrEvent {
  return {
    eventId: body.eventId,
    personId: body.personId,
    type: body.type,
    effectiveAt: new Date(body.effectiveAt).toISOString(),
    ...(body.attributes ? { attributes: body.attributes } : {}),
    ...(body.profile
      ? { profile: { username: body.profile.username, displayName: body.profile.displayName, email: body.profile.email ?? null } }
      : {}),
  };
}

/** Hash of the event's canonical JSON (RFC 8785), so key order does not make a body "different". */
function bodyHash(event: HrEvent): string {
  return createHash('sha256')
    .update(canonicalize(event) ?? '')
    .digest('hex');
}

/**
 * Submits one HR event: validates it against the tenant's current lifecycle rules, registers its
 * id (a re-sent id with another body is 409), then hands it to the person's workflow — starting
 * it for a joiner (update-with-start), reaching the running one otherwise. Returns the workflow's
 * receipt (the first one again for a duplicate) and the person as the workflow now sees them.
 *
 * Errors: 400 (invalid event, unknown attribute), 404 (unknown tenant; mover/leaver for a person
 * who never joined), 409 (event id reused with another body; event that does not fit the
 * person's state; joiner for a directory account the lifecycle did not create, unless the policy
 * says `adoptExistingAccounts`).
 */
export async function submitHrEvent(
  deps: LifecycleDeps,
  ctx: ActionContext,
  tenantId: string,
  body: HrEventBody,
): Promise<SubmitHrEventResult> {
  const policy = await loadLifecyclePolicy(deps.pool, tenantId);
  const receipt = await submitValidated(deps, ctx, tenantId, policy, body, 'body.');
  return { receipt, person: await currentPerson(deps, tenantId, body.personId) };
}

async function submitValidated(
  deps: LifecycleDeps,
  ctx: ActionContext,
  tenantId: string,
  policy: LoadedLifecyclePolicy,
  body: HrEventBody,
  prefix: string,
): Promise<HrEventReceipt> {
  const issues = policyIssues(policy.lifecycle, body);
  if (issues.length) throw badRequest('The event does not fit the tenant lifecycle rules.', prefixed(issues, prefix));
  const event = normalise(body);
  if (event.type === 'joiner' && !policy.lifecycle.adoptExistingAccounts) await refuseTakeover(deps, tenantId, event.personId);

  const registered = await inScope(deps.pool, tenantScope(tenantId), (client) =>
    registerHrEvent(client, tenantId, { event, bodyHash: bodyHash(event), policyVersion: policy.version, submittedBy: ctx.actor.id }),
  );
  if (registered.conflict) throw conflict(`HR event ${event.eventId} was already received with a different body.`);
  // A re-send the workflow has answered before gets that first answer again from the register,
  // which remembers every id (the workflow only the recent ones). One it refused is tried again:
  // the person's state may have changed since.
  const first = registered.record.receipt;
  if (!registered.created && first && registered.record.status !== 'rejected') {
    return { ...first, duplicate: true };
  }
  // A re-send is decided by the policy the first submission froze, like the first one was.
  const version = registered.created ? policy.version : registered.record.policyVersion;
  const lifecycle = version === policy.version ? policy.lifecycle : (await policyAtVersion(deps.pool, tenantId, version)).lifecycle;

  const submitted: SubmittedHrEvent = {
    // A re-send has the stored body's hash, so the same content; the stored copy may have lost
    // its profile to erasure since.
    event,
    policyVersion: version,
    policy: lifecycle,
    actor: ctx.actor,
    authority: ctx.authority,
  };
  const workflowId = personWorkflowId(tenantId, event.personId);
  try {
    return await sendToWorkflow(deps, tenantId, workflowId, submitted);
  } catch (error) {
    const mapped = mapRejection(error, event);
    if (mapped) {
      // Refused before the workflow accepted it: the registration is taken back (a re-send is
      // decided afresh), so a 4xx leaves nothing behind.
      await inScope(deps.pool, tenantScope(tenantId), (client) => withdrawHrEvent(client, tenantId, event.eventId));
      throw mapped;
    }
    throw error;
  }
}

/**
 * A joiner for an account someone else made (a break-glass admin, a manual account) would enable
 * it: refused before anything is recorded. The provisioning activity checks again at apply time.
 */
async function refuseTakeover(deps: LifecycleDeps, tenantId: string, personId: string): Promise<void> {
  const account = await (await resolverOf(deps).directoryFor(tenantId)).getUser(tenantId, personId);
  if (!account) return;
  // Ours: provisioned before, or made by a joiner of this person still being applied.
  const owned = await inScope(deps.pool, tenantScope(tenantId), async (client) => {
    if (await lifecycleProvisioned(client, tenantId, personId)) return true;
    const firstJoiner = await firstJoinerReceivedAt(client, tenantId, personId);
    return firstJoiner !== undefined && new Date(account.createdAt) >= firstJoiner;
  });
  if (owned) return;
  throw new AppError(
    409,
    'account_not_managed',
    `Directory account ${personId} exists and was not created by the lifecycle; a joiner may take it over only when the lifecycle policy sets adoptExistingAccounts.`,
  );
}

/** The workflow's own view (newer than the read model), or the read model once the workflow is over. */
async function currentPerson(deps: LifecycleDeps, tenantId: string, personId: string): Promise<PersonView> {
  try {
    return await deps.temporal.workflow.getHandle(personWorkflowId(tenantId, personId)).query(personQuery);
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw error;
    const row = await inScope(deps.pool, tenantScope(tenantId), (client) => getPersonRow(client, tenantId, personId));
    if (!row) throw notFound('person');
    return row;
  }
}

async function sendToWorkflow(
  deps: LifecycleDeps,
  tenantId: string,
  workflowId: string,
  submitted: SubmittedHrEvent,
): Promise<HrEventReceipt> {
  if (submitted.event.type !== 'joiner') {
    return deps.temporal.workflow.getHandle(workflowId).executeUpdate(submitHrEventUpdate, { args: [submitted] });
  }
  const input: PersonWorkflowInput = {
    tenantId,
    personId: submitted.event.personId,
    ...(deps.maxEventsPerRun ? { maxEventsPerRun: deps.maxEventsPerRun } : {}),
  };
  const start = new WithStartWorkflowOperation<typeof personWorkflow>(PERSON_WORKFLOW_TYPE, {
    taskQueue: LIFECYCLE_TASK_QUEUE,
    workflowId,
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    args: [input],
    typedSearchAttributes: personSearchAttributes(tenantId),
  });
  return deps.temporal.workflow.executeUpdateWithStart(submitHrEventUpdate, { args: [submitted], startWorkflowOperation: start });
}

function mapRejection(error: unknown, event: HrEvent): AppError | undefined {
  if (error instanceof WorkflowNotFoundError) {
    return new AppError(404, 'person_not_found', `No lifecycle for person ${event.personId}: a ${event.type} needs a joiner first.`);
  }
  if (error instanceof WorkflowUpdateFailedError) {
    const failure = error.cause as { type?: string; message?: string } | undefined;
    const message = failure?.message ?? 'The HR event was refused.';
    switch (failure?.type) {
      case PersonRejection.NotJoined:
        return new AppError(404, 'person_not_found', message);
      case PersonRejection.InvalidInput:
        return badRequest(message);
      default:
        return conflict(message);
    }
  }
  return undefined;
}

async function policyAtVersion(pool: Pool, tenantId: string, version: number): Promise<LoadedLifecyclePolicy> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const row = await policyVersion(client, tenantId, version);
    if (!row) throw notFound('policy version');
    return { version, lifecycle: TenantPolicyDocument.parse(row.document).lifecycle };
  });
}

export interface PersonDetails {
  person: PersonView;
  /** Open entitlements from the ledger: why each access the person has exists. */
  entitlements: Entitlement[];
  /** Grants of the person that are not over. */
  grants: PersonGrantRef[];
}

/** The person's state (read model), open entitlements and open grants; 404 if unknown. */
export async function getPerson(pool: Pool, tenantId: string, personId: string): Promise<PersonDetails> {
  // The three reads in one round trip.
  return readInScope(pool, tenantScope(tenantId), async (client) => {
    const [person, entitlements, grants] = await Promise.all([
      getPersonRow(client, tenantId, personId),
      openEntitlements(client, tenantId, personId),
      openGrantsOf(client, tenantId, personId),
    ]);
    if (!person) throw notFound('person');
    return { person, entitlements, grants };
  });
}

export async function listPeople(
  pool: Pool,
  tenantId: string,
  filter: { status?: string; limit: number; afterPersonId?: string; search?: string },
): Promise<PersonView[]> {
  return inScope(pool, tenantScope(tenantId), (client) => listPeopleRows(client, tenantId, filter));
}

export interface PersonTimeline {
  personId: string;
  /** HR events received for the person, in arrival order, with what became of each. */
  hrEvents: HrEventRecord[];
  /** Audit events about the person (target person/<personId>), in chain order. */
  events: AuditEvent[];
}

/** The person's HR events and audit trail; 404 when nothing was ever received for them. */
export async function getTimeline(
  pool: Pool,
  tenantId: string,
  personId: string,
  options: { limit?: number; afterSeq?: number } = {},
): Promise<PersonTimeline> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const hrEvents = await listHrEvents(client, tenantId, personId);
    if (hrEvents.length === 0 && !(await getPersonRow(client, tenantId, personId))) throw notFound('person');
    const events = (
      await listAuditEvents(
        client,
        tenantId,
        { targetId: personId, ...(options.afterSeq !== undefined ? { afterSeq: options.afterSeq } : {}) },
        options.limit ?? 500,
      )
    ).filter((e) => e.target?.type === 'person');
    return { personId, hrEvents, events };
  });
}

/**
 * What the event would change if submitted now, decided by the tenant's current rules; changes
 * nothing. 400 for an invalid event or unknown attribute, 404 for an unknown tenant.
 */
export async function previewHrEvent(pool: Pool, tenantId: string, body: HrEventBody, now: Date = new Date()): Promise<LifecyclePreview> {
  const policy = await loadLifecyclePolicy(pool, tenantId);
  const issues = policyIssues(policy.lifecycle, body);
  if (issues.length) throw badRequest('The event does not fit the tenant lifecycle rules.', prefixed(issues, 'body.'));
  const event = normalise(body);
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const person = (await getPersonRow(client, tenantId, event.personId)) ?? null;
    const known =
      person && !['deleted', 'anonymised'].includes(person.status)
        ? person
        : person
          ? { ...person, birthright: [], pendingRemovals: [], eligibleGrantRoles: [] }
          : null;
    return previewEvent({
      person: known,
      event,
      policy: policy.lifecycle,
      policyVersion: policy.version,
      now: now.toISOString(),
      openGrants: await openGrantsOf(client, tenantId, event.personId),
      openEntitlements: (await openEntitlements(client, tenantId, event.personId)).map((e) => ({
        role: e.role,
        sourceType: e.sourceType,
        sourceId: e.sourceId,
      })),
    });
  });
}

export type ImportSource = { format: ImportFormat; text: string } | { format: 'rows'; rows: unknown[] };

export interface StartHrImportOptions {
  /** IMPORT_MAX_ROWS: more rows are refused (400), and nothing is stored. */
  maxRows: number;
  /** Workflow knobs (tests and the benchmark); the contract's defaults otherwise. */
  batchSize?: number;
  batchesPerRun?: number;
  concurrency?: number;
  /** The caller's Idempotency-Key: an upload sent again with it answers the job it made. */
  idempotencyKey?: string;
}

/** Longest event or person id a failed row is reported with (the valid ones are far shorter). */
const REPORTED_ID_LENGTH = 200;

/**
 * One data row as stored at upload: pending with its validated event, or invalid with every
 * offending field (a parse error, text PostgreSQL cannot store, a schema violation, an attribute
 * the tenant does not declare). An invalid row is reported and never stops the others.
 */
function checkImportRow(policy: LifecyclePolicy, entry: ParsedRow): NewHrImportRow {
  const raw = entry.value as { eventId?: unknown; personId?: unknown } | null;
  const reported = (value: unknown) =>
    typeof value === 'string' && unstorableText(value).length === 0 ? value.slice(0, REPORTED_ID_LENGTH) : null;
  const invalid = (issues: FieldIssue[]): NewHrImportRow => ({
    row: entry.row,
    eventId: reported(raw?.eventId),
    personId: reported(raw?.personId),
    status: 'invalid',
    issues,
  });
  if (entry.issues.length) return invalid(entry.issues);
  if (typeof entry.value !== 'object' || entry.value === null || Array.isArray(entry.value))
    return invalid([{ path: 'row', message: 'not a JSON object' }]);
  const unstorable = unstorableText(entry.value);
  if (unstorable.length) return invalid(unstorable);
  const checked = HrEventBody.safeParse(entry.value);
  if (!checked.success) return invalid(toFieldIssues(checked.error));
  const issues = policyIssues(policy, checked.data);
  if (issues.length) return invalid(issues);
  return { row: entry.row, eventId: checked.data.eventId, personId: checked.data.personId, status: 'pending', body: checked.data };
}

const publicView = ({ context: _uploader, ...view }: HrImportRecord): HrImportView => view;

/**
 * Bulk import (onboarding a tenant) as a durable job: parses and checks every row, stores them
 * all in the tenant's scope, then starts the import's workflow, which submits the valid rows like
 * submitHrEvent would, in batches, and records each row's result. Returns the job as stored
 * (queued); a client that disconnects now loses nothing, and progress is read with getHrImport.
 *
 * With an Idempotency-Key, an upload sent again by the same caller answers the job the first one
 * made (nothing is parsed or stored twice).
 *
 * Errors: 400 (more rows than `maxRows`, naming the body; nothing is stored), 404 (unknown
 * tenant), 409 (the key was used for another upload). When the workflow cannot be started the
 * upload is taken back and the error rethrown.
 */
export async function startHrImport(
  deps: LifecycleDeps,
  ctx: ActionContext,
  tenantId: string,
  source: ImportSource,
  options: StartHrImportOptions,
): Promise<HrImportView> {
  const key = options.idempotencyKey;
  const idempotency = key ? { key, requestHash: importHash(source) } : undefined;
  const byKey = () => inScope(deps.pool, tenantScope(tenantId), (client) => hrImportByIdempotencyKey(client, tenantId, ctx.actor.id, key!));
  if (idempotency) {
    const earlier = await byKey();
    if (earlier) return resumeImport(deps, earlier, idempotency.requestHash, options);
  }
  const policy = await loadLifecyclePolicy(deps.pool, tenantId);
  const parsed: ParsedRow[] =
    source.format === 'rows'
      ? source.rows.map((value, i) => ({ row: i + 1, line: i + 1, value, issues: [] }))
      : parseHrEventImport(source.text, source.format);
  if (parsed.length > options.maxRows) {
    throw badRequest(`The import has ${parsed.length} rows; at most ${options.maxRows} are allowed in one import.`, [
      { path: source.format === 'rows' ? 'body.rows' : 'body', message: `${parsed.length} rows; at most ${options.maxRows} per import` },
    ]);
  }
  const rows = parsed.map((entry) => checkImportRow(policy.lifecycle, entry));

  const importId = randomUUID();
  const workflowId = hrImportWorkflowId(tenantId, importId);
  let job: HrImportRecord;
  try {
    job = await inScope(deps.pool, tenantScope(tenantId), (client) =>
      insertHrImport(client, {
        tenantId,
        importId,
        workflowId,
        format: source.format,
        policyVersion: policy.version,
        context: ctx,
        rows,
        ...(idempotency ? { idempotency } : {}),
      }),
    );
  } catch (error) {
    // A concurrent upload with the same key stored first: answer with its job.
    const earlier = idempotency && (error as { code?: string }).code === '23505' ? await byKey() : undefined;
    if (!earlier) throw error;
    return resumeImport(deps, earlier, idempotency!.requestHash, options);
  }
  try {
    await startImportWorkflow(deps, job, options);
  } catch (error) {
    // A retry with the same key started it meanwhile: it runs.
    if (error instanceof WorkflowExecutionAlreadyStartedError) return publicView(job);
    // Nothing was audited yet (the workflow records the start), so the upload leaves no trace.
    await inScope(deps.pool, tenantScope(tenantId), (client) => deleteHrImport(client, tenantId, importId));
    throw error;
  }
  return publicView(job);
}

/** What a retry must send again: the same format and the same text or rows. */
function importHash(source: ImportSource): string {
  const hash = createHash('sha256').update(source.format).update('\n');
  return hash.update(source.format === 'rows' ? (canonicalize(source.rows) ?? '') : source.text).digest('hex');
}

/** Starts the import's workflow; an import id runs once, so its rows are never submitted by a second run. */
async function startImportWorkflow(deps: LifecycleDeps, job: HrImportView, options: StartHrImportOptions): Promise<void> {
  const input: HrImportInput = {
    tenantId: job.tenantId,
    importId: job.importId,
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.batchesPerRun ? { batchesPerRun: options.batchesPerRun } : {}),
    ...(options.concurrency ? { concurrency: options.concurrency } : {}),
  };
  await deps.temporal.workflow.start<typeof hrImportWorkflow>(HR_IMPORT_WORKFLOW_TYPE, {
    taskQueue: LIFECYCLE_TASK_QUEUE,
    workflowId: job.workflowId,
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    args: [input],
    typedSearchAttributes: tenantSearchAttributes(job.tenantId),
  });
}

/**
 * An upload sent again with its Idempotency-Key: the job it made, as it is now (its workflow
 * started again should the first request have stopped between storing and starting it); 409 when
 * the key was used for another upload.
 */
async function resumeImport(
  deps: LifecycleDeps,
  earlier: { job: HrImportRecord; requestHash: string },
  requestHash: string,
  options: StartHrImportOptions,
): Promise<HrImportView> {
  if (earlier.requestHash !== requestHash) throw conflict('This Idempotency-Key was already used for a different import.');
  if (earlier.job.status === 'queued') {
    try {
      await startImportWorkflow(deps, earlier.job, options);
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    }
  }
  const current = await inScope(deps.pool, tenantScope(earlier.job.tenantId), (client) =>
    getHrImportRow(client, earlier.job.tenantId, earlier.job.importId),
  );
  return publicView(current ?? earlier.job);
}

export interface HrImportProgress extends HrImportView {
  /** Row results in row order (one page). */
  rows: HrImportRowResult[];
  /** Cursor: the last row number of this page, when there may be more. */
  nextCursor: number | null;
}

/** An import's state and one page of its row results (all, or only those with `statuses`); 404 if unknown. */
export async function getHrImport(
  pool: Pool,
  tenantId: string,
  importId: string,
  page: { limit: number; afterRow?: number; statuses?: readonly HrImportRowStatus[] },
): Promise<HrImportProgress> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const job = await getHrImportRow(client, tenantId, importId);
    if (!job) throw notFound('import');
    const rows = await listHrImportRows(client, tenantId, importId, { ...page, limit: page.limit + 1 });
    const shown = rows.slice(0, page.limit);
    return { ...publicView(job), rows: shown, nextCursor: rows.length > page.limit ? shown.at(-1)!.row : null };
  });
}

/** The tenant's imports, newest first, one page. */
export async function listHrImports(
  pool: Pool,
  tenantId: string,
  page: { limit: number; afterImportId?: string },
): Promise<{ imports: HrImportView[]; nextCursor: string | null }> {
  return inScope(pool, tenantScope(tenantId), async (client) => {
    const found = await listHrImportRecords(client, tenantId, { ...page, limit: page.limit + 1 });
    const shown = found.slice(0, page.limit).map(publicView);
    return { imports: shown, nextCursor: found.length > page.limit ? shown.at(-1)!.importId : null };
  });
}

/**
 * One imported row, as the import workflow's activity submits it: decided by the policy version
 * the upload was checked against, on the uploader's authority. The worker wires this in as the
 * activities' HrImportRowSubmitter.
 */
export async function submitImportedHrEvent(
  deps: LifecycleDeps,
  ctx: ActionContext,
  tenantId: string,
  policyVersion: number,
  body: HrEventBody,
): Promise<HrEventReceipt> {
  return submitValidated(deps, ctx, tenantId, await policyAtVersion(deps.pool, tenantId, policyVersion), body, '');
}
