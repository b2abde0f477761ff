import type { Pool } from '../db/pool.js';
import { createDiagnosticsActivities } from './diagnostics.js';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export interface ActivityDeps {
  pool: Pool;
  clock?: Clock;
}

/** Builds every activity with its dependencies wired once; workflows import only the type. */
export function createActivities(deps: ActivityDeps) {
  const clock = deps.clock ?? systemClock;
  return {
    ...createDiagnosticsActivities({ pool: deps.pool, clock }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
