import { spawn } from 'node:child_process';
import { expect } from 'vitest';
import { projectRoot } from '../../runtime/paths.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` in the project root with only PATH, HOME and `env`, resolving with its exit code
 * and output whatever the code; `onStdout` sees the output as it comes.
 */
function run(command: string, args: string[], env: Record<string, string>, onStdout?: (soFar: string) => void): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: projectRoot(),
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      onStdout?.(stdout);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const CLI = ['--import', 'tsx', 'cli/main.ts'];
const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * Runs the `tenure` CLI as a user would, with only PATH, HOME and `env` in its environment (no
 * database or Temporal settings leak in from the test run), and resolves with its exit code and
 * output whatever the code.
 */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return run(process.execPath, [...CLI, ...args], env);
}

/**
 * Runs the CLI like `runCli`, but on a pseudo-terminal (util-linux `script`), as at a person's
 * terminal: what it draws there (stdout and stderr merged, as a terminal shows them) is `output`.
 */
export async function runCliInTerminal(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, ...CLI, ...args].map(quote).join(' ');
  const { code, stdout, stderr } = await run('script', ['--quiet', '--return', '--command', command, '/dev/null'], env);
  return { code, output: stdout + stderr };
}

/**
 * Starts the CLI like `runCli` for a command that follows something live (`grant watch`): its
 * stdout so far at any moment, and its result once it exits.
 */
export function startCli(args: string[], env: Record<string, string> = {}): { stdout: () => string; result: Promise<CliResult> } {
  let soFar = '';
  const result = run(process.execPath, [...CLI, ...args], env, (stdout) => (soFar = stdout));
  return { stdout: () => soFar, result };
}

/** Runs a bash script in the project root in which `tenure` is this checkout's CLI (a shell function, as an installed `tenure` would be). */
export function runBash(script: string, env: Record<string, string> = {}): Promise<CliResult> {
  const tenure = [process.execPath, ...CLI].map(quote).join(' ');
  return run('bash', ['-c', `tenure() { ${tenure} "$@"; }\n${script}`], env);
}

/** Runs the CLI like `runCli`, and fails the test unless it exits 0, showing its stderr. */
export async function runCliOk(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const result = await runCli(args, env);
  expect(result.code, `tenure ${args.join(' ')} exited ${result.code}: ${result.stderr}`).toBe(0);
  return result;
}

/**
 * Runs one of the project's npm scripts' entry points (`bench/main.ts`, `faults/main.ts`) as
 * `npm run` does, with only PATH, HOME and `env`; resolves with its exit code and output.
 */
export function runTsEntry(entry: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return run(process.execPath, ['--import', 'tsx', entry, ...args], env);
}

/** The last stdout line of a benchmark or fault run: its JSON summary. */
export function summaryLine(result: CliResult): Record<string, unknown> {
  const last = result.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as Record<string, unknown>;
}
