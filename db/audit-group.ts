import { AsyncResource } from 'node:async_hooks';
import type { AuditEvent, AuditEventInput } from '../core/audit/chain.js';
import { bindGroupAppender, insertSealed, lockHead, sealEvent } from './audit.js';
import type { Pool, PoolClient } from './pool.js';
import { inScope, tenantScope } from './scope.js';

interface Job {
  run: (client: PoolClient) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** A batch gave up as a whole; its jobs are run again one transaction each. */
class BatchAbandoned extends Error {}

/**
 * Group commit per chain. Transactions that each change something and audit it on one tenant's
 * chain, arriving while an earlier group for that tenant is being written, wait and are run
 * together in the next group: one transaction, one head lock, one multi-row insert and one head
 * move for all their events, one commit. A transaction arriving alone runs at once, as
 * `inScope` would run it, so grouping adds no waiting.
 *
 * Each job's change and its events still commit or roll back together, and event ids still
 * dedupe: if any job fails, or an event id is already stored (a retry), the group is rolled back
 * and its jobs run again one transaction each, where the ordinary path returns stored events.
 * A job may therefore run twice: it must be database work only, as a transaction body is.
 */
export class AuditGroupCommit {
  private readonly queues = new Map<string, Job[]>();

  constructor(
    private readonly pool: Pool,
    private readonly maxGroup = 64,
  ) {}

  /** Runs `fn` in a transaction scoped to `tenantId`, grouped with others arriving for that tenant. */
  inTenantScope<T>(tenantId: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // Bound to the caller's async context, so a job run by another caller's drain still sees
      // its own activity context (workflow id and run id of the event it records).
      const job: Job = { run: AsyncResource.bind(fn), resolve: resolve as (value: unknown) => void, reject };
      const queue = this.queues.get(tenantId);
      if (queue) queue.push(job);
      else {
        this.queues.set(tenantId, [job]);
        void this.drain(tenantId);
      }
    });
  }

  private async drain(tenantId: string): Promise<void> {
    const queue = this.queues.get(tenantId)!;
    try {
      while (queue.length > 0) {
        const group = queue.splice(0, this.maxGroup);
        if (group.length === 1) await this.alone(tenantId, group[0]!);
        else await this.together(tenantId, group);
      }
    } finally {
      this.queues.delete(tenantId);
    }
  }

  private async alone(tenantId: string, job: Job): Promise<void> {
    await inScope(this.pool, tenantScope(tenantId), job.run).then(job.resolve, job.reject);
  }

  private async together(tenantId: string, group: Job[]): Promise<void> {
    let results: unknown[];
    try {
      results = await inScope(this.pool, tenantScope(tenantId), async (client) => {
        let head = await lockHead(client, tenantId);
        const sealed: AuditEvent[] = [];
        const ids = new Set<string>();
        bindGroupAppender(client, {
          append(input: AuditEventInput): AuditEvent {
            if (input.tenantId !== tenantId) throw new BatchAbandoned(`event for chain ${input.tenantId} in a group for ${tenantId}`);
            if (ids.has(input.eventId)) throw new BatchAbandoned(`event id ${input.eventId} twice in one group`);
            const event = sealEvent(input, head);
            head = event;
            ids.add(event.eventId);
            sealed.push(event);
            return event;
          },
        });
        const values: unknown[] = [];
        try {
          for (const job of group) values.push(await job.run(client));
        } finally {
          bindGroupAppender(client, undefined);
        }
        if (sealed.length > 0) {
          const stored = await client.query('SELECT 1 FROM audit_events WHERE event_id = ANY($1::uuid[]) LIMIT 1', [[...ids]]);
          if (stored.rowCount) throw new BatchAbandoned('an event id of the group is already stored');
          await insertSealed(client, tenantId, sealed);
        }
        return values;
      });
    } catch {
      // Whatever failed (one job, a retried event id, a lost connection), each job gets its own
      // transaction, and its own outcome.
      for (const job of group) await this.alone(tenantId, job);
      return;
    }
    group.forEach((job, i) => job.resolve(results[i]));
  }
}
