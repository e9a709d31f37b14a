// Student's t intervals for a handful of runs (a training repeated with 3–5 seeds): there a percentile
// bootstrap is far too narrow — it resamples only the runs there are, and with 3 of them its 95% interval is
// about a third as wide as the t interval — so a mean over runs gets mean ± t(ν) · standard error, and a
// difference of two independent means Welch's interval (Welch–Satterthwaite degrees of freedom).
import { type Interval, mean, sampleVariance } from './intervals.ts';

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: ~15 significant digits). */
function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The continued fraction of the incomplete beta function (modified Lentz), for x < (a + 1) / (a + b + 2). */
function betaFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  for (let m = 1; m <= 300; m++) {
    for (const num of [
      (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)),
      -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1)),
    ]) {
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      h *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-15) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b). */
function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2)
    ? (front * betaFraction(a, b, x)) / a
    : 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/**
 * P(T ≤ t) for Student's t with `df` degrees of freedom (df > 0, not necessarily whole).
 *
 * @example studentCdf(0, 3) // 0.5
 */
export function studentCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/**
 * The p-quantile of Student's t with `df` degrees of freedom (bisection on the distribution function).
 *
 * @example studentQuantile(0.975, 4) // 2.776…
 */
export function studentQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`studentQuantile: p must lie in (0, 1), got ${p}`);
  if (!(df > 0)) throw new RangeError(`studentQuantile: df must be positive, got ${df}`);
  if (p < 0.5) return -studentQuantile(1 - p, df);
  let hi = 1;
  while (studentCdf(hi, df) < p) hi *= 2;
  let lo = 0;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * mean ± t(n − 1) · s / √n over a few runs. One run (or runs that all agree) has no spread to measure: the
 * interval is then the mean itself.
 *
 * @example tMeanInterval([1, 2, 3]) // { value: 2, lower: -0.48…, upper: 4.48…, level: 0.95, n: 3 }
 */
export function tMeanInterval(values: readonly number[], level = 0.95): Interval {
  const n = values.length;
  if (n === 0) throw new RangeError('tMeanInterval: no values');
  const value = mean(values);
  const se = n > 1 ? Math.sqrt(sampleVariance(values) / n) : 0;
  const half = se > 0 ? studentQuantile(1 - (1 - level) / 2, n - 1) * se : 0;
  return { value, lower: value - half, upper: value + half, level, n };
}

/**
 * mean(b) − mean(a) of two independent sets of runs, with Welch's t interval (no equal-variance assumption;
 * Welch–Satterthwaite degrees of freedom). A set of one run adds no spread of its own.
 *
 * @example welchDifference([0.77, 0.80, 0.76], [0.85, 0.87, 0.85]).value // 0.08
 */
export function welchDifference(a: readonly number[], b: readonly number[], level = 0.95): Interval {
  if (a.length === 0 || b.length === 0) throw new RangeError('welchDifference: an empty set of runs');
  const value = mean(b) - mean(a);
  const va = a.length > 1 ? sampleVariance(a) / a.length : 0;
  const vb = b.length > 1 ? sampleVariance(b) / b.length : 0;
  const se = Math.sqrt(va + vb);
  let half = 0;
  if (se > 0) {
    const terms = [
      [va, a.length],
      [vb, b.length],
    ].filter(([v, n]) => v! > 0 && n! > 1);
    const df = (va + vb) ** 2 / terms.reduce((s, [v, n]) => s + v! ** 2 / (n! - 1), 0);
    half = studentQuantile(1 - (1 - level) / 2, df) * se;
  }
  return { value, lower: value - half, upper: value + half, level, n: Math.min(a.length, b.length) };
}
