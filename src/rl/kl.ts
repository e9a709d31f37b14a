// KL between the policy and the frozen initial policy: per-token estimators, the controllers of the KL
// coefficient (fixed, or Ziegler et al. 2019's adaptive one, as TRL's AdaptiveKLController), and the
// analytic KL of best-of-N sampling.
import type { Tensor } from '../engine/index.ts';

/**
 * Per-token estimators of KL(π ‖ π_ref) from tokens sampled from π, given log π and log π_ref of them
 * (Schulman's "Approximating KL divergence"; TRL's kl_penalty, OpenRLHF's k1/k3):
 * - 'k1' = log π − log π_ref: unbiased, negative on single tokens, non-negative only in expectation.
 * - 'k3' = (r − 1) − log r with r = π_ref/π: unbiased too, and ≥ 0 on every token (lower variance).
 * Both are exactly 0 when the policies agree. Only valid when tokens come from π itself: top-k or a
 * minimum length changes the sampling distribution and the estimate can go negative.
 */
export type KLEstimator = 'k1' | 'k3';

/**
 * Per-token KL estimates (B, N) from log-probs (B, N) of the sampled tokens.
 *
 * @example klPerToken(logprobs, refLogprobs, 'k1') // (B, N): logprobs − refLogprobs
 */
export function klPerToken(logprobs: Tensor, refLogprobs: Tensor, estimator: KLEstimator = 'k1'): Tensor {
  const logRatio = logprobs.sub(refLogprobs); // log π/π_ref
  if (estimator === 'k1') return logRatio;
  // r = π_ref/π = exp(−logRatio); (r − 1) − log r = expm1(−logRatio) + logRatio
  return logRatio.neg().exp().sub(1).add(logRatio);
}

/** The same estimators on plain numbers (one token), for tests and logging. */
export function klEstimate(logprob: number, refLogprob: number, estimator: KLEstimator = 'k1'): number {
  const logRatio = logprob - refLogprob;
  return estimator === 'k1' ? logRatio : Math.expm1(-logRatio) + logRatio;
}

/** Holds λ_KL; `update` is called once per PPO step with the batch's mean sequence KL. */
export interface KLController {
  readonly value: number;
  update(currentKL: number, nSteps: number): void;
}

/**
 * A constant λ_KL. The paper uses 0.001 (§4.1), fixed.
 *
 * @example new FixedKLController(0.001).value // 0.001
 */
export class FixedKLController implements KLController {
  constructor(public value: number) {}
  update(): void {}
}

/**
 * Ziegler et al. 2019's controller: λ ← λ·(1 + clip(KL/target − 1, ±0.2)·nSteps/horizon), nudging the
 * measured KL towards `target` nats (TRL's defaults: target 6, horizon 10000).
 *
 * @example
 * const c = new AdaptiveKLController(0.2, 6, 10000);
 * c.update(12, 256); // KL above target: λ grows by 0.2·256/10000 = 0.512 %
 */
export class AdaptiveKLController implements KLController {
  constructor(
    public value: number,
    readonly target: number,
    readonly horizon: number,
  ) {}
  update(currentKL: number, nSteps: number): void {
    const error = Math.min(0.2, Math.max(-0.2, currentKL / this.target - 1));
    this.value *= 1 + (error * nSteps) / this.horizon;
  }
}

/**
 * KL(best-of-N ‖ base) = log N − (N − 1)/N nats (Stiennon et al. 2020; Bai et al. 2022 §4.2), the x axis
 * that puts rejection sampling beside RL on a √KL plot.
 *
 * @example bestOfNKL(1) // 0
 * @example bestOfNKL(4) // 0.636…
 */
export function bestOfNKL(n: number): number {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`bestOfNKL: N must be an integer ≥ 1, got ${n}`);
  return Math.log(n) - (n - 1) / n;
}
