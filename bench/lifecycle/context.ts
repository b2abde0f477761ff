import type { Client } from '@temporalio/client';
import type { Pool } from '../../db/pool.js';
import type { CpuMs } from '../cpu.js';
import type { LifecycleBenchOptions } from './options.js';
import type { Person } from './people.js';
import type { BenchTenant } from './setup.js';

/** What both sides of the lifecycle bench share. */
export interface LifecycleBench {
  options: LifecycleBenchOptions;
  client: Client;
  abort: AbortController;
  apiPool: Pool;
  /** The scratch database as its owner, for measurements across tenants. */
  owner: Pool;
  tenants: BenchTenant[];
  tenantIds: string[];
  /** Each import job's concurrency, per tenant: all tenants import at once, `--concurrency` rows in flight in all. */
  perTenantConcurrency: number;
  /** Person workflows started, to end on a Temporal server that outlives the run. */
  started: string[];
  /** Starts counting CPU; the returned function gives the ms spent since. */
  meter: () => () => CpuMs;
  progress: (message: string) => void;
}

export interface PhaseResult {
  /** Import call → the last person done. */
  seconds: number;
  /** Row submitted (registered) → step done, per person, ascending. */
  latenciesMs: number[];
  /** CPU ms spent during the phase (not per event). */
  cpu: CpuMs;
}

/** The people of `list`, by tenant index. */
export const byTenant = (bench: LifecycleBench, list: Person[]) => bench.tenants.map((_, t) => list.filter((p) => p.tenant === t));

/** Bound on one import (or the floor's submissions and steps): an Update nobody answers waits forever. */
export const PHASE_TIMEOUT_MS = 600_000;

export const ascending = (values: number[]) => values.sort((a, b) => a - b);
