import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { projectRoot } from '../runtime/paths.js';
import { freePort } from '../runtime/ports.js';

/** Log messages of `npm start` that mark where its time goes, in the order they appear. */
const MILESTONES = [
  'starting embedded PostgreSQL',
  'seeded the demo MSP',
  'starting Temporal dev server',
  'Temporal dev server ready',
  'workflow bundle is up to date',
  'bundled the workflows',
  'worker polling',
  'Tenure is running.',
] as const;

interface StartRun {
  /** From spawning `npm start` to its "Tenure is running." banner (API, worker, database and Temporal all up). */
  readyMs: number;
  /** When each milestone was first seen, in ms since the spawn. */
  milestones: Record<string, number>;
  consoleBuilt: boolean;
}

/**
 * Runs `npm start` exactly as a person would (embedded PostgreSQL and Temporal, the console check,
 * the demo seed), on free ports and a data folder of its own, until it prints its banner; then
 * stops it with SIGINT, as Ctrl-C would, so the next start finds the folder as a person leaves it.
 */
async function startOnce(dataDir: string, timeoutMs: number): Promise<StartRun> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TENURE_DATA_DIR: dataDir,
    PORT: String(await freePort()),
    EMBEDDED_POSTGRES_PORT: String(await freePort()),
    TEMPORAL_DEV_PORT: String(await freePort()),
    TEMPORAL_UI_PORT: String(await freePort()),
    LOG_LEVEL: 'info',
  };
  // `npm start` runs everything embedded only when these name nothing.
  delete env.DATABASE_URL;
  delete env.DATABASE_APP_URL;
  delete env.TEMPORAL_ADDRESS;
  const started = performance.now();
  const child = spawn('npm', ['start', '--silent'], { cwd: projectRoot(), env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const milestones: Record<string, number> = {};
  let consoleBuilt = false;
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`npm start was not ready within ${timeoutMs} ms:\n${output.slice(-4000)}`)),
        timeoutMs,
      );
      const seen = (chunk: Buffer) => {
        const text = chunk.toString();
        output += text;
        const at = performance.now() - started;
        if (text.includes('built the web console')) consoleBuilt = true;
        for (const milestone of MILESTONES)
          if (!(milestone in milestones) && output.includes(milestone)) milestones[milestone] = Math.round(at);
        if ('Tenure is running.' in milestones) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', seen);
      child.stderr.on('data', seen);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`npm start exited (${code}) before it was ready:\n${output.slice(-4000)}`));
      });
    });
  } finally {
    if (child.exitCode === null && child.pid) {
      process.kill(-child.pid, 'SIGINT');
      const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 30_000))]);
      if (!stopped) process.kill(-child.pid, 'SIGKILL');
    }
  }
  return { readyMs: milestones['Tenure is running.']!, milestones, consoleBuilt };
}

/**
 * `npm run bench -- startup [--warm N]`: how long `npm start` takes to be ready on a fresh data
 * folder, then on the same folder again (warm), N times.
 */
export async function runStartupBench(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { warm: { type: 'string', default: '3' }, timeout: { type: 'string', default: '300000' } },
  });
  const warmRuns = Number(values.warm);
  const timeoutMs = Number(values.timeout);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'tenure-startup-'));
  await chmod(dataDir, 0o755); // as root, embedded PostgreSQL runs as `postgres` and must reach its folder
  try {
    const fresh = await startOnce(dataDir, timeoutMs);
    process.stderr.write(`fresh: ready in ${(fresh.readyMs / 1000).toFixed(1)} s ${JSON.stringify(fresh.milestones)}\n`);
    const warm: StartRun[] = [];
    for (let i = 0; i < warmRuns; i++) {
      const run = await startOnce(dataDir, timeoutMs);
      warm.push(run);
      process.stderr.write(`warm ${i + 1}: ready in ${(run.readyMs / 1000).toFixed(1)} s ${JSON.stringify(run.milestones)}\n`);
    }
    const warmSorted = warm.map((r) => r.readyMs).sort((a, b) => a - b);
    const summary = {
      bench: 'startup',
      freshMs: fresh.readyMs,
      freshConsoleBuilt: fresh.consoleBuilt,
      warmMs: warmSorted.length ? warmSorted[Math.floor((warmSorted.length - 1) / 2)] : null,
      warmRunsMs: warm.map((r) => r.readyMs),
      freshMilestonesMs: fresh.milestones,
      warmMilestonesMs: warm.at(-1)?.milestones ?? null,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}
