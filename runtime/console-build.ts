import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildApiDocument } from '../api/document.js';
import { consoleDistDir, packageVersion, projectRoot } from './paths.js';

const consoleDir = () => path.join(projectRoot(), 'console');
const schemaFile = () => path.join(consoleDir(), 'src', 'api', 'schema.d.ts');
const stampFile = () => path.join(consoleDistDir(), '.inputs.sha256');

/**
 * Writes console/src/api/schema.d.ts from the API's own OpenAPI document (openapi-typescript).
 * The console's client is typed by it, so a route or field the API drops fails its typecheck.
 */
export async function generateConsoleTypes(document: object = buildApiDocument(packageVersion())): Promise<string> {
  const { default: openapiTS, astToString } = await import('openapi-typescript');
  const ast = await openapiTS(document as Parameters<typeof openapiTS>[0]);
  const text = `// Generated from the API's OpenAPI document by \`npm run build:console\`; not committed.\n${astToString(ast)}`;
  const file = schemaFile();
  const current = existsSync(file) ? await readFile(file, 'utf8') : '';
  if (current !== text) await writeFile(file, text);
  return text;
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

/**
 * A hash of everything the build reads: the console's sources, the API document its types are
 * generated from, and the lockfile (the generator's and Vite's versions).
 */
async function inputsHash(document: object): Promise<string> {
  const hash = createHash('sha256').update(JSON.stringify(document));
  for (const file of await listFiles(consoleDir())) {
    if (file === schemaFile()) continue;
    hash.update(path.relative(consoleDir(), file)).update(await readFile(file));
  }
  hash.update(await readFile(path.join(projectRoot(), 'package-lock.json')));
  return hash.digest('hex');
}

export interface ConsoleBuild {
  dir: string;
  /** False when the previous build had the same inputs. */
  built: boolean;
  seconds: number;
}

/** Builds the console with Vite into dist/console, unless it was built from the same inputs already. */
export async function buildConsole(options: { force?: boolean } = {}): Promise<ConsoleBuild> {
  const started = performance.now();
  const document = buildApiDocument(packageVersion());
  const hash = await inputsHash(document);
  const dir = consoleDistDir();
  const previous = existsSync(stampFile()) ? (await readFile(stampFile(), 'utf8')).trim() : '';
  // Unchanged inputs: not even the types are generated again (openapi-typescript takes seconds to load).
  if (!options.force && previous === hash && existsSync(path.join(dir, 'index.html')) && existsSync(schemaFile())) {
    return { dir, built: false, seconds: (performance.now() - started) / 1000 };
  }
  await generateConsoleTypes(document);
  const { build } = await import('vite');
  await build({ configFile: path.join(consoleDir(), 'vite.config.ts'), logLevel: 'warn' });
  await writeFile(stampFile(), `${hash}\n`);
  return { dir, built: true, seconds: (performance.now() - started) / 1000 };
}
