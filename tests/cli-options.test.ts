import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { runCli, runCliOk } from './support/cli.js';

/** The program's own options against a subcommand's: `--version` after a subcommand is never the program's version. */
describe('tenure options', () => {
  it('--version before any subcommand prints the package version; after a subcommand it is refused, not swallowed', async () => {
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect((await runCliOk(['--version'])).stdout.trim()).toBe(version);
    const after = await runCli(['template', 'show', 'some-template', '--version']);
    expect(after.code).not.toBe(0);
    expect(after.stdout).not.toContain(version);
    expect(after.stderr).toContain("unknown option '--version'");
  });
});
