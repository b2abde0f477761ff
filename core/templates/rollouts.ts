import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ActorType, Authority } from '../audit/chain.js';
import type { ApplyStatus } from './contract.js';

/**
 * Rollouts (`rollout/<rolloutId>`, workflow `templateRolloutWorkflow` on the templates queue):
 * one approved template version applied to a set of tenants wave by wave: a canary wave, then
 * waves by count or percentage, with optional bake time and operator approval between waves.
 * Each tenant is a child `rollout/<rolloutId>/<tenantId>` (templateApplyWorkflow), at most
 * `window` at once. Failures in a wave past its error budget halt the rollout: no tenant starts
 * until the operator resumes or skips the rest of the wave (or cancels; a rollback of a halted
 * rollout is its own workflow, `rollout/<rolloutId>/rollback`). The tenants and their waves live in
 * PostgreSQL; the workflow carries counters and the children in flight across continue-as-new.
 */
export const TEMPLATE_ROLLOUT_WORKFLOW_TYPE = 'templateRolloutWorkflow';

/**
 * `running`: tenants start as the window allows; `baking`: waiting out the bake time after a
 * wave; `awaiting_wave_approval`: an operator approves the next wave; `paused`: an operator
 * paused it (children in flight finish); `halted`: a wave's failures passed its error budget
 * (resume, skip, cancel, or roll back); `cancelling`: cancelled, children in flight finish.
 */
export const ROLLOUT_STATUSES = [
  'running',
  'baking',
  'awaiting_wave_approval',
  'paused',
  'halted',
  'cancelling',
  'completed',
  'cancelled',
] as const;
export type RolloutStatus = (typeof ROLLOUT_STATUSES)[number];
export const ROLLOUT_OPEN_STATUSES: readonly RolloutStatus[] = ROLLOUT_STATUSES.filter((s) => s !== 'completed' && s !== 'cancelled');

export const WAVE_STATUSES = ['pending', 'running', 'completed', 'cancelled'] as const;
export type WaveStatus = (typeof WAVE_STATUSES)[number];

/**
 * A tenant's place in a rollout: `pending` (not started yet), `started` (its child runs), the
 * child's outcome, `passed_over` (the operator skipped the rest of its halted wave) or
 * `cancelled` (the rollout was cancelled before it started). `skipped` (its gate timed out, or the
 * rollout was cancelled while it waited there) and `denied` are recorded, never failures.
 */
export const ROLLOUT_TENANT_STATES = [
  'pending',
  'started',
  'planning',
  'awaiting_approval',
  'applying',
  'applied',
  'skipped',
  'denied',
  'failed',
  'passed_over',
  'cancelled',
] as const;
export type RolloutTenantState = (typeof ROLLOUT_TENANT_STATES)[number];

/** The outcomes a child reports to its rollout. */
export type ApplyOutcome = Extract<ApplyStatus, 'applied' | 'skipped' | 'denied' | 'failed'>;
export const APPLY_OUTCOMES = ['applied', 'skipped', 'denied', 'failed'] as const satisfies readonly ApplyOutcome[];

export interface ErrorBudget {
  /** Failures a wave may have; one more halts the rollout. */
  maxFailures: number | null;
  /** Failures as a share of the wave's tenants a wave may have; more halts the rollout. */
  maxFailurePercent: number | null;
}

export interface RolloutWaveView {
  index: number;
  /** `canary`, `wave 1`, `wave 2`, … */
  name: string;
  size: number;
  status: WaveStatus;
  started: number;
  applied: number;
  skipped: number;
  denied: number;
  failed: number;
  passedOver: number;
  cancelled: number;
  startedAt: string | null;
  completedAt: string | null;
  /** Who approved starting this wave, when waves need an operator's approval. */
  approvedBy: string | null;
}

/** The counters a rollout keeps for each wave (the wave's tenants' outcomes). */
export const WAVE_COUNTERS = ['started', 'applied', 'skipped', 'denied', 'failed', 'passedOver', 'cancelled'] as const;

/** A wave before anything of it has started. */
export function pendingWave(index: number, name: string, size: number): RolloutWaveView {
  return {
    index,
    name,
    size,
    status: 'pending',
    ...(Object.fromEntries(WAVE_COUNTERS.map((c) => [c, 0])) as Record<(typeof WAVE_COUNTERS)[number], number>),
    startedAt: null,
    completedAt: null,
    approvedBy: null,
  };
}

/** The rollout before anything has started: the workflow's first state, and the read model's until it writes. */
export function initialRolloutView(input: TemplateRolloutInput, workflowId: string, startedAt: string): TemplateRolloutView {
  return {
    rolloutId: input.rolloutId,
    workflowId,
    templateId: input.templateId,
    version: input.version,
    status: 'running',
    requesterId: input.requester.id,
    tenants: input.waves.reduce((n, w) => n + w.size, 0),
    currentWave: 0,
    waves: input.waves.map((w, index) => pendingWave(index, w.name, w.size)),
    inFlight: 0,
    halt: null,
    bakeUntil: null,
    options: input.options,
    startedAt,
    completedAt: null,
    revision: 0,
  };
}

export interface RolloutHalt {
  wave: number;
  failures: number;
  /** The budget it passed, e.g. `more than 1 failure` or `more than 20% of 10 tenants`. */
  budget: string;
  at: string;
}

export interface TemplateRolloutView {
  rolloutId: string;
  workflowId: string;
  templateId: string;
  version: number;
  status: RolloutStatus;
  requesterId: string;
  tenants: number;
  /** The wave under way (or the last one), by index. */
  currentWave: number;
  waves: RolloutWaveView[];
  /** Children started and not yet finished. */
  inFlight: number;
  /** Set while halted, kept after (the last halt). */
  halt: RolloutHalt | null;
  bakeUntil: string | null;
  options: RolloutOptions;
  startedAt: string;
  completedAt: string | null;
  /** Increases with every change; the read model keeps only the newest. */
  revision: number;
}

export interface RolloutOptions {
  /** Children applying at once within a wave. */
  window: number;
  bakeSeconds: number;
  approveBetweenWaves: boolean;
  errorBudget: ErrorBudget;
  /** The gate's timeout for every tenant; each tenant's own policy-change timeout when null. */
  approvalTimeoutMinutes: number | null;
}

export interface TemplateRolloutInput {
  rolloutId: string;
  templateId: string;
  version: number;
  requester: { id: string; type: ActorType };
  authority: Authority;
  /** Each wave's name and size, in order; the tenants themselves are in PostgreSQL. */
  waves: { name: string; size: number }[];
  options: RolloutOptions;
  /** History events past which the rollout continues as new (ROLLOUT_HISTORY_LIMIT when absent). */
  historyLimit?: number;
  /** State carried over continue-as-new. */
  carried?: RolloutCarried;
}

export interface RolloutCarried {
  view: TemplateRolloutView;
  /** Children started and not finished, with their wave: they report to whichever run is current. */
  inFlight: { tenantId: string; wave: number }[];
  /** A halt decided but not yet recorded when the run continued as new. */
  haltPending: boolean;
  /** Failures of the current wave before the last resume: the budget counts those after it. */
  budgetBaseline: number;
}

/** Past this many history events the rollout continues as new (bounded history for 500+ tenants). */
export const ROLLOUT_HISTORY_LIMIT = 2_000;
export const DEFAULT_ROLLOUT_WINDOW = 10;
export const MAX_ROLLOUT_WINDOW = 50;
export const MAX_ROLLOUT_TENANTS = 5_000;

/** One tenant the rollout starts: its pin's parameter values and its gate's timeout, fixed when the rollout was created. */
export interface RolloutTenantStart {
  tenantId: string;
  position: number;
  parameters: Record<string, string>;
  approvalTimeoutSeconds: number;
}

export interface RolloutActorInput {
  actorId: string;
  authority?: Authority;
  comment?: string | null;
}

export const pauseRolloutUpdate = defineUpdate<TemplateRolloutView, [RolloutActorInput]>('pauseRollout');
export const resumeRolloutUpdate = defineUpdate<TemplateRolloutView, [RolloutActorInput]>('resumeRollout');
export const cancelRolloutUpdate = defineUpdate<TemplateRolloutView, [RolloutActorInput]>('cancelRollout');
export const skipRolloutWaveUpdate = defineUpdate<TemplateRolloutView, [RolloutActorInput]>('skipRolloutWave');
export const approveRolloutWaveUpdate = defineUpdate<TemplateRolloutView, [RolloutActorInput]>('approveRolloutWave');
export const rolloutQuery = defineQuery<TemplateRolloutView>('templateRollout');

/** A child tells its rollout how it ended (sent to the rollout's workflow id: it reaches the current run). */
export const applyFinishedSignal = defineSignal<[{ tenantId: string; status: ApplyOutcome }]>('applyFinished');
/** The rollout was cancelled: a child that has not started applying ends skipped, changing nothing. */
export const cancelApplySignal = defineSignal<[{ actorId: string }]>('cancelApply');

/** ApplicationFailure types of the rollout's update validators (mapped to 409, 400). */
export const RolloutRejection = {
  WrongState: 'TemplateRolloutWrongState', // 409: the step does not apply in the rollout's status
  InvalidInput: 'TemplateRolloutInvalidInput', // 400
} as const;

/** Error codes of the API's refusals. */
export const RolloutRefusal = {
  WrongState: 'rollout_state',
  TenantBusy: 'rollout_tenant_busy',
} as const;

export const ROLLOUT_ACTIONS = {
  started: 'template.rollout.started',
  waveStarted: 'template.rollout.wave_started',
  waveCompleted: 'template.rollout.wave_completed',
  waveApproved: 'template.rollout.wave_approved',
  halted: 'template.rollout.halted',
  resumed: 'template.rollout.resumed',
  skipped: 'template.rollout.wave_skipped',
  paused: 'template.rollout.paused',
  cancelled: 'template.rollout.cancelled',
  completed: 'template.rollout.completed',
} as const;

/** Failures of a wave past its budget (counted since the last resume). */
export function budgetExceeded(budget: ErrorBudget, failures: number, waveSize: number): string | null {
  if (budget.maxFailures !== null && failures > budget.maxFailures) {
    return `more than ${budget.maxFailures} failure${budget.maxFailures === 1 ? '' : 's'}`;
  }
  if (budget.maxFailurePercent !== null && failures * 100 > budget.maxFailurePercent * waveSize) {
    return `more than ${budget.maxFailurePercent}% of ${waveSize} tenants`;
  }
  return null;
}

export interface WaveSpec {
  canary?: { tenants: string[] } | { count: number };
  waves?: ({ count: number } | { percent: number })[];
}

/**
 * Splits the tenants (in order) into waves: the canary (named tenants, or the first N), then each
 * wave by count or by a percentage of the tenants after the canary (at least one), and whatever
 * is left as a last wave. Pure; issues name the field.
 */
export function planWaves(
  tenants: readonly string[],
  spec: WaveSpec,
): { waves: { name: string; tenants: string[] }[] } | { issues: { path: string; message: string }[] } {
  const issues: { path: string; message: string }[] = [];
  const waves: { name: string; tenants: string[] }[] = [];
  let rest = [...tenants];
  if (spec.canary) {
    let canary: string[];
    if ('tenants' in spec.canary) {
      const listed = new Set(tenants);
      spec.canary.tenants.forEach((t, i) => {
        if (!listed.has(t)) issues.push({ path: `body.canary.tenants.${i}`, message: 'not among the rollout’s tenants' });
      });
      const named = new Set(spec.canary.tenants);
      canary = tenants.filter((t) => named.has(t));
    } else {
      if (spec.canary.count > tenants.length) {
        issues.push({ path: 'body.canary.count', message: `more than the rollout’s ${tenants.length} tenants` });
      }
      canary = tenants.slice(0, spec.canary.count);
    }
    const inCanary = new Set(canary);
    rest = tenants.filter((t) => !inCanary.has(t));
    if (canary.length) waves.push({ name: 'canary', tenants: canary });
  }
  if (issues.length) return { issues };
  const afterCanary = rest.length;
  const later: string[][] = [];
  for (const wave of spec.waves ?? []) {
    if (!rest.length) break;
    const size = 'count' in wave ? wave.count : Math.max(1, Math.ceil((wave.percent * afterCanary) / 100));
    later.push(rest.slice(0, size));
    rest = rest.slice(size);
  }
  if (rest.length) later.push(rest);
  return { waves: [...waves, ...later.map((t, i) => ({ name: `wave ${i + 1}`, tenants: t }))] };
}
