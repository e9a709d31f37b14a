// Stages 3–6 of a PPO step (see ppo.ts) on this process's rollouts, data-parallel under `hhkit launch`:
// each rank holds batchSize/W of the step's rows. Everything global in one process stays global here —
// reward and advantage whitening use every rank's tokens (whiten's sumAcrossRanks), each minibatch is the
// ranks' slices of miniBatchSize/W rows together, every rank's loss is divided by the whole minibatch's
// token count, and a GradientReducer sums the gradients during backward, so the update equals one process holding all the rows
// and the same minibatches. Every rank takes the same number of optimiser steps (ceil(B/M) per epoch).
// Devices: the rollout's tensors live on the policy's device; the advantages, returns, old log-probs and
// masks are computed on the CPU (plain arrays) and moved there per minibatch. Under precision 'bf16' the
// policy, value and reference forwards run in bfloat16 autocast; their logits and values are cast back to
// float32 before log-probs, KL, whitening, GAE and the losses.
import {
  type AdamW,
  agreeFinite,
  allReduceNumbers,
  assertFinite,
  autocast,
  clipGradNorm,
  type DivergenceContext,
  getWorldSize,
  injectNonFinite,
  noGrad,
  GradientReducer,
  type Tensor,
  tensor,
  tidy,
} from '../engine/index.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import { gae, penalisedRewards, type SumAcrossRanks, whiten } from './advantages.ts';
import { matrix, responseLogitsAt } from './evaluate.ts';
import { klPerToken } from './kl.ts';
import { clippedPolicyLoss, clippedValueLoss, tokenEntropy } from './losses.ts';
import type { PPOConfig } from './ppo-config.ts';
import { type ActorCritic, gatherLogprobs, type ResponseWindow } from './policy.ts';
import { permutation } from './rollout.ts';

/** The tensors PPO trains on from one rollout (a Rollout is one): B rows of this rank. */
export interface ResponseBatch extends ResponseWindow {
  /** (B, N) int64 sampled tokens. */
  responses: Tensor;
  /** (B, N) float32 1/0 over sampled response tokens. */
  mask: Tensor;
}

/**
 * The actor-critic's response logits (B, N, V) and values (B, N), both float32; under 'bf16' the forward
 * runs in bfloat16 autocast on the policy's device.
 *
 * @example const { logits, values } = actorCriticAt(ac, window, 'bf16');
 */
export function actorCriticAt(
  ac: ActorCritic,
  w: ResponseWindow,
  precision = 'fp32',
): { logits: Tensor; values: Tensor } {
  const out = autocast({ device: ac.policy.device, enabled: precision === 'bf16' }, () => ac.forward(w));
  return { logits: out.logits.float(), values: out.values.float() };
}

export interface PPOUpdateOptions {
  config: PPOConfig;
  /** λ_KL of this step (the controller's value before it sees this step's KL). */
  klCoef: number;
  step: number;
  /** Named in the divergence error: the checkpoint the run can go back to ('' when none yet). */
  lastGood: string;
  /** Named in the divergence error when there is no checkpoint yet: the initial policy. */
  init?: string;
  /**
   * Local row indices of each minibatch of an epoch; default `miniBatchPlan` (a seeded shuffle of this
   * rank's rows into miniBatchSize/W slices, the same seed on every rank). Every rank must return the same
   * number of minibatches.
   */
  plan?: (epoch: number) => number[][];
  /** Sums local statistics over ranks; default allReduceNumbers (the identity on one process). */
  sumAcrossRanks?: SumAcrossRanks;
}

export interface PPOUpdateResult {
  /** Σ_t KL_t of each of this rank's rows (nats). */
  sequenceKLs: number[];
  /** Means over minibatches of the global (all ranks') minibatch statistics. */
  policyLoss: number;
  valueLoss: number;
  clipFraction: number;
  approxKL: number;
  entropy: number;
  /** Seconds in stages 3–5 (forwards of the policy and the reference) and in stage 6 (the update). */
  referenceSeconds: number;
  trainSeconds: number;
}

/**
 * Minibatches of `rows` local rows: a permutation seeded by `seed`, cut into slices of `size`.
 *
 * @example miniBatchPlan(4, 2, 7) // e.g. [[2, 0], [3, 1]]
 */
export function miniBatchPlan(rows: number, size: number, seed: number): number[][] {
  const order = permutation(rows, seed);
  const out: number[][] = [];
  for (let start = 0; start < rows; start += size) out.push(order.slice(start, start + size));
  return out;
}

/** The seed of a step's minibatch order in an epoch (unchanged from the one-process trainer). */
export const miniBatchSeed = (c: PPOConfig, step: number, epoch: number): number =>
  c.seed * 7_368_787 + step * 131 + epoch;

const sum = (xs: ArrayLike<number>): number => {
  let total = 0;
  for (let i = 0; i < xs.length; i++) total += xs[i]!;
  return total;
};

/**
 * Stages 3–6 on this rank's rows `batch` with their raw `scores`: KL-penalised rewards, optional reward
 * whitening, GAE on the value head, whitened advantages, then K epochs of clipped policy + value loss.
 * Collective under a process group: every rank calls it once per step with the same config.
 *
 * @example
 * const r = ppoUpdate(ac, reference, optimizer, rollout, scores, { config, klCoef: kl.value, step, lastGood });
 * r.policyLoss; r.sequenceKLs;
 */
export function ppoUpdate(
  ac: ActorCritic,
  reference: CausalLM,
  optimizer: AdamW,
  batch: ResponseBatch,
  scores: readonly number[],
  opts: PPOUpdateOptions,
): PPOUpdateResult {
  const c = opts.config;
  const across = opts.sumAcrossRanks ?? ((xs: number[]) => allReduceNumbers(xs));
  const t0 = performance.now();
  const B = scores.length;
  const N = batch.responseWidth;
  const device = ac.policy.device; // where the rollout and every model live
  // 3. KL-penalised rewards. Old log-probs and values come from a full forward (not the sampler's cached
  //    ones) so that the PPO ratio is exactly 1 before the first update.
  const { oldLogprobs, refLogprobs, oldValues } = noGrad(() =>
    tidy(() => {
      const { logits, values } = actorCriticAt(ac, batch, c.precision); // (B, N, V), (B, N) float32
      const refLogits = responseLogitsAt(reference, batch, c.precision); // (B, N, V) float32
      const arr = (t: Tensor) => Float32Array.from(t.toTypedArray() as Float32Array);
      return {
        oldLogprobs: arr(gatherLogprobs(logits, batch.responses)),
        refLogprobs: arr(gatherLogprobs(refLogits, batch.responses)),
        oldValues: arr(values.mul(batch.mask)),
      };
    }),
  );
  const mask = Float32Array.from(batch.mask.toTypedArray() as Float32Array);
  const klTokens = tidy(() =>
    Float32Array.from(
      klPerToken(matrix(oldLogprobs, B, N), matrix(refLogprobs, B, N), c.klEstimator)
        .mul(matrix(mask, B, N))
        .toTypedArray() as Float32Array,
    ),
  );
  const sequenceKLs = Array.from({ length: B }, (_, b) => sum(klTokens.subarray(b * N, (b + 1) * N)));
  const centred = scores.map((s) => s - c.rewardOffset); // optional normalisation by the PM's held-out mean
  let rewards = penalisedRewards(klTokens, mask, centred, B, N, opts.klCoef);
  // 4. whiten: TRL's whiten_rewards rescales without shifting the mean, so a good response stays positive.
  //    Mean and variance over every rank's tokens.
  if (c.whitenRewards) rewards = whiten(rewards, mask, false, across);
  // 5. GAE on the value head's estimates, then advantages whitened over every rank's tokens (as TRL).
  const { advantages: rawAdvantages, returns } = gae(
    { values: oldValues, mask, B, N },
    rewards,
    c.gamma,
    c.lambda,
  );
  const advantages = whiten(rawAdvantages, mask, true, across);
  const t1 = performance.now();

  // 6. clipped policy loss + clipped value loss: K passes, minibatches of this rank's rows in a seeded order.
  const localMiniBatch = c.miniBatchSize / getWorldSize(); // a whole number: trainPPO checks divisibility
  const plan =
    opts.plan ?? ((epoch: number) => miniBatchPlan(B, localMiniBatch, miniBatchSeed(c, opts.step, epoch)));
  const epochs = Array.from({ length: c.ppoEpochs }, (_, epoch) => plan(epoch));
  const rowTokens = Array.from({ length: B }, (_, b) => sum(mask.subarray(b * N, (b + 1) * N)));
  // Each minibatch's token count over all ranks, in one collective: every rank's loss is divided by it.
  const localTokens = epochs.flatMap((mbs) => mbs.map((idx) => idx.reduce((n, b) => n + rowTokens[b]!, 0)));
  const globalTokens = across(localTokens);
  const params = ac.parameters();
  const stats = { policyLoss: 0, valueLoss: 0, clipFraction: 0, approxKL: 0, entropy: 0, n: 0 };
  // Sums each minibatch's gradients over ranks while its backward runs (DDP-style); no-op on one process.
  const reducer = new GradientReducer(params);
  const guard: DivergenceContext = {
    trainer: 'ppo',
    step: opts.step,
    lastGood: opts.lastGood,
    ...(opts.init === undefined ? {} : { init: opts.init }),
  };
  try {
    let k = 0;
    for (const miniBatches of epochs) {
      for (const idx of miniBatches) {
        const tokens = globalTokens[k]!;
        const share = localTokens[k]! / Math.max(1, tokens); // this rank's part of the minibatch's tokens
        k++;
        optimizer.zeroGrad();
        const global = tidy(() => {
          // This minibatch's rows of the CPU-side arrays, as (b, N) float32 on the models' device.
          const pick = (flat: ArrayLike<number>) =>
            matrix(
              idx.flatMap((b) => Array.from({ length: N }, (_, t) => flat[b * N + t]!)),
              idx.length,
              N,
              device,
            );
          const rowIndex = tensor(BigInt64Array.from(idx, BigInt), { device });
          const window = {
            sequences: batch.sequences.indexSelect(0, rowIndex),
            attentionMask: batch.attentionMask.indexSelect(0, rowIndex),
            promptWidth: batch.promptWidth,
            responseWidth: N,
          };
          const mbMask = pick(mask); // (b, N)
          const { logits, values } = actorCriticAt(ac, window, c.precision); // (b, N, V), (b, N) float32
          const logprobs = gatherLogprobs(logits, batch.responses.indexSelect(0, rowIndex));
          const policy = clippedPolicyLoss(
            logprobs,
            pick(oldLogprobs),
            pick(advantages),
            mbMask,
            c.clipRange,
            tokens,
          );
          const value = clippedValueLoss(
            values,
            pick(oldValues),
            pick(returns),
            mbMask,
            c.clipRangeValue,
            tokens,
          );
          const loss = injectNonFinite(policy.loss.add(value.loss.mul(c.vfCoef)), opts.step);
          // The ranks' shares add up to the global minibatch's loss and statistics, summed BEFORE the
          // backward: a non-finite loss on any rank stops every rank here, together, so no rank skips a
          // backward whose gradient buckets its peers are all-reducing.
          const sums = agreeFinite(
            guard,
            'the loss',
            [
              loss.item(),
              policy.loss.item(),
              value.loss.item(),
              policy.clipFraction * share,
              policy.approxKL * share,
              tokenEntropy(logits, mbMask) * share,
            ],
            { checked: 1, sum: across },
          );
          reducer.arm();
          loss.backward();
          return sums;
        });
        const [_loss, policyLoss = 0, valueLoss = 0, clipFraction = 0, approxKL = 0, entropy = 0] = global;
        reducer.finish();
        // The gradients are summed over ranks: every rank sees the same norm.
        assertFinite(guard, 'the gradient norm', clipGradNorm(params, c.maxGradNorm));
        optimizer.step();
        optimizer.zeroGrad();
        stats.policyLoss += policyLoss;
        stats.valueLoss += valueLoss;
        stats.clipFraction += clipFraction;
        stats.approxKL += approxKL;
        stats.entropy += entropy;
        stats.n++;
      }
    }
  } finally {
    reducer.dispose();
  }
  const t2 = performance.now();
  const n = Math.max(1, stats.n);
  return {
    sequenceKLs,
    policyLoss: stats.policyLoss / n,
    valueLoss: stats.valueLoss / n,
    clipFraction: stats.clipFraction / n,
    approxKL: stats.approxKL / n,
    entropy: stats.entropy / n,
    referenceSeconds: (t1 - t0) / 1000,
    trainSeconds: (t2 - t1) / 1000,
  };
}
