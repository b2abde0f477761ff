import { defineSearchAttributeKey, SearchAttributeType, TypedSearchAttributes } from '@temporalio/common';
import type { ScheduleDescription, WorkflowClientInterceptor } from '@temporalio/client';

/**
 * Put in front of every domain's task queue (each declared in its contract) unless
 * TEMPORAL_TASK_QUEUE_PREFIX says otherwise, so several deployments or test runs can share a namespace.
 */
export const DEFAULT_TASK_QUEUE_PREFIX = 'tenure-';

/** The name a contract's task queue has on the server: the one place the prefix is applied. */
export function taskQueueName(prefix: string, queue: string): string {
  return `${prefix}${queue}`;
}

/**
 * Client interceptor that applies the prefix to every workflow start, so callers name only the
 * contract's queue and the client and the worker (which polls taskQueueName(prefix, queue)) agree.
 */
export function taskQueuePrefixInterceptor(prefix: string): WorkflowClientInterceptor {
  const prefixed = <T extends { taskQueue: string }>(options: T): T => ({
    ...options,
    taskQueue: taskQueueName(prefix, options.taskQueue),
  });
  return {
    startWithDetails: (input, next) => next({ ...input, options: prefixed(input.options) }),
    signalWithStart: (input, next) => next({ ...input, options: prefixed(input.options) }),
    startUpdateWithStart: (input, next) => next({ ...input, workflowStartOptions: prefixed(input.workflowStartOptions) }),
  };
}

/** Custom search attribute set on every workflow so the Temporal UI and CLI can filter by tenant. */
export const TENANT_ID_SEARCH_ATTRIBUTE = 'TenantId';

/** Tenant id used for workflows that belong to the MSP itself rather than to one client tenant. */
export const MSP_TENANT = 'msp';

export const TenantIdKey = defineSearchAttributeKey(TENANT_ID_SEARCH_ATTRIBUTE, SearchAttributeType.KEYWORD);

/** Search attributes every Tenure workflow is started with. */
export function tenantSearchAttributes(tenantId: string): TypedSearchAttributes {
  return new TypedSearchAttributes([{ key: TenantIdKey, value: tenantId }]);
}

/**
 * Retry of a workflow step that changes or reads a tenant's target: about five minutes of a target
 * that does not answer, then the step fails visibly rather than apply something long after it
 * was decided. `nonRetryable` names the failures retrying cannot help.
 */
export function boundedTargetRetry(nonRetryable: string[]) {
  return {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 12,
    nonRetryableErrorTypes: nonRetryable,
  };
}

/** Retry of a read-back that checks a change took effect: a few quick attempts, then the change counts as not confirmed. */
export function readBackRetry(nonRetryable: string[]) {
  return {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: nonRetryable,
  };
}

/** What a Schedule's description says of its state and runs, as the API shows every Schedule. */
export function scheduleRuns(description: ScheduleDescription): {
  paused: boolean;
  note: string | null;
  nextActionTimes: string[];
  recentActions: { scheduledAt: string; takenAt: string; workflowId: string }[];
} {
  return {
    paused: description.state.paused,
    note: description.state.note ?? null,
    nextActionTimes: description.info.nextActionTimes.map((t) => t.toISOString()),
    recentActions: description.info.recentActions.map((a) => ({
      scheduledAt: a.scheduledAt.toISOString(),
      takenAt: a.takenAt.toISOString(),
      workflowId: a.action.workflow.workflowId,
    })),
  };
}
