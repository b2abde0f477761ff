import { randomBytes, randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import {
  HOST,
  startScimServer as startScimServerAt,
  startSlapd as startSlapdAt,
  type DirectoryServerOptions,
  type ScimServerOptions,
} from '../../bench/directory-targets.js';
import { createLdapDirectory, escapeDnValue } from '../../connectors/directory/ldap.js';
import { createPostgresDirectory } from '../../connectors/directory/postgres.js';
import { createScimDirectory } from '../../connectors/directory/scim.js';
import type { DirectoryCapability, DirectoryConnector } from '../../core/directory/connector.js';
import { LdapTargetSettings, ScimTargetSettings } from '../../core/directory/targets.js';
import { createPool } from '../../db/pool.js';
import { createLogger } from '../../runtime/logger.js';
import { freePort } from '../../runtime/ports.js';
import { createTestDatabase } from './db.js';

export type { ScimServer, ScimServerOptions, Slapd } from '../../bench/directory-targets.js';

const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'error', { role: 'test-directory-target' });

// The servers themselves are started by code beside the benchmarks, which start them too; tests log at TEST_LOG_LEVEL.
export const startSlapd = (options: DirectoryServerOptions = {}) => startSlapdAt({ logger, ...options });
export const startScimServer = (options: ScimServerOptions = {}) => startScimServerAt({ logger, ...options });

/** One directory as the connector contract tests drive it. */
export interface DirectoryTarget {
  connector: DirectoryConnector;
  tenantId: string;
  /** The same kind of target where nothing answers (a closed port). */
  unreachable: DirectoryConnector;
  /** The same target with credentials it refuses. */
  refused: DirectoryConnector;
  /** What must never show in an error message. */
  secrets: string[];
  /** Opens a sign-in session, on targets that keep sessions. */
  openSession?: (tenantId: string, userId: string) => Promise<unknown>;
  /** Locks the user out as failed sign-ins would, on targets with the unlock capability. */
  lockUser?: (tenantId: string, userId: string) => Promise<void>;
  /** Enrols a second factor, on targets with the mfaReset capability. */
  enrollMfa?: (tenantId: string, userId: string) => Promise<unknown>;
  stop(): Promise<void>;
}

export type DirectoryTargetKind = 'postgres' | 'ldap' | 'scim' | 'scim-extension';

/** A running target and connectors to it, for `describe.each` over every kind. */
export async function startDirectoryTarget(kind: DirectoryTargetKind): Promise<DirectoryTarget> {
  const closedPort = await freePort();
  if (kind === 'postgres') {
    const db = await createTestDatabase();
    const tenantId = randomUUID();
    await db.pool.query('INSERT INTO tenants (id, slug, name, created_by) VALUES ($1, $2, $3, $4)', [
      tenantId,
      `dir-${randomBytes(4).toString('hex')}`,
      'Directory contract',
      'connector contract test',
    ]);
    const login = inject('serviceLogin');
    const url = (change: (parsed: URL) => void) => {
      const parsed = new URL(db.appUrl);
      change(parsed);
      return parsed.toString();
    };
    const pools = [
      createPool({ connectionString: db.appUrl, max: 4 }),
      createPool({ connectionString: url((u) => (u.port = String(closedPort))), max: 1 }),
      // A login that does not exist: refused whether the server checks passwords or trusts loopback.
      createPool({ connectionString: url((u) => (u.username = 'tenure_no_such_login')), max: 1 }),
    ] as const;
    const connector = createPostgresDirectory(pools[0]);
    return {
      connector,
      tenantId,
      unreachable: createPostgresDirectory(pools[1]),
      refused: createPostgresDirectory(pools[2]),
      secrets: [login.password],
      openSession: (tenant, userId) => connector.openSession(tenant, userId),
      lockUser: (tenant, userId) => connector.lockUser(tenant, userId),
      enrollMfa: (tenant, userId) => connector.enrollMfa(tenant, userId, 'totp'),
      async stop() {
        await Promise.all(pools.map((pool) => pool.end()));
        await db.drop();
      },
    };
  }
  if (kind === 'ldap') {
    const slapd = await startSlapd();
    const settings = LdapTargetSettings.parse(slapd.settings());
    const connectors = [
      createLdapDirectory(settings, { bindPassword: slapd.bindPassword }),
      createLdapDirectory({ ...settings, url: `ldap://${HOST}:${closedPort}` }, { bindPassword: slapd.bindPassword }),
      createLdapDirectory(settings, { bindPassword: 'not-the-password' }),
    ] as const;
    return {
      connector: connectors[0],
      tenantId: randomUUID(),
      unreachable: connectors[1],
      refused: connectors[2],
      secrets: [slapd.bindPassword],
      lockUser: (_tenant, userId) => slapd.lockOut(`${settings.userIdAttribute}=${escapeDnValue(userId)},${slapd.usersDn}`),
      async stop() {
        await Promise.all(connectors.map((connector) => connector.close()));
        await slapd.stop();
      },
    };
  }
  const server = await startScimServer({ groupExtension: kind === 'scim-extension' });
  const settings = ScimTargetSettings.parse(server.settings());
  return {
    connector: createScimDirectory(settings, { bearerToken: server.bearerToken }),
    tenantId: randomUUID(),
    unreachable: createScimDirectory({ ...settings, baseUrl: `http://${HOST}:${closedPort}/v2` }, { bearerToken: server.bearerToken }),
    refused: createScimDirectory(settings, { bearerToken: 'not-the-token' }),
    secrets: [server.bearerToken],
    stop: () => server.stop(),
  };
}

/**
 * The real connector, declaring the capability `lacking()` names missing while it names one, as
 * an LDAP or SCIM target would: for a stack's `directory` option.
 */
export function withToggledCapability(real: DirectoryConnector, lacking: () => DirectoryCapability | null): DirectoryConnector {
  const wrapped = { ...real };
  Object.defineProperty(wrapped, 'capabilities', {
    get: () => {
      const missing = lacking();
      return { ...real.capabilities, ...(missing ? { [missing]: false } : {}) };
    },
  });
  return wrapped;
}
