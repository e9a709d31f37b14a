#!/usr/bin/env node
// The `hhkit` command. In a clone (src/ is here) it runs the TypeScript sources through tsx, so there is
// no build step while developing; in the npm package (no src/, only dist/) it runs the compiled JS and
// needs no tsx. A clone never runs a dist/ left over from `npm run build`/`npm pack`.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'src', 'cli', 'main.ts');
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(source).href);
} else {
  await import(pathToFileURL(join(root, 'dist', 'cli', 'main.js')).href);
}
