import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { TENANT_ID_SEARCH_ATTRIBUTE } from '../core/temporal.js';
import { spawnManaged, type ManagedProcess } from './child.js';
import { findTemporalCli } from './find-binary.js';
import type { Logger } from './logger.js';
import { freePort, waitForPort } from './ports.js';

export interface DevServerOptions {
  cliPath?: string;
  namespace: string;
  /** 0 picks a free port. */
  port: number;
  /** 0 picks a free port; undefined runs without the Web UI. */
  uiPort?: number;
  /** Persist to this SQLite file; undefined keeps everything in memory. */
  dbFile?: string;
  /**
   * SQLite pragmas for the file, as `name=value`. `journal_mode=WAL` with `synchronous=NORMAL`
   * keeps every commit across a crash of the server process (not of the machine) at about the
   * in-memory speed; the defaults sync every commit, about 3x slower.
   */
  sqlitePragmas?: readonly string[];
  logger: Logger;
  startTimeoutMs?: number;
}

export interface DevServer {
  address: string;
  uiUrl: string | undefined;
  process: ManagedProcess;
  stop: () => Promise<void>;
}

/** Runs `temporal server start-dev` with the TenantId search attribute registered. */
export async function startTemporalDevServer(options: DevServerOptions): Promise<DevServer> {
  const binary = findTemporalCli(options.cliPath);
  const host = '127.0.0.1';
  const port = options.port || (await freePort());
  const args = [
    'server',
    'start-dev',
    '--ip',
    host,
    '--port',
    String(port),
    '--http-port',
    String(await freePort()),
    '--metrics-port',
    String(await freePort()),
    '--namespace',
    options.namespace,
    '--search-attribute',
    `${TENANT_ID_SEARCH_ATTRIBUTE}=Keyword`,
    '--log-level',
    'warn',
  ];
  let uiUrl: string | undefined;
  if (options.uiPort === undefined) {
    args.push('--headless');
  } else {
    const uiPort = options.uiPort || (await freePort());
    args.push('--ui-port', String(uiPort));
    uiUrl = `http://${host}:${uiPort}`;
  }
  if (options.dbFile) {
    await mkdir(path.dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
    for (const pragma of options.sqlitePragmas ?? []) args.push('--sqlite-pragma', pragma);
  }
  options.logger.debug({ binary, args }, 'starting Temporal dev server');
  // The dev server has OpenTelemetry of its own that reads the same OTEL_* variables (and refuses
  // exporters it lacks, such as `console`): Tenure's tracing settings are not meant for it.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('OTEL_')));
  const child = spawnManaged(binary, args, options.logger, 'temporal', { env });
  try {
    await waitForPort(host, port, options.startTimeoutMs ?? 60_000, () => child.alive());
    await waitForNamespace(`${host}:${port}`, options.namespace, options.startTimeoutMs ?? 60_000);
  } catch (error) {
    const why = child.alive() ? (error as Error).message : child.problem();
    await child.stop();
    throw new Error(
      `The Temporal dev server (${binary}) did not start on ${host}:${port}: ${why}. ` +
        'Is the port in use by another process? Set TEMPORAL_DEV_PORT to another port, or TEMPORAL_ADDRESS to use a running server.',
      { cause: error },
    );
  }
  return { address: `${host}:${port}`, uiUrl, process: child, stop: () => child.stop() };
}

/** The port opens before the namespace and search attributes are registered; wait for both. */
async function waitForNamespace(address: string, namespace: string, timeoutMs: number): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: '10 seconds' });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      try {
        const described = await connection.operatorService.listSearchAttributes({ namespace });
        if (described.customAttributes?.[TENANT_ID_SEARCH_ATTRIBUTE] !== undefined) return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
      if (Date.now() > deadline) throw new Error(`namespace ${namespace} has no ${TENANT_ID_SEARCH_ATTRIBUTE} search attribute`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await connection.close();
  }
}
