import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from './logger.js';

export interface ManagedProcess {
  readonly pid: number | undefined;
  alive(): boolean;
  /** Asks it to stop (`stopSignal`), then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop: (graceMs?: number) => Promise<void>;
  /** The exit code; null when it could not be started or was killed by a signal. */
  readonly exited: Promise<number | null>;
  /**
   * Why it could not start or stopped, in one line, for an error message: the spawn error, else
   * its last line that reads like an error, else its last line, else its exit code.
   */
  problem(): string;
}

export interface SpawnOptions {
  /** Run as this account (PostgreSQL refuses to run as root). */
  uid?: number;
  gid?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** PostgreSQL shuts down fast on SIGINT and waits for every client on SIGTERM. */
  stopSignal?: NodeJS.Signals;
}

const KEPT_LINES = 20;
const LOOKS_LIKE_AN_ERROR = /\b(FATAL|PANIC|ERROR|error|fatal|failed|denied|refused|in use)\b/;

/**
 * Spawns a helper process whose output goes to our logger at debug level, and which is stopped
 * with us rather than left orphaned. A spawn failure (missing or unreachable binary) is not an
 * 'error' event left unhandled: it ends `exited` with null and is told by `problem()`.
 */
export function spawnManaged(command: string, args: string[], logger: Logger, label: string, options: SpawnOptions = {}): ManagedProcess {
  const { stopSignal = 'SIGTERM', ...spawnOptions } = options;
  const child: ChildProcess = spawn(command, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
  let running = true;
  let spawnError: Error | undefined;
  let exitCode: number | null = null;
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running = false;
      exitCode = code;
      // Its last output may still be in the pipes; 'close' follows once they are drained, unless a
      // process it left behind still holds them.
      const drained = setTimeout(() => resolve(code), 1000);
      child.once('close', () => {
        clearTimeout(drained);
        resolve(code);
      });
    });
    child.once('error', (error) => {
      running = false;
      spawnError = error;
      logger.debug({ err: error, process: label }, `${label} could not be started`);
      resolve(null);
    });
  });
  // Should we end without stopping it (a crash, a forced exit), it must not outlive us.
  const stopWithUs = () => child.kill(stopSignal);
  process.on('exit', stopWithUs);
  void exited.then(() => process.off('exit', stopWithUs));
  const forward = (chunk: Buffer) => {
    for (const raw of chunk.toString('utf8').split('\n')) {
      const line = raw.trim();
      if (!line) continue;
      logger.debug({ process: label }, line);
      lines.push(line);
      if (lines.length > KEPT_LINES) lines.shift();
    }
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  return {
    pid: child.pid,
    alive: () => running,
    exited,
    problem() {
      if (spawnError) return `${command} could not be run (${(spawnError as NodeJS.ErrnoException).code ?? spawnError.message})`;
      const line = [...lines].reverse().find((l) => LOOKS_LIKE_AN_ERROR.test(l)) ?? lines.at(-1);
      if (line) return line;
      return running ? `${label} is still running` : `${label} exited with code ${exitCode}`;
    },
    async stop(graceMs = 10_000) {
      if (!running) return;
      child.kill(stopSignal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
