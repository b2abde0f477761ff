import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { failureConverterPath } from '../core/payload-codec.js';
import { bundleWorkflows, workflowsEntryPath, type BundleOptions } from './worker.js';

/** Bumped when the way a bundle is made changes without any of its inputs changing. */
const CACHE_FORMAT = 1;

const require = createRequire(import.meta.url);

/**
 * Relative imports of a module by value (`import type` / `export type` are erased before
 * bundling, so they cannot change the bundle). Over-approximates: a commented-out import counts.
 */
const VALUE_IMPORT = /(?:^|[\n;])\s*(import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/g;
const DYNAMIC_IMPORT = /import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function resolveSource(from: string, specifier: string): string | undefined {
  const target = path.resolve(path.dirname(from), specifier);
  const candidates = target.endsWith('.js')
    ? [target.replace(/\.js$/, '.ts'), target]
    : [target, `${target}.ts`, path.join(target, 'index.ts')];
  return candidates.find((candidate) => existsSync(candidate));
}

/** Every project file the bundler can reach from `entries` through relative value imports. */
export async function workflowSourceFiles(entries: string[]): Promise<string[]> {
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = await readFile(file, 'utf8');
    for (const pattern of [VALUE_IMPORT, DYNAMIC_IMPORT]) {
      for (const match of text.matchAll(pattern)) {
        const specifier = match[match.length - 1]!;
        const resolved = resolveSource(file, specifier);
        // An import that resolves to nothing fails the bundler itself; keep its text in the key.
        queue.push(resolved ?? `${file}\0${specifier}`);
        if (!resolved) seen.add(`${file}\0${specifier}`);
      }
    }
  }
  return [...seen].filter((file) => !file.includes('\0')).sort();
}

async function packageVersion(name: string): Promise<string> {
  return (JSON.parse(await readFile(require.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
}

/**
 * What the bundle is made of: the workflow sources (and the project files they import by value),
 * the SDK's version, the lockfile (any dependency the bundle pulls in) and the options.
 */
export async function workflowBundleKey(
  options: BundleOptions,
  lockfile: string,
  entries: string[] = [workflowsEntryPath(), failureConverterPath()],
): Promise<string> {
  const hash = createHash('sha256').update(JSON.stringify({ CACHE_FORMAT, tracing: options.tracing ?? false }));
  for (const name of ['@temporalio/worker', '@temporalio/workflow']) hash.update(`${name}@${await packageVersion(name)}\n`);
  hash.update(existsSync(lockfile) ? await readFile(lockfile) : 'no lockfile');
  const root = path.dirname(lockfile);
  for (const file of await workflowSourceFiles(entries)) {
    hash.update(`\n${path.relative(root, file)}\n`).update(await readFile(file));
  }
  return hash.digest('hex');
}

export interface CachedBundle {
  path: string;
  /** False when a bundle made from the same inputs was already in the cache. */
  built: boolean;
}

/**
 * The workflow bundle for these sources, from `dir` when one was made from the same inputs, else
 * bundled now (webpack: the slow part of a warm start) and kept there. Older bundles are removed.
 */
export async function cachedWorkflowBundle(dir: string, lockfile: string, options: BundleOptions = {}): Promise<CachedBundle> {
  const prefix = options.tracing ? 'workflow-bundle-traced-' : 'workflow-bundle-';
  const file = path.join(dir, `${prefix}${(await workflowBundleKey(options, lockfile)).slice(0, 32)}.js`);
  if (existsSync(file)) return { path: file, built: false };
  const code = await bundleWorkflows(options);
  await mkdir(dir, { recursive: true });
  // Written aside and renamed, so a concurrent start never reads half a bundle.
  const partial = `${file}.${process.pid}.partial`;
  await writeFile(partial, code);
  await rename(partial, file);
  for (const entry of await readdir(dir)) {
    const stale = /^[0-9a-f]{32}\.js$/.test(entry.slice(prefix.length)) && entry.startsWith(prefix) && path.join(dir, entry) !== file;
    if (stale) await rm(path.join(dir, entry), { force: true });
  }
  return { path: file, built: true };
}
