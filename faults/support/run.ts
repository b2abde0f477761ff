import { setTimeout as delay } from 'node:timers/promises';
import { pino } from 'pino';
import type { Logger } from '../../runtime/logger.js';

export type Progress = (message: string) => void;

export interface FaultRun {
  /** Progress lines on stderr: stdout carries the summary only. */
  progress: Progress;
  /** Logs of the embedded services and of our own helpers, on stderr too. */
  logger: Logger;
  /** True once Ctrl-C or SIGTERM arrived; the scenario stops and cleans up. */
  readonly interrupted: boolean;
  /** Undone in reverse order by `finish`, each step on its own (a failed one is reported, the rest still run). */
  cleanup: { name: string; step: () => Promise<unknown> }[];
  finish(): Promise<void>;
}

/** What every fault run needs around it: progress and logs on stderr, interruption, ordered cleanup. */
export function faultRun(scenario: string): FaultRun {
  const progress: Progress = (message) => process.stderr.write(`[faults ${scenario}] ${message}\n`);
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    progress('interrupted: stopping and cleaning up');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const cleanup: FaultRun['cleanup'] = [];
  return {
    progress,
    logger: pino({ level: process.env.LOG_LEVEL ?? 'warn', base: { component: 'faults' } }, pino.destination(2)),
    get interrupted() {
      return interrupted;
    },
    cleanup,
    async finish() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      for (const { name, step } of cleanup.reverse()) {
        await step().catch((error: unknown) => progress(`cleanup of ${name} failed: ${(error as Error).message}`));
      }
    },
  };
}

export const random = (min: number, max: number) => min + Math.random() * (max - min);

export function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}

export function zeroOrMore(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be 0 or more, got ${value}`);
  return n;
}

/** A factor from 1 to 10 (1: unchanged), e.g. how much each kill's period grows. */
export function growthFactor(name: string, value: string): number {
  const n = Number(value);
  if (!(n >= 1 && n <= 10)) throw new Error(`--${name} must be a number from 1 to 10, got ${value}`);
  return n;
}

/** `5-8` (seconds) as [min, max] in ms. */
export function range(name: string, value: string): [number, number] {
  const match = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(value);
  const [min, max] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!(min > 0 && max >= min)) throw new Error(`--${name} must look like 5-8 (seconds), got ${value}`);
  return [min * 1000, max * 1000];
}

/**
 * The down-and-up of a restart: `stop`, `downMs` of nothing, then `start` again (up to 5 attempts
 * a second apart: a port or a data file may still be held for a moment), with both ends on the
 * timeline as `<what>_down` / `<what>_up`.
 */
export async function restartService(
  what: { name: string; down: () => void; up: () => void },
  steps: { stop: () => Promise<void>; start: () => Promise<unknown>; downMs: number },
  progress: Progress,
): Promise<void> {
  what.down();
  await steps.stop();
  await delay(steps.downMs);
  for (let attempt = 1; ; attempt++) {
    try {
      await steps.start();
      break;
    } catch (error) {
      if (attempt >= 5) throw error;
      progress(`${what.name} did not come back (attempt ${attempt}): ${(error as Error).message}; retrying`);
      await delay(1000);
    }
  }
  what.up();
}
