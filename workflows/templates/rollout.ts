import {
  ApplicationFailure,
  allHandlersFinished,
  type ChildWorkflowHandle,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities/index.js';
import type { ActorType, Authority } from '../../core/audit/chain.js';
import { templateApplySearchAttributes, templateApplyWorkflowId } from '../../core/templates/contract.js';
import {
  APPLY_OUTCOMES,
  applyFinishedSignal,
  approveRolloutWaveUpdate,
  budgetExceeded,
  cancelApplySignal,
  cancelRolloutUpdate,
  pauseRolloutUpdate,
  resumeRolloutUpdate,
  initialRolloutView,
  ROLLOUT_ACTIONS,
  ROLLOUT_HISTORY_LIMIT,
  RolloutRejection,
  rolloutQuery,
  skipRolloutWaveUpdate,
  type ApplyOutcome,
  type RolloutActorInput,
  type RolloutStatus,
  type TemplateRolloutInput,
  type TemplateRolloutView,
} from '../../core/templates/rollouts.js';
import type { RecordRolloutInput } from '../../activities/templates/rollouts.js';
import { templateApplyWorkflow } from './apply.js';

const { recordRollout, rolloutTenants } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

const iso = (ms: number) => new Date(ms).toISOString();
const system = { id: 'system', type: 'system' as const };
const reject = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });

type Step = { action: string; actor: { id: string; type: ActorType }; authority?: Authority; payload?: Record<string, unknown> };

/**
 * A rollout: waves of tenants, each tenant a child apply (`rollout/<id>/<tenantId>`) started
 * while fewer than `window` are in flight. Whether a tenant may start is decided right before its
 * start: once a wave's failures pass its error budget the rollout is halted and nobody starts
 * until an operator resumes or skips. Children report their end by signal to the rollout's id, so
 * the rollout can continue as new (bounded history) while they run: they are abandoned, never
 * cancelled, by the run that started them. Every step is one event on the MSP chain.
 */
export async function templateRolloutWorkflow(input: TemplateRolloutInput): Promise<TemplateRolloutView> {
  const carried = input.carried;
  const view: TemplateRolloutView = carried?.view ?? initialRolloutView(input, workflowInfo().workflowId, iso(Date.now()));
  const inFlight = new Map<string, number>((carried?.inFlight ?? []).map((c) => [c.tenantId, c.wave]));
  let budgetBaseline = carried?.budgetBaseline ?? 0;
  let haltPending = carried?.haltPending ?? false;
  let startingChildren = false;
  // Children started by this run: their end is their result, which only Temporal gives; a report by
  // signal, which anyone who reaches Temporal can forge, counts only for children of an earlier run.
  const watched = new Set<string>();
  // Of those, the ones whose report came and whose result has not yet: the run waits for their result
  // before it continues as new, or the next run (which hears only reports) would wait for them forever.
  const reported = new Set<string>();
  // Children ended, and how many of those the read model has seen while the rollout was held.
  let ends = 0;
  let endsRecorded = 0;
  const baseAuthority: Authority = { rolloutId: input.rolloutId, templateId: input.templateId, templateVersion: input.version };
  const historyLimit = input.historyLimit ?? ROLLOUT_HISTORY_LIMIT;
  const tooLong = () => workflowInfo().historyLength > historyLimit || workflowInfo().continueAsNewSuggested;
  const wave = () => view.waves[view.currentWave]!;
  // A function, not a narrowed comparison: Updates change the status between awaits.
  const cancelling = () => view.status === 'cancelling';
  const left = (i: number) => {
    const w = view.waves[i]!;
    return w.size - w.started - w.passedOver - w.cancelled;
  };

  // One record at a time, in the order the changes happened: the MSP chain then tells the steps
  // in that order (an operator's skip before the wave it completes, an approval before the wave it starts).
  let recorded: Promise<unknown> = Promise.resolve();
  function record(step?: Step, notStarted?: RecordRolloutInput['notStarted']) {
    view.revision++;
    view.inFlight = inFlight.size;
    const args: RecordRolloutInput = {
      view: { ...view, waves: view.waves.map((w) => ({ ...w })) },
      ...(step
        ? {
            event: {
              eventId: uuid4(),
              action: step.action,
              actor: step.actor,
              authority: { ...baseAuthority, ...step.authority },
              payload: step.payload ?? {},
            },
          }
        : {}),
      ...(notStarted ? { notStarted } : {}),
    };
    const next = recorded.then(() => recordRollout(args));
    recorded = next.catch(() => undefined);
    return next;
  }
  const user = (request: RolloutActorInput) => ({ id: request.actorId, type: 'user' as const });
  const asked = (request: RolloutActorInput) => ({ ...request.authority, ...(request.comment ? { comment: request.comment } : {}) });

  setHandler(rolloutQuery, () => ({ ...view, inFlight: inFlight.size }));

  // A child's end: counted in its wave; a failure past the wave's budget halts the rollout at once,
  // so the next start is refused whatever else is under way.
  function finished(tenantId: string, status: ApplyOutcome) {
    const index = inFlight.get(tenantId);
    if (index === undefined) return;
    inFlight.delete(tenantId);
    ends++;
    const w = view.waves[index]!;
    w[status]++;
    if (status !== 'failed' || (view.status !== 'running' && view.status !== 'paused')) return;
    const failures = w.failed - budgetBaseline;
    const over = budgetExceeded(input.options.errorBudget, failures, w.size);
    if (!over) return;
    view.status = 'halted';
    view.halt = { wave: index, failures, budget: over, at: iso(Date.now()) };
    haltPending = true;
  }
  setHandler(applyFinishedSignal, (signal) => {
    // Anyone who can reach Temporal can send it: a report that is not a child's (no payload, or a
    // status that is not an outcome, which would count into another counter) is ignored rather
    // than fail every workflow task or corrupt the wave's counts.
    const { tenantId, status } = (signal ?? {}) as { tenantId?: unknown; status?: unknown };
    const valid = typeof tenantId === 'string' && typeof status === 'string' && (APPLY_OUTCOMES as readonly string[]).includes(status);
    if (!valid && patched('template-rollout-ignores-malformed-report')) return;
    if (watched.has(tenantId as string) && patched('template-rollout-counts-own-children-by-result')) {
      reported.add(tenantId as string);
      return;
    }
    finished(tenantId as string, status as ApplyOutcome);
  });

  // ---------------------------------------------------------------- operator updates
  function validator(allowed: readonly RolloutStatus[], what: string) {
    return (request: RolloutActorInput) => {
      if (typeof request?.actorId !== 'string' || request.actorId === '') {
        throw reject(RolloutRejection.InvalidInput, 'actorId is required.');
      }
      if (!allowed.includes(view.status)) {
        throw reject(RolloutRejection.WrongState, `The rollout is ${view.status}; it cannot be ${what}.`);
      }
    };
  }
  /** Handlers wait for a start under way to finish, so what they decide covers the children it started. */
  async function whenSettled(check: (request: RolloutActorInput) => void, request: RolloutActorInput) {
    await condition(() => !startingChildren);
    check(request);
  }

  const canPause = validator(['running', 'baking'], 'paused');
  setHandler(
    pauseRolloutUpdate,
    async (request) => {
      await whenSettled(canPause, request);
      view.status = 'paused';
      await record({
        action: ROLLOUT_ACTIONS.paused,
        actor: user(request),
        authority: asked(request),
        payload: { wave: view.currentWave },
      });
      return view;
    },
    { validator: canPause },
  );

  const canResume = validator(['paused', 'halted'], 'resumed');
  setHandler(
    resumeRolloutUpdate,
    async (request) => {
      await whenSettled(canResume, request);
      const from = view.status;
      // After a halt the budget counts the failures from now on: those that halted it are known.
      if (from === 'halted') budgetBaseline = wave().failed;
      view.status = view.bakeUntil && Date.parse(view.bakeUntil) > Date.now() ? 'baking' : 'running';
      await record({
        action: ROLLOUT_ACTIONS.resumed,
        actor: user(request),
        authority: asked(request),
        payload: { from, wave: view.currentWave },
      });
      return view;
    },
    { validator: canResume },
  );

  const canSkip = validator(['halted'], 'skipped on (only a halted wave is skipped)');
  setHandler(
    skipRolloutWaveUpdate,
    async (request) => {
      await whenSettled(canSkip, request);
      const w = wave();
      const passedOver = left(view.currentWave);
      const after = w.started;
      w.passedOver += passedOver;
      view.status = 'running';
      await record(
        {
          action: ROLLOUT_ACTIONS.skipped,
          actor: user(request),
          authority: asked(request),
          payload: { wave: w.index, name: w.name, passedOver },
        },
        { wave: w.index, after, laterWaves: false, state: 'passed_over' },
      );
      return view;
    },
    { validator: canSkip },
  );

  const canApproveWave = validator(['awaiting_wave_approval'], 'approved (it is not waiting for the next wave’s approval)');
  setHandler(
    approveRolloutWaveUpdate,
    async (request) => {
      await whenSettled(canApproveWave, request);
      const next = view.waves[view.currentWave + 1]!;
      next.approvedBy = request.actorId;
      view.status = 'running';
      await record({
        action: ROLLOUT_ACTIONS.waveApproved,
        actor: user(request),
        authority: asked(request),
        payload: { wave: next.index, name: next.name, size: next.size },
      });
      return view;
    },
    { validator: canApproveWave },
  );

  const canCancel = validator(['running', 'baking', 'awaiting_wave_approval', 'paused', 'halted'], 'cancelled');
  setHandler(
    cancelRolloutUpdate,
    async (request) => {
      await whenSettled(canCancel, request);
      const from = view.status;
      const after = wave().started;
      let notStarted = 0;
      for (const w of view.waves.slice(view.currentWave)) {
        const n = left(w.index);
        w.cancelled += n;
        notStarted += n;
        if (w.status === 'pending') w.status = 'cancelled';
      }
      view.status = 'cancelling';
      view.bakeUntil = null;
      const children = [...inFlight.keys()];
      await record(
        {
          action: ROLLOUT_ACTIONS.cancelled,
          actor: user(request),
          authority: asked(request),
          payload: { from, wave: view.currentWave, notStarted, inFlight: children.length },
        },
        { wave: view.currentWave, after, laterWaves: true, state: 'cancelled' },
      );
      // Those still before their apply (at the tenant's gate) end skipped; those applying finish.
      await Promise.all(
        children.map(
          (tenantId) =>
            getExternalWorkflowHandle(templateApplyWorkflowId(input.rolloutId, tenantId))
              .signal(cancelApplySignal, { actorId: request.actorId })
              .catch(() => undefined), // it has just ended: its own report says how
        ),
      );
      return view;
    },
    { validator: canCancel },
  );

  async function flushHalt() {
    if (!haltPending) return;
    haltPending = false;
    await record({
      action: ROLLOUT_ACTIONS.halted,
      actor: system,
      payload: { ...view.halt, name: wave().name, inFlight: inFlight.size, notStarted: left(view.currentWave) },
    });
  }

  async function carryOn(): Promise<never> {
    await condition(() => ![...inFlight.keys()].some((tenantId) => reported.has(tenantId)));
    await condition(allHandlersFinished);
    return continueAsNew<typeof templateRolloutWorkflow>({
      ...input,
      carried: {
        view,
        inFlight: [...inFlight].map(([tenantId, w]) => ({ tenantId, wave: w })),
        budgetBaseline,
        haltPending,
      },
    });
  }

  /** Starts the wave's tenants as the window, the status and the budget allow; 'done' once all have ended. */
  async function runWave(index: number): Promise<'done' | 'cancelling' | 'continue'> {
    const w = view.waves[index]!;
    const room = () => input.options.window - inFlight.size;
    const canStart = () => view.status === 'running' && left(index) > 0 && room() > 0;
    const ended = () => left(index) === 0 && inFlight.size === 0 && view.status !== 'halted';
    // Halted or paused, nothing starts, so no start records the children that end meanwhile: the
    // read model (GET /v1/rollouts/{id}) would keep their counts and `inFlight` from before the hold.
    const endsUnrecordedWhileHeld = () => (view.status === 'halted' || view.status === 'paused') && ends !== endsRecorded;
    for (;;) {
      await flushHalt();
      await condition(() => haltPending || view.status === 'cancelling' || canStart() || ended() || tooLong() || endsUnrecordedWhileHeld());
      if (haltPending) continue;
      if (endsUnrecordedWhileHeld()) {
        endsRecorded = ends;
        if (patched('rollout-records-ends-while-held')) await record();
        continue;
      }
      if (view.status === 'cancelling') return 'cancelling';
      // Before starting more: while children end as fast as the window refills, a slot is free at
      // almost every wake, and a check after the starts would let the history grow far past its limit.
      if (tooLong() && patched('rollout-continues-as-new-before-starting')) return 'continue';
      if (canStart()) {
        const page = await rolloutTenants({ rolloutId: input.rolloutId, wave: index, after: w.started, limit: room() });
        // Decided here, right before the starts: a halt, pause or cancel that came while the page
        // was read starts nobody.
        if (!canStart()) continue;
        const starting = page.slice(0, Math.min(room(), left(index)));
        if (!starting.length) {
          throw ApplicationFailure.nonRetryable(
            `wave ${index} has ${left(index)} tenant(s) to start but none is pending`,
            'RolloutTenantsMissing',
          );
        }
        // In flight and started from the moment the start is decided, not once Temporal confirms it:
        // a halt that comes while the starts are awaited then reads (query and record) the children it
        // cannot stop, rather than a moment with none in flight followed by another start.
        for (const t of starting) {
          inFlight.set(t.tenantId, index);
          watched.add(t.tenantId);
        }
        w.started += starting.length;
        startingChildren = true;
        let children: ChildWorkflowHandle<typeof templateApplyWorkflow>[];
        try {
          children = await Promise.all(
            starting.map((t) =>
              startChild(templateApplyWorkflow, {
                workflowId: templateApplyWorkflowId(input.rolloutId, t.tenantId),
                args: [
                  {
                    rolloutId: input.rolloutId,
                    tenantId: t.tenantId,
                    templateId: input.templateId,
                    version: input.version,
                    parameters: t.parameters,
                    requester: input.requester,
                    authority: { ...input.authority, rolloutId: input.rolloutId },
                    approvalTimeoutSeconds: t.approvalTimeoutSeconds,
                  },
                ],
                // The rollout continues as new while its children run; they report to its id.
                parentClosePolicy: ParentClosePolicy.ABANDON,
                typedSearchAttributes: templateApplySearchAttributes(t.tenantId),
              }),
            ),
          );
        } finally {
          startingChildren = false;
        }
        // A child's end also reaches this run directly while it lasts: one that fails or is
        // terminated without its report counts as failed rather than hold the wave forever.
        children.forEach((child, i) => {
          const { tenantId } = starting[i]!;
          void child.result().then(
            (ended) => finished(tenantId, ended.status as ApplyOutcome),
            () => finished(tenantId, 'failed'),
          );
        });
        await record();
        continue;
      }
      if (tooLong()) return 'continue';
      if (ended()) return 'done';
    }
  }

  // ---------------------------------------------------------------- waves
  if (!carried) {
    await record({
      action: ROLLOUT_ACTIONS.started,
      actor: input.requester,
      authority: input.authority,
      payload: { tenants: view.tenants, waves: input.waves, options: input.options },
    });
  }
  const last = view.waves.length - 1;
  for (let index = view.currentWave; index <= last && !cancelling(); index++) {
    view.currentWave = index;
    const w = view.waves[index]!;
    if (w.status === 'pending') {
      w.status = 'running';
      w.startedAt = iso(Date.now());
      budgetBaseline = 0;
      await record({ action: ROLLOUT_ACTIONS.waveStarted, actor: system, payload: { wave: index, name: w.name, size: w.size } });
    }
    const outcome = await runWave(index);
    if (outcome === 'continue') return await carryOn();
    if (outcome === 'cancelling') break;
    w.status = 'completed';
    w.completedAt = iso(Date.now());
    const bake = index < last ? input.options.bakeSeconds : 0;
    if (bake > 0 && view.status === 'running') {
      view.status = 'baking';
      view.bakeUntil = iso(Date.now() + bake * 1000);
    }
    await record({
      action: ROLLOUT_ACTIONS.waveCompleted,
      actor: system,
      payload: {
        wave: index,
        name: w.name,
        size: w.size,
        applied: w.applied,
        skipped: w.skipped,
        denied: w.denied,
        failed: w.failed,
        passedOver: w.passedOver,
      },
    });
    if (index === last) break;
    if (bake > 0) {
      await condition(() => view.status === 'cancelling', bake * 1000);
      view.bakeUntil = null;
      if (view.status === 'baking') view.status = 'running';
    }
    await condition(() => view.status !== 'paused');
    if (cancelling()) break;
    if (input.options.approveBetweenWaves) {
      view.status = 'awaiting_wave_approval';
      await record();
      await condition(() => view.status !== 'awaiting_wave_approval');
    }
  }

  if (cancelling()) {
    // Children in flight finish (those at their gate end skipped); nothing else starts.
    await condition(() => inFlight.size === 0 || tooLong());
    if (inFlight.size > 0) return await carryOn();
    view.status = 'cancelled';
    view.completedAt = iso(Date.now());
    await record();
  } else {
    view.status = 'completed';
    view.completedAt = iso(Date.now());
    const sum = (key: 'applied' | 'skipped' | 'denied' | 'failed' | 'passedOver') => view.waves.reduce((n, w) => n + w[key], 0);
    await record({
      action: ROLLOUT_ACTIONS.completed,
      actor: system,
      payload: {
        tenants: view.tenants,
        applied: sum('applied'),
        skipped: sum('skipped'),
        denied: sum('denied'),
        failed: sum('failed'),
        passedOver: sum('passedOver'),
      },
    });
  }
  await condition(allHandlersFinished);
  return view;
}
