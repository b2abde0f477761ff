import { setTimeout as delay } from 'node:timers/promises';
import type { OwnedPostgres } from './postgres.js';
import { random, type Progress } from './run.js';
import type { WorkerSupervisor } from './worker-supervisor.js';

/** SIGKILLs the worker every `minMs`–`maxMs` of it being up, and starts a new one, until `over()`. */
export async function killWorkerRepeatedly(supervisor: WorkerSupervisor, every: [number, number], over: () => boolean): Promise<void> {
  while (!over()) {
    await supervisor.waitReady(60_000, over);
    const at = Date.now() + random(every[0], every[1]);
    while (Date.now() < at && !over()) await delay(100);
    if (over()) break;
    await supervisor.kill();
    await supervisor.ensureRunning();
  }
}

/** Restarts PostgreSQL `times` times, evenly spaced over [from, to] (epoch ms), each down for 1–3 s; stops early at `over()`. */
export async function restartPostgresEvenly(
  postgres: OwnedPostgres,
  schedule: { times: number; from: number; to: number },
  over: () => boolean,
  progress: Progress,
): Promise<void> {
  const { times, from, to } = schedule;
  for (let i = 1; i <= times; i++) {
    const at = from + ((to - from) * i) / (times + 1);
    while (Date.now() < at && !over()) await delay(200);
    if (over()) break;
    progress(`restarting PostgreSQL (${i}/${times})`);
    await postgres.restart(random(1000, 3000));
    progress(`PostgreSQL is back (${i}/${times})`);
  }
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
