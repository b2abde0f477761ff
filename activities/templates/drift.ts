import { createHash, randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import canonicalize from 'canonicalize';
import type { DirectoryConnector, DirectoryResolver } from '../../core/directory/connector.js';
import { SETTING_CAPABILITY, type DirectorySettingName } from '../../core/directory/settings.js';
import type { WorkflowEvent } from '../audit/record.js';
import {
  DriftAction,
  driftModeOf,
  driftOfPlan,
  exceptionStatus,
  NO_DRIFT_COUNTS,
  type DriftCounts,
  type DriftMode,
  type FoundDrift,
  type TenantDriftCheckResult,
} from '../../core/templates/drift.js';
import { planTemplate, readDirectoryState, renderForTenant } from '../../core/templates/plan.js';
import { storedTemplateDocument, type TemplateDocument } from '../../core/templates/schemas.js';
import { renderPath } from '../../core/tenancy/policy-diff.js';
import { TenantPolicyDocument } from '../../core/tenancy/schemas.js';
import type { Pool, PoolClient } from '../../db/pool.js';
import { inScope, mspScope, tenantScope } from '../../db/scope.js';
import { currentPolicy, getTenantRow } from '../../db/tenancy.js';
import { openRollbackOf } from '../../db/template-rollbacks.js';
import { getAssignmentRow, getVersionRow, openApplyOf, type AssignmentRow } from '../../db/templates.js';
import {
  insertDriftItem,
  listDriftExceptions,
  lockDriftState,
  markDriftAlerted,
  markExpiryRecorded,
  markRemediationFailed,
  openDriftItems,
  pinnedTenantPage,
  resolveDriftItem,
  setDriftChecked,
  setDriftError,
  touchDriftItem,
  unrecordedExpiries,
  type DriftItemRow,
} from '../../db/templates/drift.js';
import type { Clock } from '../index.js';
import { appendWorkflowEvent } from '../audit/record.js';
import { directoryCall } from '../directory/ledger.js';
import { deliverTenantWebhook } from '../tenancy/webhooks.js';
import type { WebhookTransport } from '../tenancy/webhook-http.js';

export interface DriftDeps {
  pool: Pool;
  directories: DirectoryResolver;
  clock: Clock;
  /** The tenant's signed webhook, for `alert` items; without it alerts wait for a check that has it. */
  webhooks?: WebhookTransport;
}

/** What started a check, for the authority of the events it writes. */
export interface DriftTrigger {
  kind: 'schedule' | 'check' | 'apply' | 'rollback';
  requestedBy?: string;
  rolloutId?: string;
  /** Called from an apply's own pin step: the apply under way is the one that just verified. */
  duringApply?: boolean;
  /** Called from a rollback's own re-pin step: the rollback under way is the one that just verified. */
  duringRollback?: boolean;
}

const SYSTEM = { id: 'system', type: 'system' as const };
/** Tenants checked at once inside one batch activity. */
const LANES = 5;

/** The same id for the same parts, so a retried step writes its event (or sends its webhook) once. */
function derivedId(parts: readonly unknown[]): string {
  const hex = createHash('sha256').update(JSON.stringify(parts)).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 3) | 8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const heartbeat = () => {
  try {
    Context.current().heartbeat();
  } catch {
    // Called outside an activity's heartbeat scope: nothing to beat for.
  }
};

/** What a check compares against: the version applied, rendered with the values it was applied with. */
interface Baseline {
  pin: AssignmentRow & { applied_version: number };
  document: TemplateDocument;
  parameters: Record<string, string>;
}

/**
 * Checks one tenant against the exact version applied to it (its pin's `appliedVersion` and the
 * parameter values it was applied with), records each transition once on its chain (detected,
 * resolved, an approved exception running out), then acts on the open items no active exception
 * accepts: `alert` sends the tenant's signed webhook once per item, `remediate` re-applies that
 * path through the connector, reads it back and records what it did. Failures to read the target
 * are recorded with the tenant's drift state, not thrown; database failures throw (retried).
 */
export async function refreshTenantDrift(deps: DriftDeps, tenantId: string, trigger: DriftTrigger): Promise<TenantDriftCheckResult> {
  const { pool, clock } = deps;
  const result: TenantDriftCheckResult = {
    tenantId,
    outcome: 'checked',
    reason: null,
    open: 0,
    detected: 0,
    resolved: 0,
    remediated: 0,
    alerted: 0,
  };
  const skip = (reason: string) => ({ ...result, outcome: 'skipped' as const, reason });
  const fail = async (reason: string) => {
    await inScope(pool, tenantScope(tenantId), (client) => setDriftError(client, tenantId, reason, clock.now()));
    return { ...result, outcome: 'failed' as const, reason };
  };

  const loaded = await inScope(pool, mspScope, async (client) => {
    const tenant = await getTenantRow(client, tenantId);
    const pin = await getAssignmentRow(client, tenantId);
    const version = pin && pin.applied_version !== null ? await getVersionRow(client, pin.template_id, pin.applied_version) : undefined;
    return {
      tenant,
      pin,
      version,
      policy: await currentPolicy(client, tenantId),
      applying: trigger.duringApply ? undefined : await openApplyOf(client, tenantId),
      rollingBack: trigger.duringRollback ? undefined : await openRollbackOf(client, tenantId),
    };
  });
  const { tenant, pin, version, policy } = loaded;
  if (!tenant || !policy) return skip('no such tenant');
  if (tenant.status !== 'active') return skip('the tenant is not active');
  const authority = (extra: Record<string, unknown> = {}) => ({
    driftCheck: trigger.kind,
    ...(trigger.requestedBy ? { requestedBy: trigger.requestedBy } : {}),
    ...(trigger.rolloutId ? { rolloutId: trigger.rolloutId } : {}),
    ...extra,
  });
  if (!pin || pin.applied_version === null || !version) {
    // Nothing applied (or the pin moved to another template): what was drift from it is no longer.
    const done = await reconcile(deps, tenantId, [], null, authority());
    return { ...skip('no template version is applied to the tenant'), resolved: done.resolved };
  }
  if (loaded.applying) return skip(`an apply is under way (rollout ${loaded.applying}); its pin step checks drift`);
  // A rollback restoring the tenant is not drift to put right: its re-pin step checks drift.
  if (loaded.rollingBack) return skip(`a rollback is under way (rollout ${loaded.rollingBack}); its re-pin step checks drift`);

  const parameters = pin.applied_parameters ?? pin.parameters;
  const rendered = renderForTenant(storedTemplateDocument(version.document), parameters, tenant, 'parameters');
  if ('issues' in rendered) return fail(`the applied version cannot be rendered for the tenant: ${JSON.stringify(rendered.issues)}`);
  const baseline: Baseline = {
    pin: { ...pin, applied_version: pin.applied_version },
    document: rendered.document,
    parameters: rendered.values,
  };
  const policyDocument = TenantPolicyDocument.parse(policy.document);

  let directory: DirectoryConnector;
  const findDrift = async (): Promise<FoundDrift[]> => {
    const state = await directoryCall(() => readDirectoryState(directory, tenantId));
    const plan = planTemplate(
      baseline.document,
      { tenantId, policyVersion: policy.version, policy: policyDocument, ...state },
      {
        templateId: pin.template_id,
        version: baseline.pin.applied_version,
        parameters: baseline.parameters,
        computedAt: clock.now().toISOString(),
      },
    );
    return driftOfPlan(plan);
  };
  let found: FoundDrift[];
  try {
    directory = await directoryCall(() => deps.directories.directoryFor(tenantId));
    found = await findDrift();
  } catch (error) {
    return fail(`the tenant's directory could not be read: ${(error as Error).message}`);
  }

  const base = authority({ templateId: pin.template_id, templateVersion: baseline.pin.applied_version });
  const reconciled = await reconcile(deps, tenantId, found, baseline, base);
  result.detected = reconciled.detected;
  result.resolved = reconciled.resolved;

  // Act on what no active exception accepts.
  const now = clock.now();
  const accepted = new Set(
    reconciled.exceptions
      .filter((e) => exceptionStatus({ approvedAt: e.approved_at, endedAt: e.ended_at, expiresAt: e.expires_at }, now) === 'active')
      .map((e) => e.path),
  );
  // A tenant that made a setting stricter than the version did so itself: putting the version's
  // value back would loosen its control, which only its approvers decide. Reported, never remediated.
  const loosening = new Set(found.filter((f) => f.restoring === 'loosens').map((f) => f.path));
  let open = 0;
  for (const item of reconciled.open) {
    if (accepted.has(item.path)) continue;
    if (item.mode === 'alert' && item.alerted_at === null && deps.webhooks) {
      if (await alert(deps, deps.webhooks, tenantId, item, base)) result.alerted++;
    }
    if (item.mode === 'remediate' && item.area !== 'policy' && !loosening.has(item.path)) {
      const outcome = await remediate(deps, tenantId, item, baseline, directory!, findDrift, base);
      if (outcome === 'remediated') {
        result.remediated++;
        continue;
      }
    }
    open++;
  }
  result.open = open;
  return result;
}

/**
 * The transitions since the last check, in one transaction under the tenant's check lock: new
 * items detected, items no longer found resolved, approved exceptions that ran out recorded.
 */
async function reconcile(
  deps: DriftDeps,
  tenantId: string,
  found: FoundDrift[],
  baseline: Baseline | null,
  authority: Record<string, unknown>,
): Promise<{ detected: number; resolved: number; open: DriftItemRow[]; exceptions: Awaited<ReturnType<typeof listDriftExceptions>> }> {
  const { pool, clock } = deps;
  const now = clock.now();
  return inScope(pool, tenantScope(tenantId), async (client) => {
    await lockDriftState(client, tenantId);
    const before = new Map((await openDriftItems(client, tenantId)).map((i) => [i.path, i]));
    const record = (
      action: string,
      target: { type: string; id: string },
      payload: Record<string, unknown>,
      eventId: string = randomUUID(),
    ) =>
      appendWorkflowEvent(client, clock, tenantId, target, { eventId, action, actor: SYSTEM, authority, payload } satisfies WorkflowEvent);
    let detected = 0;
    let resolved = 0;
    for (const f of found) {
      const mode: DriftMode = driftModeOf(baseline!.document.drift, f.path);
      const known = before.get(f.path);
      const at = {
        template_id: baseline!.pin.template_id,
        version: baseline!.pin.applied_version,
        expected: f.expected,
        actual: f.actual,
        mode,
      };
      if (known) {
        await touchDriftItem(client, { id: known.id, ...at, at: now });
        before.delete(f.path);
        continue;
      }
      const id = randomUUID();
      await insertDriftItem(client, { id, tenant_id: tenantId, path: f.path, area: f.area, ...at, at: now });
      await record(
        DriftAction.Detected,
        { type: 'template_drift', id },
        { path: f.path, area: f.area, expected: f.expected, actual: f.actual, mode },
      );
      detected++;
    }
    for (const gone of before.values()) {
      if (!(await resolveDriftItem(client, gone.id, 'cleared', now))) continue;
      await record(
        DriftAction.Resolved,
        { type: 'template_drift', id: gone.id },
        {
          path: gone.path,
          expected: gone.expected,
          lastActual: gone.actual,
          firstSeenAt: gone.first_seen_at.toISOString(),
          resolution: baseline ? 'cleared' : 'no version applied',
        },
      );
      resolved++;
    }
    for (const e of await unrecordedExpiries(client, tenantId, now)) {
      await markExpiryRecorded(client, e.id, now);
      await record(
        DriftAction.ExceptionExpired,
        { type: 'template_drift_exception', id: e.id },
        { path: e.path, owner: e.owner, expiresAt: e.expires_at.toISOString(), approvedBy: e.approved_by },
        derivedId([DriftAction.ExceptionExpired, e.id]),
      );
    }
    await setDriftChecked(client, {
      tenantId,
      templateId: baseline?.pin.template_id ?? null,
      version: baseline?.pin.applied_version ?? null,
      at: now,
    });
    return { detected, resolved, open: await openDriftItems(client, tenantId), exceptions: await listDriftExceptions(client, tenantId) };
  });
}

/** The tenant's signed webhook, once per item (the event id is the item's); audited once when delivered. */
async function alert(
  deps: DriftDeps,
  transport: WebhookTransport,
  tenantId: string,
  item: DriftItemRow,
  authority: Record<string, unknown>,
): Promise<boolean> {
  const { pool, clock } = deps;
  const eventId = derivedId([DriftAction.Alerted, item.id]);
  let delivered: boolean;
  try {
    delivered = (
      await deliverTenantWebhook(
        { pool, clock, transport },
        {
          tenantId,
          eventId,
          action: DriftAction.Detected,
          subject: {
            drift: {
              itemId: item.id,
              path: item.path,
              expected: item.expected,
              actual: item.actual,
              templateId: item.template_id,
              version: item.version,
              firstSeenAt: item.first_seen_at.toISOString(),
            },
            message: `${item.path} differs from template version ${item.version} applied to the tenant.`,
          },
        },
      )
    ).delivered;
  } catch {
    // The attempt and its error are recorded with the delivery; the next check tries again.
    return false;
  }
  if (!delivered) return false; // no webhook: nobody to tell
  await inScope(pool, tenantScope(tenantId), async (client) => {
    await markDriftAlerted(client, item.id, clock.now());
    await appendWorkflowEvent(
      client,
      clock,
      tenantId,
      { type: 'template_drift', id: item.id },
      {
        eventId,
        action: DriftAction.Alerted,
        actor: SYSTEM,
        authority,
        payload: { path: item.path, webhookEventId: eventId },
      },
    );
  });
  return true;
}

/**
 * Puts the applied version's value of one directory path back through the connector, reads the
 * tenant back and records `template.drift.remediated` once it is verified gone. Only the value the
 * applied version holds for this tenant is written, and only while the pin still names that
 * version with those values and no apply is under way: remediation never writes anything the
 * tenant did not accept.
 */
async function remediate(
  deps: DriftDeps,
  tenantId: string,
  item: DriftItemRow,
  baseline: Baseline,
  directory: DirectoryConnector,
  findDrift: () => Promise<FoundDrift[]>,
  authority: Record<string, unknown>,
): Promise<'remediated' | 'failed' | 'not_done'> {
  const { pool, clock } = deps;
  const still = await inScope(pool, mspScope, async (client) => ({
    pin: await getAssignmentRow(client, tenantId),
    applying: (await openApplyOf(client, tenantId)) ?? (await openRollbackOf(client, tenantId)),
    version: await getVersionRow(client, baseline.pin.template_id, baseline.pin.applied_version),
  }));
  const samePin =
    still.pin?.template_id === baseline.pin.template_id &&
    still.pin.applied_version === baseline.pin.applied_version &&
    canonicalize(still.pin.applied_parameters ?? still.pin.parameters) ===
      canonicalize(baseline.pin.applied_parameters ?? baseline.pin.parameters);
  const accepted = still.version?.status === 'approved' || still.version?.status === 'deprecated';
  if (!samePin || still.applying || !accepted) return 'not_done';

  let did: Record<string, unknown>;
  try {
    if (item.area === 'directory.settings') {
      const name = item.path.slice('directory.settings.'.length) as DirectorySettingName;
      const value = baseline.document.directory.settings[name];
      if (value === undefined || !directory.capabilities[SETTING_CAPABILITY[name]]) return 'not_done';
      await directoryCall(() => directory.applySecuritySettings(tenantId, { [name]: value }));
      did = { applied: { settings: { [name]: value } } };
    } else {
      const role = baseline.document.directory.roles.find((r) => {
        const at = renderPath(['directory', 'roles', r.name]);
        return item.path === at || item.path.startsWith(`${at}.`);
      });
      if (!role) return 'not_done';
      await directoryCall(() => directory.upsertRole(tenantId, role));
      did = { applied: { role } };
    }
  } catch (error) {
    return remediationFailed(deps, tenantId, item, `the target refused or did not answer: ${(error as Error).message}`, authority);
  }
  let remaining: FoundDrift | undefined;
  try {
    remaining = (await findDrift()).find((f) => f.path === item.path);
  } catch (error) {
    return remediationFailed(deps, tenantId, item, `reading back failed: ${(error as Error).message}`, authority);
  }
  if (remaining) return remediationFailed(deps, tenantId, item, `reading back still shows ${JSON.stringify(remaining.actual)}`, authority);

  await inScope(pool, tenantScope(tenantId), async (client) => {
    await lockDriftState(client, tenantId);
    if (!(await resolveDriftItem(client, item.id, 'remediated', clock.now()))) return;
    await appendWorkflowEvent(
      client,
      clock,
      tenantId,
      { type: 'template_drift', id: item.id },
      {
        eventId: derivedId([DriftAction.Remediated, item.id]),
        action: DriftAction.Remediated,
        actor: SYSTEM,
        authority,
        payload: {
          path: item.path,
          before: item.actual,
          after: item.expected,
          ...did,
          verified: true,
          firstSeenAt: item.first_seen_at.toISOString(),
        },
      },
    );
  });
  return 'remediated';
}

async function remediationFailed(
  deps: DriftDeps,
  tenantId: string,
  item: DriftItemRow,
  error: string,
  authority: Record<string, unknown>,
): Promise<'failed'> {
  await inScope(deps.pool, tenantScope(tenantId), async (client) => {
    if (!(await markRemediationFailed(client, item.id, error, deps.clock.now()))) return;
    await appendWorkflowEvent(
      client,
      deps.clock,
      tenantId,
      { type: 'template_drift', id: item.id },
      {
        eventId: derivedId([DriftAction.RemediationFailed, item.id]),
        action: DriftAction.RemediationFailed,
        actor: SYSTEM,
        authority,
        payload: { path: item.path, expected: item.expected, actual: item.actual, error },
      },
    );
  });
  return 'failed';
}

/** The scan's steps: pages of tenants, and batches of checks that never fail for one tenant's sake. */
export function createDriftActivities(deps: DriftDeps) {
  return {
    async listDriftTenants(input: { after: string | null; limit: number }): Promise<{ tenantIds: string[] }> {
      return { tenantIds: await inScope(deps.pool, mspScope, (client: PoolClient) => pinnedTenantPage(client, input.after, input.limit)) };
    },

    /** Checks each tenant (a few at a time); one that cannot be checked is counted and recorded with its drift state. */
    async checkDriftBatch(input: { tenantIds: string[] }): Promise<DriftCounts> {
      const counts: DriftCounts = { ...NO_DRIFT_COUNTS };
      const queue = [...input.tenantIds];
      const lane = async () => {
        for (let tenantId = queue.shift(); tenantId !== undefined; tenantId = queue.shift()) {
          let checked: TenantDriftCheckResult;
          try {
            checked = await refreshTenantDrift(deps, tenantId, { kind: 'schedule' });
          } catch (error) {
            counts.failed++;
            await inScope(deps.pool, tenantScope(tenantId), (client) =>
              setDriftError(client, tenantId, `the check failed: ${(error as Error).message}`, deps.clock.now()),
            ).catch(() => undefined); // the database itself is what failed: the next scan checks again
            continue;
          }
          heartbeat();
          if (checked.outcome === 'failed') counts.failed++;
          else if (checked.outcome === 'skipped') counts.skipped++;
          else counts.checked++;
          if (checked.open > 0) counts.drifted++;
          counts.detected += checked.detected;
          counts.resolved += checked.resolved;
          counts.remediated += checked.remediated;
          counts.alerted += checked.alerted;
        }
      };
      await Promise.all(Array.from({ length: Math.min(LANES, queue.length) }, lane));
      return counts;
    },

    /** One tenant now (`POST …/drift/check`). */
    async checkTenantDrift(input: { tenantId: string; requestedBy: string }): Promise<TenantDriftCheckResult> {
      return refreshTenantDrift(deps, input.tenantId, { kind: 'check', requestedBy: input.requestedBy });
    },
  };
}
