#!/usr/bin/env node
// The hhkit package's npm `install` step, and `hhkit setup` (which runs it with --setup).
//   node scripts/install.mjs              npm install: build the native addon against the libtorch found;
//                                         when none is (or no compiler), succeed anyway and say what to run
//   node scripts/install.mjs --setup [--rebuild]
//                                         `npx hhkit setup`: also install libtorch-dev (and a compiler) with
//                                         apt when root; any problem is an error (exit 1)
// In a clone (src/ beside scripts/) the install step does nothing: scripts/setup.mjs builds there, after
// npm ci. HHKIT_SKIP_NATIVE=1 skips the install-time build (CI without libtorch).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildAddon, checkAddon, ensureLibtorch, packageRoot, SetupError, say } from './native-build.mjs';

const args = new Set(process.argv.slice(2));
const setup = args.has('--setup');

if (!setup && (existsSync(join(packageRoot, 'src')) || process.env.HHKIT_SKIP_NATIVE === '1'))
  process.exit(0);
try {
  const torch = await ensureLibtorch({ install: setup });
  const built = await buildAddon(torch, { force: args.has('--rebuild'), install: setup });
  checkAddon();
  say(built ? 'the native engine is built' : 'the native engine is already built and current');
} catch (err) {
  if (!(err instanceof SetupError)) throw err;
  if (setup) {
    console.error(`\n[setup] cannot continue: ${err.message}\n`);
    process.exit(1);
  }
  // npm install must not fail for a missing system library: the library's first tensor op says the same.
  say(`the native engine was not built: ${err.message}`);
  say('hhkit is installed; once that is fixed, run `npx hhkit setup` to build the engine.');
}
