#!/usr/bin/env node
// Installs what hhkit needs, if missing, then builds the native addon. Run by `npm test`, `npm run demo`
// and `npm run bench`, so a fresh Debian machine needs no other step.
//   node scripts/setup.mjs [--rebuild-native] [--bench] [--browser]
// --bench also ensures Debian's python3-torch (the PyTorch reference); --browser ensures chromium.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  addonIsCurrent,
  aptInstall,
  buildAddon,
  checkAddon,
  ensureLibtorch,
  nodeGypScript,
  SetupError,
  say,
} from './native-build.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const setupStarted = Date.now();
const args = new Set(process.argv.slice(2));

function fail(msg) {
  console.error(`\n[setup] cannot continue: ${msg}\n`);
  process.exit(1);
}
/** Runs a step of native-build.mjs, turning its SetupError into fail(). */
async function step(fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SetupError) fail(err.message);
    throw err;
  }
}

// 1. Node version.
// As package.json's engines (^20.17.0 || >=22.9.0): npm 11 and its node-gyp need those.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 17) || (major === 22 && minor < 9))
  fail(
    `hhkit needs Node.js 20.17+, 22.9+ or newer (22, 24 and 26 are supported); this is ${process.version}`,
  );

// 2. libtorch (+ a fast BLAS and gloo's headers when it is Debian's), installed with apt when root.
const torch = await step(() => ensureLibtorch());
if (args.has('--bench')) {
  if (!(await step(() => aptInstall(['python3-torch'], 'PyTorch reference for benchmarks')))) {
    say('WARNING: python3-torch is missing; benchmarks will print no reference figure.');
    say('         fix: sudo apt-get install python3-torch');
  }
}
if (args.has('--browser')) {
  if (!(await step(() => aptInstall(['chromium'], 'headless browser for web-interface tests')))) {
    fail('chromium is missing; install it: sudo apt-get install chromium');
  }
}

// 3. What needs doing: the npm packages (reinstalled when package.json or the lockfile changed) and the
//    native addon (rebuilt when its sources or the libtorch it links changed).
const lock = join(root, 'package-lock.json');
const stampFile = join(root, 'node_modules', '.hhkit-install-stamp');
// Only what npm installs counts: editing `scripts` in package.json must not trigger a reinstall.
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const depsHash = createHash('sha256')
  .update(JSON.stringify([pkg.dependencies, pkg.devDependencies, pkg.allowScripts]))
  .update(existsSync(lock) ? readFileSync(lock) : '')
  .digest('hex');
const needPackages = !existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== depsHash;
const needNative = args.has('--rebuild-native') || !addonIsCurrent(torch);

// 4. Both at once when both are needed: most of `npm ci` is better-sqlite3 compiling SQLite, one source
//    file on one core, so the addon builds on the other core meanwhile, with npm's own node-gyp (the
//    project's is not installed yet). Without npm's node-gyp they run one after the other.
const log = join(root, '.hhkit-cache', 'native-build.log');
const build = (gyp) =>
  buildAddon(torch, { force: true, gyp, log }).then(
    () => null,
    (err) => err,
  );
const npmGyp = needPackages ? nodeGypScript({ npmOnly: true }) : null;
const nativeBuild = needNative && (!needPackages || npmGyp) ? build(npmGyp ?? undefined) : null;
if (needPackages) {
  say('installing npm packages');
  const cmd = existsSync(lock) ? 'ci' : 'install';
  const status = await new Promise((done) => {
    const child = spawn('npm', [cmd, '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
    child.on('error', () => done(1));
    child.on('close', (code) => done(code));
  });
  // A failed build is reported after npm has finished, so the two outputs do not interleave.
  if (nativeBuild) await step(async () => rethrow(await nativeBuild));
  if (status !== 0) fail(`\`npm ${cmd}\` failed (see above); the npm registry must be reachable`);
  writeFileSync(stampFile, depsHash);
}
if (needNative && !nativeBuild) await step(async () => rethrow(await build(undefined)));
else if (nativeBuild && !needPackages) await step(async () => rethrow(await nativeBuild));
await step(() => checkAddon());

function rethrow(err) {
  if (err) throw err;
}

// How long this setup took, for `hhkit demo`'s time claim when it runs right after (npm run demo).
mkdirSync(join(root, '.hhkit-cache'), { recursive: true });
writeFileSync(
  join(root, '.hhkit-cache', 'setup.json'),
  JSON.stringify({ seconds: (Date.now() - setupStarted) / 1000, finishedAt: new Date().toISOString() }),
);
