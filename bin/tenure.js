#!/usr/bin/env node
// The `tenure` command: compiled code when built (`npm run build`), the TypeScript source otherwise.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (existsSync(compiled)) {
  await import(compiled);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(fileURLToPath(new URL('../cli/main.ts', import.meta.url)));
}
