// Fixed-length training examples cut from a token stream, and the order they are visited in.
// Example i is the window tokens[i·T, i·T + T + 1): inputs are its first T tokens, targets its last T,
// so consecutive windows share one token and every token after the first is predicted exactly once.
import { type Tensor, tensor } from '../engine/index.ts';
import { mulberry32 } from '../util/random.ts';
import type { TokenStream } from './dataset.ts';

/** The label that crossEntropy skips (torch's default ignore_index). */
export const IGNORE_INDEX = -100;

export interface Batch {
  /** ids: (B, T) int64 */
  ids: Tensor;
  /** labels: (B, T) int64, IGNORE_INDEX where no loss is taken */
  labels: Tensor;
  /** Number of labels that are not IGNORE_INDEX. */
  targets: number;
}

/** How many T-token examples a stream holds. */
export const exampleCount = (stream: TokenStream, blockSize: number): number =>
  Math.max(0, Math.floor((stream.tokens.length - 1) / blockSize));

/**
 * The examples `indices` of `stream` as a batch (plain JS → one int64 tensor each; created in the
 * caller's scope).
 *
 * @example const { ids, labels } = makeBatch(data.train, [0, 5, 9], 128); // ids: (3, 128)
 */
export function makeBatch(stream: TokenStream, indices: readonly number[], blockSize: number): Batch {
  const T = blockSize;
  const ids = new BigInt64Array(indices.length * T);
  const labels = new BigInt64Array(indices.length * T);
  let targets = 0;
  indices.forEach((example, row) => {
    const start = example * T;
    for (let t = 0; t < T; t++) {
      ids[row * T + t] = BigInt(stream.tokens[start + t]!);
      const target = start + t + 1;
      const use = stream.mask === null || stream.mask[target] === 1;
      labels[row * T + t] = BigInt(use ? stream.tokens[target]! : IGNORE_INDEX);
      if (use) targets++;
    }
  });
  const shape = [indices.length, T];
  return { ids: tensor(ids, { shape }), labels: tensor(labels, { shape }), targets };
}

/**
 * Visits examples epoch by epoch, each epoch a fresh seeded permutation. Its only state is `position`
 * (examples handed out so far), so a checkpoint stores one number and a resume sees the same order.
 *
 * @example const order = new ExampleOrder(1000, 1); order.take(16); // 16 indices; order.position === 16
 */
export class ExampleOrder {
  position = 0;
  private epoch = -1;
  private permutation: Uint32Array = new Uint32Array(0);

  constructor(
    readonly count: number,
    readonly seed: number,
  ) {
    if (count < 1) throw new RangeError('ExampleOrder: no examples');
  }

  /** The next `n` example indices. */
  take(n: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const epoch = Math.floor(this.position / this.count);
      if (epoch !== this.epoch) this.shuffle(epoch);
      out.push(this.permutation[this.position % this.count]!);
      this.position++;
    }
    return out;
  }

  private shuffle(epoch: number): void {
    const random = mulberry32((Math.imul(this.seed, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0);
    const p = new Uint32Array(this.count);
    for (let i = 0; i < p.length; i++) p[i] = i;
    for (let i = p.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const tmp = p[i]!;
      p[i] = p[j]!;
      p[j] = tmp;
    }
    this.permutation = p;
    this.epoch = epoch;
  }
}
