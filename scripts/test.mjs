#!/usr/bin/env node
// Runs lint, typecheck and every colocated *.test.ts with node's built-in test runner (through tsx).
//   node scripts/test.mjs [substring …]   only test files whose path contains one of the substrings
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const bin = (name) => join(root, 'node_modules', '.bin', name);
// Test files run two at a time; one torch thread each keeps 2 cores from being oversubscribed (tiny ops
// under OpenMP contention run ~10x slower).
const env = { ...process.env, HHKIT_NUM_THREADS: process.env.HHKIT_NUM_THREADS ?? '1' };
function step(title, cmd, args) {
  console.error(`\n== ${title}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`\n${title} failed`);
    process.exit(r.status ?? 1);
  }
}

if (filters.length === 0) {
  const linted = ['src', 'bench', 'scripts', 'bin', 'native/libtorch.mjs', 'examples', 'test'];
  step('lint (biome)', bin('biome'), ['check', ...linted]);
  step('typecheck (tsc)', bin('tsc'), ['--noEmit', '-p', '.']);
}
const files = walk(join(root, 'src'), []).concat(walk(join(root, 'test'), []));
const selected = filters.length ? files.filter((f) => filters.some((s) => f.includes(s))) : files;
if (selected.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const concurrency = process.env.HHKIT_TEST_CONCURRENCY ?? '2';
step(`tests (${selected.length} files)`, process.execPath, [
  '--import',
  'tsx',
  '--test',
  `--test-concurrency=${concurrency}`,
  '--test-reporter=spec',
  ...selected.sort(),
]);
