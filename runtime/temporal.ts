import { readFile } from 'node:fs/promises';
import {
  Client,
  Connection,
  defaultGrpcRetryOptions,
  makeGrpcRetryInterceptor,
  type ConnectionOptions,
  type WorkflowClientInterceptor,
} from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import type { Config } from '../core/config.js';
import { taskQueuePrefixInterceptor } from '../core/temporal.js';

type TlsSettings = NonNullable<ConnectionOptions['tls']>;

/** TLS for Temporal Cloud or a self-hosted cluster: mTLS from files, or plain TLS with an API key. */
async function tlsSettings(config: Config): Promise<TlsSettings | undefined> {
  const wantsTls = config.TEMPORAL_TLS || Boolean(config.TEMPORAL_TLS_CERT_PATH) || Boolean(config.TEMPORAL_API_KEY);
  if (!wantsTls) return undefined;
  const tls: TlsSettings = {};
  if (config.TEMPORAL_TLS_SERVER_NAME) tls.serverNameOverride = config.TEMPORAL_TLS_SERVER_NAME;
  if (config.TEMPORAL_TLS_CA_PATH) tls.serverRootCACertificate = await readFile(config.TEMPORAL_TLS_CA_PATH);
  if (config.TEMPORAL_TLS_CERT_PATH && config.TEMPORAL_TLS_KEY_PATH) {
    tls.clientCertPair = {
      crt: await readFile(config.TEMPORAL_TLS_CERT_PATH),
      key: await readFile(config.TEMPORAL_TLS_KEY_PATH),
    };
  }
  return tls;
}

export interface TemporalTarget {
  address: string;
  namespace: string;
}

async function commonOptions(config: Config, address: string) {
  const tls = await tlsSettings(config);
  return {
    address,
    ...(tls ? { tls } : {}),
    ...(config.TEMPORAL_API_KEY ? { apiKey: config.TEMPORAL_API_KEY } : {}),
  };
}

/**
 * The client connection's options. `forRequests`: the API's client, whose calls a person waits on.
 * A call the cluster did not answer (unreachable, overloaded) is then tried
 * `API_TEMPORAL_MAX_ATTEMPTS` times with the SDK's backoff (5: about 1.8 s of waiting) instead of
 * the SDK's 10 (about 20 s), and the API answers 503 with Retry-After rather than hold the request.
 * Other clients (startup's schedule sync, the sweep schedule hook, benches) keep the SDK's budget,
 * which rides out a cluster that is still starting. Calls the cluster refuses are never retried.
 */
export async function clientConnectionOptions(
  config: Config,
  address: string,
  { forRequests = false }: { forRequests?: boolean } = {},
): Promise<ConnectionOptions> {
  return {
    ...(await commonOptions(config, address)),
    connectTimeout: '10 seconds',
    ...(forRequests
      ? { interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: config.API_TEMPORAL_MAX_ATTEMPTS }))] }
      : {}),
  };
}

/**
 * A client whose workflow starts name a contract's queue (the deployment's prefix is applied for
 * them) and whose data goes through `dataConverter` (tenureDataConverter: encrypted).
 * `interceptors` go first (tracing: runtime/tracing.ts).
 */
export async function connectClient(
  config: Config,
  target: TemporalTarget,
  dataConverter: DataConverter,
  interceptors: WorkflowClientInterceptor[] = [],
  options: { forRequests?: boolean } = {},
): Promise<Client> {
  const connection = await Connection.connect(await clientConnectionOptions(config, target.address, options));
  return new Client({
    connection,
    namespace: target.namespace,
    dataConverter,
    interceptors: { workflow: [...interceptors, taskQueuePrefixInterceptor(config.TEMPORAL_TASK_QUEUE_PREFIX)] },
  });
}

export async function connectWorker(config: Config, target: TemporalTarget): Promise<NativeConnection> {
  const options: NativeConnectionOptions = await commonOptions(config, target.address);
  return NativeConnection.connect(options);
}
