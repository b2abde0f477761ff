import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemContext } from '../../core/audit/context.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import { TEMPLATES_TASK_QUEUE } from '../../core/templates/contract.js';
import { DRIFT_SCAN_WORKFLOW_TYPE } from '../../core/templates/drift.js';
import { createTenant } from '../../usecases/tenancy/tenants.js';
import type { templateDriftScanWorkflow } from '../../workflows/templates/drift.js';
import { apiClient, bodyOf } from '../support/http.js';
import { startTestStack, testLogger, type TestStack } from '../support/stack.js';
import { mspStaff, seedTenancy } from '../support/tenancy.js';

/**
 * The scan at the size the issue names: 500 tenants pinned to a version on the built-in directory,
 * each drifting on three settings. Every tenant is checked once per scan, every difference recorded
 * once however many scans see it, and the run's history stays small (it holds a cursor and
 * counters; the items live in PostgreSQL). The durations are logged, not asserted.
 */
const TENANTS = 500;
let stack: TestStack;
const call = apiClient(() => stack.baseUrl);

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

it('a scan of 500 pinned tenants checks each once, records each difference once across scans, and keeps its history small', async () => {
  const id = await seedTenancy(stack.pool);
  const owner = await mspStaff(call, id.tokens.mspAdmin!, 'Template owner', ['template_owner']);
  const owner2 = await mspStaff(call, id.tokens.mspAdmin!, 'Second template owner', ['template_owner']);
  const document = { directory: { settings: { mfaRequired: true, passwordMinLength: 12, lockoutThreshold: 5 } } };
  const created = bodyOf(
    await call(owner.token, 'POST', '/v1/templates', { name: `scale-${randomBytes(3).toString('hex')}`, document }),
    201,
  );
  const templateId = created.template.id as string;
  bodyOf(await call(owner.token, 'POST', `/v1/templates/${templateId}/versions/1/propose`, {}));
  bodyOf(await call(owner2.token, 'POST', `/v1/templates/${templateId}/versions/1/approve`, {}));
  const ids: string[] = [];
  for (let i = 0; i < TENANTS; i++) {
    const slug = `scale-${i}-${randomBytes(2).toString('hex')}`;
    ids.push(
      (await createTenant(stack.pool, systemContext('scale test'), { slug, name: slug, policy: TenantPolicyDocument.parse({}) })).id,
    );
  }
  // Pinned as an apply leaves them, while their directories keep the built-in defaults: three settings differ in each.
  await stack.db.pool.query(
    `INSERT INTO template_assignments (tenant_id, template_id, version, parameters, assigned_by, applied_version, applied_at, applied_parameters)
     SELECT unnest($1::uuid[]), $2, 1, '{}', 'scale test', 1, now(), '{}'`,
    [ids, templateId],
  );

  const scan = async () => {
    const started = Date.now();
    const handle = await stack.temporal.workflow.start<typeof templateDriftScanWorkflow>(DRIFT_SCAN_WORKFLOW_TYPE, {
      taskQueue: TEMPLATES_TASK_QUEUE,
      workflowId: `template-drift-scale-${randomUUID()}`,
      args: [{}],
    });
    const result = await handle.result();
    const events = (await handle.fetchHistory()).events?.length ?? 0;
    testLogger.warn({ seconds: (Date.now() - started) / 1000, events, result }, 'drift scan of 500 tenants');
    return { result, events };
  };

  const first = await scan();
  expect(first.result).toMatchObject({ checked: TENANTS, drifted: TENANTS, failed: 0, detected: 3 * TENANTS });
  expect(first.events).toBeLessThan(400);
  const second = await scan();
  expect(second.result).toMatchObject({ checked: TENANTS, drifted: TENANTS, detected: 0, resolved: 0 });

  const { rows } = await stack.db.pool.query(
    `SELECT (SELECT count(*)::int FROM template_drift_items WHERE resolved_at IS NULL) AS open,
            (SELECT count(*)::int FROM audit_events WHERE action = 'template.drift.detected') AS detected,
            (SELECT count(DISTINCT tenant_id)::int FROM template_drift_state WHERE checked_at IS NOT NULL) AS checked`,
  );
  expect(rows[0]).toEqual({ open: 3 * TENANTS, detected: 3 * TENANTS, checked: TENANTS });
}, 600_000);
