// Engine benchmarks vs PyTorch on the same machine and threads: sgemm GFLOP/s through the addon and the
// per-op overhead of a tiny add. Prints one JSON line per figure.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getNumThreads, randn, setNumThreads, tidy, zeros } from '../src/index.ts';

export interface BenchLine {
  bench: string;
  ours: number;
  reference: number | null;
  unit: string;
  /** ours / reference. */
  ratio: number | null;
  higherIsBetter: boolean;
  note?: string;
}

// Best of the trials: on a shared machine the fastest trial is the one least disturbed by other work.
const best = (xs: number[]): number => Math.min(...xs);

function gemm(m: number, k: number, n: number, reps: number): { gflops: number; cpuPerWall: number } {
  const a = randn([m, k]);
  const b = randn([k, n]);
  for (let i = 0; i < 3; i++) a.matmul(b).dispose();
  const trials: number[] = [];
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (let t = 0; t < 5; t++) {
    const start = performance.now();
    for (let i = 0; i < reps; i++) a.matmul(b).dispose();
    trials.push((performance.now() - start) / 1000 / reps);
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuPerWall = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
  a.dispose();
  b.dispose();
  return { gflops: (2 * m * k * n) / best(trials) / 1e9, cpuPerWall };
}

function tinyAdd(n: number, scoped: boolean): number {
  const x = zeros([1]);
  const y = zeros([1]);
  const run = (count: number): void => {
    if (scoped) {
      // the way a training loop runs: ops inside tidy(), freed together at the end of the step
      for (let done = 0; done < count; done += 1000) {
        tidy(() => {
          for (let i = 0; i < 1000; i++) x.add(y);
        });
      }
    } else {
      for (let i = 0; i < count; i++) x.add(y).dispose();
    }
  };
  run(20_000);
  const trials: number[] = [];
  for (let t = 0; t < 5; t++) {
    const start = performance.now();
    run(n);
    trials.push(((performance.now() - start) * 1000) / n);
  }
  return best(trials);
}

/**
 * The PyTorch side's environment: `env` plus LD_PRELOAD=HHKIT_BENCH_REF_PRELOAD when that is set, so the
 * reference can run under another allocator (PyTorch's CPU tuning guide suggests tcmalloc or jemalloc)
 * without hhkit's side getting it too.
 *
 * @example spawnSync(python, [script], { env: referenceEnv({ ...process.env, OMP_NUM_THREADS: '2' }) });
 */
export function referenceEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const preload = process.env.HHKIT_BENCH_REF_PRELOAD;
  return preload ? { ...env, LD_PRELOAD: preload } : env;
}

/**
 * The Python that runs the PyTorch side: HHKIT_BENCH_PYTHON when set (e.g. a venv with a pip torch 2.x,
 * the PyTorch users install today), else Debian's /usr/bin/python3 with python3-torch (1.13).
 */
export const referencePython = (): string => process.env.HHKIT_BENCH_PYTHON || '/usr/bin/python3';

/** Figures of one side of a suite bench: suite name → figure name → value. */
export type SuiteFigures = Record<string, Record<string, number>>;

/**
 * Runs one side of a bench as a child process with `threads` intra-op and BLAS threads (and `env` on top;
 * a non-Node command gets referenceEnv) and parses the last stdout line as JSON; null, with the child's
 * stderr, on failure.
 */
export function benchSide<T = SuiteFigures>(
  cmd: string,
  args: string[],
  threads: number,
  env: NodeJS.ProcessEnv = {},
): T | null {
  const base = {
    ...process.env,
    OPENBLAS_NUM_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
    ...env,
  };
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    env: cmd === process.execPath ? base : referenceEnv(base),
    maxBuffer: 1 << 24, // a chatty child (warnings, progress) is not cut off at the 1 MiB default
  });
  if (r.status !== 0) {
    console.error(`[bench] ${cmd} ${args[0] ?? ''} failed:\n${r.stderr}`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}

/** Keeps each figure's best over rounds: the highest where `higher(key)`, else the lowest. */
export function keepBest(
  into: SuiteFigures,
  from: SuiteFigures | null,
  higher: (key: string) => boolean,
): void {
  if (!from) return;
  for (const [suite, figures] of Object.entries(from)) {
    if (typeof figures !== 'object') continue;
    const dst = into[suite] ?? {};
    into[suite] = dst;
    for (const [k, v] of Object.entries(figures)) {
      const cur = dst[k];
      dst[k] = cur === undefined ? v : higher(k) ? Math.max(cur, v) : Math.min(cur, v);
    }
  }
}

function reference(threads: number): Record<string, number> | null {
  const python = referencePython();
  if (!existsSync(python)) return null;
  const script = fileURLToPath(new URL('./engine_ref.py', import.meta.url));
  return benchSide<Record<string, number>>(python, [script, String(threads)], threads);
}

export function runEngineBench(threads: number): BenchLine[] {
  setNumThreads(threads);
  const lines: BenchLine[] = [];
  const line = (
    bench: string,
    ours: number,
    ref: number | undefined,
    unit: string,
    higher: boolean,
    note?: string,
  ) => {
    const reference = ref ?? null;
    lines.push({
      bench,
      ours: Number(ours.toFixed(3)),
      reference: reference === null ? null : Number(reference.toFixed(3)),
      unit,
      ratio: reference === null ? null : Number((ours / reference).toFixed(3)),
      higherIsBetter: higher,
      ...(note ? { note } : {}),
    });
  };
  // Ours and the reference alternate, three rounds each, and each side keeps its best round, so a burst
  // of other work on the machine cannot favour one side.
  const ours = { g1: 0, g2: 0, g1Cpu: 0, g2Cpu: 0, addScoped: Infinity, addDisposed: Infinity };
  let ref: Record<string, number> | null = null;
  for (let round = 0; round < 3; round++) {
    const g1 = gemm(1024, 1024, 1024, 10);
    const g2 = gemm(64, 768, 3072, 100);
    if (g1.gflops > ours.g1) [ours.g1, ours.g1Cpu] = [g1.gflops, g1.cpuPerWall];
    if (g2.gflops > ours.g2) [ours.g2, ours.g2Cpu] = [g2.gflops, g2.cpuPerWall];
    ours.addScoped = Math.min(ours.addScoped, tinyAdd(100_000, true));
    ours.addDisposed = Math.min(ours.addDisposed, tinyAdd(100_000, false));
    const r = reference(threads);
    if (r && ref) {
      for (const k of ['sgemm_1024', 'sgemm_64x768x3072']) ref[k] = Math.max(ref[k]!, r[k]!);
      ref['tiny_add_us'] = Math.min(ref['tiny_add_us']!, r['tiny_add_us']!);
    } else ref = r;
  }
  const g1 = { gflops: ours.g1, cpuPerWall: ours.g1Cpu };
  const g2 = { gflops: ours.g2, cpuPerWall: ours.g2Cpu };
  const addScoped = ours.addScoped;
  const addDisposed = ours.addDisposed;
  const threadNote = `threads=${getNumThreads()}`;
  line(
    'sgemm 1024x1024x1024',
    g1.gflops,
    ref?.['sgemm_1024'],
    'GFLOP/s',
    true,
    `${threadNote}; cpu/wall ${g1.cpuPerWall.toFixed(2)}`,
  );
  line(
    'sgemm 64x768x3072',
    g2.gflops,
    ref?.['sgemm_64x768x3072'],
    'GFLOP/s',
    true,
    `${threadNote}; cpu/wall ${g2.cpuPerWall.toFixed(2)}`,
  );
  line(
    'tiny add, inside tidy()',
    addScoped,
    ref?.['tiny_add_us'],
    'us/op',
    false,
    'includes freeing the result',
  );
  line(
    'tiny add + dispose()',
    addDisposed,
    ref?.['tiny_add_us'],
    'us/op',
    false,
    'includes freeing the result',
  );
  return lines;
}
