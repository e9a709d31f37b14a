#!/usr/bin/env node
// The `hhkit` command: runs src/cli/main.ts through tsx (no separate build step).
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.ts');
await import(pathToFileURL(main).href);
