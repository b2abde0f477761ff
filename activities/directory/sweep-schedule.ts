import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptions,
} from '@temporalio/client';
import type { DirectoryConnector } from '../../core/directory/connector.js';
import {
  DIRECTORY_TASK_QUEUE,
  SWEEP_WORKFLOW_TYPE,
  sweepScheduleId,
  sweepSearchAttributes,
  sweepWorkflowId,
  type SweepInput,
} from '../../core/directory/sweep.js';
import { taskQueueName } from '../../core/temporal.js';

export interface SweepScheduleOptions {
  /** Reaches Temporal's schedule API. */
  temporal: Client;
  /** TEMPORAL_TASK_QUEUE_PREFIX: a schedule's action names its queue as the server knows it. */
  taskQueuePrefix: string;
  /** DIRECTORY_SWEEP_INTERVAL_SECONDS. */
  intervalSeconds: number;
}

/** What the schedule of a tenant that needs a sweeper looks like. */
function scheduleOf(tenantId: string, options: SweepScheduleOptions): ScheduleOptions {
  const args: [SweepInput] = [{ tenantId }];
  return {
    scheduleId: sweepScheduleId(tenantId),
    spec: { intervals: [{ every: `${options.intervalSeconds}s` }] },
    action: {
      type: 'startWorkflow',
      workflowType: SWEEP_WORKFLOW_TYPE,
      workflowId: sweepWorkflowId(tenantId),
      taskQueue: taskQueueName(options.taskQueuePrefix, DIRECTORY_TASK_QUEUE),
      args,
      typedSearchAttributes: sweepSearchAttributes(tenantId),
    },
    // A sweep still running when the next is due: the next is skipped, never doubled.
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: `${options.intervalSeconds}s` },
    typedSearchAttributes: sweepSearchAttributes(tenantId),
    state: { note: 'expiry sweeper: the tenant’s target cannot end a membership by itself' },
  };
}

/**
 * The directory registry's `onTarget` hook that keeps each tenant's sweep schedule in step: before
 * a tenant first uses a target without `membershipEnd`, its schedule is created (or updated); when
 * this process sees a tenant move from such a target to one that has it, the schedule is deleted.
 * A tenant that was always on the built-in directory costs no call to Temporal. (A tenant moved
 * back while no process was watching keeps a schedule whose runs answer `skipped`.)
 */
export function sweepScheduleHook(
  options: SweepScheduleOptions,
  synced?: (tenantId: string, outcome: Awaited<ReturnType<typeof syncSweepSchedule>>) => void,
) {
  return async (
    tenantId: string,
    _target: unknown,
    directory: Pick<DirectoryConnector, 'capabilities'>,
    previous: Pick<DirectoryConnector, 'capabilities'> | null,
  ): Promise<void> => {
    if (directory.capabilities.membershipEnd && previous?.capabilities.membershipEnd !== false) return;
    // Awaited on its own line: as an argument of `synced?.(…)` it would not run at all without a callback.
    const outcome = await syncSweepSchedule(options, tenantId, directory);
    synced?.(tenantId, outcome);
  };
}

/**
 * Makes the tenant's sweep schedule match its target: present (with the configured interval and
 * queue) when the target lacks the `membershipEnd` capability, absent otherwise. Idempotent.
 */
export async function syncSweepSchedule(
  options: SweepScheduleOptions,
  tenantId: string,
  directory: Pick<DirectoryConnector, 'capabilities'>,
): Promise<'created' | 'updated' | 'deleted' | 'absent'> {
  const handle = options.temporal.schedule.getHandle(sweepScheduleId(tenantId));
  if (directory.capabilities.membershipEnd) {
    try {
      await handle.delete();
      return 'deleted';
    } catch (error) {
      if (error instanceof ScheduleNotFoundError) return 'absent';
      throw error;
    }
  }
  const wanted = scheduleOf(tenantId, options);
  try {
    await options.temporal.schedule.create(wanted);
    return 'created';
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
  }
  await handle.update((previous) => ({
    spec: wanted.spec,
    action: wanted.action,
    policies: wanted.policies ?? {},
    state: { paused: previous.state.paused, note: wanted.state?.note },
  }));
  return 'updated';
}
