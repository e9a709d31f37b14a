#!/usr/bin/env node
// Installs what hhkit needs, if missing, then builds the native addon. Run by `npm test`, `npm run demo`
// and `npm run bench`, so a fresh Debian machine needs no other step.
//   node scripts/setup.mjs [--rebuild-native] [--bench] [--browser]
// --bench also ensures Debian's python3-torch (the PyTorch reference); --browser ensures chromium.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const setupStarted = Date.now();
const args = new Set(process.argv.slice(2));
const say = (msg) => console.error(`[setup] ${msg}`);

function fail(msg) {
  console.error(`\n[setup] cannot continue: ${msg}\n`);
  process.exit(1);
}

const isRoot = process.getuid?.() === 0;
const hasApt = existsSync('/usr/bin/apt-get') && existsSync('/usr/bin/dpkg');
let aptUpdated = false;

function dpkgInstalled(pkg) {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

function aptInstall(pkgs, why) {
  const missing = pkgs.filter((p) => !dpkgInstalled(p));
  if (missing.length === 0) return true;
  if (!hasApt || !isRoot) {
    return false;
  }
  say(`installing ${missing.join(' ')} (${why}) with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    const u = spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
    if (u.status !== 0) fail('`apt-get update` failed; check the network or your apt sources');
    aptUpdated = true;
  }
  const r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env,
  });
  if (r.status !== 0) fail(`\`apt-get install ${missing.join(' ')}\` failed`);
  return true;
}

// 1. Node version.
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) fail(`hhkit needs Node.js 20 or newer; this is ${process.version}`);

// 2. libtorch (+ a fast BLAS when it is Debian's).
const { findLibtorch } = await import(join(root, 'native', 'libtorch.mjs'));
let torch = findLibtorch();
if (!torch) {
  const ok = aptInstall(['libtorch-dev', 'libopenblas0-pthread'], 'libtorch for the native engine');
  if (!ok) {
    fail(
      'libtorch was not found. Either\n' +
        '  - on Debian/Ubuntu: sudo apt-get install libtorch-dev libopenblas0-pthread\n' +
        '  - or install PyTorch for python3 (`pip install torch`); hhkit builds against torch/include and torch/lib\n' +
        '  - or set LIBTORCH=/path/to/libtorch (an unpacked libtorch with include/ and lib/)',
    );
  }
  torch = findLibtorch();
  if (!torch) fail('libtorch-dev was installed but its headers/libraries were not found under /usr');
}
if (torch.source.includes('Debian') || torch.libdir.startsWith('/usr/lib/python3/dist-packages')) {
  // Without an optimised BLAS, Debian's torch falls back to reference BLAS: ~10x slower matmuls.
  if (
    !dpkgInstalled('libopenblas0-pthread') &&
    !aptInstall(['libopenblas0-pthread'], 'fast BLAS for libtorch')
  ) {
    say('WARNING: libopenblas0-pthread is not installed; matmuls will be ~10x slower.');
    say('         fix: sudo apt-get install libopenblas0-pthread');
  }
}
if (!torch.distributed && (torch.source.includes('Debian') || torch.libdir.startsWith('/usr/lib/python3'))) {
  // Debian's libtorch has c10d but ships gloo's headers separately; without them `hhkit launch` can't train.
  if (aptInstall(['libgloo-dev'], 'gloo headers for data-parallel training')) torch = findLibtorch();
  if (!torch.distributed) {
    say('WARNING: libgloo-dev is not installed; multi-process training (`hhkit launch`) is disabled.');
    say('         fix: sudo apt-get install libgloo-dev');
  }
}
if (args.has('--bench')) {
  if (!aptInstall(['python3-torch'], 'PyTorch reference for benchmarks')) {
    say('WARNING: python3-torch is missing; benchmarks will print no reference figure.');
    say('         fix: sudo apt-get install python3-torch');
  }
}
if (args.has('--browser')) {
  if (!aptInstall(['chromium'], 'headless browser for web-interface tests')) {
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

const nativeDir = join(root, 'native');
const addon = join(nativeDir, 'build', 'Release', 'hhkit.node');
const nativeHash = createHash('sha256');
for (const f of readdirSync(nativeDir).sort()) {
  const p = join(nativeDir, f);
  if (statSync(p).isFile()) nativeHash.update(f).update(readFileSync(p));
}
nativeHash.update(JSON.stringify(torch)).update(process.versions.node);
const nativeStamp = join(nativeDir, 'build', '.hhkit-stamp');
const wantStamp = nativeHash.digest('hex');
const needNative =
  args.has('--rebuild-native') ||
  !existsSync(addon) ||
  !existsSync(nativeStamp) ||
  readFileSync(nativeStamp, 'utf8') !== wantStamp;
if (needNative && !existsSync('/usr/bin/g++') && !existsSync('/usr/bin/c++')) {
  if (!aptInstall(['g++', 'make', 'python3'], 'C++ compiler for the native addon')) {
    fail('a C++ compiler is needed: sudo apt-get install g++ make python3');
  }
}

// 4. Both at once when both are needed: most of `npm ci` is better-sqlite3 compiling SQLite, one source
//    file on one core, so the addon builds on the other core meanwhile, with npm's own node-gyp (the
//    project's is not installed yet). Without npm's node-gyp they run one after the other.
const localGyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const gyp = needPackages ? (npmNodeGyp() ?? null) : localGyp;
const nativeBuild = needNative && gyp ? buildNative(gyp) : null;
if (needPackages) {
  say('installing npm packages');
  const cmd = existsSync(lock) ? 'ci' : 'install';
  const r = await run('npm', [cmd, '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  // A failed build is reported after npm has finished, so the two outputs do not interleave.
  if (nativeBuild) reportNative(await nativeBuild);
  if (r.status !== 0) fail(`\`npm ${cmd}\` failed (see above); the npm registry must be reachable`);
  writeFileSync(stampFile, depsHash);
}
if (needNative && !nativeBuild) reportNative(await buildNative(localGyp));
else if (nativeBuild && !needPackages) reportNative(await nativeBuild);

/** node-gyp as bundled with the npm that runs us (npm sets npm_config_node_gyp for scripts), or null. */
function npmNodeGyp() {
  const candidates = [process.env.npm_config_node_gyp];
  if (process.env.npm_execpath)
    candidates.push(
      join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    );
  const g = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  if (g.status === 0)
    candidates.push(join(g.stdout.trim(), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((p) => p && existsSync(p)) ?? null;
}

/** Runs a command without blocking, resolving to { status } when it ends. */
function run(cmd, argv, opts) {
  return new Promise((resolveRun) => {
    const child = spawn(cmd, argv, opts);
    child.on('error', (e) => resolveRun({ status: 1, error: e }));
    child.on('close', (status) => resolveRun({ status }));
  });
}

/** Builds the addon with node-gyp at `gypPath`; its output goes to a log shown only when it fails. */
async function buildNative(gypPath) {
  if (torch.warning) say(`WARNING: ${torch.warning}`);
  const extras = [torch.cuda && 'CUDA', torch.distributed && 'c10d gloo', torch.nccl && 'NCCL'].filter(
    Boolean,
  );
  const log = join(root, '.hhkit-cache', 'native-build.log');
  mkdirSync(dirname(log), { recursive: true });
  say(
    `building the native addon against ${torch.source}${extras.length ? ` with ${extras.join(', ')}` : ''} (about a minute; log: ${log})`,
  );
  const started = Date.now();
  const gypArgs = [
    'rebuild',
    '--release',
    `-j`,
    String(Math.max(1, Math.min(4, (await import('node:os')).cpus().length))),
  ];
  // Build against the local Node headers when the distribution ships them (no download needed).
  if (existsSync(join(process.execPath, '..', '..', 'include', 'node', 'node_api.h'))) {
    gypArgs.push(`--nodedir=${join(process.execPath, '..', '..')}`);
  }
  const out = openSync(log, 'w');
  const r = await run(process.execPath, [gypPath, ...gypArgs], {
    cwd: nativeDir,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  if (r.status === 0) {
    mkdirSync(dirname(nativeStamp), { recursive: true });
    writeFileSync(nativeStamp, wantStamp);
    writeFileSync(join(nativeDir, 'build', 'libtorch.json'), JSON.stringify(torch, null, 2));
  }
  return { ok: r.status === 0, log, seconds: Math.round((Date.now() - started) / 1000) };
}

/** Says how the addon build went; on failure shows the end of its log and stops. */
function reportNative({ ok, log, seconds }) {
  if (ok) return say(`native addon built in ${seconds} s`);
  console.error(readFileSync(log, 'utf8').split('\n').slice(-60).join('\n'));
  fail(`the native build failed (the compiler output above; all of it in ${log})`);
}
execFileSync(process.execPath, ['-e', `require(${JSON.stringify(addon)})`], { stdio: 'inherit' });

// How long this setup took, for `hhkit demo`'s time claim when it runs right after (npm run demo).
mkdirSync(join(root, '.hhkit-cache'), { recursive: true });
writeFileSync(
  join(root, '.hhkit-cache', 'setup.json'),
  JSON.stringify({ seconds: (Date.now() - setupStarted) / 1000, finishedAt: new Date().toISOString() }),
);
