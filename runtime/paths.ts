import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The folder holding Tenure's package.json, whether running from source or from dist/. */
export function projectRoot(): string {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) || dir.endsWith(`${path.sep}dist`)) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`Cannot find Tenure's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  cached = dir;
  return dir;
}

/** Where the built web console lives (`npm run build:console`); the API serves it at /console. */
export function consoleDistDir(): string {
  return path.join(projectRoot(), 'dist', 'console');
}

/** Tenure's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
