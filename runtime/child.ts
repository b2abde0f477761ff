import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from './logger.js';

export interface ManagedProcess {
  readonly pid: number | undefined;
  alive(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop: (graceMs?: number) => Promise<void>;
  readonly exited: Promise<number | null>;
}

/**
 * Spawns a helper process whose output goes to our logger at debug level (errors at warn),
 * and which is stopped with us rather than left orphaned.
 */
export function spawnManaged(command: string, args: string[], logger: Logger, label: string): ManagedProcess {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let running = true;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running = false;
      resolve(code);
    });
    child.once('error', (error) => {
      running = false;
      logger.error({ err: error, process: label }, `${label} could not be started`);
      resolve(null);
    });
  });
  const forward = (level: 'debug' | 'warn') => (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) logger[level]({ process: label }, line.trim());
    }
  };
  child.stdout?.on('data', forward('debug'));
  child.stderr?.on('data', forward('debug'));
  return {
    pid: child.pid,
    alive: () => running,
    exited,
    async stop(graceMs = 10_000) {
      if (!running) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
