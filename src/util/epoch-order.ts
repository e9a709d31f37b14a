// "Epoch-shuffled batches", once for every trainer (LM/SFT, PM, distillation, PPO prompts): examples are
// visited epoch by epoch, each epoch a fresh seeded permutation, and a batch that runs past the end of an
// epoch continues at the start of the NEXT epoch's permutation (never the same epoch's again). The whole
// state is one number, the position (examples handed out so far, i.e. step × batch for fixed batches), so
// a checkpoint stores it or derives it from the step, and a resume sees the same order bit for bit.
import { mulberry32 } from './random.ts';

/**
 * A seeded permutation of 0…n−1 (Fisher–Yates on mulberry32): the same for the same (n, seed) everywhere.
 *
 * @example permutation(5, 7) // e.g. [3, 0, 4, 1, 2]
 */
export function permutation(n: number, seed: number): number[] {
  const random = mulberry32(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** The permutation seed of `epoch` for a run seeded `seed` (a hash, so nearby seeds give unrelated orders). */
const epochSeed = (seed: number, epoch: number): number =>
  (Math.imul(seed, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0;

/**
 * Visits `count` examples epoch by epoch, each epoch a fresh seeded permutation. Position p (0-based, over
 * all epochs) is example `permutation_e[p mod count]` with e = ⌊p / count⌋. `take` hands out the next
 * examples and advances `position`; `slice` reads any range without state (e.g. step s's batch of B is
 * `slice((s − 1)·B, B)`).
 *
 * @example
 * const order = new EpochOrder(100, 1);
 * order.slice(96, 32); // order₀[96..99] then order₁[0..27]
 * order.take(16); order.position === 16; // a checkpoint stores position
 */
export class EpochOrder {
  /** Examples handed out by take() so far: the order's whole state. */
  position = 0;
  private epoch = -1;
  private current: number[] = [];

  constructor(
    readonly count: number,
    readonly seed: number,
  ) {
    if (!(Number.isInteger(count) && count >= 1))
      throw new RangeError(`EpochOrder: need at least one example, got ${count}`);
  }

  /** The example at position `p`. */
  at(p: number): number {
    const epoch = Math.floor(p / this.count);
    if (epoch !== this.epoch) {
      this.current = permutation(this.count, epochSeed(this.seed, epoch));
      this.epoch = epoch;
    }
    return this.current[p - epoch * this.count]!;
  }

  /** The `n` examples at positions start…start+n−1 (crossing into the next epoch's order as needed). */
  slice(start: number, n: number): number[] {
    return Array.from({ length: n }, (_, i) => this.at(start + i));
  }

  /** The next `n` examples; advances `position`. */
  take(n: number): number[] {
    const out = this.slice(this.position, n);
    this.position += n;
    return out;
  }
}
