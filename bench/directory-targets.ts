import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Attribute, Change, Client } from 'ldapts';
import { createLdapDirectory } from '../connectors/directory/ldap.js';
import { createScimDirectory } from '../connectors/directory/scim.js';
import type { DirectoryConnector } from '../core/directory/connector.js';
import {
  DirectoryTarget,
  LdapTargetSettings,
  SCIM_TENURE_GROUP,
  ScimTargetSettings,
  SECRET_ENV_PREFIX,
  type LdapTargetSettingsInput,
  type ScimTargetSettingsInput,
} from '../core/directory/targets.js';
import { spawnManaged, type ManagedProcess } from '../runtime/child.js';
import { findOnPath } from '../runtime/find-binary.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { freePort, waitForPort } from '../runtime/ports.js';

/**
 * Real third-party directories for connector tests, benchmarks and fault runs: OpenLDAP's slapd
 * and the scim2-server package, each started as the current user on a free loopback port with a
 * throw-away configuration, and stopped (their files removed) by `stop()`.
 */

/** Where the servers' own output goes; quiet unless asked. */
export interface DirectoryServerOptions {
  logger?: Logger;
}

const quietLogger = () => createLogger('error', { role: 'directory-target' });
export const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 30_000;

function firstExisting(label: string, candidates: string[], install: string): string {
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) throw new Error(`${label} not found (looked in ${candidates.join(', ')}); ${install}`);
  return found;
}

export interface Slapd {
  url: string;
  baseDn: string;
  usersDn: string;
  groupsDn: string;
  bindDn: string;
  bindPassword: string;
  /** Connector settings for this server; `overrides` change any of them. */
  settings(overrides?: Partial<LdapTargetSettingsInput>): LdapTargetSettingsInput;
  /** A client bound as the administrator, to look behind the connector. Unbind it after use. */
  admin(): Promise<Client>;
  /**
   * A subtree of its own (`ou=<name>` with `people` and `groups` under it) and the settings that
   * point there: several tenants' targets on one server, none seeing another's users or groups.
   */
  subtree(name: string): Promise<LdapTargetSettingsInput>;
  /** Locks the entry out as ppolicy does after too many failed binds (a dated pwdAccountLockedTime). */
  lockOut(dn: string): Promise<void>;
  /** Stops the server, keeping its data: an outage of the target. */
  down(): Promise<void>;
  /** Starts it again on the same port and data, after down(). */
  up(): Promise<void>;
  stop(): Promise<void>;
}

const LDAP_INSTALL = 'install it with `apt-get install slapd ldap-utils` (Debian/Ubuntu)';

/**
 * slapd with a slapd.conf of its own: the mdb backend, the ppolicy overlay with a default policy
 * that enforces administrative locks (`pwdLockout: TRUE`), users and groups OUs, and ACLs that
 * give anonymous clients nothing but authentication (so an unauthenticated connection can never
 * read an empty directory and pass for a real answer).
 */
export async function startSlapd(options: DirectoryServerOptions = {}): Promise<Slapd> {
  const logger = options.logger ?? quietLogger();
  const binary =
    findOnPath('slapd') ?? firstExisting('slapd', ['/usr/sbin/slapd', '/usr/local/sbin/slapd', '/usr/libexec/slapd'], LDAP_INSTALL);
  const schemaDir = firstExisting('the OpenLDAP schema folder', ['/etc/ldap/schema', '/etc/openldap/schema'], LDAP_INSTALL);
  const moduleDir = firstExisting(
    'the OpenLDAP module folder',
    ['/usr/lib/ldap', '/usr/lib64/openldap', '/usr/lib/openldap', '/usr/libexec/openldap'],
    LDAP_INSTALL,
  );
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-slapd-'));
  await mkdir(path.join(dir, 'data'));
  const baseDn = `dc=t${randomBytes(3).toString('hex')},dc=test`;
  const bindDn = `cn=admin,${baseDn}`;
  const bindPassword = randomBytes(12).toString('hex');
  const port = await freePort();
  const url = `ldap://${HOST}:${port}`;
  const config = [
    ...['core', 'cosine', 'inetorgperson'].map((name) => `include ${schemaDir}/${name}.schema`),
    `modulepath ${moduleDir}`,
    'moduleload back_mdb',
    'moduleload ppolicy',
    `pidfile ${dir}/slapd.pid`,
    'database mdb',
    'maxsize 104857600',
    `suffix "${baseDn}"`,
    `rootdn "${bindDn}"`,
    `rootpw ${bindPassword}`,
    `directory ${dir}/data`,
    'index objectClass,uid,cn,member eq',
    'overlay ppolicy',
    `ppolicy_default "cn=default,ou=policies,${baseDn}"`,
    'access to attrs=userPassword by anonymous auth by * none',
    'access to * by self read by * none',
  ].join('\n');
  await writeFile(path.join(dir, 'slapd.conf'), `${config}\n`);

  let child: ManagedProcess | undefined;
  async function start(): Promise<void> {
    // -d keeps slapd in the foreground, so it is our child and stops with us.
    child = spawnManaged(binary, ['-f', path.join(dir, 'slapd.conf'), '-h', `${url}/`, '-d', '0'], logger, 'slapd');
    const running = child;
    try {
      await waitForPort(HOST, port, START_TIMEOUT_MS, () => running.alive());
    } catch (error) {
      await running.stop();
      throw new Error(`slapd (${binary}) did not start on ${url}: ${(error as Error).message}`, { cause: error });
    }
  }

  const admin = async () => {
    const client = new Client({ url, timeout: 10_000, connectTimeout: 10_000 });
    await client.bind(bindDn, bindPassword);
    return client;
  };

  const lockOut = async (dn: string) => {
    const client = await admin();
    try {
      const now = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
      await client.modify(
        dn,
        new Change({ operation: 'replace', modification: new Attribute({ type: 'pwdAccountLockedTime', values: [`${now}Z`] }) }),
      );
    } finally {
      await client.unbind();
    }
  };

  await start();
  const client = await admin();
  try {
    await client.add(baseDn, { objectClass: ['dcObject', 'organization'], dc: baseDn.split(',')[0]!.slice(3), o: 'Tenure tests' });
    for (const ou of ['people', 'groups', 'policies']) await client.add(`ou=${ou},${baseDn}`, { objectClass: ['organizationalUnit'], ou });
    await client.add(`cn=default,ou=policies,${baseDn}`, {
      objectClass: ['organizationalRole', 'pwdPolicy'],
      cn: 'default',
      pwdAttribute: 'userPassword',
      pwdLockout: 'TRUE',
    });
  } catch (error) {
    await child?.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  } finally {
    await client.unbind();
  }

  const usersDn = `ou=people,${baseDn}`;
  const groupsDn = `ou=groups,${baseDn}`;
  return {
    url,
    baseDn,
    usersDn,
    groupsDn,
    bindDn,
    bindPassword,
    settings: (overrides = {}) => ({ url, bindDn, usersDn, groupsDn, ...overrides }),
    admin,
    async subtree(name) {
      const client = await admin();
      const root = `ou=${name},${baseDn}`;
      try {
        await client.add(root, { objectClass: ['organizationalUnit'], ou: name });
        for (const ou of ['people', 'groups']) await client.add(`ou=${ou},${root}`, { objectClass: ['organizationalUnit'], ou });
      } finally {
        await client.unbind();
      }
      return { url, bindDn, usersDn: `ou=people,${root}`, groupsDn: `ou=groups,${root}` };
    },
    lockOut,
    down: async () => {
      await child?.stop();
    },
    up: start,
    async stop() {
      await child?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ScimServer {
  baseUrl: string;
  bearerToken: string;
  settings(overrides?: Partial<ScimTargetSettingsInput>): ScimTargetSettingsInput;
  stop(): Promise<void>;
}

export interface ScimServerOptions extends DirectoryServerOptions {
  /** Serve Tenure's Group extension (role description and privileged flag). */
  groupExtension?: boolean;
  /** Replaces the ServiceProviderConfig the server announces (e.g. without PATCH). */
  serviceProviderConfig?: Record<string, unknown>;
}

const SCIM_INSTALL = 'install it with `pip install scim2-server==0.8.3` and put its scripts folder on PATH';

/** The default schemas of the scim2_server package, asked of the interpreter its script runs on. */
function scimResourcesDir(script: string): string {
  const shebang = readFileSync(script, 'utf8').split('\n')[0] ?? '';
  const python = shebang.startsWith('#!') ? shebang.slice(2).trim().split(/\s+/)[0]! : 'python3';
  const packageDir = execFileSync(python, ['-c', 'import os, scim2_server; print(os.path.dirname(scim2_server.__file__))'], {
    encoding: 'utf8',
  }).trim();
  return firstExisting('the scim2_server package resources', [path.join(packageDir, 'resources')], SCIM_INSTALL);
}

/** scim2-server (in memory, one bearer token) on a free port, optionally with Tenure's Group extension. */
export async function startScimServer(options: ScimServerOptions = {}): Promise<ScimServer> {
  const logger = options.logger ?? quietLogger();
  const binary = findOnPath('scim2-server');
  if (!binary) throw new Error(`scim2-server not found on PATH; ${SCIM_INSTALL}`);
  const port = await freePort();
  const bearerToken = randomBytes(16).toString('hex');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-scim-'));
  const args = ['--hostname', HOST, '--port', String(port), '--bearer-token', bearerToken];
  if (options.groupExtension) {
    const resources = scimResourcesDir(binary);
    const schemas = JSON.parse(readFileSync(path.join(resources, 'default-schemas.json'), 'utf8')) as unknown[];
    schemas.push({
      id: SCIM_TENURE_GROUP,
      name: 'TenureGroup',
      description: 'Role metadata Tenure keeps on a group',
      attributes: [
        {
          name: 'description',
          type: 'string',
          multiValued: false,
          required: false,
          caseExact: true,
          mutability: 'readWrite',
          returned: 'default',
          uniqueness: 'none',
        },
        {
          name: 'privileged',
          type: 'boolean',
          multiValued: false,
          required: false,
          mutability: 'readWrite',
          returned: 'default',
          uniqueness: 'none',
        },
      ],
    });
    const types = JSON.parse(readFileSync(path.join(resources, 'default-resource-types.json'), 'utf8')) as {
      id: string;
      schemaExtensions?: unknown[];
    }[];
    for (const type of types) if (type.id === 'Group') type.schemaExtensions = [{ schema: SCIM_TENURE_GROUP, required: false }];
    await writeFile(path.join(dir, 'schemas.json'), JSON.stringify(schemas));
    await writeFile(path.join(dir, 'resource-types.json'), JSON.stringify(types));
    args.push('--schema', path.join(dir, 'schemas.json'), '--resource-type', path.join(dir, 'resource-types.json'));
  }
  if (options.serviceProviderConfig) {
    await writeFile(path.join(dir, 'service-provider-config.json'), JSON.stringify(options.serviceProviderConfig));
    args.push('--service-provider-config', path.join(dir, 'service-provider-config.json'));
  }
  const child = spawnManaged(binary, args, logger, 'scim2-server');
  try {
    await waitForPort(HOST, port, START_TIMEOUT_MS, () => child.alive());
  } catch (error) {
    await child.stop();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`scim2-server (${binary}) did not start on port ${port}: ${(error as Error).message}`, { cause: error });
  }
  const baseUrl = `http://${HOST}:${port}/v2`;
  return {
    baseUrl,
    bearerToken,
    settings: (overrides = {}) => ({ baseUrl, groupExtension: options.groupExtension ?? false, ...overrides }),
    async stop() {
      await child.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The kinds of real target a benchmark or fault run can put its tenants on. */
export const REMOTE_TARGET_KINDS = ['ldap', 'scim'] as const;
export type RemoteTargetKind = (typeof REMOTE_TARGET_KINDS)[number];

/** One tenant's target in a run: the policy section that names it, and a connector straight to it. */
export interface RunTenantTarget {
  target: DirectoryTarget;
  /** Built here, with the secret: for seeding, sampling and checks that must read the target itself. */
  connector: DirectoryConnector;
}

/** The real targets a run's tenants use, started for the run and stopped with it. */
export interface RunTargets {
  kind: RemoteTargetKind;
  /**
   * The secrets the tenants' policies reference (`TENURE_SECRET_…`), for the environment of every
   * process that builds their connectors; filled in as tenants are added.
   */
  secretEnv: Record<string, string>;
  /**
   * Tenant `name`'s own target: a subtree of the run's slapd, or a scim2-server of its own (SCIM ids
   * are server-wide) serving the Tenure Group extension.
   */
  addTenant(name: string): Promise<RunTenantTarget>;
  stop(): Promise<void>;
}

/** Starts what `kind` needs; each tenant added gets a target no other tenant sees. */
export async function startRunTargets(kind: RemoteTargetKind, options: DirectoryServerOptions = {}): Promise<RunTargets> {
  const secretEnv: Record<string, string> = {};
  const connectors: { close(): Promise<void> }[] = [];
  const servers: { stop(): Promise<void> }[] = [];
  const stop = async () => {
    await Promise.all(connectors.map((c) => c.close()));
    await Promise.all(servers.map((s) => s.stop()));
  };
  if (kind === 'ldap') {
    const slapd = await startSlapd(options);
    servers.push(slapd);
    const env = `${SECRET_ENV_PREFIX}RUN_LDAP`;
    secretEnv[env] = slapd.bindPassword;
    return {
      kind,
      secretEnv,
      async addTenant(name) {
        const settings = await slapd.subtree(name);
        const connector = createLdapDirectory(LdapTargetSettings.parse(settings), { bindPassword: slapd.bindPassword });
        connectors.push(connector);
        return { target: DirectoryTarget.parse({ type: 'ldap', settings, bindPassword: { env } }), connector };
      },
      stop,
    };
  }
  return {
    kind,
    secretEnv,
    async addTenant(name) {
      // With Tenure's Group extension: without role lookup a tenant's policy may name no roles at all.
      const server = await startScimServer({ ...options, groupExtension: true });
      servers.push(server);
      const env = `${SECRET_ENV_PREFIX}RUN_SCIM_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
      secretEnv[env] = server.bearerToken;
      const settings = server.settings();
      const connector = createScimDirectory(ScimTargetSettings.parse(settings), { bearerToken: server.bearerToken });
      return { target: DirectoryTarget.parse({ type: 'scim', settings, bearerToken: { env } }), connector };
    },
    stop,
  };
}
