import { spawnSync } from 'node:child_process';
import { chmod, cp, mkdtemp, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnManaged } from '../runtime/child.js';
import { installedBinaries, postgresAccount, runnableBinaries } from '../runtime/embedded-postgres.js';
import { createLogger } from '../runtime/logger.js';
import { assertPortFree, freePort } from '../runtime/ports.js';

/** The parts `npm start` runs its embedded servers with, where they fail or run as root. */
const logger = createLogger('silent');
const cleanup: string[] = [];
afterEach(async () => {
  for (const dir of cleanup.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function scratch(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  cleanup.push(dir);
  return dir;
}

describe('helper processes', () => {
  it('a binary that cannot be run is told in one line, not thrown as an unhandled error event', async () => {
    const missing = path.join(await scratch('tenure-child-'), 'no-such-binary');
    const child = spawnManaged(missing, ['--version'], logger, 'missing');
    expect(await child.exited).toBeNull();
    expect(child.alive()).toBe(false);
    expect(child.problem()).toBe(`${missing} could not be run (ENOENT)`);
  });

  it('a process that fails is told by its last line that reads like an error, not by what it printed after', async () => {
    const child = spawnManaged(
      'sh',
      ['-c', 'echo starting; echo "FATAL: could not create any TCP/IP sockets" >&2; echo "LOG: shut down"; exit 1'],
      logger,
      'sh',
    );
    expect(await child.exited).toBe(1);
    expect(child.problem()).toBe('FATAL: could not create any TCP/IP sockets');
  });

  it('a port something already listens on is refused naming the setting', async () => {
    const holder = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
    try {
      await expect(assertPortFree('127.0.0.1', port, 'EMBEDDED_POSTGRES_PORT')).rejects.toThrow(
        `Port ${port} on 127.0.0.1 (EMBEDDED_POSTGRES_PORT) is already in use: stop what holds it, or set EMBEDDED_POSTGRES_PORT to another port.`,
      );
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
    await expect(assertPortFree('127.0.0.1', port, 'EMBEDDED_POSTGRES_PORT')).resolves.toBeUndefined();
  });
});

// Only root hands PostgreSQL to another account; as anyone else it runs as that user, from where it is.
describe.runIf(process.getuid?.() === 0)('embedded PostgreSQL binaries, as root', () => {
  it('are copied, once, to where the postgres account can run them when they sit under a private folder', async () => {
    const installed = await installedBinaries();
    // node_modules in a clone under /root (mode 0700): the postgres account cannot reach it.
    const privateFolder = await scratch('tenure-private-');
    expect((await stat(privateFolder)).mode & 0o777).toBe(0o700);
    const native = path.join(privateFolder, 'native');
    await cp(path.dirname(path.dirname(installed.postgres)), native, { recursive: true, verbatimSymlinks: true });
    const unreachable = {
      initdb: path.join(native, 'bin', 'initdb'),
      postgres: path.join(native, 'bin', 'postgres'),
      version: `${installed.version}-test-${path.basename(privateFolder)}`,
    };
    const account = await postgresAccount(logger);
    expect(spawnSync(unreachable.initdb, ['--version'], { ...account }).error).toMatchObject({ code: 'EACCES' });

    const reachableDir = await scratch('tenure-reachable-');
    await chmod(reachableDir, 0o755);
    const binaries = await runnableBinaries(unreachable, account, reachableDir, logger);
    expect(binaries.initdb.startsWith(path.join(reachableDir, 'postgres-bin') + path.sep)).toBe(true);
    for (const binary of [binaries.initdb, binaries.postgres]) {
      const ran = spawnSync(binary, ['--version'], { ...account, encoding: 'utf8' });
      expect(ran.error).toBeUndefined();
      expect(ran.stdout).toMatch(/\(PostgreSQL\) \d+/);
    }
    // Root-owned, so the account that runs them cannot change them.
    expect((await stat(binaries.postgres)).uid).toBe(0);
    expect((await stat(binaries.postgres)).mode & 0o022).toBe(0);
    // Nothing above the private folder's contents was opened up.
    expect((await stat(privateFolder)).mode & 0o777).toBe(0o700);
    // A later start reuses the copy.
    expect(await runnableBinaries(unreachable, account, reachableDir, logger)).toEqual(binaries);
  });
});
