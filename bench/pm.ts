// PM scoring benchmark vs PyTorch eager on the same machine and threads: transcripts scored per second by
// a preference model (a GPT trunk and a scalar head read at each row's last real token), for the demo's PM
// (2 layers, 128 wide) and a 6×512 one. hhkit's side is scoreSequences (src/pm/score.ts: batches of 32
// grouped by length, no gradients, eval mode); PyTorch's (bench/pm_ref.py) scores as Hugging Face's
// GPT2ForSequenceClassification does (every position through every layer, then the last real token's state),
// grouped by length the same way. Both run as child processes with the same environment, alternating rounds;
// each keeps its best. Run as a script, this file is hhkit's side (prints one JSON object).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setNumThreads } from '../src/engine/index.ts';
import type { GPTConfig } from '../src/nn/gpt.ts';
import { PreferenceModel } from '../src/pm/model.ts';
import { scoreSequences } from '../src/pm/score.ts';
import { type BenchLine, benchSide, keepBest, referencePython, type SuiteFigures } from './engine.ts';

interface Suite {
  name: string;
  config: Omit<GPTConfig, 'dropout'>;
  /** Token count of each transcript (prompt, response, end-of-context token). */
  lengths: number[];
  batch: number;
  reps: number;
}

/** n lengths spread over [lo, hi] by a fixed linear congruential sequence (the same on both sides). */
function lengths(n: number, lo: number, hi: number): number[] {
  let x = 12345;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return lo + (x % (hi - lo + 1));
  });
}

const SUITES: Suite[] = [
  {
    name: 'pm-demo',
    config: { nLayer: 2, nHead: 4, nEmbd: 128, nPositions: 128, vocabSize: 1024, layerNormEps: 1e-5 },
    lengths: lengths(512, 24, 72),
    batch: 32,
    reps: 5,
  },
  {
    name: 'pm-6x512',
    config: { nLayer: 6, nHead: 8, nEmbd: 512, nPositions: 256, vocabSize: 8192, layerNormEps: 1e-5 },
    lengths: lengths(256, 40, 120),
    batch: 32,
    reps: 3,
  },
];
const ROUNDS = 2;
const ompWaitPolicy = process.env.OMP_WAIT_POLICY ?? 'PASSIVE';
type Figures = SuiteFigures;

// ---- hhkit's side (child process) ----

function worker(threads: number): Figures {
  setNumThreads(threads);
  const out: Figures = {};
  for (const s of SUITES) {
    const pm = PreferenceModel.fresh({ family: 'gpt2', config: { ...s.config, dropout: 0 } }, 0);
    let seed = 4;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648);
    const sequences = s.lengths.map((n) =>
      Array.from({ length: n }, () => 1 + (next() % (s.config.vocabSize - 1))),
    );
    const run = (): number[] => scoreSequences(pm, sequences, 0, { batchSize: s.batch });
    run(); // warm-up
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < s.reps; i++) {
      const start = performance.now();
      run();
      best = Math.min(best, performance.now() - start);
    }
    out[s.name] = { seq_s: s.lengths.length / (best / 1000) };
    pm.dispose();
  }
  return out;
}

// ---- the benchmark (parent process) ----

export function runPMBench(threads: number): BenchLine[] {
  const self = fileURLToPath(import.meta.url);
  const refScript = fileURLToPath(new URL('./pm_ref.py', import.meta.url));
  const python = referencePython();
  const ours: Figures = {};
  const ref: Figures = {};
  const side = (cmd: string, args: string[]) =>
    benchSide(cmd, args, threads, { OMP_WAIT_POLICY: ompWaitPolicy });
  const always = () => true; // transcripts/s: higher is better
  for (let round = 0; round < ROUNDS; round++) {
    keepBest(ours, side(process.execPath, ['--import', 'tsx', self, String(threads)]), always);
    if (existsSync(python))
      keepBest(ref, side(python, [refScript, String(threads), JSON.stringify(SUITES)]), always);
  }
  return SUITES.map((s) => {
    const mine = ours[s.name]?.['seq_s'];
    if (mine === undefined) throw new Error(`bench pm: hhkit's side gave no figure for ${s.name}`);
    const theirs = ref[s.name]?.['seq_s'] ?? null;
    const c = s.config;
    const lo = Math.min(...s.lengths);
    const hi = Math.max(...s.lengths);
    return {
      bench: `${s.name} PM scoring (L${c.nLayer} H${c.nHead} C${c.nEmbd} V${c.vocabSize}, ${s.lengths.length} transcripts of ${lo}–${hi} tokens, batches of ${s.batch})`,
      ours: Number(mine.toFixed(1)),
      reference: theirs === null ? null : Number(theirs.toFixed(1)),
      unit: 'transcripts/s',
      ratio: theirs !== null ? Number((mine / theirs).toFixed(3)) : null,
      higherIsBetter: true,
      note: `no gradients, eval mode, grouped by length on both sides; best of ${s.reps} passes x ${ROUNDS} rounds; threads=${threads}; OMP_WAIT_POLICY=${ompWaitPolicy}`,
    };
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(JSON.stringify(worker(Number(process.argv[2] ?? 1))));
}
