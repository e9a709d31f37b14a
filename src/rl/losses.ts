// PPO's losses on response tokens (Schulman et al. 2017, as TRL's PPOTrainer.loss): the clipped surrogate
// policy loss, the clipped value loss, and the statistics logged beside them. All masked means over the
// response tokens of a minibatch: (B, N) tensors with a (B, N) float 0/1 mask. Under data parallelism a
// rank holds part of the minibatch: pass `tokens`, the whole minibatch's token count over all ranks, so the
// ranks' losses (and their gradients, summed by syncGradients) add up to the one-process mean.
import { type Tensor, tidy } from '../engine/index.ts';

/** Σ x·mask / Σ mask (a scalar tensor); with `tokens`, Σ x·mask / tokens (a share of a larger mean). */
export function maskedMean(x: Tensor, mask: Tensor, tokens?: number): Tensor {
  const total = x.mul(mask).sum();
  return tokens === undefined ? total.div(mask.sum().clamp(1)) : total.div(Math.max(1, tokens));
}

export interface PolicyLossOutput {
  /** Scalar: masked mean of max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε)) (over `tokens` when given). */
  loss: Tensor;
  /** Fraction of tokens where the clipped term was the larger (the gradient is cut), over this mask. */
  clipFraction: number;
  /** ½·mean((log π − log π_old)²) over this mask, the approx-KL between the new and the rollout policy. */
  approxKL: number;
}

/**
 * Clipped surrogate policy loss. `logprobs` (B, N) carries gradients; `oldLogprobs` and `advantages` do not.
 * `tokens` (default: the mask's count) divides the masked sum: a rank passes the global minibatch's count.
 *
 * @example const { loss, clipFraction } = clippedPolicyLoss(logp, oldLogp, adv, mask, 0.2);
 */
export function clippedPolicyLoss(
  logprobs: Tensor,
  oldLogprobs: Tensor,
  advantages: Tensor,
  mask: Tensor,
  clipRange = 0.2,
  tokens?: number,
): PolicyLossOutput {
  const logRatio = logprobs.sub(oldLogprobs); // (B, N)
  const ratio = logRatio.exp();
  const unclipped = advantages.neg().mul(ratio);
  const clipped = advantages.neg().mul(ratio.clamp(1 - clipRange, 1 + clipRange));
  const loss = maskedMean(unclipped.maximum(clipped), mask, tokens);
  const [clipFraction, approxKL] = tidy(() => [
    maskedMean(clipped.gt(unclipped).float(), mask).item(),
    maskedMean(logRatio.detach().square(), mask).item() * 0.5,
  ]);
  return { loss, clipFraction, approxKL };
}

export interface ValueLossOutput {
  /** Scalar: ½·masked mean of max((V − R)², (clip(V, V_old ± ε_v) − R)²) (over `tokens` when given). */
  loss: Tensor;
  /** Fraction of tokens where the clipped error was the larger. */
  clipFraction: number;
}

/**
 * Clipped value loss: the new value prediction may move at most `clipRange` from the rollout's before its
 * error stops counting (TRL's cliprange_value, default 0.2). `tokens` as in clippedPolicyLoss.
 *
 * @example const { loss } = clippedValueLoss(values, oldValues, returns, mask, 0.2);
 */
export function clippedValueLoss(
  values: Tensor,
  oldValues: Tensor,
  returns: Tensor,
  mask: Tensor,
  clipRange = 0.2,
  tokens?: number,
): ValueLossOutput {
  const clippedValues = values.sub(oldValues).clamp(-clipRange, clipRange).add(oldValues);
  const errorUnclipped = values.sub(returns).square();
  const errorClipped = clippedValues.sub(returns).square();
  const loss = maskedMean(errorUnclipped.maximum(errorClipped), mask, tokens).mul(0.5);
  const clipFraction = tidy(() => maskedMean(errorClipped.gt(errorUnclipped).float(), mask).item());
  return { loss, clipFraction };
}

/**
 * Mean entropy (nats) of the next-token distributions at response positions: logits (B, N, V), mask (B, N).
 *
 * @example const h = tokenEntropy(logits, mask); // ≈ log V for a uniform policy
 */
export function tokenEntropy(logits: Tensor, mask: Tensor): number {
  return tidy(() => {
    const logp = logits.detach().logSoftmax(-1);
    const entropy = logp.exp().mul(logp).sum(-1).neg(); // (B, N)
    return maskedMean(entropy, mask).item();
  });
}
