// Fixed-length training examples cut from a token stream (the order they are visited in is
// util/epoch-order.ts's EpochOrder, shared with the other trainers).
// Example i is the window tokens[i·T, i·T + T + 1): inputs are its first T tokens, targets its last T,
// so consecutive windows share one token and every token after the first is predicted exactly once.
import { type Tensor, tensor } from '../engine/index.ts';
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
