// Rejection sampling, the paper's baseline for RL (§4.2, Figure 4 with Stiennon et al. 2020): sample N
// responses per prompt, keep the one the reward (PM) likes best. Its KL from the base policy is known in
// closed form, log N − (N − 1)/N, so it sits on the same reward-vs-√KL axes as PPO.
import type { CausalLM } from '../nn/causal-lm.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { bestOfNKL } from './kl.ts';
import { type RewardFn, sampleRollout } from './rollout.ts';

export interface BestOfNRow {
  n: number;
  /** Mean reward of the kept response. */
  reward: number;
  /** Mean gold score of the kept response (NaN without gold). */
  gold: number;
  /** Analytic KL(best-of-N ‖ base) = log N − (N−1)/N nats, and its square root. */
  kl: number;
  sqrtKL: number;
  /** Gold score of the kept response, per prompt in prompt order (for paired intervals between Ns; [] without gold). */
  golds: number[];
}

export interface BestOfNReport {
  rows: BestOfNRow[];
  prompts: number;
  /** For the first prompt: its best-of-max-N response, as an example. */
  example: { prompt: string; response: string; reward: number } | null;
}

/**
 * For each prompt, samples max(ns) responses once and, for every N in `ns`, keeps the best of the first N
 * by reward (nested subsets: one sampling serves every N, and each N's estimate is unbiased).
 *
 * @example
 * const r = await bestOfN(policy, tok, prompts, { ns: [1, 4, 16, 64], reward: pm, gold, maxNewTokens: 32, seed: 1 });
 * r.rows.map((row) => [row.n, row.gold, row.sqrtKL]);
 */
export async function bestOfN(
  policy: CausalLM,
  tokenizer: Tokenizer,
  prompts: readonly string[],
  opts: {
    ns: readonly number[];
    reward: RewardFn;
    gold?: RewardFn;
    maxNewTokens: number;
    seed: number;
    batchSize?: number;
    /** 'bf16': sample under bfloat16 autocast on the policy's device. */
    precision?: string;
    onPrompt?: (done: number) => void;
    /** Called for every prompt and N with the kept response (rejection-sampling finetuning keeps them). */
    onKept?: (kept: { prompt: number; n: number; response: string; reward: number; gold: number }) => void;
  },
): Promise<BestOfNReport> {
  const ns = [...opts.ns].sort((a, b) => a - b);
  for (const n of ns) bestOfNKL(n); // validates
  const maxN = ns.at(-1) ?? 1;
  const batchSize = Math.max(1, opts.batchSize ?? 64);
  const promptTokens = await tokenizer.encodeBatch(prompts, { allowSpecial: false });
  const sums = ns.map(() => ({ reward: 0, gold: 0, golds: [] as number[] }));
  let example: BestOfNReport['example'] = null;
  // Several prompts' samples share one sampling batch (batchSize rows), so small N does not mean tiny batches.
  const perBatch = Math.max(1, Math.floor(batchSize / maxN));
  const sampled = new Map<number, string[]>();
  const samplesOf = async (p: number): Promise<string[]> => {
    if (!sampled.has(p)) {
      const group = Array.from({ length: Math.min(perBatch, prompts.length - p) }, (_, k) => p + k);
      for (const q of group) sampled.set(q, []);
      for (let start = 0; start < maxN; start += batchSize) {
        const count = Math.min(batchSize, maxN - start);
        const rows = group.flatMap((q) => Array.from({ length: count }, () => promptTokens[q]!));
        const r = await sampleRollout(policy, tokenizer, rows, {
          maxNewTokens: opts.maxNewTokens,
          seed: opts.seed * 1_000_003 + p * 4099 + start,
          ...(opts.precision ? { precision: opts.precision } : {}),
        });
        for (const [k, q] of group.entries())
          sampled.get(q)!.push(...r.texts.slice(k * count, (k + 1) * count));
        r.dispose();
      }
    }
    const out = sampled.get(p)!;
    sampled.delete(p);
    return out;
  };
  for (let p = 0; p < prompts.length; p++) {
    const responses = await samplesOf(p);
    const promptList = responses.map(() => prompts[p]!);
    const rewards = await opts.reward(promptList, responses);
    const golds = opts.gold ? await opts.gold(promptList, responses) : [];
    ns.forEach((n, k) => {
      let best = 0;
      for (let i = 1; i < n; i++) if (rewards[i]! > rewards[best]!) best = i;
      sums[k]!.reward += rewards[best]!;
      sums[k]!.gold += golds.length ? golds[best]! : Number.NaN;
      if (golds.length) sums[k]!.golds.push(golds[best]!);
      opts.onKept?.({
        prompt: p,
        n,
        response: responses[best]!,
        reward: rewards[best]!,
        gold: golds.length ? golds[best]! : Number.NaN,
      });
      if (p === 0 && n === maxN)
        example = { prompt: prompts[0]!, response: responses[best]!, reward: rewards[best]! };
    });
    opts.onPrompt?.(p + 1);
  }
  const rows = ns.map((n, k) => {
    const kl = bestOfNKL(n);
    return {
      n,
      reward: sums[k]!.reward / prompts.length,
      gold: sums[k]!.gold / prompts.length,
      kl,
      sqrtKL: Math.sqrt(kl),
      golds: sums[k]!.golds,
    };
  });
  return { rows, prompts: prompts.length, example };
}
