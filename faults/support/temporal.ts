import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { generatePayloadKey, parsePayloadKeys, PayloadEncryptionCodec, tenureDataConverter } from '../../core/payload-codec.js';
import { taskQueueName, taskQueuePrefixInterceptor } from '../../core/temporal.js';
import type { Logger } from '../../runtime/logger.js';
import { freePort } from '../../runtime/ports.js';
import { startTemporalDevServer, type DevServer } from '../../runtime/temporal-dev-server.js';
import { bundleWorkflows } from '../../worker/worker.js';
import { restartService, type FaultRun, type Progress } from './run.js';
import type { Timeline } from './timeline.js';

/**
 * The Temporal dev server a run owns, persisted to a SQLite file so it can be stopped and started
 * again on the same port and file with every workflow, timer and task still there, as a
 * self-hosted cluster comes back from a crash.
 */
export class OwnedTemporal {
  private server: DevServer | undefined;
  restarts = 0;
  constructor(
    private readonly options: {
      namespace: string;
      port: number;
      dbFile: string;
      sqlitePragmas: readonly string[];
      logger: Logger;
      cliPath: string | undefined;
    },
    private readonly timeline: Timeline,
    private readonly progress: Progress,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.options.port}`;
  }

  async start(): Promise<void> {
    this.server = await startTemporalDevServer({ ...this.options });
  }

  /**
   * Stops the server with `signal` (SIGKILL: no shutdown at all; SIGTERM: its own graceful one),
   * leaves it down for `downMs`, then starts it again on the same port and database file.
   */
  async restart(downMs: number, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    await restartService(
      { name: 'Temporal', down: () => this.timeline.add('temporal_down', signal), up: () => this.timeline.add('temporal_up') },
      { stop: () => this.stop(signal), start: () => this.start(), downMs },
      this.progress,
    );
    this.restarts++;
  }

  async stop(signal: 'SIGKILL' | 'SIGTERM' = 'SIGTERM'): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    if (signal === 'SIGKILL' && server.process.pid !== undefined && server.process.alive()) {
      process.kill(server.process.pid, 'SIGKILL');
      await server.process.exited;
    } else {
      await server.stop();
    }
  }
}

export interface RunTemporal {
  address: string;
  namespace: string;
  /** This run's own task-queue prefix: its client starts on, and its workers poll, only prefixed queues. */
  taskQueuePrefix: string;
  client: Client;
  /** The run's payload key (TEMPORAL_PAYLOAD_KEYS), shared by its client and its worker processes. */
  payloadKeys: string;
  /** The workflow bundle, built once: each worker restart then starts in about a second instead of re-bundling. */
  bundlePath: string;
  /** The server the run owns and may restart; undefined with TEMPORAL_ADDRESS (someone else's server). */
  server: OwnedTemporal | undefined;
}

/** TEMPORAL_ADDRESS, or a dev server the run owns (persisted in `dir`); a client; the workflow bundle in `dir`. */
export async function startRunTemporal(run: FaultRun, dir: string, timeline: Timeline): Promise<RunTemporal> {
  let address = process.env.TEMPORAL_ADDRESS;
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  let server: OwnedTemporal | undefined;
  if (!address) {
    run.progress('starting Temporal dev server (persisted to a file, so it can be restarted)');
    server = new OwnedTemporal(
      {
        namespace,
        port: await freePort(),
        dbFile: path.join(dir, 'temporal', 'temporal.db'),
        // A restart kills the process, never the machine: commits need not wait for the disk.
        sqlitePragmas: ['journal_mode=WAL', 'synchronous=NORMAL'],
        logger: run.logger,
        cliPath: process.env.TEMPORAL_CLI_PATH,
      },
      timeline,
      run.progress,
    );
    const owned = server;
    run.cleanup.push({ name: 'Temporal dev server', step: () => owned.stop() });
    await server.start();
    address = server.address;
  }
  const connection = await Connection.connect({ address, connectTimeout: '10 seconds' });
  run.cleanup.push({ name: 'Temporal client', step: () => connection.close() });
  const taskQueuePrefix = `faults-${randomBytes(4).toString('hex')}-`;
  run.progress(`task queues: ${taskQueuePrefix}<domain> on ${address}`);
  const payloadKeys = generatePayloadKey('faults');
  const client = new Client({
    connection,
    namespace,
    dataConverter: tenureDataConverter(new PayloadEncryptionCodec(parsePayloadKeys(payloadKeys))),
    interceptors: { workflow: [taskQueuePrefixInterceptor(taskQueuePrefix)] },
  });
  run.progress('bundling workflows');
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  await writeFile(bundlePath, await bundleWorkflows());
  return { address, namespace, taskQueuePrefix, client, payloadKeys, bundlePath, server };
}

/**
 * Waits until none of `workflowIds` is running, or `deadline` (epoch ms), or `stop()`. Short
 * describe calls rather than long-polling result(), so nothing is left polling when the connection
 * closes. Returns those still open and how each closed one closed.
 */
export async function waitWorkflowsClosed(
  client: Client,
  workflowIds: string[],
  deadline: number,
  stop: () => boolean,
): Promise<{ open: string[]; closedAs: Map<string, string> }> {
  let open = workflowIds;
  const closedAs = new Map<string, string>();
  for (;;) {
    const statuses = await Promise.all(
      open.map((id) =>
        client.workflow
          .getHandle(id)
          .describe()
          .then(
            (d) => d.status.name,
            () => 'UNKNOWN',
          ),
      ),
    );
    statuses.forEach((status, i) => {
      if (status !== 'RUNNING' && status !== 'UNKNOWN') closedAs.set(open[i]!, status);
    });
    open = open.filter((id) => !closedAs.has(id));
    if (open.length === 0 || stop() || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return { open, closedAs };
}

// temporal.api.enums.v1 wire values (the proto package is not a direct dependency).
const TASK_QUEUE_KIND_NORMAL = 1;
const TASK_QUEUE_TYPES = { workflow: 1, activity: 2 } as const;

/** Calls `probe` every 200 ms until it answers true: ms since `since`, or null once `deadline` (epoch ms) passed. */
async function msUntil(probe: () => Promise<boolean>, since: number, deadline: number): Promise<number | null> {
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return Date.now() - since;
    await delay(200);
  }
  return null;
}

/**
 * After the server came back, how long until the run's own client (the one the driver calls
 * through) answered, and until the worker process `workerPid` polled each of `queues` again,
 * workflow and activity tasks both: evidence that they rode through rather than being replaced.
 */
export async function measureReconnection(
  temporal: RunTemporal,
  workerPid: number,
  queues: readonly string[],
  timeoutMs = 60_000,
): Promise<{ clientMs: number | null; workerMs: number | null }> {
  const since = Date.now();
  const deadline = since + timeoutMs;
  const service = temporal.client.workflowService;
  const clientMs = await msUntil(async () => Boolean(await service.getSystemInfo({})), since, deadline);
  const identity = `${workerPid}@${os.hostname()}`;
  const polled = async (name: string, taskQueueType: number) => {
    const { pollers } = await service.describeTaskQueue({
      namespace: temporal.namespace,
      taskQueue: { name, kind: TASK_QUEUE_KIND_NORMAL },
      taskQueueType,
    });
    return (pollers ?? []).some((p) => p.identity === identity);
  };
  const workerMs = await msUntil(
    async () => {
      for (const queue of queues) {
        const name = taskQueueName(temporal.taskQueuePrefix, queue);
        if (!(await polled(name, TASK_QUEUE_TYPES.workflow)) || !(await polled(name, TASK_QUEUE_TYPES.activity))) return false;
      }
      return true;
    },
    since,
    deadline,
  );
  return { clientMs, workerMs };
}
