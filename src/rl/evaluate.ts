// Evaluation of a policy on held-out prompts: sample, score with the reward (PM) and optionally the gold
// judge, and measure KL(policy ‖ initial policy) on the samples — one point of the paper's reward-vs-√KL
// curves (Figure 4). Used by PPO's periodic evals, best-of-N and the robustness study.
import { autocast, noGrad, type Tensor, tensor, tidy } from '../engine/index.ts';
import { mean } from '../eval/intervals.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { gatherLogprobs, type ResponseWindow, responseLogits } from './policy.ts';
import { type RewardFn, type Rollout, sampleRollout } from './rollout.ts';

/**
 * Response logits (B, N, V) of `model`, float32: the forward runs under bfloat16 autocast when
 * `precision` is 'bf16' (on the model's device), the log-probs and KL computed from them do not.
 *
 * @example const logits = responseLogitsAt(policy, rollout, 'bf16'); // (B, N, V) float32
 */
export function responseLogitsAt(model: CausalLM, w: ResponseWindow, precision = 'fp32'): Tensor {
  return autocast(
    { device: model.device, enabled: precision === 'bf16' },
    () => responseLogits(model, w).logits,
  ).float();
}

/**
 * KL(π ‖ π_ref) of each sampled response, in nats, summed over its tokens (the stop token included).
 * - 'exact' (the default): at every response position the whole next-token distributions are compared,
 *   Σ_v π(v|prefix)·(log π(v|prefix) − log π_ref(v|prefix)). By the chain rule its mean over samples from π
 *   is the sequence KL, like k1's, but it is ≥ 0 on every sample (up to float rounding) and far less noisy:
 *   it does not depend on which token was drawn, only on the prefixes. Under bf16 autocast both models'
 *   logits are rounded to bf16 first, which biases a small KL upwards (the rounding noise cannot cancel
 *   in a sum of non-negative terms); measure small KLs in fp32. (The robustness stage's first √KL points,
 *   a few hundredths of a nat apart, were dominated by k1's noise.)
 * - 'k1': Σ log π − log π_ref over the sampled tokens (what PPO's reward uses), negative on some samples.
 * Both assume the samples came from π itself (temperature 1, no truncation).
 *
 * @example sequenceKL(policy, reference, rollout) // [0.12, 0.03, …] one per row
 */
export function sequenceKL(
  policy: CausalLM,
  reference: CausalLM,
  r: Rollout,
  precision = 'fp32',
  estimator: 'exact' | 'k1' = 'exact',
): number[] {
  return noGrad(() =>
    tidy(() => {
      if (estimator === 'k1') {
        const logp = gatherLogprobs(responseLogitsAt(policy, r, precision), r.responses);
        const refLogp = gatherLogprobs(responseLogitsAt(reference, r, precision), r.responses);
        return Array.from(logp.sub(refLogp).mul(r.mask).sum(1).toTypedArray() as Float32Array);
      }
      // Three (B, N, V) tensors at a time (each model's raw logits freed once normalised, the rest in
      // place): log π, log π − log π_ref, then π. Log-probs are floored at −1e4, so a token one model rules
      // out (−inf) adds a large finite amount, or 0 where π is 0, instead of NaN.
      const logp = tidy(() => responseLogitsAt(policy, r, precision).logSoftmax(-1)).clamp_(-1e4, null);
      const diff = tidy(() => responseLogitsAt(reference, r, precision).logSoftmax(-1))
        .clamp_(-1e4, null)
        .mul_(-1)
        .add_(logp);
      const perToken = diff.mul_(logp.exp()).sum(2);
      return Array.from(perToken.mul(r.mask).sum(1).toTypedArray() as Float32Array);
    }),
  );
}

export interface PolicyEvaluation {
  /** Mean reward (e.g. PM score) of the samples, NaN without a reward function. */
  reward: number;
  /** Mean gold score, NaN without a gold function. */
  gold: number;
  /** Mean sequence KL(policy ‖ reference) in nats, the exact estimator of `sequenceKL` (0 without a reference). */
  kl: number;
  /** √max(KL, 0). */
  sqrtKL: number;
  /** Mean response length in tokens. */
  responseLength: number;
  /** Per-sample scores, in prompt order. */
  rewards: number[];
  golds: number[];
  /** The first few (prompt, response) pairs, for eyeballing. */
  samples: { prompt: string; response: string; reward?: number; gold?: number }[];
}

/**
 * Samples one response per prompt (seeded, in batches) and scores it.
 *
 * @example
 * const ev = await evaluatePolicy(policy, tok, prompts, { maxNewTokens: 48, seed: 7, gold, reference: ref });
 * ev.gold; ev.sqrtKL;
 */
export async function evaluatePolicy(
  policy: CausalLM,
  tokenizer: Tokenizer,
  prompts: readonly string[],
  opts: {
    maxNewTokens: number;
    seed: number;
    batchSize?: number;
    reward?: RewardFn;
    gold?: RewardFn;
    reference?: CausalLM;
    keepSamples?: number;
    /** 'bf16': sample and measure KL under bfloat16 autocast (policy and reference on one device). */
    precision?: string;
  },
): Promise<PolicyEvaluation> {
  const promptTokens = await tokenizer.encodeBatch(prompts, { allowSpecial: false });
  const batchSize = opts.batchSize ?? 32;
  const responses: string[] = [];
  const kls: number[] = [];
  let tokens = 0;
  for (let start = 0; start < prompts.length; start += batchSize) {
    const r = await sampleRollout(policy, tokenizer, promptTokens.slice(start, start + batchSize), {
      maxNewTokens: opts.maxNewTokens,
      seed: opts.seed + start,
      ...(opts.precision ? { precision: opts.precision } : {}),
    });
    try {
      responses.push(...r.texts);
      tokens += r.tokens.reduce((a, row) => a + row.length, 0);
      if (opts.reference) kls.push(...sequenceKL(policy, opts.reference, r, opts.precision));
    } finally {
      r.dispose();
    }
  }
  const list = [...prompts];
  const rewards = opts.reward ? await opts.reward(list, responses) : [];
  const golds = opts.gold ? await opts.gold(list, responses) : [];
  const kl = kls.length ? mean(kls) : 0;
  return {
    reward: mean(rewards),
    gold: mean(golds),
    kl,
    sqrtKL: Math.sqrt(Math.max(0, kl)),
    responseLength: tokens / Math.max(1, prompts.length),
    rewards,
    golds,
    samples: responses.slice(0, opts.keepSamples ?? 4).map((response, i) => ({
      prompt: prompts[i]!,
      response,
      ...(rewards[i] === undefined ? {} : { reward: rewards[i] }),
      ...(golds[i] === undefined ? {} : { gold: golds[i] }),
    })),
  };
}

/** A (B, N) float32 tensor from row-major numbers, on `device` (default the CPU). */
export const matrix = (values: ArrayLike<number>, B: number, N: number, device = 'cpu'): Tensor =>
  tensor(Float32Array.from(values), { shape: [B, N], device });
