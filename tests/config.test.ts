import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, configSchema, loadConfig } from '../core/config.js';
import { queueTuning } from '../worker/worker.js';

describe('configuration', () => {
  it('gives every key a documented default when the environment is empty', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE_PREFIX: 'tenure-',
      WORKER_TASK_QUEUES: ['grants', 'lifecycle', 'tenancy', 'diagnostics', 'campaigns', 'actions', 'directory', 'templates'],
      TEMPORAL_TLS: false,
      TENURE_DATA_DIR: '.tenure',
    });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.TEMPORAL_ADDRESS).toBeUndefined();
  });

  it('coerces numbers and booleans from strings', () => {
    const config = loadConfig({ PORT: '8080', TEMPORAL_TLS: 'true', DATABASE_POOL_MAX: '25' });
    expect(config).toMatchObject({ PORT: 8080, TEMPORAL_TLS: true, DATABASE_POOL_MAX: 25 });
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['LOG_LEVEL', 'loud'],
    ['DATABASE_URL', 'mysql://x@y/z'],
    ['TEMPORAL_ADDRESS', 'no-port-here'],
    ['TEMPORAL_TLS', 'maybe'],
    ['OIDC_JWKS_URL', 'not a url'],
    ['WORKER_TASK_QUEUES', 'grants,campaign'],
    ['WORKER_QUEUE_ACTIVITY_SLOTS', 'campaign=4'],
    ['WORKER_QUEUE_ACTIVITY_SLOTS', 'campaigns=0'],
    ['WORKER_QUEUE_ACTIVITY_SLOTS', 'campaigns'],
    ['TEMPORAL_TASK_QUEUE', 'tenure'],
  ])('rejects %s=%s with an error naming the variable', (variable, value) => {
    const attempt = () => loadConfig({ [variable]: value });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      expect((error as ConfigError).problems.map((p) => p.variable)).toContain(variable);
      expect((error as ConfigError).message).toContain(variable);
    }
  });

  it('runs a worker on a subset of the task queues', () => {
    expect(loadConfig({ WORKER_TASK_QUEUES: 'grants, lifecycle' }).WORKER_TASK_QUEUES).toEqual(['grants', 'lifecycle']);
  });

  it('caps the campaigns queue activities by default; a setting replaces the caps, none lifts them', () => {
    expect(loadConfig({}).WORKER_QUEUE_ACTIVITY_SLOTS).toEqual({ campaigns: 4 });
    expect(loadConfig({ WORKER_QUEUE_ACTIVITY_SLOTS: 'templates=2, campaigns=12' }).WORKER_QUEUE_ACTIVITY_SLOTS).toEqual({
      templates: 2,
      campaigns: 12,
    });
    expect(loadConfig({ WORKER_QUEUE_ACTIVITY_SLOTS: 'none' }).WORKER_QUEUE_ACTIVITY_SLOTS).toEqual({});
  });

  it("gives a queue its cap over the worker's own sizing, and the others the worker's", () => {
    const options = { tuning: { maxConcurrentActivityTaskExecutions: 50, maxCachedWorkflows: 300 }, activitySlots: { campaigns: 4 } };
    expect(queueTuning(options, 'campaigns')).toEqual({ maxConcurrentActivityTaskExecutions: 4, maxCachedWorkflows: 300 });
    expect(queueTuning(options, 'grants')).toEqual(options.tuning);
    expect(queueTuning({ activitySlots: { campaigns: 4 } }, 'grants')).toBeUndefined();
  });

  it('requires an audience when OIDC is configured', () => {
    const oidc = { OIDC_ISSUER: 'https://idp.example.test/', OIDC_JWKS_URL: 'https://idp.example.test/jwks.json' };
    expect(() => loadConfig(oidc)).toThrow(/OIDC_AUDIENCE: OIDC needs OIDC_AUDIENCE/);
    expect(loadConfig({ ...oidc, OIDC_AUDIENCE: 'tenure-api', OIDC_CLIENT_IDS: 'cli, portal' })).toMatchObject({
      OIDC_AUDIENCE: 'tenure-api',
      OIDC_CLIENT_IDS: ['cli', 'portal'],
    });
  });

  it('refuses webhooks to private networks unless told otherwise', () => {
    expect(loadConfig({}).WEBHOOK_ALLOW_PRIVATE_NETWORKS).toBe(false);
    expect(loadConfig({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' }).WEBHOOK_ALLOW_PRIVATE_NETWORKS).toBe(true);
  });

  it('requires both halves of an mTLS key pair', () => {
    expect(() => loadConfig({ TEMPORAL_TLS_CERT_PATH: '/tmp/client.pem' })).toThrow(/TEMPORAL_TLS_KEY_PATH/);
  });

  it('is documented key by key in the configuration table and in .env.example', () => {
    // The service's table comes before the doc's first `##` section (variables outside the schema).
    const table = readFileSync('docs/configuration.md', 'utf8').split(/^## /m)[0]!;
    const rows = [...table.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]!);
    const example = readFileSync('.env.example', 'utf8');
    const keys = Object.keys(configSchema.shape);
    expect(keys.filter((key) => !rows.includes(key))).toEqual([]);
    expect(rows.filter((row) => !keys.includes(row))).toEqual([]);
    expect(keys.filter((key) => !new RegExp(`^#?\\s*${key}=`, 'm').test(example))).toEqual([]);
  });
});
