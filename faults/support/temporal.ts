import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { generatePayloadKey, parsePayloadKeys, PayloadEncryptionCodec, tenureDataConverter } from '../../core/payload-codec.js';
import { taskQueuePrefixInterceptor } from '../../core/temporal.js';
import { startTemporalDevServer } from '../../runtime/temporal-dev-server.js';
import { bundleWorkflows } from '../../worker/worker.js';
import type { FaultRun } from './run.js';

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
}

/** TEMPORAL_ADDRESS, or an in-memory dev server the run owns; a client; the workflow bundle in `dir`. */
export async function startRunTemporal(run: FaultRun, dir: string): Promise<RunTemporal> {
  let address = process.env.TEMPORAL_ADDRESS;
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  if (!address) {
    run.progress('starting Temporal dev server (in memory)');
    const devServer = await startTemporalDevServer({ namespace, port: 0, logger: run.logger, cliPath: process.env.TEMPORAL_CLI_PATH });
    run.cleanup.push({ name: 'Temporal dev server', step: () => devServer.stop() });
    address = devServer.address;
  }
  const connection = await Connection.connect({ address, connectTimeout: '10 seconds' });
  run.cleanup.push({ name: 'Temporal client', step: () => connection.close() });
  const taskQueuePrefix = `faults-${randomBytes(4).toString('hex')}-`;
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
  return { address, namespace, taskQueuePrefix, client, payloadKeys, bundlePath };
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
