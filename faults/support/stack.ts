import type { TaskQueue } from '../../core/config.js';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startRunDatabase, type RunDatabase } from './postgres.js';
import type { FaultRun } from './run.js';
import { startRunTemporal, type RunTemporal } from './temporal.js';
import type { Timeline } from './timeline.js';
import { WorkerSupervisor, workerEnv } from './worker-supervisor.js';

export interface RunStack {
  /** A temporary folder for the run's files, removed at cleanup. */
  dir: string;
  db: RunDatabase;
  temporal: RunTemporal;
}

/** What a fault run owns: a temporary folder, its own PostgreSQL and Temporal (both restartable) and the workflow bundle. */
export async function startRunStack(run: FaultRun, timeline: Timeline): Promise<RunStack> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-faults-'));
  run.cleanup.push({ name: 'temp dir', step: () => rm(dir, { recursive: true, force: true }) });
  // As root, PostgreSQL runs as the `postgres` user, which must be able to enter this folder.
  await chmod(dir, 0o755);
  const db = await startRunDatabase(run, path.join(dir, 'postgres'), timeline);
  const temporal = await startRunTemporal(run, dir, timeline);
  return { dir, db, temporal };
}

/**
 * `tenure worker` as a supervised child process polling the domains' `taskQueues`, polling before
 * this returns; `settings` are added to its environment (e.g. the secrets tenants' targets name).
 */
export async function startSupervisedWorker(
  run: FaultRun,
  stack: RunStack,
  taskQueues: readonly TaskQueue[],
  timeline: Timeline,
  settings: Record<string, string> = {},
  name = 'worker',
): Promise<WorkerSupervisor> {
  const env = { ...workerEnv(stack.db, stack.temporal, taskQueues), ...settings };
  const supervisor = new WorkerSupervisor(env, timeline, run.progress, name);
  run.cleanup.push({ name, step: () => supervisor.stop() });
  run.progress(`starting the ${name}`);
  await supervisor.ensureRunning();
  if (!(await supervisor.waitReady(120_000, () => run.interrupted))) throw new Error(`the ${name} did not start polling within 2 minutes`);
  run.progress(`${name} polling after ${supervisor.startupMs[0]} ms (${taskQueues.join(', ')})`);
  return supervisor;
}
