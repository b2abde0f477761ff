import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import type { Progress } from './run.js';

// temporal.api.enums.v1 values (stable wire numbers).
const EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT = 8;
const EVENT_TYPE_ACTIVITY_TASK_STARTED = 11;
const TIMEOUT_TYPE_SCHEDULE_TO_START = 2;
const EVENT_NAMES: Record<number, string> = {
  5: 'wft_scheduled',
  6: 'wft_started',
  7: 'wft_completed',
  8: 'wft_timed_out',
  9: 'wft_failed',
  10: 'activity_scheduled',
  11: 'activity_started',
  12: 'activity_completed',
  13: 'activity_failed',
  14: 'activity_timed_out',
  17: 'timer_started',
  18: 'timer_fired',
  41: 'update_accepted',
  43: 'update_completed',
  47: 'update_admitted',
};

/** What held a late workflow up, read from its Temporal history between its deadline and when it caught up. */
export interface LateCauses {
  /** A workflow task sat on the killed worker's sticky queue until its schedule-to-start timeout. */
  stickyQueueTimeout: number;
  /** A workflow task was taken by a worker that then died; it timed out start-to-close. */
  workflowTaskTimeout: number;
  /** An activity attempt died with its worker and was retried only after its start-to-close timeout. */
  activityStartToCloseTimeout: number;
  /** An activity attempt failed (PostgreSQL down) and waited out its retry backoff. */
  activityFailed: number;
  /** The Temporal server was down (restarted by the run) within the window. */
  temporalDown: number;
  /** None of the above in the window: waiting for a worker to be up at all. */
  other: number;
}

/** A workflow that was late: due to act at `from`, done only at `to` (epoch ms). */
export interface LateWindow {
  workflowId: string;
  from: number;
  to: number;
}

/** Counts, per cause, the late workflows whose history shows it; one may have several. */
export async function diagnoseLateWorkflows(
  temporal: Client,
  late: LateWindow[],
  temporalOutages: { from: number; to: number }[],
  progress: Progress,
  traced = 3,
): Promise<LateCauses> {
  const causes: LateCauses = {
    stickyQueueTimeout: 0,
    workflowTaskTimeout: 0,
    activityStartToCloseTimeout: 0,
    activityFailed: 0,
    temporalDown: 0,
    other: 0,
  };
  // The latest few get their history printed, relative to the deadline, as evidence.
  const worst = new Set([...late].sort((a, b) => b.to - b.from - (a.to - a.from)).slice(0, traced));
  let next = 0;
  const work = async () => {
    while (next < late.length) {
      const window = late[next++]!;
      const { workflowId, from, to } = window;
      const history = await temporal.workflow.getHandle(workflowId).fetchHistory();
      const found = new Set<keyof LateCauses>();
      const trace: string[] = [];
      const activityTypes = new Map<string, string>();
      for (const event of history.events ?? []) {
        const at = event.eventTime ? tsToMs(event.eventTime) : NaN;
        const type = Number(event.eventType);
        if (event.activityTaskScheduledEventAttributes?.activityType?.name)
          activityTypes.set(String(event.eventId), event.activityTaskScheduledEventAttributes.activityType.name);
        if (worst.has(window) && at > from - 2000 && at <= to + 1000 && EVENT_NAMES[type]) {
          const detail =
            type === EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
              ? Number(event.workflowTaskTimedOutEventAttributes?.timeoutType) === TIMEOUT_TYPE_SCHEDULE_TO_START
                ? '(schedule-to-start)'
                : '(start-to-close)'
              : type === 10
                ? `(${event.activityTaskScheduledEventAttributes?.activityType?.name ?? '?'})`
                : type === EVENT_TYPE_ACTIVITY_TASK_STARTED
                  ? `(${activityTypes.get(String(event.activityTaskStartedEventAttributes?.scheduledEventId)) ?? '?'} attempt ${event.activityTaskStartedEventAttributes?.attempt ?? 1})`
                  : '';
          trace.push(`${((at - from) / 1000).toFixed(1)}s ${EVENT_NAMES[type]}${detail}`);
        }
        if (!(at > from && at <= to + 1000)) continue;
        if (type === EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT) {
          const timeout = Number(event.workflowTaskTimedOutEventAttributes?.timeoutType);
          found.add(timeout === TIMEOUT_TYPE_SCHEDULE_TO_START ? 'stickyQueueTimeout' : 'workflowTaskTimeout');
        }
        // Retries are not separate history events: the started event carries the attempt and the last failure.
        const started = event.activityTaskStartedEventAttributes;
        if (type === EVENT_TYPE_ACTIVITY_TASK_STARTED && (started?.attempt ?? 1) > 1) {
          found.add(started?.lastFailure?.timeoutFailureInfo ? 'activityStartToCloseTimeout' : 'activityFailed');
        }
      }
      if (temporalOutages.some((o) => o.from <= to && o.to >= from)) found.add('temporalDown');
      if (found.size === 0) found.add('other');
      for (const cause of found) causes[cause]++;
      if (trace.length) progress(`history of ${workflowId} (late ${to - from} ms), relative to its deadline:\n  ${trace.join(', ')}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, work));
  return causes;
}

/** Why a workflow closed other than completed: the last event's failure, cause first (e.g. an activity's refusal). */
export async function closingFailure(temporal: Client, workflowId: string): Promise<string> {
  const history = await temporal.workflow.getHandle(workflowId).fetchHistory();
  const last = history.events?.at(-1);
  const failure = last?.workflowExecutionFailedEventAttributes?.failure;
  if (!failure) return `closed by event type ${String(last?.eventType ?? '?')}`;
  const chain: string[] = [];
  for (let f: typeof failure | null | undefined = failure; f; f = f.cause) {
    const type = f.applicationFailureInfo?.type;
    chain.push(`${f.message ?? ''}${type ? ` [${type}]` : ''}`);
  }
  return chain.join(' <- ');
}
