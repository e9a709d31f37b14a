// PPO step benchmark (issue 6): the wall-clock split of one PPO step — generation, PM scoring, reference
// log-probs, training (K passes over minibatches) — for the world's small policy (gptPresets.small) and for
// the 6×512 GPT, each with a same-size PM, and samples/s, beside the same step in eager PyTorch
// (bench/ppo_ref.py, same threads).
// Wire it into bench/run.ts as `ppo: runPPOBench`.
import { fileURLToPath } from 'node:url';
import {
  AdamW,
  clipGradNorm,
  noGrad,
  randint,
  setNumThreads,
  type Tensor,
  tidy,
} from '../src/engine/index.ts';
import type { CausalLM } from '../src/nn/causal-lm.ts';
import { generateBatch } from '../src/nn/generate.ts';
import { GPT, gptPresets } from '../src/nn/gpt.ts';
import { ScalarHead } from '../src/nn/heads.ts';
import { PreferenceModel } from '../src/pm/model.ts';
import { clippedPolicyLoss, clippedValueLoss } from '../src/rl/losses.ts';
import { ActorCritic, gatherLogprobs, responseLogits } from '../src/rl/policy.ts';
import { benchSide, referencePython } from './engine.ts';

export interface PPOBenchLine {
  bench: string;
  ours: number;
  unit: string;
  [key: string]: unknown;
}

/** The phases of a PPO step, timed; `total` is their sum. */
export type PPOPhaseSeconds = Record<'generation' | 'scoring' | 'reference' | 'training' | 'total', number>;

/** The shape of a timed PPO step: B prompts of P random tokens, N new tokens, K passes over minibatches. */
export interface PPOStepShape {
  batch: number;
  promptTokens: number;
  newTokens: number;
  /** K: passes over the rollout batch. */
  ppoEpochs: number;
  /** Rows per optimiser step. */
  miniBatch: number;
  /** Measured steps after one warm-up step. */
  steps: number;
}

/**
 * Mean seconds per phase of `w.steps` PPO steps on random prompts, after one warm-up step (it allocates
 * AdamW's state, the allocator's pools, BLAS buffers): generation (every row samples N tokens), PM scoring
 * (`score`, which must read its result), the reference's log-probs with the rollout policy's log-probs and
 * values (ppoUpdate's stage 3), and training — clipped policy + 0.1 × clipped value loss, backward,
 * clipGradNorm 1, AdamW — on stand-in advantages (the work is what is timed). The step of bench/ppo.ts and
 * bench/families-ppo.ts.
 */
export function timePPOSteps(
  m: {
    policy: CausalLM;
    reference: CausalLM;
    ac: ActorCritic;
    opt: AdamW;
    score: (sequences: Tensor, attentionMask: Tensor) => void;
  },
  w: PPOStepShape,
): PPOPhaseSeconds {
  const { batch: B, promptTokens: P, newTokens: N, miniBatch: M } = w;
  const seconds: PPOPhaseSeconds = { generation: 0, scoring: 0, reference: 0, training: 0, total: 0 };
  for (let step = 0; step <= w.steps; step++) {
    const t = tidy(() => {
      const prompts = randint(1, m.policy.lmConfig.vocabSize, [B, P]); // (B, P), no padding id 0
      const t0 = performance.now();
      // eosId null: every row samples N tokens, so the work per step is fixed.
      const out = generateBatch(m.policy, prompts, prompts.ge(0), {
        maxNewTokens: N,
        padId: 0,
        eosId: null,
        seed: step,
      });
      const window = {
        sequences: out.sequences,
        attentionMask: out.attentionMask,
        promptWidth: P,
        responseWidth: N,
      };
      const t1 = performance.now();
      noGrad(() => m.score(out.sequences, out.attentionMask));
      const t2 = performance.now();
      const refLogp = noGrad(() => gatherLogprobs(responseLogits(m.reference, window).logits, out.responses)); // (B, N)
      const old = noGrad(() => {
        const { logits, values } = m.ac.forward(window); // (B, N, V), (B, N)
        return { logp: gatherLogprobs(logits, out.responses), values };
      });
      const t3 = performance.now();
      const maskF = out.responseMask.float(); // (B, N)
      const advantages = old.logp.sub(refLogp).neg(); // stand-in numbers; the work is what is timed
      for (let epoch = 0; epoch < w.ppoEpochs; epoch++) {
        for (let start = 0; start < B; start += M) {
          tidy(() => {
            const rows = (x: Tensor) => x.narrow(0, start, M);
            const { logits, values } = m.ac.forward({
              ...window,
              sequences: rows(window.sequences),
              attentionMask: rows(window.attentionMask),
            });
            const logp = gatherLogprobs(logits, rows(out.responses));
            const mask = rows(maskF);
            const loss = clippedPolicyLoss(logp, rows(old.logp), rows(advantages), mask).loss.add(
              clippedValueLoss(values, rows(old.values), rows(advantages), mask).loss.mul(0.1),
            );
            loss.backward();
            clipGradNorm(m.ac.parameters(), 1);
            m.opt.step();
            m.opt.zeroGrad();
          });
        }
      }
      const t4 = performance.now();
      return [t1 - t0, t2 - t1, t3 - t2, t4 - t3] as const;
    });
    if (step === 0) continue; // warm-up
    seconds.generation += t[0] / 1000 / w.steps;
    seconds.scoring += t[1] / 1000 / w.steps;
    seconds.reference += t[2] / 1000 / w.steps;
    seconds.training += t[3] / 1000 / w.steps;
  }
  seconds.total = seconds.generation + seconds.scoring + seconds.reference + seconds.training;
  return seconds;
}

const SIZES = {
  small: { config: gptPresets.small, steps: 3 },
  // bench/model.ts's gpt-6x512 as policy, reference and PM
  '6x512': {
    config: { nLayer: 6, nHead: 8, nEmbd: 512, nPositions: 256, vocabSize: 8192 },
    steps: 2,
  },
} as const;

/**
 * One PPO step on random prompts: B = 32 prompts of 24 tokens, 32 new tokens, K = 2 passes, minibatch 16,
 * with the world's small policy (`ppo-step-small`) and with the 6×512 GPT (`ppo-step-6x512`).
 */
export function runPPOBench(threads: number): PPOBenchLine[] {
  setNumThreads(threads);
  return (Object.keys(SIZES) as (keyof typeof SIZES)[]).map((size) => ppoStepLine(size, threads));
}

function ppoStepLine(size: keyof typeof SIZES, threads: number): PPOBenchLine {
  const { config: preset, steps } = SIZES[size];
  const config = { ...preset, dropout: 0 };
  const policy = new GPT(config, { seed: 1 }).eval();
  const reference = new GPT(config, { seed: 1 }).eval();
  const pm = new PreferenceModel(
    new GPT(config, { seed: 2 }),
    new ScalarHead(config.nEmbd, { seed: 3 }),
  ).eval();
  const ac = new ActorCritic(policy, 'shared', null, { seed: 4 });
  const opt = new AdamW(ac.parameters(), { lr: 1e-5, weightDecay: 0 });
  const B = 32;
  const P = 24;
  const N = 32;
  const score = (sequences: Tensor, attentionMask: Tensor) =>
    pm
      .scores({ ids: sequences, attentionMask, readout: attentionMask.long().sum(1).sub(1) })
      .sum()
      .item();
  let seconds: PPOPhaseSeconds;
  try {
    seconds = timePPOSteps(
      { policy, reference, ac, opt, score },
      { batch: B, promptTokens: P, newTokens: N, ppoEpochs: 2, miniBatch: 16, steps },
    );
  } finally {
    // the next size's models need the memory; AdamW's moments go with the optimiser (GC)
    for (const m of [policy, reference, pm, ac]) for (const p of m.parameters()) p.dispose();
  }
  const { total, ...times } = seconds;

  const torchRef = pytorchReference(threads, size, steps);
  return {
    bench: `ppo-step-${size}`,
    ours: B / total,
    reference: torchRef?.samples_s ?? null,
    unit: 'samples/s',
    ratio: torchRef ? B / total / torchRef.samples_s : null,
    threads,
    batch: B,
    promptTokens: P,
    newTokens: N,
    ppoEpochs: 2,
    miniBatch: 16,
    seconds: { ...times, total },
    referenceSeconds: torchRef?.seconds ?? null,
  };
}

/** The same step in eager PyTorch (referencePython(): Debian's torch by default), or null when unavailable. */
function pytorchReference(
  threads: number,
  size: string,
  steps: number,
): { samples_s: number; seconds: Record<string, number> } | null {
  const script = fileURLToPath(new URL('./ppo_ref.py', import.meta.url));
  return benchSide(referencePython(), [script, String(threads), size, String(steps)], threads);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of runPPOBench(Number(process.argv[2] ?? 2))) console.log(JSON.stringify(line));
}
