// Whitening and generalised advantage estimation over response tokens (B, N) with a mask. Computed on
// plain arrays: N is at most a few hundred tokens, and the reverse recursion of GAE is a scalar loop.

/** Row-major (B, N) numbers plus a (B, N) 0/1 mask; masked-out entries are ignored and returned as 0. */
export interface Masked2D {
  values: ArrayLike<number>;
  mask: ArrayLike<number>;
  B: number;
  N: number;
}

/**
 * Sums a vector of local statistics over every process of a data-parallel run (engine's allReduceNumbers);
 * the identity on one process.
 */
export type SumAcrossRanks = (values: number[]) => number[];

/**
 * Masked whitening, as TRL's masked_whiten: (x − mean)/√(var + 1e-8) over the unmasked entries, var the
 * unbiased masked variance; with `shiftMean` false the mean is added back (TRL whitens rewards that way,
 * so their sign survives). Masked-out entries become 0. With `sumAcrossRanks`, the mean and variance are
 * those of every rank's entries together (count and sum, then the sum of squared deviations, each summed
 * over ranks), so N processes whiten as one process holding all the rows.
 *
 * @example whiten([1, 2, 3, 0], [1, 1, 1, 0]) // [-1, 0, 1, 0]
 */
export function whiten(
  values: ArrayLike<number>,
  mask: ArrayLike<number>,
  shiftMean = true,
  sumAcrossRanks: SumAcrossRanks = (xs) => xs,
): Float64Array {
  let localN = 0;
  let localSum = 0;
  for (let i = 0; i < values.length; i++) {
    if (mask[i]) {
      localN++;
      localSum += values[i]!;
    }
  }
  const [n = 0, sum = 0] = sumAcrossRanks([localN, localSum]);
  const out = new Float64Array(values.length);
  if (n === 0) return out;
  const mean = sum / n;
  let localSS = 0;
  for (let i = 0; i < values.length; i++) if (mask[i]) localSS += (values[i]! - mean) ** 2;
  const [ss = 0] = sumAcrossRanks([localSS]);
  // Bessel-corrected, as torch.var's default (TRL corrects the masked variance the same way).
  const variance = n > 1 ? ss / (n - 1) : 0;
  const scale = 1 / Math.sqrt(variance + 1e-8);
  for (let i = 0; i < values.length; i++) {
    if (!mask[i]) continue;
    const z = (values[i]! - mean) * scale;
    out[i] = shiftMean ? z : z + mean;
  }
  return out;
}

export interface GAEResult {
  /** (B, N) advantages A_t, 0 where masked. */
  advantages: Float64Array;
  /** (B, N) value targets A_t + V_t, 0 where masked. */
  returns: Float64Array;
}

/**
 * Generalised advantage estimation (Schulman et al. 2016) per row, over that row's unmasked tokens in
 * order (a response's mask is a prefix of the row): δ_t = r_t + γ·V_{t+1} − V_t, A_t = δ_t + γλ·A_{t+1},
 * with V and A zero after the last token. returns = A + V, the value head's target (TRL's compute_advantages).
 *
 * @example
 * gae({ values: [1, 2], mask: [1, 1], B: 1, N: 2 }, [0, 1], 1, 0.95).advantages // [0.05, -1]
 */
export function gae(values: Masked2D, rewards: ArrayLike<number>, gamma = 1, lambda = 0.95): GAEResult {
  const { B, N, mask } = values;
  const v = values.values;
  const advantages = new Float64Array(B * N);
  const returns = new Float64Array(B * N);
  for (let b = 0; b < B; b++) {
    let nextValue = 0;
    let nextAdvantage = 0;
    for (let t = N - 1; t >= 0; t--) {
      const i = b * N + t;
      if (!mask[i]) continue;
      const delta = rewards[i]! + gamma * nextValue - v[i]!;
      const advantage = delta + gamma * lambda * nextAdvantage;
      advantages[i] = advantage;
      returns[i] = advantage + v[i]!;
      nextValue = v[i]!;
      nextAdvantage = advantage;
    }
  }
  return { advantages, returns };
}

/**
 * Per-token rewards of PPO's stage 3: −λ_KL·KL_t on every response token, plus the sequence's score on
 * its last token (the PM reads the full transcript once the response is complete).
 *
 * @example penalisedRewards([0.5, 0.1, 0.2], [1, 1, 0], [2], 1, 3, 0.1) // [-0.05, 1.99, 0]
 */
export function penalisedRewards(
  kl: ArrayLike<number>,
  mask: ArrayLike<number>,
  scores: ArrayLike<number>,
  B: number,
  N: number,
  klCoef: number,
): Float64Array {
  const rewards = new Float64Array(B * N);
  for (let b = 0; b < B; b++) {
    let last = -1;
    for (let t = 0; t < N; t++) {
      const i = b * N + t;
      if (!mask[i]) continue;
      rewards[i] = -klCoef * kl[i]!;
      last = i;
    }
    if (last >= 0) rewards[last] = rewards[last]! + scores[b]!;
  }
  return rewards;
}
