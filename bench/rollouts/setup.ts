import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { systemContext, type ActionContext } from '../../core/audit/context.js';
import { TemplateDocument } from '../../core/templates/schemas.js';
import { StartRolloutRequest } from '../../core/templates/rollout-schemas.js';
import type { TemplateRolloutView } from '../../core/templates/rollouts.js';
import type { Pool } from '../../db/pool.js';
import { createCast } from '../../runtime/demo.js';
import { createTemplate, moveTemplateVersion } from '../../usecases/templates.js';
import { getRolloutRow } from '../../db/rollouts.js';
import { inScope, mspScope } from '../../db/scope.js';
import { startRollout, type RolloutDeps } from '../../usecases/rollouts.js';
import { runConcurrently } from '../support.js';

/**
 * What the rollouts benchmark and fault run share: tenants made through the audited use cases,
 * an approved template, a rollout started through the use case the API calls, and waiting for it.
 */

/** Tenants a cast call creates; several run at once. */
const CAST_CHUNK = 25;

export interface RolloutCast {
  /** The MSP operator who starts rollouts and rollbacks. */
  operator: ActionContext;
  /** Two template owners: one writes and proposes, the other approves (four eyes). */
  author: ActionContext;
  approver: ActionContext;
}

const staff = (id: string, role: string): ActionContext => ({ actor: { id, type: 'user' }, authority: { roles: [role] } });

export async function seedRolloutStaff(pool: Pool): Promise<RolloutCast> {
  const cast = await createCast(pool, systemContext('rollout benchmark or fault run seed'), {
    tenants: [],
    actors: [
      { key: 'operator', displayName: 'Rollout operator', kind: 'msp_staff', roles: [{ role: 'operator', tenant: null }] },
      { key: 'author', displayName: 'Template author', kind: 'msp_staff', roles: [{ role: 'template_owner', tenant: null }] },
      { key: 'approver', displayName: 'Template approver', kind: 'msp_staff', roles: [{ role: 'template_owner', tenant: null }] },
    ],
  });
  return {
    operator: staff(cast.actors.operator!.id, 'operator'),
    author: staff(cast.actors.author!.id, 'template_owner'),
    approver: staff(cast.actors.approver!.id, 'template_owner'),
  };
}

/** `count` tenants `<prefix>-<n>`, a few chunks at a time; their ids in that order. */
export async function seedRolloutTenants(pool: Pool, prefix: string, count: number, concurrency = 4): Promise<string[]> {
  const ctx = systemContext('rollout benchmark or fault run seed');
  const slugs = Array.from({ length: count }, (_, t) => `${prefix}-${t}`);
  const ids: string[] = new Array(count);
  const chunks = Math.ceil(count / CAST_CHUNK);
  await runConcurrently(chunks, concurrency, new AbortController().signal, async (c) => {
    const mine = slugs.slice(c * CAST_CHUNK, (c + 1) * CAST_CHUNK);
    const cast = await createCast(pool, ctx, { tenants: mine.map((slug) => ({ slug, name: `Rollout tenant ${slug}` })), actors: [] });
    mine.forEach((slug, i) => (ids[c * CAST_CHUNK + i] = cast.tenants[slug]!.id));
  });
  return ids;
}

/**
 * A baseline that only tightens a tenant at the built-in directory's defaults: two new roles (one
 * privileged) and stricter MFA, password and lockout settings. No plan of it needs a tenant's gate.
 */
export const TIGHTENING_DOCUMENT = {
  directory: {
    roles: [
      { name: 'HelpdeskAdmin', description: 'Helpdesk of {{tenant.slug}}' },
      { name: 'BreakGlass', description: 'Emergency access for {{tenant.name}}', privileged: true },
    ],
    settings: { mfaRequired: true, passwordMinLength: 12, passwordComplexity: true, lockoutThreshold: 5, lockoutDurationMinutes: 30 },
  },
};

/** A template whose version 1 is `document`, written and proposed by one owner and approved by the other. */
export async function approvedTemplate(
  pool: Pool,
  cast: RolloutCast,
  name: string,
  document: unknown = TIGHTENING_DOCUMENT,
): Promise<string> {
  const created = await createTemplate(pool, cast.author, { name, description: name, document: TemplateDocument.parse(document) });
  const templateId = created.template.id;
  await moveTemplateVersion(pool, cast.author, templateId, 1, 'propose', null);
  await moveTemplateVersion(pool, cast.approver, templateId, 1, 'approve', 'benchmark baseline');
  return templateId;
}

/** Starts a one-wave rollout of version 1 through the use case, as the operator. */
export async function startOneWaveRollout(
  deps: RolloutDeps,
  cast: RolloutCast,
  templateId: string,
  tenantIds: string[],
  options: { window: number; maxFailures?: number },
): Promise<TemplateRolloutView> {
  const body = StartRolloutRequest.parse({
    templateId,
    version: 1,
    tenants: tenantIds,
    window: options.window,
    ...(options.maxFailures !== undefined ? { errorBudget: { maxFailures: options.maxFailures } } : {}),
  });
  return (await startRollout(deps, cast.operator, body, undefined)).view;
}

/** Polls the rollout's read model until `done` holds; gives up after `timeoutMs` or on abort. */
export async function waitForRollout(
  pool: Pool,
  rolloutId: string,
  done: (view: TemplateRolloutView) => boolean,
  options: { timeoutMs: number; signal?: AbortSignal; everyMs?: number },
): Promise<TemplateRolloutView> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const view = await inScope(pool, mspScope, async (client) => (await getRolloutRow(client, rolloutId))?.view).catch(() => undefined);
    if (view && done(view)) return view;
    if (!view) {
      if (Date.now() > deadline) throw new Error(`rollout ${rolloutId}: not readable after ${Math.round(options.timeoutMs / 1000)} s`);
      await delay(options.everyMs ?? 500);
      continue;
    }
    options.signal?.throwIfAborted();
    if (Date.now() > deadline)
      throw new Error(`rollout ${rolloutId}: still ${view.status} after ${Math.round(options.timeoutMs / 1000)} s`);
    await delay(options.everyMs ?? 500);
  }
}

/** Executions Temporal actually started as the rollout's children (every run of `rollout/<id>` is their parent by id). */
export async function childrenStarted(client: Client, parentWorkflowId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const info of client.workflow.list({ query: `ParentWorkflowId = '${parentWorkflowId}'` })) ids.push(info.workflowId);
  return ids;
}
