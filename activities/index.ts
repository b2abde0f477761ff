import type { Client } from '@temporalio/client';
import { resolverOf, type DirectoryConnector, type DirectoryResolver } from '../core/directory/connector.js';
import type { Pool } from '../db/pool.js';
import { createCampaignActivities } from './campaigns/activities.js';
import { createCampaignFlowActivities } from './campaigns/flow.js';
import { createActionActivities } from './actions/activities.js';
import { createDiagnosticsActivities } from './diagnostics/activities.js';
import { createGrantActivities } from './grants/activities.js';
import { createLedgerActivities } from './directory/ledger.js';
import { createSweepActivities } from './directory/sweep.js';
import type { HrImportRowSubmitter } from '../core/lifecycle/contract.js';
import { createLifecycleActivities } from './lifecycle/activities.js';
import { createHrImportActivities } from './lifecycle/import.js';
import { createTemplateActivities } from './templates/activities.js';
import { createRolloutActivities } from './templates/rollouts.js';
import { createDriftActivities } from './templates/drift.js';
import { createCloneActivities } from './templates/clone.js';
import { createTemplateRollbackActivities } from './templates/rollback.js';
import { createTenancyActivities } from './tenancy/policy-changes.js';
import { systemResolver, type HostResolver, type WebhookTransport } from './tenancy/webhook-http.js';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export interface ActivityDeps {
  pool: Pool;
  /** The built-in directory; every tenant uses it unless `directories` is given. */
  directory: DirectoryConnector;
  /** Each tenant's own target (connectors/directory/registry.ts), resolved on every call. */
  directories?: DirectoryResolver;
  clock?: Clock;
  /** WEBHOOK_ALLOW_PRIVATE_NETWORKS: webhooks may reach non-public addresses (off when absent). */
  allowPrivateWebhooks?: boolean;
  /** How webhook host names are resolved (the system resolver when absent); tests map names. */
  resolveHost?: HostResolver;
  /** Reaches other workflows from activities (a leaver revoking the person's grants). */
  temporal?: Client;
  /** Submits an imported HR event row as the single-event use case does (the worker wires it); without it, imports fail loudly. */
  submitImportRow?: HrImportRowSubmitter;
  /** CAMPAIGN_REMEDIATION_CONCURRENCY: revocations this worker applies to targets at once (the contract's default when absent). */
  campaignRemediationConcurrency?: number;
}

/** Builds every activity with its dependencies wired once; workflows import only the type. */
export function createActivities(deps: ActivityDeps) {
  const clock = deps.clock ?? systemClock;
  const directories = resolverOf(deps);
  const webhooks: WebhookTransport = {
    allowPrivateNetworks: deps.allowPrivateWebhooks ?? false,
    resolve: deps.resolveHost ?? systemResolver,
  };
  return {
    ...createDiagnosticsActivities({ pool: deps.pool, clock }),
    ...createLedgerActivities({ pool: deps.pool, directories }),
    ...createSweepActivities({ pool: deps.pool, directories, clock }),
    ...createGrantActivities({ pool: deps.pool, directories, clock, webhooks }),
    ...createTenancyActivities({ pool: deps.pool, clock, webhooks }),
    ...createActionActivities({ pool: deps.pool, directories, clock }),
    ...createTemplateActivities({ pool: deps.pool, directories, clock, webhooks }),
    ...createRolloutActivities({ pool: deps.pool, clock }),
    ...createDriftActivities({ pool: deps.pool, directories, clock, webhooks }),
    ...createCloneActivities({ pool: deps.pool, directories, clock }),
    ...createTemplateRollbackActivities({ pool: deps.pool, directories, clock, webhooks }),
    ...createLifecycleActivities({
      pool: deps.pool,
      directories,
      clock,
      ...(deps.temporal ? { temporal: deps.temporal } : {}),
    }),
    ...createHrImportActivities({ pool: deps.pool, clock, ...(deps.submitImportRow ? { submit: deps.submitImportRow } : {}) }),
    ...createCampaignActivities({
      pool: deps.pool,
      directories,
      clock,
      webhooks,
      ...(deps.temporal ? { temporal: deps.temporal } : {}),
      ...(deps.campaignRemediationConcurrency ? { remediationConcurrency: deps.campaignRemediationConcurrency } : {}),
    }),
    ...createCampaignFlowActivities({
      pool: deps.pool,
      directories,
      clock,
      webhooks,
      ...(deps.temporal ? { temporal: deps.temporal } : {}),
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
