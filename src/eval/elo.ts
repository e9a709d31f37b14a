/**
 * Maximum-likelihood Elo from pairwise comparisons, as Bai et al. 2022 define it (§4.5, Appendix):
 *
 *   r = (ln 10 / 400) · Elo,   P(A beats B) = 1 / (1 + e^(r_B − r_A)) = 1 / (1 + 10^(−ΔElo/400)),
 *   log L = Σ_pairs −N_A·log(1 + e^(r_B − r_A)) − N_B·log(1 + e^(r_A − r_B)).
 *
 * The likelihood only sees differences, and a model that wins every comparison has its MLE at +∞, so
 * the fit maximises log L − (λ/2)·Σ r_i² with a tiny λ (`priorPrecision`, default 0.01 in r units: a
 * Gaussian prior with s.d. 10 r ≈ 1737 Elo). Because Σ_i ∂logL/∂r_i = 0, the optimum has mean r = 0;
 * ratings are then reported relative to `anchor` (or to the mean). With ≥ ~50 comparisons per model
 * the prior moves an Elo by well under 1 point; an undefeated model with n wins lands near
 * 174·ln(n/λ) Elo above its opponents instead of at infinity.
 */
import { quantile, SeededRandom } from './rng.ts';

/** Elo points per nat of preference-model score: 400 / ln 10 ≈ 173.72 (the paper's "174"). */
export const ELO_PER_NAT = 400 / Math.LN10;

/** One comparison between the outputs of models `a` and `b`. */
export interface EloComparison {
  a: string;
  b: string;
  winner: 'a' | 'b';
}

/** Aggregated comparisons of one pair; counts may be fractional (e.g. PM probabilities as soft wins). */
export interface PairCounts {
  a: string;
  b: string;
  winsA: number;
  winsB: number;
}

export interface EloOptions {
  /** The model fixed at Elo 0; `null` reports ratings with mean 0. Default: the first model id in sort order. */
  anchor?: string | null;
  /** λ of the L2 prior on r (r units); must be > 0 for undefeated models to stay finite. Default 0.01. */
  priorPrecision?: number;
  maxIterations?: number;
  /** Stop when the largest Newton step is below this (r units). Default 1e-10. */
  tolerance?: number;
}

export interface EloFit {
  /** Model ids, sorted (the fit does not depend on input order). */
  models: string[];
  elo: Record<string, number>;
  /** Asymptotic standard error of each Elo relative to the anchor (inverse of the observed information). */
  standardError: Record<string, number>;
  /** Comparisons each model took part in, and how many it won. */
  comparisons: Record<string, number>;
  wins: Record<string, number>;
  total: number;
  anchor: string | null;
  /** Penalised log-likelihood at the optimum. */
  logLikelihood: number;
  iterations: number;
  converged: boolean;
  /** Connected components of the comparison graph; > 1 means some Elo gaps are set by the prior alone. */
  components: number;
}

/**
 * The probability that a model `deltaElo` points stronger wins a comparison.
 *
 * @example eloWinProbability(400) // 10/11 ≈ 0.909
 */
export function eloWinProbability(deltaElo: number): number {
  return 1 / (1 + 10 ** (-deltaElo / 400));
}

/**
 * The Elo gap a preference-model score gap predicts. A PM's P(A preferred) = σ(s_A − s_B) equals the
 * Elo win probability 1/(1 + 10^(−ΔElo/400)) = σ(ΔElo·ln10/400) exactly when ΔElo = (400/ln10)·Δs
 * ≈ 173.7·Δs, which the paper rounds to 174.
 *
 * @example pmGapToElo(1) // 173.72
 */
export function pmGapToElo(deltaPm: number): number {
  return ELO_PER_NAT * deltaPm;
}

/**
 * PM-predicted Elo of each model from its mean PM score, relative to `anchor` (or to the mean),
 * to set beside crowdworker Elo as in the paper's Figure 1/14.
 *
 * @example pmPredictedElo({ base: 0.2, ppo: 1.2 }, 'base') // { base: 0, ppo: 173.7 }
 */
export function pmPredictedElo(
  meanScores: Record<string, number>,
  anchor: string | null = null,
): Record<string, number> {
  const ids = Object.keys(meanScores);
  if (anchor !== null && !(anchor in meanScores))
    throw new RangeError(`pmPredictedElo: no score for '${anchor}'`);
  const base =
    anchor === null
      ? ids.reduce((s, id) => s + meanScores[id]!, 0) / Math.max(1, ids.length)
      : meanScores[anchor]!;
  return Object.fromEntries(ids.map((id) => [id, pmGapToElo(meanScores[id]! - base)]));
}

/**
 * Sums comparisons into one PairCounts per unordered pair (ids in sort order, pairs sorted), so
 * anything computed from the tally is independent of the order of the input.
 *
 * @example tallyComparisons([{ a: 'x', b: 'y', winner: 'b' }]) // [{ a: 'x', b: 'y', winsA: 0, winsB: 1 }]
 */
export function tallyComparisons(data: readonly (EloComparison | PairCounts)[]): PairCounts[] {
  const byPair = new Map<string, PairCounts>();
  for (const d of data) {
    if (d.a === d.b) throw new RangeError(`Elo: a comparison of '${d.a}' with itself`);
    let [wa, wb] = 'winner' in d ? (d.winner === 'a' ? [1, 0] : [0, 1]) : [d.winsA, d.winsB];
    if (!(wa >= 0 && wb >= 0 && Number.isFinite(wa + wb))) {
      throw new RangeError(`Elo: win counts must be finite and ≥ 0 (got ${wa}, ${wb} for ${d.a} vs ${d.b})`);
    }
    let [a, b] = [d.a, d.b];
    if (b < a) [a, b, wa, wb] = [b, a, wb, wa];
    const key = JSON.stringify([a, b]);
    const cell = byPair.get(key) ?? { a, b, winsA: 0, winsB: 0 };
    cell.winsA += wa;
    cell.winsB += wb;
    byPair.set(key, cell);
  }
  return [...byPair.values()].sort((x, y) => (x.a === y.a ? (x.b < y.b ? -1 : 1) : x.a < y.a ? -1 : 1));
}

// ---- the Newton solver on indexed pairs ----

interface IndexedPair {
  i: number;
  j: number;
  winsI: number;
  winsJ: number;
}

const softplus = (x: number): number => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

function penalisedLogLikelihood(r: Float64Array, pairs: readonly IndexedPair[], lambda: number): number {
  let ll = 0;
  for (const p of pairs) {
    const d = r[p.i]! - r[p.j]!;
    ll -= p.winsI * softplus(-d) + p.winsJ * softplus(d);
  }
  for (const v of r) ll -= 0.5 * lambda * v * v;
  return ll;
}

/** Gradient and NEGATIVE Hessian (positive definite thanks to λ) of the penalised log-likelihood. */
function derivatives(r: Float64Array, pairs: readonly IndexedPair[], lambda: number) {
  const k = r.length;
  const grad = new Float64Array(k);
  const info = new Float64Array(k * k); // (K, K), row-major
  for (let i = 0; i < k; i++) {
    grad[i] = -lambda * r[i]!;
    info[i * k + i] = lambda;
  }
  for (const p of pairs) {
    const prob = sigmoid(r[p.i]! - r[p.j]!); // P(i beats j)
    const n = p.winsI + p.winsJ;
    const g = p.winsI - n * prob;
    grad[p.i]! += g;
    grad[p.j]! -= g;
    const w = n * prob * (1 - prob);
    info[p.i * k + p.i]! += w;
    info[p.j * k + p.j]! += w;
    info[p.i * k + p.j]! -= w;
    info[p.j * k + p.i]! -= w;
  }
  return { grad, info };
}

/** In-place Cholesky of a symmetric positive-definite (K, K) matrix; returns the lower factor. */
function cholesky(a: Float64Array, k: number): Float64Array {
  const l = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * k + j]!;
      for (let m = 0; m < j; m++) s -= l[i * k + m]! * l[j * k + m]!;
      if (i === j) {
        if (!(s > 0)) throw new RangeError('Elo: information matrix is not positive definite (is λ > 0?)');
        l[i * k + i] = Math.sqrt(s);
      } else l[i * k + j] = s / l[j * k + j]!;
    }
  }
  return l;
}

function choleskySolve(l: Float64Array, k: number, b: Float64Array): Float64Array {
  const y = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let s = b[i]!;
    for (let m = 0; m < i; m++) s -= l[i * k + m]! * y[m]!;
    y[i] = s / l[i * k + i]!;
  }
  const x = new Float64Array(k);
  for (let i = k - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let m = i + 1; m < k; m++) s -= l[m * k + i]! * x[m]!;
    x[i] = s / l[i * k + i]!;
  }
  return x;
}

/** Damped Newton ascent; concave objective, so backtracking on the objective guarantees progress. */
function newton(
  pairs: readonly IndexedPair[],
  start: Float64Array,
  lambda: number,
  maxIter: number,
  tol: number,
) {
  const r = Float64Array.from(start);
  let ll = penalisedLogLikelihood(r, pairs, lambda);
  for (let it = 1; it <= maxIter; it++) {
    const { grad, info } = derivatives(r, pairs, lambda);
    const step = choleskySolve(cholesky(info, r.length), r.length, grad);
    let t = 1;
    let next = r;
    let nextLl = ll;
    for (let halvings = 0; halvings < 40; halvings++, t /= 2) {
      next = r.map((v, i) => v + t * step[i]!);
      nextLl = penalisedLogLikelihood(next, pairs, lambda);
      if (nextLl >= ll - 1e-12 * Math.abs(ll)) break;
    }
    const moved = Math.max(0, ...step.map((s) => Math.abs(t * s)));
    r.set(next);
    ll = nextLl;
    if (moved < tol) return { r, ll, iterations: it, converged: true };
  }
  return { r, ll, iterations: maxIter, converged: false };
}

function countComponents(k: number, pairs: readonly IndexedPair[]): number {
  const parent = Array.from({ length: k }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) x = parent[x] = parent[parent[x]!]!;
    return x;
  };
  for (const p of pairs) if (p.winsI + p.winsJ > 0) parent[find(p.i)] = find(p.j);
  return new Set(parent.map((_, i) => find(i))).size;
}

interface Prepared {
  models: string[];
  tally: PairCounts[];
  pairs: IndexedPair[];
}

function prepare(data: readonly (EloComparison | PairCounts)[]): Prepared {
  const tally = tallyComparisons(data);
  const models = [...new Set(tally.flatMap((p) => [p.a, p.b]))].sort();
  if (models.length === 0) throw new RangeError('Elo: no comparisons');
  const index = new Map(models.map((m, i) => [m, i]));
  const pairs = tally.map((p) => ({
    i: index.get(p.a)!,
    j: index.get(p.b)!,
    winsI: p.winsA,
    winsJ: p.winsB,
  }));
  return { models, tally, pairs };
}

function resolveAnchor(models: readonly string[], anchor: string | null | undefined): number {
  if (anchor === null) return -1;
  if (anchor === undefined) return 0;
  const i = models.indexOf(anchor);
  if (i < 0)
    throw new RangeError(`Elo: anchor '${anchor}' is not among the compared models (${models.join(', ')})`);
  return i;
}

/** Elo of each model relative to the anchor index (or to the mean when anchorIndex < 0). */
function toElo(r: Float64Array, anchorIndex: number): Float64Array {
  const base = anchorIndex >= 0 ? r[anchorIndex]! : r.reduce((s, v) => s + v, 0) / r.length;
  return r.map((v) => ELO_PER_NAT * (v - base));
}

/**
 * Maximum-likelihood Elo (Newton's method, exact to ~1e-10 r) with asymptotic standard errors.
 *
 * @example
 * const fit = fitElo([
 *   { a: 'base', b: 'ppo', winner: 'b' },
 *   { a: 'base', b: 'ppo', winner: 'b' },
 *   { a: 'base', b: 'ppo', winner: 'a' },
 * ], { anchor: 'base' });
 * fit.elo.ppo; // ≈ 120 (= 174·ln 2, slightly less because of the prior)
 */
export function fitElo(data: readonly (EloComparison | PairCounts)[], opts: EloOptions = {}): EloFit {
  const { models, pairs } = prepare(data);
  const lambda = opts.priorPrecision ?? 0.01;
  if (!(lambda > 0)) throw new RangeError(`Elo: priorPrecision must be > 0 (got ${lambda})`);
  const anchorIndex = resolveAnchor(models, opts.anchor);
  const k = models.length;
  const sol = newton(pairs, new Float64Array(k), lambda, opts.maxIterations ?? 100, opts.tolerance ?? 1e-10);
  const elo = toElo(sol.r, anchorIndex);

  // Covariance of r ≈ inverse information; s.e. of (r_i − r_anchor) or (r_i − mean r), in Elo.
  const l = cholesky(derivatives(sol.r, pairs, lambda).info, k);
  const cov = Array.from({ length: k }, (_, c) =>
    choleskySolve(
      l,
      k,
      Float64Array.from({ length: k }, (_, i) => (i === c ? 1 : 0)),
    ),
  );
  const se = models.map((_, i) => {
    const v = new Float64Array(k);
    v[i] = 1;
    if (anchorIndex >= 0) v[anchorIndex]! -= 1;
    else for (let m = 0; m < k; m++) v[m]! -= 1 / k;
    let q = 0;
    for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) q += v[a]! * cov[b]![a]! * v[b]!;
    return ELO_PER_NAT * Math.sqrt(Math.max(0, q));
  });

  const comparisons = new Float64Array(k);
  const wins = new Float64Array(k);
  for (const p of pairs) {
    comparisons[p.i]! += p.winsI + p.winsJ;
    comparisons[p.j]! += p.winsI + p.winsJ;
    wins[p.i]! += p.winsI;
    wins[p.j]! += p.winsJ;
  }
  const record = (xs: ArrayLike<number>) => Object.fromEntries(models.map((m, i) => [m, xs[i]!]));
  return {
    models,
    elo: record(elo),
    standardError: record(se),
    comparisons: record(comparisons),
    wins: record(wins),
    total: pairs.reduce((s, p) => s + p.winsI + p.winsJ, 0),
    anchor: anchorIndex >= 0 ? models[anchorIndex]! : null,
    logLikelihood: sol.ll,
    iterations: sol.iterations,
    converged: sol.converged,
    components: countComponents(k, pairs),
  };
}

export interface EloBootstrapOptions extends EloOptions {
  /** Bootstrap resamples. Default 1000. */
  samples?: number;
  seed?: number;
  /** Central interval mass. Default 0.95. */
  level?: number;
}

export interface EloBootstrap {
  fit: EloFit;
  /** Percentile interval of each model's Elo (relative to the same anchor). */
  interval: Record<string, { lower: number; upper: number }>;
  samples: number;
  level: number;
}

/**
 * Elo with bootstrap percentile intervals: each resample draws as many comparisons as there are,
 * with replacement (fractional counts act as weights; the number drawn is the rounded total), and
 * refits. A model absent from a resample falls back to the prior mean there, so give each model
 * enough comparisons (≥ ~20) for the interval to mean much.
 *
 * @example
 * const { fit, interval } = bootstrapElo(comparisons, { anchor: 'base', samples: 1000, seed: 1 });
 * console.log(fit.elo.ppo, interval.ppo.lower, interval.ppo.upper);
 */
export function bootstrapElo(
  data: readonly (EloComparison | PairCounts)[],
  opts: EloBootstrapOptions = {},
): EloBootstrap {
  const fit = fitElo(data, opts);
  const { models, pairs } = prepare(data);
  const k = models.length;
  const lambda = opts.priorPrecision ?? 0.01;
  const anchorIndex = resolveAnchor(models, fit.anchor);
  const samples = opts.samples ?? 1000;
  const level = opts.level ?? 0.95;
  if (!(samples >= 1 && level > 0 && level < 1))
    throw new RangeError('bootstrapElo: need samples ≥ 1 and 0 < level < 1');

  // Cells: (pair, outcome) with weight = count; draws pick a cell with probability ∝ weight.
  const cellWeight: number[] = [];
  for (const p of pairs) cellWeight.push(p.winsI, p.winsJ);
  const cumulative = new Float64Array(cellWeight.length);
  cellWeight.reduce((s, w, c) => (cumulative[c] = s + w), 0);
  const totalWeight = cumulative[cumulative.length - 1] ?? 0;
  const draws = Math.max(1, Math.round(totalWeight));
  const rng = new SeededRandom(opts.seed ?? 0);
  const start = Float64Array.from(models.map((m) => fit.elo[m]! / ELO_PER_NAT));
  const perModel = models.map(() => new Float64Array(samples));

  for (let s = 0; s < samples; s++) {
    const counts = new Float64Array(cellWeight.length);
    for (let d = 0; d < draws; d++) {
      const u = rng.uniform() * totalWeight;
      let lo = 0;
      let hi = cumulative.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumulative[mid]! > u) hi = mid;
        else lo = mid + 1;
      }
      counts[lo]! += 1;
    }
    const resampled = pairs.map((p, c) => ({ ...p, winsI: counts[2 * c]!, winsJ: counts[2 * c + 1]! }));
    const sol = newton(resampled, start, lambda, opts.maxIterations ?? 100, opts.tolerance ?? 1e-8);
    const elo = toElo(sol.r, anchorIndex);
    for (let i = 0; i < k; i++) perModel[i]![s] = elo[i]!;
  }
  const tail = (1 - level) / 2;
  const interval = Object.fromEntries(
    models.map((m, i) => [
      m,
      { lower: quantile(perModel[i]!, tail), upper: quantile(perModel[i]!, 1 - tail) },
    ]),
  );
  return { fit, interval, samples, level };
}
