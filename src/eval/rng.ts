/**
 * A small seeded random stream for the analyses (bootstrap resampling, few-shot subsets, synthetic
 * test data). Math.random cannot be seeded, and the analyses must give the same interval for the
 * same seed on every machine. Core: splitmix32 (mix32 from src/util/random.ts, as src/world/rng.ts).
 */
import { mix32 } from '../util/random.ts';

/**
 * Seeded stream of uniforms, integers and normals.
 *
 * @example
 * const rng = new SeededRandom(7);
 * rng.int(10);    // in [0, 10), the same every run
 * rng.normal();   // standard normal
 */
export class SeededRandom {
  private state: number;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    this.state = mix32((seed >>> 0) ^ 0x9e3779b9);
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  uniform(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return mix32(this.state) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Marsaglia polar method; the second draw is cached). */
  normal(): number {
    if (this.spareNormal !== null) {
      const v = this.spareNormal;
      this.spareNormal = null;
      return v;
    }
    for (;;) {
      const u = 2 * this.uniform() - 1;
      const v = 2 * this.uniform() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const f = Math.sqrt((-2 * Math.log(s)) / s);
        this.spareNormal = v * f;
        return u * f;
      }
    }
  }

  /** `k` distinct indices from [0, n) (partial Fisher–Yates), in draw order. */
  sample(n: number, k: number): number[] {
    if (k > n) throw new RangeError(`sample: cannot draw ${k} distinct indices from ${n}`);
    const pool = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < k; i++) {
      const j = i + this.int(n - i);
      const t = pool[i]!;
      pool[i] = pool[j]!;
      pool[j] = t;
    }
    return pool.slice(0, k);
  }
}

/**
 * The q-quantile of `values` (linear interpolation between order statistics, numpy's default
 * "type 7"). `values` need not be sorted; NaNs are not allowed.
 *
 * @example quantile([1, 2, 3, 4], 0.5) // 2.5
 */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) throw new RangeError('quantile of an empty list');
  const sorted = Float64Array.from(values).sort();
  const pos = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (pos - lo) * (sorted[hi]! - sorted[lo]!);
}
