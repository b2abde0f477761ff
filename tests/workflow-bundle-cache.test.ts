import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../runtime/paths.js';
import { cachedWorkflowBundle, workflowBundleKey, workflowSourceFiles } from '../worker/bundle-cache.js';
import { workflowsEntryPath } from '../worker/worker.js';

/** npm start and the tests keep workflow bundles keyed by their inputs; a changed input must bundle again. */
let dir: string;
const lockfile = path.join(projectRoot(), 'package-lock.json');

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenure-bundle-cache-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('workflow bundle key', () => {
  it('covers the project files the workflows import by value, not the activities they import as types', async () => {
    const files = (await workflowSourceFiles([workflowsEntryPath()])).map((file) => path.relative(projectRoot(), file));
    expect(files).toContain('workflows/grants/workflow.ts');
    expect(files).toContain('core/grants/contract.ts');
    expect(files.filter((file) => file.startsWith('activities/'))).toEqual([]);
  });

  it('changes with a value import, the lockfile and the tracing option; not with a type-only import', async () => {
    const src = path.join(dir, 'src');
    await rm(src, { recursive: true, force: true });
    await mkdir(src, { recursive: true });
    const entry = path.join(src, 'index.ts');
    await writeFile(
      entry,
      "import type { T } from './types.js';\nimport {\n  helper,\n} from './helper.js';\nexport const x: T = helper();\n",
    );
    await writeFile(path.join(src, 'helper.ts'), 'export const helper = () => 1;\n');
    await writeFile(path.join(src, 'types.ts'), 'export type T = number;\n');
    const lock = path.join(dir, 'package-lock.json');
    await writeFile(lock, '{"lockfileVersion":3}');
    const key = () => workflowBundleKey({}, lock, [entry]);

    const first = await key();
    expect(await key()).toBe(first);
    await writeFile(path.join(src, 'types.ts'), 'export type T = 1 | 2;\n');
    expect(await key()).toBe(first);
    await writeFile(path.join(src, 'helper.ts'), 'export const helper = () => 2;\n');
    const second = await key();
    expect(second).not.toBe(first);
    await writeFile(lock, '{"lockfileVersion":3,"packages":{}}');
    const third = await key();
    expect(third).not.toBe(second);
    expect(await workflowBundleKey({ tracing: true }, lock, [entry])).not.toBe(third);
  });
});

describe('cached workflow bundle', () => {
  it('bundles once per inputs, bundles again when an input changes, and drops the bundle it replaced', async () => {
    const cache = path.join(dir, 'cache');
    const lock = path.join(dir, 'lock.json');
    await copyFile(lockfile, lock);
    const built = await cachedWorkflowBundle(cache, lock);
    expect(built.built).toBe(true);
    expect(await cachedWorkflowBundle(cache, lock)).toEqual({ path: built.path, built: false });

    await writeFile(lock, '\n', { flag: 'a' }); // a dependency changed
    const rebuilt = await cachedWorkflowBundle(cache, lock);
    expect(rebuilt.built).toBe(true);
    expect(rebuilt.path).not.toBe(built.path);
    expect(await readdir(cache)).toEqual([path.basename(rebuilt.path)]);
  });
});
