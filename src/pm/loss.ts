// The preference-model loss (Bai et al. 2022 §2.2, after Askell et al. 2021): for each comparison,
// L = log(1 + exp(r_rejected − r_chosen)) = softplus(r_rejected − r_chosen). Written with softplus, which
// torch evaluates stably (x for large x, log1p(exp(x)) otherwise), so a gap of ±1e4 neither overflows to
// inf nor loses the gradient.
import { type Tensor, tidy } from '../engine/index.ts';
import { pairAgreement } from '../eval/calibration.ts';

/**
 * Mean pairwise loss over a batch, each comparison weighted: `Σ_i w_i·softplus(r_rej_i − r_ch_i) / B`.
 * With weight 1 on helpful and λ on harmless comparisons this is L = L_help + λ·L_harm (§2.2's optional
 * weighting), normalised by the batch size so λ = 1 is the plain mean. `normalizer` replaces B: a
 * data-parallel rank passes the global batch's count, so the ranks' losses (and gradients) sum to the
 * loss of the whole batch on one process — the mean over a rank's slice would not.
 *
 * @example
 * const loss = preferenceLossTensor(tensor([2, 0]), tensor([0, 0])); // (softplus(−2) + ln 2) / 2
 * const weighted = preferenceLossTensor(rc, rr, tensor([1, 1, 0.5])); // λ = 0.5 on the third
 * const slice = preferenceLossTensor(rc, rr, w, 16); // this rank's 8 of a global batch of 16
 */
export function preferenceLossTensor(
  chosen: Tensor,
  rejected: Tensor,
  weights?: Tensor,
  normalizer: number = chosen.size(0),
): Tensor {
  if (chosen.ndim !== 1 || rejected.ndim !== 1 || chosen.size(0) !== rejected.size(0)) {
    throw new RangeError(
      `preferenceLossTensor: chosen and rejected must both be (B), got (${chosen.shape.join(', ')}) and (${rejected.shape.join(', ')})`,
    );
  }
  if (!(normalizer > 0))
    throw new RangeError(`preferenceLossTensor: normalizer must be > 0, got ${normalizer}`);
  const perComparison = rejected.sub(chosen).softplus(); // (B)
  const weighted = weights ? perComparison.mul(weights) : perComparison;
  return weighted.sum().div(normalizer);
}

/**
 * Per-comparison loss weights: 1 for helpful data and `harmlessWeight` (λ) for harmless data.
 *
 * @example lossWeights(['helpful', 'harmless'], 2) // [1, 2]
 */
export function lossWeights(tasks: readonly ('helpful' | 'harmless')[], harmlessWeight: number): number[] {
  return tasks.map((t) => (t === 'harmless' ? harmlessWeight : 1));
}

/**
 * pairAgreement summed over a batch of scores (B) each: the one tie rule, applied to the tensors' values.
 *
 * @example correctPairs(tensor([2, 1]), tensor([1, 1])) // 1.5
 */
export function correctPairs(chosen: Tensor, rejected: Tensor): number {
  return tidy(() => {
    const c = chosen.detach().toArray() as number[];
    const r = rejected.detach().toArray() as number[];
    return c.reduce((sum, x, i) => sum + pairAgreement(x, r[i]!), 0);
  });
}
