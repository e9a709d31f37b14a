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

/**
 * Watches the sampled sequence KLs for a bias below zero. With tokens drawn from π itself the mean of k1 is
 * ≥ 0, but one step's batch mean is not: a few sequences with a large negative log-ratio pull a batch of 32
 * to −0.15 while the steps beside it read +0.3 (seen in the demo's PPO). So the guard judges only once it
 * has `window` steps, pools them, and reports a mean below −`margin` that is also `z` standard errors below
 * zero: a sampler that does not draw from the policy (a mismatch of precision, dropout or a truncated
 * distribution) stays negative step after step; noise does not. After reporting it waits a whole window
 * before the next. (With the k3 estimator every sequence KL is ≥ 0 and it never reports.)
 *
 * @example
 * const guard = new NegativeKLGuard();
 * guard.push([0.3, -0.1, 0.2]); // null: pooled mean above zero
 */
export class NegativeKLGuard {
  private readonly steps: { sum: number; sumSq: number; n: number }[] = [];
  private quiet = 0;
  constructor(
    readonly window = 8,
    readonly margin = 0.02,
    readonly z = 3,
  ) {}

  /**
   * Adds one step's totals of the sequence KLs (sum, sum of squares, count: what an all-reduce over ranks
   * gives) and returns the pooled mean and its standard error when they show a bias, else null.
   */
  pushTotals(sum: number, sumSq: number, n: number): { mean: number; stderr: number; steps: number } | null {
    this.steps.push({ sum, sumSq, n });
    if (this.steps.length > this.window) this.steps.shift();
    if (this.quiet > 0) this.quiet--;
    const zero = { sum: 0, sumSq: 0, n: 0 };
    const tot = this.steps.reduce(
      (a, s) => ({ sum: a.sum + s.sum, sumSq: a.sumSq + s.sumSq, n: a.n + s.n }),
      zero,
    );
    if (this.steps.length < this.window || tot.n < 2) return null;
    const mean = tot.sum / tot.n;
    const variance = Math.max(0, (tot.sumSq - tot.n * mean * mean) / (tot.n - 1));
    const stderr = Math.sqrt(variance / tot.n);
    if (this.quiet > 0 || !(mean < -this.margin && mean + this.z * stderr < 0)) return null;
    this.quiet = this.window;
    return { mean, stderr, steps: this.steps.length };
  }

  /** `pushTotals` for one process's sequence KLs. */
  push(sequenceKLs: readonly number[]): { mean: number; stderr: number; steps: number } | null {
    let sum = 0;
    let sumSq = 0;
    for (const k of sequenceKLs) {
      sum += k;
      sumSq += k * k;
    }
    return this.pushTotals(sum, sumSq, sequenceKLs.length);
  }
}
