#!/usr/bin/env node
// Compiles src/ into dist/ (ESM JavaScript, .d.ts types, source maps with the sources inlined) and copies
// the files src needs at run time that are not TypeScript (the web app of `hhkit serve`). Run by `npm run
// build` and by npm before it packs (prepack), so a packed tarball always has a fresh dist/.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('build: tsc failed (see above)');
  process.exit(r.status ?? 1);
}
cpSync(join(root, 'src', 'server', 'public'), join(dist, 'server', 'public'), { recursive: true });
