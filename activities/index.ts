import type { Client } from '@temporalio/client';
import type { DirectoryConnector } from '../core/directory/connector.js';
import type { Pool } from '../db/pool.js';
import { createDiagnosticsActivities } from './diagnostics/activities.js';
import { createGrantActivities } from './grants/activities.js';
import { createLedgerActivities } from './directory/ledger.js';
import { createLifecycleActivities } from './lifecycle/activities.js';
import { createTenancyActivities } from './tenancy/policy-changes.js';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export interface ActivityDeps {
  pool: Pool;
  /** The tenant directory grants are applied to (the built-in PostgreSQL one by default). */
  directory: DirectoryConnector;
  clock?: Clock;
  /** Outgoing HTTP for webhooks; tests may observe it. */
  fetch?: typeof fetch;
  /** Reaches other workflows from activities (a leaver revoking the person's grants). */
  temporal?: Client;
}

/** Builds every activity with its dependencies wired once; workflows import only the type. */
export function createActivities(deps: ActivityDeps) {
  const clock = deps.clock ?? systemClock;
  return {
    ...createDiagnosticsActivities({ pool: deps.pool, clock }),
    ...createLedgerActivities({ pool: deps.pool, directory: deps.directory }),
    ...createGrantActivities({ pool: deps.pool, directory: deps.directory, clock, ...(deps.fetch ? { fetch: deps.fetch } : {}) }),
    ...createTenancyActivities({ pool: deps.pool, clock, ...(deps.fetch ? { fetch: deps.fetch } : {}) }),
    ...createLifecycleActivities({
      pool: deps.pool,
      directory: deps.directory,
      clock,
      ...(deps.temporal ? { temporal: deps.temporal } : {}),
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
