/**
 * A small seeded PRNG for the assistant world. Everything the world generates flows from one integer
 * seed, so the same seed reproduces every file byte for byte on any machine (Math.random cannot).
 *
 * The core is splitmix32 (a 32-bit variant of Steele et al.'s SplitMix): one add and three
 * xor-multiply mixes per draw, full period 2^32, good enough statistics for simulation and far
 * faster than anything cryptographic.
 */
import { mix32 } from '../util/random.ts';

/** FNV-1a over a string, so a label ('helpful/train') names an independent stream. */
export function hashString(text: string, basis = 0x811c9dc5): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Seeded random stream.
 *
 * @example
 * const rng = new Rng(42);
 * rng.int(1, 6);                     // a die roll, the same one every run
 * const sub = rng.fork('harmless');  // an independent stream that does not shift `rng`
 */
export class Rng {
  private state: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.state = mix32(this.seed ^ 0x9e3779b9);
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return mix32(this.state);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element, uniformly. Throws on an empty list, which is always a bug in the caller. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick: empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** One key of `weights`, with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    const total = entries.reduce((s, [, w]) => s + Math.max(0, w), 0);
    if (!(total > 0)) throw new Error('Rng.weighted: weights must have a positive sum');
    let r = this.next() * total;
    for (const [key, w] of entries) {
      r -= Math.max(0, w);
      if (r < 0) return key;
    }
    return entries[entries.length - 1]![0];
  }

  /** Standard normal draw (Box–Muller). */
  normal(mean = 0, sd = 1): number {
    const u = 1 - this.next(); // (0, 1], so log never sees 0
    const v = this.next();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates shuffle into a new array. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  /**
   * An independent stream named by `label`. Forking depends only on this stream's seed and the
   * label, not on how many draws were made, so adding a draw in one stage never changes another.
   */
  fork(label: string): Rng {
    return new Rng(hashString(label, mix32(this.seed ^ 0x5bd1e995)));
  }
}
