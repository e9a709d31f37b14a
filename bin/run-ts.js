#!/usr/bin/env node
// Runs a TypeScript entry point through tsx: node bin/run-ts.js FILE.ts [args…]
import { spawnSync } from 'node:child_process';

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bin/run-ts.js FILE.ts [args…]');
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...rest], { stdio: 'inherit' });
process.exit(r.status ?? 1);
