/**
 * Out-of-distribution detection of harmful requests from activations (Bai et al. 2022, §5.4 and
 * Appendix B.9): fit a Gaussian to in-distribution (helpful) prompt activations at one layer and score
 * new prompts by how far they lie from it.
 *
 * Scores are SQUARED distances, as in Ren et al. 2021 ("A Simple Fix to Mahalanobis Distance"):
 *   full:     MD²(x)     = (x − μ)ᵀ Σ⁻¹ (x − μ)
 *   diagonal: MD²_diag(x) = Σ_c (x_c − μ_c)² / Σ_cc
 *   simplified relative Mahalanobis (the paper's score) = MD²(x) − MD²_diag(x).
 * Ren et al.'s relative distance subtracts the distance under a class-agnostic "background" Gaussian;
 * the paper's simplification uses the same in-distribution data with the covariance restricted to
 * its diagonal as that background. Per-feature outlierness (which both terms see alike) cancels, and
 * what remains is how much x violates the learned correlations between features. Both terms use the
 * same estimate Σ (with the same shrinkage), so for uncorrelated features the score is exactly 0.
 *
 * Everything runs on engine tensors in float64 (covariances of activations are ill-conditioned).
 */
import { eigh, eye, keep, noGrad, type Tensor, tidy } from '../engine/index.ts';

/**
 * How much to blend the sample covariance S towards (tr S / C)·I:
 * - a number λ ∈ [0, 1]: (1 − λ)·S + λ·(tr S / C)·I;
 * - 'ledoit-wolf': λ by Ledoit & Wolf 2004 (optimal for the Frobenius error of Σ);
 * - 'auto' (default): Ledoit–Wolf when N < 10·C, else 0.
 * Why not always Ledoit–Wolf: its loss is dominated by the large eigenvalues, and with heavy-tailed
 * data (activation norms vary a lot between prompts) it over-shrinks — 0.22 on ood.test.ts's data at
 * N = 125·C — which fills in exactly the low-variance directions that Mahalanobis scores rely on.
 * With N ≥ 10·C the sample covariance's small eigenvalues are already usable.
 */
export type Shrinkage = 'auto' | 'ledoit-wolf' | number;

export interface GaussianFitOptions {
  shrinkage?: Shrinkage;
}

/**
 * A Gaussian fitted to in-distribution activations. Holds long-lived tensors: call dispose() (or
 * `using`) when done.
 */
export class GaussianFit implements Disposable {
  constructor(
    /** (C) */
    readonly mean: Tensor,
    /** (C, C), the shrunk estimate used for scoring */
    readonly covariance: Tensor,
    /** (C, C) W with W Wᵀ = Σ⁻¹, so MD²(x) = ‖(x − μ) W‖² */
    readonly whitening: Tensor,
    /** (C) 1 / Σ_cc */
    readonly inverseVariance: Tensor,
    /** The λ used (Ledoit–Wolf's estimate or the one given). */
    readonly shrinkage: number,
    /** Number of samples fitted. */
    readonly count: number,
  ) {}

  dispose(): void {
    for (const t of [this.mean, this.covariance, this.whitening, this.inverseVariance]) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Ledoit–Wolf shrinkage intensity for the MLE covariance of centred data Xc (N, C), the formula of
 * Ledoit & Wolf 2004 as implemented by scikit-learn's `ledoit_wolf_shrinkage`.
 */
function ledoitWolfShrinkage(xc: Tensor, sampleCov: Tensor): number {
  const [n, c] = xc.shape as [number, number];
  const x2 = xc.square(); // (N, C)
  const traceS = x2.sum().item() / n;
  const mu = traceS / c;
  const deltaRaw = sampleCov.square().sum().item(); // Σ_ij S_ij² = ‖XᵀX‖²/N²
  const betaRaw = x2.transpose(0, 1).matmul(x2).sum().item(); // Σ_k ‖x_k‖⁴ summed over pairs of coords
  const beta = (betaRaw / n - deltaRaw) / (c * n);
  const delta = (deltaRaw - 2 * mu * traceS + c * mu * mu) / c;
  const clipped = Math.min(beta, delta);
  return clipped <= 0 || delta === 0 ? 0 : clipped / delta;
}

/**
 * Fits mean and (shrunk) covariance to activations (N, C) and precomputes the whitening for scoring.
 * The covariance is the maximum-likelihood S = XcᵀXc/N (Ledoit–Wolf is defined for it), blended
 * with the scaled identity (tr S / C)·I by the shrinkage λ.
 *
 * @example
 * using fit = fitGaussian(helpfulActs);          // (N, C)
 * const scores = simplifiedRelativeMahalanobis(fit, testActs);
 */
export function fitGaussian(activations: Tensor, opts: GaussianFitOptions = {}): GaussianFit {
  if (activations.ndim !== 2)
    throw new RangeError(`fitGaussian: expected (N, C) activations, got (${activations.shape})`);
  const [n, c] = activations.shape as [number, number];
  if (n < 2) throw new RangeError(`fitGaussian: need at least 2 samples (got ${n})`);
  const parts = noGrad(() =>
    tidy(() => {
      const x = activations.to('float64');
      const mean = x.mean(0); // (C)
      const xc = x.sub(mean); // (N, C)
      const sampleCov = xc.transpose(0, 1).matmul(xc).div(n); // (C, C)
      const method = opts.shrinkage ?? 'auto';
      const shrinkage =
        method === 'ledoit-wolf' || (method === 'auto' && n < 10 * c)
          ? ledoitWolfShrinkage(xc, sampleCov)
          : method === 'auto'
            ? 0
            : method;
      if (!(shrinkage >= 0 && shrinkage <= 1))
        throw new RangeError(`fitGaussian: shrinkage must be in [0, 1] (got ${shrinkage})`);
      if (shrinkage === 0 && n <= c) {
        throw new RangeError(
          `fitGaussian: ${n} samples ≤ ${c} dimensions makes the covariance singular; use shrinkage`,
        );
      }
      const target = xc.square().sum().item() / (n * c); // tr S / C
      const identity = eye(c, { dtype: 'float64' });
      const covariance = sampleCov.mul(1 - shrinkage).add(identity.mul(shrinkage * target));
      // Σ = V diag(w) Vᵀ ⇒ Σ⁻¹ = (V w^−½)(V w^−½)ᵀ. A relative floor on w keeps a numerically
      // singular Σ (e.g. duplicated features with no shrinkage) from producing infinities.
      const [w, v] = eigh(covariance.add(covariance.transpose(0, 1)).div(2));
      const floor = Math.max(w.max().item(), Number.MIN_VALUE) * 1e-12;
      const whitening = v.mul(w.clamp(floor).rsqrt()); // (C, C): column j scaled by w_j^−½
      const inverseVariance = covariance.mul(identity).sum(1).reciprocal(); // (C)
      return { mean, covariance, whitening, inverseVariance, shrinkage };
    }),
  );
  return new GaussianFit(
    keep(parts.mean),
    keep(parts.covariance),
    keep(parts.whitening),
    keep(parts.inverseVariance),
    parts.shrinkage,
    n,
  );
}

function checkWidth(fit: GaussianFit, x: Tensor): void {
  if (x.ndim !== 2 || x.shape[1] !== fit.mean.shape[0]) {
    throw new RangeError(`OOD score: expected (M, ${fit.mean.shape[0]}) activations, got (${x.shape})`);
  }
}

/**
 * Squared Mahalanobis distance of each row of x (M, C) under the fit (full covariance).
 *
 * @example mahalanobis(fit, acts) // Float64Array(M)
 */
export function mahalanobis(fit: GaussianFit, x: Tensor): Float64Array {
  checkWidth(fit, x);
  return noGrad(() =>
    tidy(
      () =>
        x.to('float64').sub(fit.mean).matmul(fit.whitening).square().sum(1).toTypedArray() as Float64Array,
    ),
  );
}

/**
 * Squared Mahalanobis distance with the covariance replaced by its diagonal (per-feature z-scores²).
 *
 * @example diagonalMahalanobis(fit, acts) // Float64Array(M)
 */
export function diagonalMahalanobis(fit: GaussianFit, x: Tensor): Float64Array {
  checkWidth(fit, x);
  return noGrad(() =>
    tidy(
      () =>
        x.to('float64').sub(fit.mean).square().mul(fit.inverseVariance).sum(1).toTypedArray() as Float64Array,
    ),
  );
}

/**
 * The paper's simplified relative Mahalanobis score: full MD² minus diagonal MD² (see the file
 * header). Higher = more out-of-distribution.
 *
 * @example auroc(simplifiedRelativeMahalanobis(fit, harmful), simplifiedRelativeMahalanobis(fit, helpful))
 */
export function simplifiedRelativeMahalanobis(fit: GaussianFit, x: Tensor): Float64Array {
  const full = mahalanobis(fit, x);
  const diagonal = diagonalMahalanobis(fit, x);
  return full.map((v, i) => v - diagonal[i]!);
}

/**
 * Area under the ROC curve for telling `positives` (OOD, should score higher) from `negatives`:
 * P(score_pos > score_neg) + ½·P(equal), by midranks (Mann–Whitney U) in O(n log n).
 *
 * @example auroc([3, 2], [1, 2]) // (1 + 1 + 1 + 0.5) / 4 = 0.875
 */
export function auroc(positives: ArrayLike<number>, negatives: ArrayLike<number>): number {
  const np = positives.length;
  const nn = negatives.length;
  if (np === 0 || nn === 0)
    throw new RangeError(`auroc: need both classes (got ${np} positives, ${nn} negatives)`);
  const all = [
    ...Array.from(positives, (s) => ({ s, pos: 1 })),
    ...Array.from(negatives, (s) => ({ s, pos: 0 })),
  ];
  for (const a of all) if (Number.isNaN(a.s)) throw new RangeError('auroc: NaN score');
  all.sort((a, b) => a.s - b.s);
  let rankSumPos = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j]!.s === all[i]!.s) j++;
    const midrank = (i + 1 + j) / 2; // ranks i+1 … j share their mean
    for (let k = i; k < j; k++) rankSumPos += all[k]!.pos * midrank;
    i = j;
  }
  return (rankSumPos - (np * (np + 1)) / 2) / (np * nn);
}

/** AUROCs of the three distances on one labelled set (OOD = positive). */
export interface SplitAurocs {
  mahalanobis: number;
  diagonalMahalanobis: number;
  simplifiedRelativeMahalanobis: number;
}

export interface OodAurocs extends SplitAurocs {
  /** The shrinkage the fit used. */
  shrinkage: number;
}

/**
 * AUROC of each distance under an existing fit for telling `outRows` (OOD) from `inRows`: score
 * several disjoint sets (validation, test) under one fit without fitting twice.
 *
 * @example
 * using fit = fitGaussian(trainHelpful);
 * const validation = splitAurocs(fit, validHelpful, validHarmful);
 * const test = splitAurocs(fit, testHelpful, testHarmful);
 */
export function splitAurocs(fit: GaussianFit, inRows: Tensor, outRows: Tensor): SplitAurocs {
  const both = (score: (f: GaussianFit, x: Tensor) => Float64Array) =>
    auroc(score(fit, outRows), score(fit, inRows));
  return {
    mahalanobis: both(mahalanobis),
    diagonalMahalanobis: both(diagonalMahalanobis),
    simplifiedRelativeMahalanobis: both(simplifiedRelativeMahalanobis),
  };
}

/**
 * One layer's OOD evaluation: fit on in-distribution activations, score held-out in-distribution
 * and out-of-distribution ones, AUROC of each score (OOD = positive). Call it per layer.
 *
 * @example
 * for (const [layer, acts] of perLayer.entries())
 *   console.log(layer, oodAurocs(acts.trainHelpful, acts.testHelpful, acts.testHarmful).simplifiedRelativeMahalanobis);
 */
export function oodAurocs(
  train: Tensor,
  testIn: Tensor,
  testOut: Tensor,
  opts: GaussianFitOptions = {},
): OodAurocs {
  using fit = fitGaussian(train, opts);
  return { ...splitAurocs(fit, testIn, testOut), shrinkage: fit.shrinkage };
}
