// Bootstrap confidence intervals for the demo's claims (Efron's percentile bootstrap): a mean over
// prompts, a paired difference (the same prompts before and after a stage), and a difference of two
// independent means. Seeded, so a figure and its interval are the same on every machine.
import { quantile, SeededRandom } from './rng.ts';

export interface Interval {
  /** The statistic on the full sample. */
  value: number;
  /** Percentile bootstrap bounds at `level` (0.95: the 2.5th and 97.5th percentiles). */
  lower: number;
  upper: number;
  level: number;
  /** Observations behind it (pairs, for a paired difference). */
  n: number;
}

export interface BootstrapOptions {
  /** Resamples (default 1000). */
  samples?: number;
  level?: number;
  seed?: number;
}

/** The mean of the values (NaN when there are none). @example mean([1, 2, 3]) // 2 */
export const mean = (xs: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return xs.length ? s / xs.length : Number.NaN;
};

/** The sample variance, n − 1 in the denominator (NaN for fewer than 2 values). @example sampleVariance([1, 2, 3, 4]) // 5/3 */
export const sampleVariance = (xs: ArrayLike<number>): number => {
  if (xs.length < 2) return Number.NaN;
  const m = mean(xs);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i]! - m) ** 2;
  return s / (xs.length - 1);
};

function percentile(stats: number[], value: number, level: number, n: number): Interval {
  const tail = (1 - level) / 2;
  return { value, lower: quantile(stats, tail), upper: quantile(stats, 1 - tail), level, n };
}

function resampledMeans(groups: readonly (readonly number[])[], o: BootstrapOptions): number[][] {
  const samples = o.samples ?? 1000;
  const rng = new SeededRandom(o.seed ?? 1);
  return Array.from({ length: samples }, () =>
    groups.map((xs) => {
      let s = 0;
      for (let i = 0; i < xs.length; i++) s += xs[rng.int(xs.length)]!;
      return xs.length ? s / xs.length : Number.NaN;
    }),
  );
}

/**
 * The mean of `values` with a bootstrap interval (resampling the observations, e.g. prompts).
 *
 * @example meanInterval([0.2, 0.4, 0.9, 0.5]) // { value: 0.5, lower: …, upper: …, level: 0.95, n: 4 }
 */
export function meanInterval(values: readonly number[], o: BootstrapOptions = {}): Interval {
  const level = o.level ?? 0.95;
  return percentile(
    resampledMeans([values], o).map(([m]) => m!),
    mean(values),
    level,
    values.length,
  );
}

/**
 * Mean of after[i] − before[i] over pairs (the same prompt before and after a stage), with a bootstrap
 * interval over the pairs.
 *
 * @example pairedDifference([0.5, 0.6], [0.7, 0.9]).value // 0.25
 */
export function pairedDifference(
  before: readonly number[],
  after: readonly number[],
  o: BootstrapOptions = {},
): Interval {
  if (before.length !== after.length)
    throw new RangeError(`pairedDifference: ${before.length} values before, ${after.length} after`);
  return meanInterval(
    after.map((a, i) => a - before[i]!),
    o,
  );
}

/**
 * mean(b) − mean(a) of two independent samples, each resampled on its own.
 *
 * @example differenceOfMeans([0, 0, 1], [1, 1, 0]).value // 1/3
 */
export function differenceOfMeans(
  a: readonly number[],
  b: readonly number[],
  o: BootstrapOptions = {},
): Interval {
  const level = o.level ?? 0.95;
  return percentile(
    resampledMeans([a, b], o).map(([x, y]) => y! - x!),
    mean(b) - mean(a),
    level,
    Math.min(a.length, b.length),
  );
}

/** The interval excludes zero on the side of `direction` (+1: all above 0; −1: all below). */
export function excludesZero(i: Interval, direction: 1 | -1 = 1): boolean {
  return direction > 0 ? i.lower > 0 : i.upper < 0;
}

/**
 * An interval as text: "0.087 [0.075, 0.100]", a point value alone when its bounds are the value itself,
 * "—" when there is none; 3 decimals below 10, none from 10 up (Elo, seconds).
 *
 * @example formatInterval({ value: 0.087, lower: 0.075, upper: 0.1 }) // "0.087 [0.075, 0.100]"
 */
export function formatInterval(v: Pick<Interval, 'value' | 'lower' | 'upper'> | null): string {
  if (!v) return '—';
  const d = Math.abs(v.value) >= 10 ? 0 : 3;
  return v.lower === v.upper
    ? v.value.toFixed(d)
    : `${v.value.toFixed(d)} [${v.lower.toFixed(d)}, ${v.upper.toFixed(d)}]`;
}
