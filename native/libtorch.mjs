// Finds libtorch for the native build and prints what binding.gyp asks for.
// Order (issue #2): $LIBTORCH; a Python `torch` install (how CUDA builds happen); Debian's libtorch-dev.
// Usage: node native/libtorch.mjs json|include|libdir|libs|defines
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

function fromRoot(root, source, abi) {
  const include = join(root, 'include');
  const libdir = join(root, 'lib');
  if (!existsSync(join(include, 'ATen', 'ATen.h')) || !existsSync(join(libdir, 'libtorch.so'))) return null;
  const cuda = existsSync(join(libdir, 'libtorch_cuda.so'));
  const found = {
    source,
    include: [include, join(include, 'torch', 'csrc', 'api', 'include')],
    libdir,
    libs: ['c10', 'torch', 'torch_cpu', ...(cuda ? ['torch_cuda', 'c10_cuda'] : [])],
    cuda,
    cxx11abi: abi,
  };
  if (cuda) {
    // c10/cuda's headers include the CUDA runtime's: from the toolkit, or pip's nvidia-cuda-runtime wheel
    // beside torch (site-packages/nvidia/cuda_runtime/include).
    const site = join(root, '..');
    const runtime = [
      process.env.CUDA_HOME && join(process.env.CUDA_HOME, 'include'),
      '/usr/local/cuda/include',
      join(site, 'nvidia', 'cuda_runtime', 'include'),
      '/usr/include',
    ].find((d) => d && existsSync(join(d, 'cuda_runtime_api.h')));
    if (!runtime) {
      found.cuda = false;
      found.libs = found.libs.filter((l) => !l.includes('cuda'));
      found.warning =
        'libtorch has CUDA but no cuda_runtime_api.h was found (set CUDA_HOME): building CPU-only';
    } else {
      if (runtime !== '/usr/include') found.include.push(runtime);
      // NCCL's header: pip's nvidia-nccl wheel, or a system install.
      found.ncclInclude = [join(site, 'nvidia', 'nccl', 'include'), runtime, '/usr/include'].find((d) =>
        existsSync(join(d, 'nccl.h')),
      );
    }
  }
  return withDistributed(found);
}

// c10d (issue #9): built in when the libtorch has the c10d headers and gloo's headers are found (a pip
// torch ships them under include/gloo; Debian in libgloo-dev, whose library is linked too). NCCL comes with
// CUDA builds that ship ProcessGroupNCCL.hpp.
function withDistributed(found) {
  const c10d = (dir) => join(dir, 'torch', 'csrc', 'distributed', 'c10d');
  const include = found.include[0];
  const glooDirs = [include, '/usr/include', '/usr/local/include'];
  const glooDir = glooDirs.find((d) => existsSync(join(d, 'gloo', 'algorithm.h')));
  found.distributed = existsSync(join(c10d(include), 'ProcessGroupGloo.hpp')) && glooDir !== undefined;
  found.nccl =
    found.distributed &&
    found.cuda &&
    found.ncclInclude !== undefined &&
    existsSync(join(c10d(include), 'ProcessGroupNCCL.hpp'));
  if (found.nccl && !found.include.includes(found.ncclInclude)) found.include.push(found.ncclInclude);
  if (found.distributed && glooDir !== include) {
    found.include.push(glooDir);
    const lib = [
      '/usr/lib/x86_64-linux-gnu',
      '/usr/lib/aarch64-linux-gnu',
      '/usr/lib',
      '/usr/local/lib',
    ].find((d) => existsSync(join(d, 'libgloo.so')));
    if (lib) found.libs.push(join(lib, 'libgloo.so'));
  }
  return found;
}

function fromPython(python) {
  try {
    const script =
      'import os, torch; print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI)); print(torch.__version__)';
    const out = execFileSync(python, ['-c', script], {
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 60_000,
    });
    const [dir, abi] = out.toString().trim().split('\n');
    if (!dir) return null;
    return fromRoot(dir, `python torch (${python})`, abi === '1');
  } catch {
    return null;
  }
}

function fromDebian() {
  const multiarch = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib'];
  if (!existsSync('/usr/include/ATen/ATen.h')) return null;
  const libdir = multiarch.find((d) => existsSync(join(d, 'libtorch.so')));
  if (!libdir) return null;
  return withDistributed({
    source: 'system libtorch (Debian libtorch-dev)',
    include: ['/usr/include', '/usr/include/torch/csrc/api/include'],
    libdir,
    libs: ['c10', 'torch', 'torch_cpu'],
    cuda: false,
    cxx11abi: true,
  });
}

export function findLibtorch() {
  if (process.env.LIBTORCH) {
    const found = fromRoot(process.env.LIBTORCH, `$LIBTORCH=${process.env.LIBTORCH}`, true);
    if (!found) {
      throw new Error(`LIBTORCH=${process.env.LIBTORCH} has no include/ATen/ATen.h and lib/libtorch.so`);
    }
    if (process.env.LIBTORCH_CXX11_ABI === '0') found.cxx11abi = false;
    return found;
  }
  for (const python of ['python3', '/usr/bin/python3']) {
    const found = fromPython(python);
    if (found) return found;
  }
  return fromDebian();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const found = findLibtorch();
  const what = process.argv[2] ?? 'json';
  if (!found) {
    if (what === 'json') console.log('null');
    process.exit(what === 'json' ? 0 : 1);
  }
  const print = {
    json: () => JSON.stringify(found),
    include: () => found.include.join(' '),
    libdir: () => found.libdir,
    libs: () => found.libs.map((l) => (l.startsWith('/') ? l : `-l${l}`)).join(' '),
    defines: () =>
      [
        `_GLIBCXX_USE_CXX11_ABI=${found.cxx11abi ? 1 : 0}`,
        ...(found.cuda ? ['HHKIT_CUDA=1'] : []),
        ...(found.distributed ? ['HHKIT_DIST=1', 'USE_C10D_GLOO=1'] : []),
        ...(found.nccl ? ['HHKIT_NCCL=1', 'USE_C10D_NCCL=1'] : []),
      ].join(' '),
  }[what];
  console.log(print ? print() : '');
}
