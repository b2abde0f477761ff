import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import canonicalize from 'canonicalize';
import {
  DirectoryRejectedError,
  DirectoryUnavailableError,
  type DirectoryConnector,
  type DirectoryHealth,
  type DirectoryResolver,
} from '../../core/directory/connector.js';
import { BUILTIN_TARGET, DirectoryTarget, targetLocation, type DirectorySecretRef } from '../../core/directory/targets.js';
import type { Pool } from '../../db/pool.js';
import { readInScope, tenantScope } from '../../db/scope.js';
import { currentPolicy } from '../../db/tenancy.js';
import { createLdapDirectory } from './ldap.js';
import { createScimDirectory } from './scim.js';

/** Where secret references are looked up: the process environment and the secrets folder. */
export interface SecretSource {
  env: Record<string, string | undefined>;
  /** DIRECTORY_SECRETS_DIR; without it, file references are refused. */
  filesDir?: string | null;
}

/** A tenant's current target as its policy states it. */
export interface TenantTarget {
  tenantId: string;
  policyVersion: number;
  target: DirectoryTarget;
}

export interface DirectoryRegistry extends DirectoryResolver {
  /** The tenant's current target (settings and secret references, never a secret). */
  targetOf(tenantId: string): Promise<TenantTarget>;
  /**
   * A connector for `target` that is not the tenant's yet (a proposed change), closed once `use`
   * settles; its calls count for the tenant's health like any other.
   */
  withTarget<T>(tenantId: string, target: DirectoryTarget, use: (directory: DirectoryConnector) => Promise<T>): Promise<T>;
  health(): DirectoryHealth[];
  /** Closes every connector it built (LDAP connection pools); the built-in one is the caller's. */
  close(): Promise<void>;
}

export interface DirectoryRegistryOptions {
  /** Reads tenants' policies; give it a pool the callers do not hold while they resolve (see createPostgresDirectory). */
  pool: Pool;
  /** The built-in directory, shared by every tenant on it. */
  builtin: DirectoryConnector;
  secrets: SecretSource;
  /**
   * Runs before a tenant first uses a target in this process (and again after each change of it),
   * e.g. to make sure the tenant's expiry sweeper exists before anything is assigned there;
   * `previous` is the connector this process used for the tenant before, null the first time. A
   * failure fails the resolution, so the caller retries rather than using the target without it.
   */
  onTarget?: (
    tenantId: string,
    target: DirectoryTarget,
    directory: DirectoryConnector,
    previous: DirectoryConnector | null,
  ) => Promise<void>;
}

type Closable = DirectoryConnector & { close?: () => Promise<void> };

interface Entry {
  key: string;
  connector: DirectoryConnector;
  /** The connector as built, to close; undefined for the shared built-in one. */
  own?: Closable;
}

/** What answered "the target is not there": it was unreachable, or its secret could not be read. */
function isDown(error: unknown): boolean {
  return error instanceof DirectoryUnavailableError || (error instanceof DirectoryRejectedError && error.reason.startsWith('secret:'));
}

/**
 * The per-tenant directories: each tenant's connector is built from the `directory` section of
 * its current policy (the built-in directory, LDAP or SCIM), with its secret read from where the
 * reference points, and kept until that section changes; the replaced connector is then closed.
 * Every call through a connector it hands out updates that tenant's health.
 */
export function createDirectoryRegistry(options: DirectoryRegistryOptions): DirectoryRegistry {
  const cache = new Map<string, Entry>();
  const health = new Map<string, DirectoryHealth>();
  let closed = false;

  function note(tenantId: string, target: string, up: boolean): void {
    health.set(tenantId, { tenantId, target, up, at: new Date().toISOString() });
  }

  /**
   * The connector with every call reporting the tenant's health. Every method is passed through,
   * so a method the contract gains later is never lost here.
   */
  function instrumented(tenantId: string, connector: DirectoryConnector): DirectoryConnector {
    const methods = connector as unknown as Record<string, unknown>;
    // Read through, not copied: what a connector declares is its own to answer at each call.
    const wrapped: Record<string, unknown> = {};
    for (const name of ['kind', 'capabilities'] as const) {
      Object.defineProperty(wrapped, name, { get: () => connector[name], enumerable: true });
    }
    for (const name of Object.keys(methods)) {
      const method = methods[name];
      if (typeof method !== 'function' || name === 'close') continue;
      wrapped[name] = async (...args: unknown[]) => {
        try {
          const result: unknown = await (method as (...a: unknown[]) => Promise<unknown>).apply(connector, args);
          note(tenantId, connector.kind, true);
          return result;
        } catch (error) {
          note(tenantId, connector.kind, !isDown(error));
          throw error;
        }
      };
    }
    return wrapped as unknown as DirectoryConnector;
  }

  async function secretOf(tenantId: string, target: DirectoryTarget, ref: DirectorySecretRef): Promise<string> {
    const where = `the secret of the ${target.type} directory ${targetLocation(target)} (tenant ${tenantId})`;
    const refuse = (why: string, reason: string, cause?: unknown) =>
      new DirectoryRejectedError(`${where}: ${why}`, tenantId, reason, cause === undefined ? undefined : { cause });
    if ('env' in ref) {
      const value = options.secrets.env[ref.env];
      if (!value) throw refuse(`environment variable ${ref.env} is not set in this process`, 'secret:missing');
      return value;
    }
    const dir = options.secrets.filesDir;
    if (!dir) throw refuse(`file ${ref.file} cannot be used: DIRECTORY_SECRETS_DIR is not set`, 'secret:refused');
    let file: string;
    try {
      // Resolved, so a link cannot lead outside the folder.
      const [root, resolved] = await Promise.all([realpath(dir), realpath(ref.file)]);
      if (resolved !== root && !resolved.startsWith(root + path.sep)) {
        throw refuse(`file ${ref.file} is outside DIRECTORY_SECRETS_DIR`, 'secret:refused');
      }
      file = resolved;
    } catch (error) {
      if (error instanceof DirectoryRejectedError) throw error;
      throw refuse(`file ${ref.file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 'secret:missing', error);
    }
    const value = (
      await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw refuse(`file ${ref.file} cannot be read (${error.code ?? 'error'})`, 'secret:missing', error);
      })
    ).replace(/\r?\n$/, '');
    if (!value) throw refuse(`file ${ref.file} is empty`, 'secret:missing');
    return value;
  }

  /** A new connector for the target; the caller closes it (the built-in one is shared and never closed). */
  async function build(tenantId: string, target: DirectoryTarget): Promise<{ connector: DirectoryConnector; own?: Closable }> {
    if (target.type === 'builtin') return { connector: options.builtin };
    if (target.type === 'ldap') {
      const own = createLdapDirectory(target.settings, { bindPassword: await secretOf(tenantId, target, target.bindPassword) });
      return { connector: own, own };
    }
    const bearerToken = target.bearerToken ? await secretOf(tenantId, target, target.bearerToken) : null;
    const own = createScimDirectory(target.settings, { bearerToken });
    return { connector: own, own };
  }

  async function targetOf(tenantId: string): Promise<TenantTarget> {
    const row = await readInScope(options.pool, tenantScope(tenantId), (client) => currentPolicy(client, tenantId));
    // A tenant without a policy (none exists, or RLS hides it) has nothing to connect to but the built-in one.
    const parsed = DirectoryTarget.safeParse((row?.document as { directory?: unknown } | undefined)?.directory ?? BUILTIN_TARGET);
    if (!parsed.success) {
      throw new DirectoryRejectedError(
        `the directory section of tenant ${tenantId}'s policy version ${row?.version} is not valid`,
        tenantId,
        'config:invalid',
      );
    }
    return { tenantId, policyVersion: row?.version ?? 0, target: parsed.data };
  }

  const close = (own: Closable | undefined) => void own?.close?.().catch(() => undefined);

  return {
    targetOf,

    async directoryFor(tenantId: string): Promise<DirectoryConnector> {
      if (closed) throw new Error('the directory registry is closed');
      const { target } = await targetOf(tenantId);
      const key = canonicalize(target)!;
      const cached = cache.get(tenantId);
      if (cached?.key === key) return cached.connector;
      let built: Awaited<ReturnType<typeof build>>;
      try {
        built = await build(tenantId, target);
      } catch (error) {
        note(tenantId, target.type === 'builtin' ? options.builtin.kind : target.type, !isDown(error));
        throw error;
      }
      const connector = instrumented(tenantId, built.connector);
      try {
        await options.onTarget?.(tenantId, target, connector, cached?.connector ?? null);
      } catch (error) {
        close(built.own);
        throw error;
      }
      // Another call may have built one meanwhile: keep the first, so none is left unclosed.
      const again = cache.get(tenantId);
      if (again?.key === key) {
        close(built.own);
        return again.connector;
      }
      cache.set(tenantId, { key, connector, ...(built.own ? { own: built.own } : {}) });
      close(again?.own);
      return connector;
    },

    async withTarget(tenantId, target, use) {
      const built = await build(tenantId, target).catch((error: unknown) => {
        note(tenantId, target.type === 'builtin' ? options.builtin.kind : target.type, !isDown(error));
        throw error;
      });
      try {
        return await use(instrumented(tenantId, built.connector));
      } finally {
        close(built.own);
      }
    },

    health: () => [...health.values()].sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0)),

    async close() {
      closed = true;
      const entries = [...cache.values()];
      cache.clear();
      await Promise.all(entries.map(async (entry) => entry.own?.close?.().catch(() => undefined)));
    },
  };
}
