import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import type { TaskQueue } from '../../core/config.js';
import { projectRoot } from '../../runtime/paths.js';
import { freePort } from '../../runtime/ports.js';
import type { RunDatabase } from './postgres.js';
import type { Progress } from './run.js';
import type { RunTemporal } from './temporal.js';
import type { Timeline } from './timeline.js';

/** The environment `tenure worker` gets: the run's PostgreSQL and Temporal, the domains' queues to poll, the prebuilt bundle. */
export function workerEnv(db: RunDatabase, temporal: RunTemporal, taskQueues: readonly TaskQueue[]): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: db.url,
    DATABASE_APP_URL: db.appUrl,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    TEMPORAL_TASK_QUEUE_PREFIX: temporal.taskQueuePrefix,
    TEMPORAL_PAYLOAD_KEYS: temporal.payloadKeys,
    TEMPORAL_PAYLOAD_KEYS_FILE: '',
    WORKER_TASK_QUEUES: taskQueues.join(','),
    WORKFLOW_BUNDLE_PATH: temporal.bundlePath,
    WORKER_SHUTDOWN_GRACE_SECONDS: '2',
    // 'info' so the supervisor sees "worker polling"; only warnings and errors are shown.
    LOG_LEVEL: 'info',
  };
}

/**
 * Runs `tenure worker` as a child process, the way production runs it, and kills it with SIGKILL
 * on demand: no graceful shutdown, in-flight workflow and activity tasks are simply lost.
 * An exit it did not cause (e.g. the worker could not reach PostgreSQL at start) is restarted.
 */
export class WorkerSupervisor {
  private child: ChildProcess | undefined;
  private childExited: Promise<void> = Promise.resolve();
  /** Set while a start is under way, so concurrent callers never start a second worker. */
  private starting: Promise<void> | undefined;
  private readyIncarnation = 0;
  private stopping = false;
  incarnation = 0;
  kills = 0;
  unexpectedExits = 0;
  warnings = 0;
  readonly startupMs: number[] = [];

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly timeline: Timeline,
    private readonly progress: Progress,
    /** How progress lines and timeline details name it: `worker`, or e.g. `sweeper` for a second one. */
    private readonly name = 'worker',
  ) {}

  /** The timeline's detail for an incarnation: its number, prefixed by the name of a second supervised worker. */
  private detail(incarnation: number | string): string {
    return this.name === 'worker' ? String(incarnation) : `${this.name}:${incarnation}`;
  }

  /** The running worker's process id (its Temporal identity is `<pid>@<host>`), if one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  get ready(): boolean {
    return this.child !== undefined && this.readyIncarnation === this.incarnation;
  }

  /** Starts a worker unless one runs (or is starting) already. */
  ensureRunning(): Promise<void> {
    if (this.stopping || this.child) return Promise.resolve();
    this.starting ??= this.start().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async start(): Promise<void> {
    // A fresh metrics port each time, so a restart never waits for the old one to be released.
    const metricsPort = await freePort();
    if (this.stopping) return;
    const incarnation = ++this.incarnation;
    const spawnedAt = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'worker'], {
      cwd: projectRoot(),
      // Its log lines are read as JSON below, whatever LOG_FORMAT a developer's .env sets.
      env: { ...this.env, LOG_FORMAT: 'json', TEMPORAL_METRICS_BIND_ADDRESS: `127.0.0.1:${metricsPort}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      let entry: { level?: string; msg?: string; err?: { message?: string } } = {};
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        this.progress(`[${this.name} ${incarnation}] ${line.slice(0, 300)}`);
        return;
      }
      if (entry.msg === 'worker polling' && this.child === child) {
        this.readyIncarnation = incarnation;
        this.startupMs.push(Date.now() - spawnedAt);
        this.timeline.add('worker_ready', this.detail(incarnation));
      }
      if (entry.level === 'warn' || entry.level === 'error' || entry.level === 'fatal') {
        this.warnings++;
        // Activity retries while PostgreSQL is down are expected and many; show a sample.
        if (this.warnings <= 20 || entry.level !== 'warn') {
          this.progress(
            `[${this.name} ${incarnation} ${entry.level}] ${entry.msg ?? ''}${entry.err?.message ? `: ${entry.err.message}` : ''}`.slice(
              0,
              400,
            ),
          );
        }
      }
    });
    readline
      .createInterface({ input: child.stderr })
      .on('line', (line) => this.progress(`[${this.name} ${incarnation} stderr] ${line.slice(0, 300)}`));
    this.childExited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        resolve();
        if (this.child !== child) return; // we killed or stopped it
        // E.g. it could not reach PostgreSQL at start-up, as while PostgreSQL restarts.
        this.child = undefined;
        this.unexpectedExits++;
        this.timeline.add('worker_exited', `${this.detail(incarnation)}:${code ?? signal}`);
        this.progress(`${this.name} ${incarnation} exited by itself (${code ?? signal}); restarting it`);
        setTimeout(() => void this.ensureRunning(), 1000);
      });
    });
  }

  /** Resolves true once the current incarnation polls; false when that does not happen in time. */
  async waitReady(timeoutMs: number, abort: () => boolean): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ready) {
      if (Date.now() > deadline || abort()) return false;
      await delay(100);
    }
    return true;
  }

  /** SIGKILL: no graceful shutdown, in-flight workflow and activity tasks are simply lost. */
  async kill(): Promise<void> {
    await this.starting;
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.kill('SIGKILL');
    await this.childExited;
    this.kills++;
    this.timeline.add('worker_killed', this.detail(this.incarnation));
  }

  /** Graceful stop (SIGTERM, then SIGKILL after `graceMs`) at the end of the run. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    await this.starting;
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.childExited;
    clearTimeout(timer);
  }
}
