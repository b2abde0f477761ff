import canonicalize from 'canonicalize';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import type { Pool } from '../../db/pool.js';
import { inScope, tenantScope } from '../../db/scope.js';
import { currentPolicy, getTenantRow, insertPolicyVersion } from '../../db/tenancy.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent, type WorkflowEvent } from '../audit/record.js';

/**
 * Writes `document` as the tenant's next policy version, with its `policy.updated` event under
 * the workflow's event id, in one transaction holding the tenant's row (one policy writer at a
 * time). Null, writing nothing, when the policy already is that document (an earlier attempt wrote
 * it) or, given `from`, when the policy is no longer version `from`. Template applies and
 * rollbacks write the policy through it.
 */
export function writeNextPolicy(
  { pool, clock }: { pool: Pool; clock: Clock },
  input: {
    tenantId: string;
    document: TenantPolicyDocument;
    from?: number;
    event: Pick<WorkflowEvent, 'eventId' | 'actor' | 'authority'>;
    payload: Record<string, unknown>;
  },
): Promise<number | null> {
  const { tenantId } = input;
  return inScope(pool, tenantScope(tenantId), async (client) => {
    await getTenantRow(client, tenantId, true);
    const current = (await currentPolicy(client, tenantId))!;
    if (input.from !== undefined && current.version !== input.from) return null;
    if (canonicalize(TenantPolicyDocument.parse(current.document)) === canonicalize(input.document)) return null;
    const next = await insertPolicyVersion(client, {
      tenantId,
      version: current.version + 1,
      document: input.document,
      createdBy: input.event.actor.id,
    });
    await appendWorkflowEvent(
      client,
      clock,
      tenantId,
      { type: 'policy', id: tenantId },
      {
        ...input.event,
        action: 'policy.updated',
        payload: { before: { version: current.version }, after: { version: next.version }, ...input.payload },
      },
    );
    return next.version;
  });
}
