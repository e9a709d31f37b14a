// Real-size benchmarks of the Llama family (issue 15 §6): random weights with the exact configs of
// SmolLM2-135M (llama: 30 layers, 576 wide, 9 heads / 3 KV heads, vocab 49,152, tied) and Qwen2.5-0.5B
// (qwen2: 24 layers, 896 wide, 14 / 2 heads, q/k/v biases, vocab 151,936, tied). The work:
//   - smollm2-135m train: forward, cross-entropy, backward, AdamW, B 4 × T 128;
//   - smollm2-135m generate: KV-cache sampling, B 8, prompt 32, 32 new tokens (every row runs to the end);
//   - qwen2.5-0.5b forward+backward: B 1 × T 256, no optimiser (its AdamW state alone is 4 GB).
// PyTorch runs test/fixtures/nn/llama_ref.py (the line-by-line port of transformers' modeling code the
// parity tests use; eager attention, as torch 1.13 has no fused kernel) on the same work, in a child
// process with the same threads; each side builds its model, warms up once, and reports its best step.
import { fileURLToPath } from 'node:url';
import { AdamW, crossEntropy, ones, randint, setNumThreads, tidy } from '../src/engine/index.ts';
import type { CausalLM } from '../src/nn/causal-lm.ts';
import { generateBatch } from '../src/nn/generate.ts';
import { createCausalLM, familyConfigFromHf } from '../src/nn/hf-config.ts';
import { type BenchLine, benchSide, referencePython } from './engine.ts';

export const SMOLLM2_135M = {
  model_type: 'llama',
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  vocab_size: 49152,
  max_position_embeddings: 8192,
  rope_theta: 100000,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: true,
  hidden_act: 'silu',
};

export const QWEN25_05B = {
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  vocab_size: 151936,
  max_position_embeddings: 32768,
  rope_theta: 1000000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: true,
  hidden_act: 'silu',
};

export interface FamilyWork {
  name: string;
  config: Record<string, unknown>;
  kind: 'train' | 'fwdbwd' | 'generate';
  batch: number;
  /** Sequence length (train, fwdbwd) or prompt length (generate). */
  seq: number;
  newTokens?: number;
  steps: number;
}

export const FAMILY_WORK: FamilyWork[] = [
  { name: 'smollm2-135m train (B4 T128)', config: SMOLLM2_135M, kind: 'train', batch: 4, seq: 128, steps: 2 },
  {
    name: 'smollm2-135m generate (B8, prompt 32, 32 new)',
    config: SMOLLM2_135M,
    kind: 'generate',
    batch: 8,
    seq: 32,
    newTokens: 32,
    steps: 2,
  },
  {
    name: 'qwen2.5-0.5b fwd+bwd (B1 T256)',
    config: QWEN25_05B,
    kind: 'fwdbwd',
    batch: 1,
    seq: 256,
    steps: 2,
  },
];

function best(steps: number, fn: () => void): number {
  fn(); // warm-up (allocates optimiser state, the cache, BLAS buffers)
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    fn();
    min = Math.min(min, performance.now() - t);
  }
  return min / 1000;
}

/** Tokens per second of one piece of work on hhkit's model of the config (random weights, seed 1). */
export function oursTokS(w: FamilyWork): number {
  const model: CausalLM = createCausalLM(familyConfigFromHf(w.config, w.name), { seed: 1 });
  const V = Number(w.config['vocab_size']);
  try {
    if (w.kind === 'generate') {
      model.eval();
      const n = w.newTokens ?? 32;
      const s = best(w.steps, () =>
        tidy(() => {
          const prompt = randint(1, V, [w.batch, w.seq]);
          generateBatch(model, prompt, ones([w.batch, w.seq], { dtype: 'bool' }), {
            maxNewTokens: n,
            padId: 0,
            eosId: null,
          });
        }),
      );
      return (w.batch * n) / s;
    }
    model.train();
    const opt = w.kind === 'train' ? new AdamW(model.parameters(), { lr: 1e-5, weightDecay: 0 }) : null;
    const x = randint(0, V, [w.batch, w.seq]);
    const y = randint(0, V, [w.batch, w.seq]);
    const s = best(w.steps, () =>
      tidy(() => {
        crossEntropy(model.forward(x).logits.view(-1, V), y.view(-1)).backward();
        opt?.step();
        model.zeroGrad();
      }),
    );
    return (w.batch * w.seq) / s;
  } finally {
    for (const p of model.parameters()) p.dispose();
  }
}

function reference(w: FamilyWork, threads: number): number | null {
  const script = fileURLToPath(new URL('./families_ref.py', import.meta.url));
  const r = benchSide<{ tok_s: number }>(
    referencePython(),
    [script, String(threads), JSON.stringify(w)],
    threads,
  );
  return r ? Number(r.tok_s) : null;
}

/** `npm run bench -- families`: each piece of work on hhkit, then on PyTorch, one after the other. */
export function runFamiliesBench(threads: number): BenchLine[] {
  setNumThreads(threads);
  const only = process.env.HHKIT_BENCH_ONLY?.split(',');
  const lines: BenchLine[] = [];
  for (const w of FAMILY_WORK) {
    if (only && !only.some((o) => w.name.startsWith(o))) continue;
    const ours = oursTokS(w);
    const ref = reference(w, threads);
    lines.push({
      bench: w.name,
      ours: Math.round(ours * 10) / 10,
      reference: ref === null ? null : Math.round(ref * 10) / 10,
      unit: 'tokens/s',
      ratio: ref === null ? null : Math.round((ours / ref) * 1000) / 1000,
      higherIsBetter: true,
      note: `random weights, real config; threads=${threads}; best of ${w.steps} after a warm-up`,
    });
  }
  return lines;
}
