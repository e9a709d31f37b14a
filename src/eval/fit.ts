/**
 * Least-squares line fits for the robustness analysis (Bai et al. 2022, §4.2 / Figure 4): PM reward
 * grows roughly linearly in √KL(policy ‖ initial policy) early in RL training, and the paper fits a
 * line to that early part. These helpers fit y = intercept + slope·x and say over which x range.
 */

export interface LineFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination 1 − SS_res/SS_tot (1 when y is constant and fitted exactly). */
  r2: number;
  /** Standard error of the slope (NaN with fewer than 3 points). */
  slopeStandardError: number;
  n: number;
  /** The x range the line was fitted on: extrapolate beyond it with care. */
  xMin: number;
  xMax: number;
}

/**
 * The least-squares slope of y on x over the first min(|x|, |y|) points, or NaN when there are fewer than
 * two or x does not vary (for figures that report NaN where fitLine would throw).
 *
 * @example leastSquaresSlope([0, 0.5, 1], [0.1, 1.1, 2.1]) // 2
 */
export function leastSquaresSlope(x: readonly number[], y: readonly number[]): number {
  const n = Math.min(x.length, y.length);
  if (n < 2) return Number.NaN;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) [mx, my] = [mx + x[i]! / n, my + y[i]! / n];
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : Number.NaN;
}

/**
 * Ordinary least squares of y on x, computed on centred data (no cancellation when x is far from 0).
 *
 * @example fitLine([0, 1, 2], [1, 3, 5]) // { slope: 2, intercept: 1, r2: 1, … }
 */
export function fitLine(x: ArrayLike<number>, y: ArrayLike<number>): LineFit {
  const n = x.length;
  if (n !== y.length) throw new RangeError(`fitLine: ${n} x values but ${y.length} y values`);
  if (n < 2) throw new RangeError(`fitLine: need at least 2 points (got ${n})`);
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(x[i]!) || !Number.isFinite(y[i]!))
      throw new RangeError(`fitLine: non-finite point ${i}`);
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  let xMin = Number.POSITIVE_INFINITY;
  let xMax = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
    xMin = Math.min(xMin, x[i]!);
    xMax = Math.max(xMax, x[i]!);
  }
  if (sxx === 0) throw new RangeError('fitLine: all x values are equal, the slope is undefined');
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  // SS_res = SS_tot − slope·S_xy; clamp the tiny negative values rounding can give.
  const ssRes = Math.max(0, syy - slope * sxy);
  return {
    slope,
    intercept,
    r2: syy === 0 ? 1 : 1 - ssRes / syy,
    slopeStandardError: n > 2 ? Math.sqrt(ssRes / (n - 2) / sxx) : Number.NaN,
    n,
    xMin,
    xMax,
  };
}

export interface EarlyRangeOptions {
  /** Keep the first k points in x order. */
  firstK?: number;
  /** Keep points with x ≤ maxX. */
  maxX?: number;
  /** Keep the smallest `fraction` of the x range, [xMin, xMin + fraction·(xMax − xMin)]. */
  fraction?: number;
}

/**
 * Indices of the "early" points (ascending x): all criteria given must hold. With none given,
 * the first half of the x range.
 *
 * @example earlyRange([4, 1, 9, 2], { maxX: 3 }) // [1, 3]
 */
export function earlyRange(x: ArrayLike<number>, opts: EarlyRangeOptions = {}): number[] {
  const order = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[a]! - x[b]! || a - b);
  if (order.length === 0) return [];
  const lo = x[order[0]!]!;
  const hi = x[order[order.length - 1]!]!;
  const none = opts.firstK === undefined && opts.maxX === undefined && opts.fraction === undefined;
  const fraction = opts.fraction ?? (none ? 0.5 : undefined);
  return order.filter((i, rank) => {
    if (opts.firstK !== undefined && rank >= opts.firstK) return false;
    if (opts.maxX !== undefined && x[i]! > opts.maxX) return false;
    if (fraction !== undefined && x[i]! > lo + fraction * (hi - lo)) return false;
    return true;
  });
}

/**
 * Fits a line to the early part of a curve only (e.g. reward vs √KL before over-optimisation bends it).
 *
 * @example
 * const sqrtKl = kls.map(Math.sqrt);
 * const fit = fitEarlyLine(sqrtKl, rewards, { maxX: 4 });
 * console.log(`reward ≈ ${fit.intercept} + ${fit.slope}·√KL for √KL in [${fit.xMin}, ${fit.xMax}]`);
 */
export function fitEarlyLine(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  opts: EarlyRangeOptions = {},
): LineFit {
  if (x.length !== y.length)
    throw new RangeError(`fitEarlyLine: ${x.length} x values but ${y.length} y values`);
  const keep = earlyRange(x, opts);
  return fitLine(
    keep.map((i) => x[i]!),
    keep.map((i) => y[i]!),
  );
}

/** The line's value at x. @example predictLine(fitLine([0, 1], [1, 3]), 2) // 5 */
export function predictLine(fit: Pick<LineFit, 'slope' | 'intercept'>, x: number): number {
  return fit.intercept + fit.slope * x;
}
