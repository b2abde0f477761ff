import { z } from 'zod';
import { CAMPAIGNS_TASK_QUEUE, DEFAULT_REMEDIATION_CONCURRENCY } from './campaigns/contract.js';
import { ACTIONS_TASK_QUEUE } from './actions/contract.js';
import { DIAGNOSTICS_TASK_QUEUE } from './diagnostics/contract.js';
import { DIRECTORY_TASK_QUEUE } from './directory/sweep.js';
import { GRANTS_TASK_QUEUE } from './grants/contract.js';
import { DEFAULT_IMPORT_MAX_ROWS, LIFECYCLE_TASK_QUEUE } from './lifecycle/contract.js';
import { TEMPLATES_TASK_QUEUE } from './templates/contract.js';
import { DEFAULT_DRIFT_INTERVAL_SECONDS } from './templates/drift.js';
import { TENANCY_TASK_QUEUE } from './tenancy/contract.js';
import { DEFAULT_TASK_QUEUE_PREFIX } from './temporal.js';
import { parsePayloadKeys, PayloadKeyError } from './payload-codec.js';

/** Every domain's task queue, as its contract declares it; a worker polls all of them unless WORKER_TASK_QUEUES says otherwise. */
export const TASK_QUEUES = [
  GRANTS_TASK_QUEUE,
  LIFECYCLE_TASK_QUEUE,
  TENANCY_TASK_QUEUE,
  DIAGNOSTICS_TASK_QUEUE,
  CAMPAIGNS_TASK_QUEUE,
  ACTIONS_TASK_QUEUE,
  DIRECTORY_TASK_QUEUE,
  TEMPLATES_TASK_QUEUE,
] as const;
export type TaskQueue = (typeof TASK_QUEUES)[number];

/**
 * Every setting Tenure reads from the environment, with its default.
 * The configuration table in docs/configuration.md and `.env.example` document the same keys;
 * `tests/config.test.ts` keeps the three in step.
 */
const bool = z.stringbool({ truthy: ['true', '1', 'yes', 'on'], falsy: ['false', '0', 'no', 'off', ''] });
const port = z.coerce.number().int().min(0).max(65535);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
const hostPort = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:7233')
  .optional()
  .or(z.literal('').transform(() => undefined));
const taskQueueList = optionalString
  .transform((v) => (v === undefined ? [...TASK_QUEUES] : [...new Set(v.split(',').map((q) => q.trim()))]))
  .pipe(z.array(z.enum(TASK_QUEUES, { error: `must list queues among ${TASK_QUEUES.join(', ')}` })).min(1));
/**
 * Activities a worker runs at once per queue, where it differs from the SDK's default (100): a
 * campaign materialising a thousand reviews then takes a few of the process's CPU and database
 * connections, not all of them, and a grant's expiry on the same process is not kept waiting.
 */
export const DEFAULT_QUEUE_ACTIVITY_SLOTS: Readonly<Partial<Record<TaskQueue, number>>> = { [CAMPAIGNS_TASK_QUEUE]: 4 };
/** `queue=N,…` (WORKER_QUEUE_ACTIVITY_SLOTS); `none` lifts every cap. */
const queueActivitySlots = optionalString
  .transform((v) => {
    if (v === undefined) return Object.entries(DEFAULT_QUEUE_ACTIVITY_SLOTS).map(([queue, slots]) => [queue, String(slots)]);
    if (v === 'none') return [];
    return v.split(',').map((entry) => {
      const [queue = '', slots = ''] = entry.split('=').map((part) => part.trim());
      return [queue, slots];
    });
  })
  .pipe(
    z.array(
      z.tuple([
        z.enum(TASK_QUEUES, { error: `must name queues among ${TASK_QUEUES.join(', ')}, as queue=N,…` }),
        z
          .string()
          .regex(/^[1-9]\d{0,2}$|^1000$/, 'each queue=N needs a whole number from 1 to 1000')
          .transform(Number),
      ]),
    ),
  )
  .transform((entries) => Object.fromEntries(entries) as Partial<Record<TaskQueue, number>>);
/** Exact browser origins (scheme, host, port), e.g. the Temporal UI's, for the codec endpoint. */
const originList = optionalString
  .transform((v) => (v === undefined ? [] : [...new Set(v.split(',').map((o) => o.trim()))].filter(Boolean)))
  .pipe(
    z.array(
      z.string().refine((o) => URL.canParse(o) && new URL(o).origin === o, {
        error: 'must list origins like https://temporal-ui.example.com (scheme, host and port; no path or trailing slash)',
      }),
    ),
  );

export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty', 'auto']).default('auto'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: port.default(3000),
  BODY_LIMIT: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'must look like 100kb or 1mb')
    .default('100kb'),
  IMPORT_BODY_LIMIT: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'must look like 10mb')
    .default('10mb'),
  IMPORT_MAX_ROWS: z.coerce.number().int().min(1).max(1_000_000).default(DEFAULT_IMPORT_MAX_ROWS),

  DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  DATABASE_APP_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  EMBEDDED_POSTGRES_PORT: port.default(54329),

  TEMPORAL_ADDRESS: hostPort,
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE_PREFIX: z.string().max(200).default(DEFAULT_TASK_QUEUE_PREFIX),
  TEMPORAL_TLS: bool.default(false),
  TEMPORAL_TLS_CERT_PATH: optionalString,
  TEMPORAL_TLS_KEY_PATH: optionalString,
  TEMPORAL_TLS_CA_PATH: optionalString,
  TEMPORAL_TLS_SERVER_NAME: optionalString,
  TEMPORAL_API_KEY: optionalString,
  API_TEMPORAL_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(5),
  TEMPORAL_PAYLOAD_KEYS: optionalString,
  TEMPORAL_PAYLOAD_KEYS_FILE: optionalString,
  TEMPORAL_PAYLOAD_ENCRYPTION: z.enum(['on', 'off']).default('on'),
  CODEC_CORS_ORIGINS: originList,
  TEMPORAL_CLI_PATH: optionalString,
  TEMPORAL_DEV_PORT: port.default(7233),
  TEMPORAL_UI_PORT: port.default(8233),
  TEMPORAL_METRICS_BIND_ADDRESS: hostPort.default('127.0.0.1:9464'),
  WORKFLOW_BUNDLE_PATH: optionalString,
  WORKER_SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().min(0).max(3600).default(30),
  WORKER_TASK_QUEUES: taskQueueList,
  WORKER_QUEUE_ACTIVITY_SLOTS: queueActivitySlots,
  CAMPAIGN_REMEDIATION_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(DEFAULT_REMEDIATION_CONCURRENCY),

  TENURE_DATA_DIR: z.string().min(1).default('.tenure'),
  DEMO_SEED: bool.default(true),

  OIDC_ISSUER: optionalString.pipe(z.url().optional()),
  OIDC_AUDIENCE: optionalString,
  OIDC_CLIENT_IDS: optionalString.transform((v) =>
    v === undefined
      ? []
      : [
          ...new Set(
            v
              .split(',')
              .map((c) => c.trim())
              .filter(Boolean),
          ),
        ],
  ),
  OIDC_JWKS_URL: optionalString.pipe(z.url().optional()),
  /** The web console's public client at the provider (Authorization Code with PKCE); console OIDC sign-in is off without it. */
  OIDC_CONSOLE_CLIENT_ID: optionalString,
  /** Scopes the console asks for: whatever makes the provider issue an access token with OIDC_AUDIENCE as `aud`. */
  OIDC_CONSOLE_SCOPES: z.string().trim().min(1).max(1000).default('openid'),
  AUTH_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(600).default(60),
  /** How long an API process reuses who a token or OIDC subject is; changes reach it on commit (LISTEN/NOTIFY). 0: never. */
  AUTH_CACHE_SECONDS: z.coerce.number().int().min(0).max(60).default(5),
  /** How often API token "last used" times are written, in one statement; 0 writes on every request. */
  AUTH_TOKEN_USE_FLUSH_SECONDS: z.coerce.number().int().min(0).max(3600).default(15),

  WEBHOOK_ALLOW_PRIVATE_NETWORKS: bool.default(false),

  /** Folder whose files tenants' directory targets may name as their secret (`{ "file": … }`). */
  DIRECTORY_SECRETS_DIR: optionalString,
  /** How often each tenant on a target without membership end is swept. */
  DIRECTORY_SWEEP_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  /** How often the drift Schedule checks every tenant against the template version applied to it (hourly by default). */
  TEMPLATE_DRIFT_INTERVAL_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .max(7 * 86_400)
    .default(DEFAULT_DRIFT_INTERVAL_SECONDS),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; message: string }[]) {
    super('Invalid configuration:\n' + problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

/** Parses the environment once; throws ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const result = configSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => ({
        variable: String(issue.path[0] ?? '(environment)'),
        message: issue.message,
      })),
    );
  }
  const config = result.data;
  const problems: { variable: string; message: string }[] = [];
  // Each domain now has its own queue; a single-queue setting left in place would be silently ignored.
  if (env.TEMPORAL_TASK_QUEUE !== undefined) {
    problems.push({
      variable: 'TEMPORAL_TASK_QUEUE',
      message: 'replaced by TEMPORAL_TASK_QUEUE_PREFIX (each domain has its own task queue) and WORKER_TASK_QUEUES',
    });
  }
  if (Boolean(config.TEMPORAL_TLS_CERT_PATH) !== Boolean(config.TEMPORAL_TLS_KEY_PATH)) {
    problems.push({
      variable: config.TEMPORAL_TLS_CERT_PATH ? 'TEMPORAL_TLS_KEY_PATH' : 'TEMPORAL_TLS_CERT_PATH',
      message: 'mTLS needs both TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH',
    });
  }
  if (config.TEMPORAL_PAYLOAD_KEYS && config.TEMPORAL_PAYLOAD_KEYS_FILE) {
    problems.push({ variable: 'TEMPORAL_PAYLOAD_KEYS_FILE', message: 'set TEMPORAL_PAYLOAD_KEYS or TEMPORAL_PAYLOAD_KEYS_FILE, not both' });
  } else if (config.TEMPORAL_PAYLOAD_KEYS) {
    try {
      parsePayloadKeys(config.TEMPORAL_PAYLOAD_KEYS);
    } catch (error) {
      if (!(error instanceof PayloadKeyError)) throw error;
      problems.push({ variable: 'TEMPORAL_PAYLOAD_KEYS', message: error.message });
    }
  }
  if (Boolean(config.OIDC_ISSUER) !== Boolean(config.OIDC_JWKS_URL)) {
    problems.push({
      variable: config.OIDC_ISSUER ? 'OIDC_JWKS_URL' : 'OIDC_ISSUER',
      message: 'OIDC needs both OIDC_ISSUER and OIDC_JWKS_URL',
    });
  }
  // Without an audience any token the issuer signed for any other application would be accepted.
  if (config.OIDC_ISSUER && !config.OIDC_AUDIENCE) {
    problems.push({ variable: 'OIDC_AUDIENCE', message: 'OIDC needs OIDC_AUDIENCE, the `aud` this API expects in bearer tokens' });
  }
  if (config.OIDC_CONSOLE_CLIENT_ID && !config.OIDC_ISSUER) {
    problems.push({ variable: 'OIDC_ISSUER', message: 'OIDC_CONSOLE_CLIENT_ID needs OIDC_ISSUER (and OIDC_JWKS_URL, OIDC_AUDIENCE)' });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
