import type { TypedSearchAttributes } from '@temporalio/common';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { ActorType, Authority } from '../audit/chain.js';
import { tenantSearchAttributes } from '../temporal.js';
import type { LifecyclePolicy } from './policy.js';
import type { HrEventBody } from './schemas.js';

/**
 * Joiner / mover / leaver: one entity workflow per person per tenant, id
 * `person/<tenant>/<personId>`, reached with update-with-start (only a joiner may start it).
 * HR events are Updates with a validator; the caller gets the receipt at once, and the workflow
 * applies events in effective-time order on durable timers.
 */
export const PERSON_WORKFLOW_TYPE = 'personWorkflow';

/** The lifecycle domain's own queue, so a burst of HR events cannot delay another domain's work. */
export const LIFECYCLE_TASK_QUEUE = 'lifecycle';

export function personWorkflowId(tenantId: string, personId: string): string {
  return `person/${tenantId}/${personId}`;
}

export function personSearchAttributes(tenantId: string): TypedSearchAttributes {
  return tenantSearchAttributes(tenantId);
}

/** Default continue-as-new threshold: HR events (updates) handled in one run. */
export const DEFAULT_MAX_EVENTS_PER_RUN = 500;

/** Event ids remembered for deduplication across runs; older re-sends are answered by the hr_events register. */
export const REMEMBERED_RECEIPTS = 1000;

/** The one list of HR event types: the type below and the API's zod enums are both built from it. */
export const HR_EVENT_TYPES = ['joiner', 'mover', 'leaver'] as const;
export type HrEventType = (typeof HR_EVENT_TYPES)[number];

export interface PersonProfile {
  username: string;
  displayName: string;
  email?: string | null;
}

/** An HR event as the HR system sends it. A rehire is a joiner for a person who left. */
export interface HrEvent {
  /** The HR system's id for this event: the idempotency key (unique per tenant). */
  eventId: string;
  personId: string;
  type: HrEventType;
  /** ISO time the event takes effect (past = now; future = waits on a durable timer). */
  effectiveAt: string;
  /** Declared person attributes (department, title, …); a mover sends the full new set. */
  attributes?: Record<string, string>;
  /** Directory account details; required for a joiner. */
  profile?: PersonProfile;
}

/** What the workflow receives: the event plus the policy it is decided by, frozen at submission. */
export interface SubmittedHrEvent {
  event: HrEvent;
  /** Tenant policy version (its lifecycle section is the rule version that decides this event). */
  policyVersion: number;
  policy: LifecyclePolicy;
  /** Who sent it (the HR integration or an operator) and on what authority (bindings, request id). */
  actor: { id: string; type: ActorType };
  authority: Authority;
}

/**
 * The answer to a submission. A re-sent event id gets the first answer again (`duplicate` true).
 * `accepted`: queued to apply at its effective time; `superseded`: older than an event already
 * applied, so it changes nothing (recorded for evidence).
 */
export interface HrEventReceipt {
  eventId: string;
  personId: string;
  type: HrEventType;
  effectiveAt: string;
  disposition: HrEventDisposition;
  /** Pending events this one cancelled (a leaver cancels a pending joiner, a new joiner an older one). */
  cancelled: string[];
  receivedAt: string;
  duplicate: boolean;
}

export const HR_EVENT_DISPOSITIONS = ['accepted', 'superseded'] as const;
export type HrEventDisposition = (typeof HR_EVENT_DISPOSITIONS)[number];

/** The one list of person statuses: the type below and the API's zod enum are both built from it. */
export const PERSON_STATUSES = [
  /** Known (a joiner is waiting) but no account yet. */
  'pending',
  /** Account created disabled with its roles, ahead of the start date. */
  'pre_provisioned',
  'active',
  /** A leaver is removing access. */
  'leaving',
  /** Access removed and verified; deletion waits for the retention period. */
  'left',
  'deleted',
  'anonymised',
] as const;
export type PersonStatus = (typeof PERSON_STATUSES)[number];

export interface BirthrightHolding {
  role: string;
  /** The rule that gives it (the entitlement ledger's sourceId). */
  ruleId: string;
}

export interface PendingRemoval extends BirthrightHolding {
  /** When the mover grace period ends. */
  dueAt: string;
  hrEventId: string;
  policyVersion: number;
}

export interface PendingHrEvent {
  eventId: string;
  type: HrEventType;
  effectiveAt: string;
  /** `pre_provisioned`: a joiner whose account already exists ahead of its start. */
  phase: 'waiting' | 'pre_provisioned';
}

export interface PersonView {
  tenantId: string;
  personId: string;
  workflowId: string;
  status: PersonStatus;
  /** Cleared when the person is deleted or anonymised. */
  profile: PersonProfile | null;
  attributes: Record<string, string>;
  /** Birthright roles the person holds now, with the rule behind each (includes those in grace). */
  birthright: BirthrightHolding[];
  matchedRuleIds: string[];
  eligibleGrantRoles: string[];
  /** Old birthright roles a mover keeps until the grace period ends. */
  pendingRemovals: PendingRemoval[];
  pendingEvents: PendingHrEvent[];
  deletion: { dueAt: string; mode: 'delete' | 'anonymise'; hrEventId: string } | null;
  lastApplied: { eventId: string; type: HrEventType; effectiveAt: string } | null;
  /** Policy version of the last applied event. */
  policyVersion: number | null;
  joinedAt: string | null;
  leftAt: string | null;
  /** Increases with every change; the read model keeps only the newest. */
  version: number;
}

/** Workflow input; `carry` is the state handed over by continue-as-new. */
export interface PersonWorkflowInput {
  tenantId: string;
  personId: string;
  /** Continue-as-new after this many HR events in one run (DEFAULT_MAX_EVENTS_PER_RUN); tests use small values. */
  maxEventsPerRun?: number;
  carry?: PersonCarry;
}

/** Everything a run hands to the next one (opaque outside the workflow). */
export interface PersonCarry {
  view: PersonView;
  /** Queued events with their policy snapshots, in apply order. */
  queue: unknown[];
  /** Receipts of the most recent event ids, for deduplication across runs (bounded). */
  receipts: HrEventReceipt[];
  arrivals: number;
  everJoined: boolean;
}

export const submitHrEventUpdate = defineUpdate<HrEventReceipt, [SubmittedHrEvent]>('submitHrEvent');
export const personQuery = defineQuery<PersonView>('person');
/** The receipt for an event id, if this person's workflow still remembers it. */
export const hrEventReceiptQuery = defineQuery<HrEventReceipt | null, [string]>('hrEventReceipt');

/** ApplicationFailure types the update validator raises; the use case maps them to HTTP statuses. */
export const PersonRejection = {
  /** 404: a mover or leaver for a person who never joined. */
  NotJoined: 'PersonNotJoined',
  /** 409: the event does not fit the person's state (a mover for a leaver, a joiner for an active person…). */
  Conflict: 'PersonEventConflict',
  /** 400: malformed event (bad time, missing profile on a joiner, wrong person). */
  InvalidInput: 'PersonInvalidInput',
} as const;

/**
 * ApplicationFailure type, non-retryable, of a lifecycle activity wired without what it needs (a
 * Temporal client to end grants): retrying cannot help.
 */
export const LIFECYCLE_MISCONFIGURED = 'LifecycleMisconfigured';

/** Actor recorded for steps the workflow takes on its own (grace removals, deletion). */
export const LIFECYCLE_SYSTEM_ACTOR = { id: 'system', type: 'system' as const };

// ---------------------------------------------------------------- bulk imports

/**
 * A bulk import of HR events (CSV, NDJSON or JSON rows) is a durable job: the API stores every
 * row in PostgreSQL first, then starts one workflow per import, id `import/<tenant>/<importId>`,
 * on the lifecycle queue. The workflow submits the rows in batches through an activity, each
 * row once (its result and the batch's progress are written to PostgreSQL as it goes), and
 * continues as new after a number of batches; rows never enter the history.
 */
export const HR_IMPORT_WORKFLOW_TYPE = 'hrImportWorkflow';

export function hrImportWorkflowId(tenantId: string, importId: string): string {
  return `import/${tenantId}/${importId}`;
}

/** Rows per import unless IMPORT_MAX_ROWS says otherwise. */
export const DEFAULT_IMPORT_MAX_ROWS = 10_000;
/** Rows one batch activity submits. */
export const DEFAULT_IMPORT_BATCH_SIZE = 100;
/** Batches one run processes before continuing as new (about six history events each). */
export const DEFAULT_IMPORT_BATCHES_PER_RUN = 50;
/** People whose rows a batch submits at once (one person's rows stay in file order). */
export const DEFAULT_IMPORT_CONCURRENCY = 8;
/**
 * Attempts a row gets when submitting it fails for a reason that is not the row's (the database
 * or Temporal did not answer); then it is reported failed, so no row can hold the job forever.
 */
export const IMPORT_ROW_MAX_ATTEMPTS = 10;

export const IMPORT_FORMATS = ['csv', 'ndjson', 'rows'] as const;
export type HrImportFormat = (typeof IMPORT_FORMATS)[number];

/** queued: rows stored, the workflow not yet under way; running: rows being submitted; completed: every row has its result. */
export const IMPORT_STATUSES = ['queued', 'running', 'completed'] as const;
export type HrImportStatus = (typeof IMPORT_STATUSES)[number];

/**
 * A row's result. pending: not submitted yet; accepted / superseded: the person's receipt;
 * duplicate: the event id was received before this row; invalid: the row is malformed or does
 * not fit the tenant's rules (`issues` names the fields); rejected: the lifecycle refused it
 * (`error` says how the single-event endpoint would have answered).
 */
export const IMPORT_ROW_STATUSES = ['pending', 'accepted', 'superseded', 'duplicate', 'invalid', 'rejected'] as const;
export type HrImportRowStatus = (typeof IMPORT_ROW_STATUSES)[number];
/** The statuses counted as failed. */
export const IMPORT_FAILED_STATUSES: readonly HrImportRowStatus[] = ['invalid', 'rejected'];

export interface HrImportRowResult {
  /** 1-based data row (CSV: the line after the header is row 1; NDJSON: non-empty line number). */
  row: number;
  eventId: string | null;
  personId: string | null;
  status: HrImportRowStatus;
  /** For invalid rows: what is wrong, by field path. */
  issues: { path: string; message: string }[];
  /** For rejected rows: the status, code and message the single-event endpoint would answer. */
  error: { status: number; code: string; message: string } | null;
}

export interface HrImportView {
  importId: string;
  tenantId: string;
  workflowId: string;
  status: HrImportStatus;
  format: HrImportFormat;
  /** Tenant policy version the rows are validated and decided by (current at upload). */
  policyVersion: number;
  submittedBy: string;
  total: number;
  /** Rows with a result (every status but pending). */
  done: number;
  /** Rows invalid or rejected. */
  failed: number;
  counts: Record<HrImportRowStatus, number>;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
}

/** Workflow input: ids and knobs only; `startRecorded` is carried over by continue-as-new. */
export interface HrImportInput {
  tenantId: string;
  importId: string;
  batchSize?: number;
  batchesPerRun?: number;
  concurrency?: number;
  startRecorded?: boolean;
}

/**
 * Submits one validated import row as `POST …/hr-events` would (register its id, then the
 * person's workflow), decided by the given policy version and on the importer's authority. It
 * throws an AppError when the lifecycle refuses the row and anything else when a dependency did
 * not answer. The worker wires the use case in; the import activities only call it.
 */
export type HrImportRowSubmitter = (
  ctx: { actor: { id: string; type: ActorType }; authority: Authority },
  tenantId: string,
  policyVersion: number,
  event: HrEventBody,
) => Promise<HrEventReceipt>;

/** ApplicationFailure type, non-retryable, of an import activity whose import is not stored (its upload was taken back). */
export const HR_IMPORT_NOT_FOUND = 'HrImportNotFound';
