// Scalar heads on a GPT's hidden states: the preference model's score (read at the end-of-context token,
// Bai et al. 2022 §2.2) and PPO's value function (one value per token).
import { arange, empty, linear, type Tensor, zeros } from '../engine/index.ts';
import { Module, withSeed } from './module.ts';

export interface ScalarHeadOptions {
  /** Default true. A bias cancels in the pairwise PM loss but is useful for value functions. */
  bias?: boolean;
  /** Seeds the initialisation (the global generator's state is restored afterwards). */
  seed?: number;
  /** Init std; default 1/√(C + 1), as the reward head of Ziegler et al. 2019 (lm-human-preferences). */
  std?: number;
}

/**
 * Linear C → 1 over hidden states. Saved in a checkpoint under `score.*` (see checkpoint.ts).
 *
 * @example
 * const head = new ScalarHead(model.config.nEmbd);
 * const { hidden } = model.forwardHidden(ids);          // (B, T, C)
 * const rewards = head.score(hidden, endOfContextIdx);   // (B)
 * const values = head.forward(hidden);                   // (B, T)
 */
export class ScalarHead extends Module {
  /** (1, C), as Linear(C, 1). */
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly nEmbd: number,
    opts: ScalarHeadOptions = {},
  ) {
    super();
    const std = opts.std ?? 1 / Math.sqrt(nEmbd + 1);
    this.weight = this.param(
      'weight',
      withSeed(opts.seed, () => empty([1, nEmbd]).normal_(0, std)),
    );
    this.bias = opts.bias === false ? null : this.param('bias', zeros([1]));
  }

  /** A score per position: hidden (B, T, C) → (B, T). */
  forward(hidden: Tensor): Tensor {
    return linear(hidden, this.weight, this.bias).squeeze(-1);
  }

  /** The score at one position per row: hidden (B, T, C), positions (B) int64 → (B). */
  score(hidden: Tensor, positions: Tensor): Tensor {
    const b = hidden.size(0);
    if (positions.ndim !== 1 || positions.size(0) !== b) {
      throw new RangeError(
        `ScalarHead.score: positions must be (B) = (${b}), got (${positions.shape.join(', ')})`,
      );
    }
    // (B, C): row b's hidden state at positions[b]
    const picked = hidden.index([arange(b, undefined, 1, { device: hidden.device }), positions]);
    return linear(picked, this.weight, this.bias).squeeze(-1);
  }
}
