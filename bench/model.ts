// Model benchmarks vs PyTorch eager on the same machine and threads: GPT training tokens/s (forward,
// backward, AdamW) and KV-cache generation tokens/s, for issue 3's GPT (6 layers, 8 heads, 512 wide, T 256,
// vocab 8192) and a tiny one, plus a profile of one decoding step. PyTorch runs test/fixtures/nn/gpt_ref.py
// (bench/model_ref.py). Both sides run as child processes with the same environment, alternating rounds;
// each keeps its best round. Run as a script, this file is hhkit's side (prints one JSON object).
//
// On a GPU: HHKIT_BENCH_DEVICE=cuda runs GPT-2 125M (12×768, T 1024, vocab 50257) on both sides, in bf16
// autocast (HHKIT_BENCH_PRECISION=fp32 to change), both with torch's fused attention where torch ≥ 2.0 has
// it, and prints the model FLOPs utilisation (MFU) against the GPU's dense bf16 peak (HHKIT_PEAK_TFLOPS to
// override the table below).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { native } from '../src/engine/native.ts';
import {
  AdamW,
  addmm,
  autocast,
  crossEntropy,
  linear,
  ones,
  randint,
  randn,
  setNumThreads,
  synchronize,
  type Tensor,
  tidy,
  zeros,
} from '../src/engine/index.ts';
import { GPT, type GPTConfig } from '../src/nn/gpt.ts';
import { generateBatch } from '../src/nn/generate.ts';
import { type BenchLine, benchSide, keepBest, referencePython, type SuiteFigures } from './engine.ts';

interface Suite {
  name: string;
  config: Omit<GPTConfig, 'dropout'>;
  train: { batch: number; seq: number; steps: number };
  gen: { batch: number; prompt: number; newTokens: number; reps: number };
}

const gen = { batch: 32, prompt: 16, newTokens: 128 };
const ALL_SUITES: Suite[] = [
  {
    name: 'tiny',
    config: { nLayer: 2, nHead: 4, nEmbd: 64, nPositions: 256, vocabSize: 512 },
    train: { batch: 8, seq: 64, steps: 10 },
    gen: { ...gen, reps: 3 },
  },
  {
    name: 'gpt-6x512',
    config: { nLayer: 6, nHead: 8, nEmbd: 512, nPositions: 256, vocabSize: 8192 },
    train: { batch: 8, seq: 256, steps: 3 },
    gen: { ...gen, reps: 1 },
  },
  {
    name: 'gpt2-125m',
    config: { nLayer: 12, nHead: 12, nEmbd: 768, nPositions: 1024, vocabSize: 50257 },
    train: { batch: 8, seq: 1024, steps: 5 },
    gen: { ...gen, reps: 2 },
  },
];
const device = process.env.HHKIT_BENCH_DEVICE ?? 'cpu';
const onGpu = device !== 'cpu';
const precision = process.env.HHKIT_BENCH_PRECISION ?? (onGpu ? 'bf16' : 'fp32');
const bf16 = precision === 'bf16';
// HHKIT_BENCH_ONLY=tiny runs one suite (for profiling sessions). GPT-2 125M is the GPU suite only.
const only = process.env.HHKIT_BENCH_ONLY?.split(',') ?? (onGpu ? ['gpt2-125m'] : null);
const SUITES = ALL_SUITES.filter((s) => (only ? only.includes(s.name) : s.name !== 'gpt2-125m'));

/** Dense bf16 peak FLOP/s by GPU name (vendor datasheets, SXM parts without sparsity). */
function peakFlops(name: string): number | null {
  const env = Number(process.env.HHKIT_PEAK_TFLOPS);
  if (env > 0) return env * 1e12;
  const table: [RegExp, number][] = [
    [/H100|H200|GH200/, 989.4e12],
    [/A100/, 312e12],
    [/L40S/, 362e12],
    [/A10G?\b/, 125e12],
  ];
  return table.find(([re]) => re.test(name))?.[1] ?? null;
}

/** Training FLOPs per token (PaLM appendix B): 6·N for the matmuls with N parameters (positions excluded), plus attention's 12·L·C·T. */
function flopsPerToken(s: Suite): number {
  const { nLayer: L, nEmbd: C, vocabSize: V } = s.config;
  const n = L * (12 * C * C + 13 * C) + V * C + 2 * C;
  return 6 * n + 12 * L * C * s.train.seq;
}
const ROUNDS = 2;

type Figures = SuiteFigures;

// libgomp's default (ACTIVE) makes idle OpenMP threads spin; on a small shared machine they then fight
// OpenBLAS's own threads for the cores and small matmuls run 10x slower, for torch and hhkit alike (both use
// the same libtorch and OpenBLAS). Both sides get PASSIVE unless the caller sets OMP_WAIT_POLICY.
const ompWaitPolicy = process.env.OMP_WAIT_POLICY ?? 'PASSIVE';

// ---- hhkit's side (child process) ----

function trainTokS(model: GPT, s: Suite): number {
  const V = s.config.vocabSize;
  const { batch, seq, steps } = s.train;
  model.train();
  const opt = new AdamW(model.parameters(), { lr: 3e-4, weightDecay: 0.1 });
  const x = randint(0, V, [batch, seq], { device });
  const y = randint(0, V, [batch, seq], { device });
  const step = (): void =>
    tidy(() => {
      const logits = autocast({ device, enabled: bf16 }, () => model.forward(x).logits).float(); // (B, T, V)
      crossEntropy(logits.view(-1, V), y.view(-1)).backward();
      opt.step();
      opt.zeroGrad();
    });
  step(); // warm-up: allocates optimiser state
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < steps; i++) {
    synchronize();
    const start = performance.now();
    step();
    synchronize();
    best = Math.min(best, performance.now() - start);
  }
  return (batch * seq) / (best / 1000);
}

function runGeneration(model: GPT, s: Suite, newTokens: number): void {
  tidy(() => {
    const prompt = randint(1, s.config.vocabSize, [s.gen.batch, s.gen.prompt], { device });
    const mask = ones([s.gen.batch, s.gen.prompt], { dtype: 'bool', device });
    autocast({ device, enabled: bf16 }, () =>
      generateBatch(model, prompt, mask, { maxNewTokens: newTokens, padId: 0 }),
    );
    synchronize();
  });
}

function genTokS(model: GPT, s: Suite): number {
  model.eval();
  runGeneration(model, s, 8); // warm-up
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < s.gen.reps; i++) {
    const start = performance.now();
    runGeneration(model, s, s.gen.newTokens);
    best = Math.min(best, performance.now() - start);
  }
  return (s.gen.batch * s.gen.newTokens) / (best / 1000);
}

// Counts native calls by wrapping every function of the addon (Tensor methods look them up per call).
function countNativeCalls(): { calls: () => number } {
  let calls = 0;
  const table = native as unknown as Record<string, unknown>;
  for (const [name, fn] of Object.entries(table)) {
    if (typeof fn !== 'function') continue;
    const f = fn as (...args: unknown[]) => unknown;
    table[name] = (...args: unknown[]) => {
      calls++;
      return f(...args);
    };
  }
  return { calls: () => calls };
}

// Where a decoding step's time goes: the step, the matmuls of the step alone (same shapes; through linear()
// as the model runs them, and through sgemm), the matmul-bound limit (the step's FLOPs at the rate sgemm
// reaches on a large product), and the cost of the native calls at the measured per-call overhead.
function profile(model: GPT, s: Suite): Record<string, number> {
  const { nLayer, nEmbd: C, vocabSize: V } = s.config;
  const B = s.gen.batch;
  const short = 16;
  const time = (fn: () => void, reps: number): number => {
    fn();
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r < 3; r++) {
      const start = performance.now();
      for (let i = 0; i < reps; i++) fn();
      best = Math.min(best, (performance.now() - start) / reps);
    }
    return best;
  };
  const stepMs =
    (time(() => runGeneration(model, s, short + 1), 1) - time(() => runGeneration(model, s, 1), 1)) / short;
  // The step's matmuls: per layer c_attn (C→3C), attn c_proj (C→C), c_fc (C→4C), mlp c_proj (4C→C), then
  // the LM head (C→V), with biases, on (B, C) rows; each layer its own (out, in) weights, as in the model
  // (~90 MB at 6×512: they do not stay in cache between layers). `product` is linear() as the model calls it
  // (without autograd: the packed-weight path) or sgemm through addmm.
  const matmulsMs = (product: (x: Tensor, w: Tensor, b: Tensor | null) => void): number =>
    tidy(() => {
      const x = randn([B, C]);
      const x4 = randn([B, 4 * C]);
      const w = Array.from({ length: nLayer }, () => [
        randn([3 * C, C]),
        randn([C, C]),
        randn([4 * C, C]),
        randn([C, 4 * C]),
      ]);
      const bias = [zeros([3 * C]), zeros([C]), zeros([4 * C]), zeros([C])];
      const head = randn([V, C]);
      return time(
        () =>
          tidy(() => {
            for (const [a, b, c, d] of w) {
              product(x, a!, bias[0]!);
              product(x, b!, bias[1]!);
              product(x, c!, bias[2]!);
              product(x4, d!, bias[3]!);
            }
            product(x, head, null);
          }),
        5,
      );
    });
  const linearMs = matmulsMs((x, w, b) => linear(x, w, b));
  const matmulMs = matmulsMs((x, w, b) => {
    const wt = w.transpose(0, 1);
    if (b) addmm(b, x, wt);
    else x.matmul(wt);
  });
  // The matmul-bound limit of a step: its multiply-adds at the rate sgemm reaches on a large square product.
  const sgemmGflops = tidy(() => {
    const n = 1024;
    const a = randn([n, n]);
    const b = randn([n, n]);
    return (2 * n ** 3) / (time(() => tidy(() => a.matmul(b)), 3) * 1e6);
  });
  const matmulGflop = (2 * B * (nLayer * 12 * C * C + C * V)) / 1e9;
  const perCallUs = tidy(() => {
    const a = zeros([1]);
    return time(() => tidy(() => a.add(a)), 2000) * 1000;
  });
  const counter = countNativeCalls();
  const c0 = counter.calls();
  runGeneration(model, s, 1);
  const c1 = counter.calls();
  runGeneration(model, s, short + 1);
  const callsPerStep = (counter.calls() - c1 - (c1 - c0)) / short;
  return { stepMs, matmulMs, linearMs, sgemmGflops, matmulGflop, callsPerStep, perCallUs };
}

function worker(threads: number, suites: Suite[], withProfile: boolean): Figures {
  setNumThreads(threads);
  const out: Figures = {};
  for (const s of suites) {
    const model = new GPT({ ...s.config, dropout: 0 }, { seed: 0, device });
    out[s.name] = { train_tok_s: trainTokS(model, s), gen_tok_s: genTokS(model, s) };
    if (withProfile && !onGpu) Object.assign(out[s.name]!, profile(model.eval(), s));
  }
  return out;
}

// ---- the benchmark (parent process) ----

function child(cmd: string, args: string[], threads: number): Figures | null {
  const parsed = benchSide<Figures & { device_name?: string }>(cmd, args, threads, {
    OMP_WAIT_POLICY: ompWaitPolicy,
    HHKIT_BENCH_DEVICE: device,
    HHKIT_BENCH_PRECISION: precision,
    ...(onGpu ? { HHKIT_REF_SDPA: '1' } : {}),
  });
  if (parsed?.device_name) deviceName = parsed.device_name;
  return parsed;
}

let deviceName = '';
// rates: higher is better; profile times and call overheads: lower is better
const higherRate = (key: string): boolean => key.endsWith('_tok_s');

export function runModelBench(threads: number): BenchLine[] {
  const self = fileURLToPath(import.meta.url);
  const refScript = fileURLToPath(new URL('./model_ref.py', import.meta.url));
  const python = referencePython();
  const ours: Figures = {};
  const ref: Figures = {};
  for (let round = 0; round < ROUNDS; round++) {
    const last = round === ROUNDS - 1 ? ['--profile'] : [];
    keepBest(
      ours,
      child(process.execPath, ['--import', 'tsx', self, String(threads), ...last], threads),
      higherRate,
    );
    if (existsSync(python))
      keepBest(ref, child(python, [refScript, String(threads), JSON.stringify(SUITES)], threads), higherRate);
  }
  const lines: BenchLine[] = [];
  const env = onGpu
    ? `${device} ${deviceName || '(name unknown)'}, ${precision}`
    : `threads=${threads}; OMP_WAIT_POLICY=${ompWaitPolicy}${bf16 ? '; bf16 autocast' : ''}`;
  const peak = onGpu ? peakFlops(deviceName) : null;
  for (const s of SUITES) {
    const o = ours[s.name] ?? {};
    const r = ref[s.name] ?? {};
    const c = s.config;
    const shape = `L${c.nLayer} H${c.nHead} C${c.nEmbd} V${c.vocabSize}`;
    const add = (bench: string, key: string, note: string): void => {
      const mine = o[key];
      if (mine === undefined) return;
      const theirs = r[key] ?? null;
      lines.push({
        bench,
        ours: Number(mine.toFixed(1)),
        reference: theirs === null ? null : Number(theirs.toFixed(1)),
        unit: 'tokens/s',
        ratio: theirs === null ? null : Number((mine / theirs).toFixed(3)),
        higherIsBetter: true,
        note,
      });
    };
    const mfu = (tokS: number | undefined): string =>
      peak && tokS ? `${((100 * tokS * flopsPerToken(s)) / peak).toFixed(1)}%` : 'n/a';
    add(
      `${s.name} train (${shape}, B${s.train.batch} T${s.train.seq})`,
      'train_tok_s',
      `forward+backward+AdamW; best of ${s.train.steps} steps x ${ROUNDS} rounds; ${env}` +
        (onGpu ? `; MFU ours ${mfu(o['train_tok_s'])}, PyTorch ${mfu(r['train_tok_s'])}` : ''),
    );
    const p = o['stepMs'] === undefined ? '' : profileNote(o);
    add(
      `${s.name} generate (${shape}, B${s.gen.batch}, prompt ${s.gen.prompt}, ${s.gen.newTokens} new)`,
      'gen_tok_s',
      `KV cache, temperature 1; ${env}${p}`,
    );
  }
  return lines;
}

function profileNote(o: Record<string, number>): string {
  const step = o['stepMs']!;
  const mm = o['matmulMs']!;
  const calls = o['callsPerStep']!;
  const callMs = (calls * o['perCallUs']!) / 1000;
  const lin = o['linearMs']!;
  const limit = o['matmulGflop']! / o['sgemmGflops']!;
  return (
    `; profile of one decoding step: ${step.toFixed(2)} ms; its matmuls ${o['matmulGflop']!.toFixed(3)} GFLOP ` +
    `at sgemm's ${o['sgemmGflops']!.toFixed(0)} GFLOP/s (1024³) = a matmul-bound limit of ${(limit * 1000).toFixed(2)} ms, ` +
    `the step ${(step / (limit * 1000)).toFixed(2)}x it; the step's matmuls alone through linear() ` +
    `${lin.toFixed(2)} ms (${((100 * lin) / step).toFixed(0)}%; through sgemm ${mm.toFixed(2)} ms), ` +
    `${calls.toFixed(0)} native calls x ${o['perCallUs']!.toFixed(2)} us = ${callMs.toFixed(2)} ms overhead ` +
    `(${((100 * callMs) / step).toFixed(0)}%), rest (attention, layer norms, GELU, sampling) ` +
    `${(step - lin - callMs).toFixed(2)} ms`
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const threads = Number(process.argv[2] ?? 1);
  console.log(JSON.stringify(worker(threads, SUITES, process.argv.includes('--profile'))));
}
