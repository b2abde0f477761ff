import { setTimeout as delay } from 'node:timers/promises';
import type { TaskQueue } from '../../core/config.js';
import { AppError } from '../../core/errors.js';
import type { OwnedPostgres } from './postgres.js';
import { random, type Progress } from './run.js';
import { measureReconnection, type RunTemporal } from './temporal.js';
import type { WorkerSupervisor } from './worker-supervisor.js';

/**
 * SIGKILLs the worker every `minMs`–`maxMs` of it being up, and starts a new one, until `over()`.
 * Each kill multiplies the next period by `growth` (1: the same period throughout). While
 * `paused()` holds (another fault is being observed) it waits, and the worker then gets a whole
 * period of uptime again: two faults never land back to back.
 */
export async function killWorkerRepeatedly(
  supervisor: WorkerSupervisor,
  every: [number, number],
  over: () => boolean,
  paused: () => boolean = () => false,
  growth = 1,
): Promise<void> {
  let scale = 1;
  while (!over()) {
    await supervisor.waitReady(60_000, over);
    const at = Date.now() + random(every[0] * scale, every[1] * scale);
    while (Date.now() < at && !paused() && !over()) await delay(100);
    if (over()) break;
    if (paused()) {
      while (paused() && !over()) await delay(100);
      continue;
    }
    await supervisor.kill();
    await supervisor.ensureRunning();
    scale *= growth;
  }
}

/** `times` moments evenly spaced over [from, to] (epoch ms), shifted by `phase` of a gap (0–1), awaited one by one. */
async function evenly(
  schedule: { times: number; from: number; to: number; phase?: number },
  over: () => boolean,
  step: (i: number) => Promise<void>,
): Promise<void> {
  const { times, from, to, phase = 0 } = schedule;
  for (let i = 1; i <= times; i++) {
    const at = from + ((to - from) * (i - phase)) / (times + 1);
    while (Date.now() < at && !over()) await delay(200);
    if (over()) break;
    await step(i);
  }
}

/** Restarts PostgreSQL `times` times, evenly spaced over [from, to] (epoch ms), each down for 1–3 s; stops early at `over()`. */
export async function restartPostgresEvenly(
  postgres: OwnedPostgres,
  schedule: { times: number; from: number; to: number },
  over: () => boolean,
  progress: Progress,
): Promise<void> {
  await evenly(schedule, over, async (i) => {
    progress(`restarting PostgreSQL (${i}/${schedule.times})`);
    await postgres.restart(random(1000, 3000));
    progress(`PostgreSQL is back (${i}/${schedule.times})`);
  });
}

/** One restart of the Temporal server and whether the run's client and the same worker process came back to it. */
export interface TemporalRestart {
  signal: 'SIGKILL' | 'SIGTERM';
  downMs: number;
  /** Server back → the run's client answered; null: not within a minute. */
  clientMs: number | null;
  /** Server back → the worker process that polled before polls every queue again; null: not within a minute. */
  workerMs: number | null;
  /** The worker rode through: the same process polls again, and none exited by itself meanwhile. */
  rodeThrough: boolean;
}

/**
 * Restarts the run's own Temporal server `times` times, between the PostgreSQL restarts
 * (half a gap earlier), alternately by SIGKILL and SIGTERM, each down for 1–3 s before it starts
 * again on the same port and database file. Worker kills pause meanwhile (`pause`), so what is
 * measured is whether the worker that was polling rides through the outage on its own.
 */
export async function restartTemporalEvenly(
  temporal: RunTemporal,
  supervisor: WorkerSupervisor,
  taskQueues: readonly TaskQueue[],
  schedule: { times: number; from: number; to: number },
  over: () => boolean,
  pause: (paused: boolean) => void,
  progress: Progress,
): Promise<TemporalRestart[]> {
  const server = temporal.server;
  if (!server) throw new Error('Temporal restarts need a server the run owns (unset TEMPORAL_ADDRESS)');
  const restarts: TemporalRestart[] = [];
  await evenly({ ...schedule, phase: 0.5 }, over, async (i) => {
    pause(true);
    try {
      await supervisor.waitReady(60_000, over);
      const pid = supervisor.pid;
      const { incarnation, unexpectedExits } = supervisor;
      const signal = i % 2 === 1 ? 'SIGKILL' : 'SIGTERM';
      const downMs = Math.round(random(1000, 3000));
      progress(`restarting Temporal by ${signal} (${i}/${schedule.times}), down ${downMs} ms`);
      await server.restart(downMs, signal);
      const { clientMs, workerMs } =
        pid === undefined ? { clientMs: null, workerMs: null } : await measureReconnection(temporal, pid, taskQueues);
      const rodeThrough = workerMs !== null && supervisor.incarnation === incarnation && supervisor.unexpectedExits === unexpectedExits;
      restarts.push({ signal, downMs, clientMs, workerMs, rodeThrough });
      progress(
        `Temporal is back (${i}/${schedule.times}): client answered after ${clientMs ?? 'never'} ms, ` +
          `worker ${incarnation} polling again after ${workerMs ?? 'never'} ms${rodeThrough ? '' : ' — it did NOT ride through'}`,
      );
    } finally {
      pause(false);
    }
  });
  return restarts;
}

/**
 * Calls `fn` until it succeeds, through worker and database outages; an error `isAnswer` says is
 * the system's answer (a 4xx) is thrown at once, and so is any error once `stop()` holds.
 */
export async function retryThroughOutages<T>(
  fn: () => Promise<T>,
  options: { isAnswer: (error: unknown) => boolean; stop: () => boolean; onRetry: () => void },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (options.isAnswer(error)) throw error;
      if (options.stop()) throw error;
      options.onRetry();
      await delay(Math.min(2000, 250 * attempt));
    }
  }
}

/**
 * The driver's side of a run that calls use cases through outages: `retrying(fn)` retries `fn`
 * until the deadline (or an interruption), throwing the system's own 4xx answers at once;
 * `retries()` counts the retries so far, for the summary.
 */
export function outageDriver(stop: () => boolean) {
  let retries = 0;
  return {
    stop,
    retries: () => retries,
    retrying: <T>(fn: () => Promise<T>) =>
      retryThroughOutages(fn, { isAnswer: (error) => error instanceof AppError && error.status < 500, stop, onRetry: () => retries++ }),
  };
}

/**
 * A phase's faults. The first land as it begins, so even a small run has them: the worker is
 * SIGKILLed at once and PostgreSQL restarted while its replacement starts (nothing of the phase
 * can finish meanwhile); then the worker is killed every `killEvery` of uptime until the phase is
 * done, each period `killGrowth` times the one before. Growth keeps kills landing through the
 * whole phase and still lets it finish on a busy machine, where a restarted worker spends a short
 * period catching up (starting, replaying, waiting out the killed attempts' timeouts) and a fixed
 * period could end each time before it did any new work.
 */
export async function faultsDuring(
  done: () => boolean,
  options: { killEvery: [number, number]; postgresRestarts: number; killGrowth?: number },
  parts: { supervisor: WorkerSupervisor; postgres: OwnedPostgres },
  progress: (message: string) => void,
): Promise<{ workerKills: number; postgresRestarts: number }> {
  const kills = parts.supervisor.kills;
  const restarts = parts.postgres.restarts;
  await parts.supervisor.kill();
  await parts.supervisor.ensureRunning();
  const from = Date.now();
  await Promise.all([
    killWorkerRepeatedly(parts.supervisor, options.killEvery, done, undefined, options.killGrowth),
    restartPostgresEvenly(
      parts.postgres,
      { times: options.postgresRestarts, from, to: from + 2000 * options.postgresRestarts },
      done,
      progress,
    ),
  ]);
  return { workerKills: parts.supervisor.kills - kills, postgresRestarts: parts.postgres.restarts - restarts };
}
