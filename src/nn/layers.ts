// The layers of a GPT-2: Linear, GPT-2's Conv1D, Embedding, LayerNorm, Dropout, ModuleList and the MLP.
// Each initialises itself GPT-2 style (normal(0, 0.02) weights, zero biases, unit LayerNorm) from the
// global generator; GPT seeds that generator around construction.
import { dropout, embedding, empty, layerNorm, linear, ones, type Tensor, zeros } from '../engine/index.ts';
import { Module } from './module.ts';

/** GPT-2's initializer_range. */
export const INIT_STD = 0.02;

const normal = (shape: number[], std: number): Tensor => empty(shape).normal_(0, std);

export interface LinearOptions {
  bias?: boolean;
  /** Standard deviation of the normal initialisation (default 0.02). */
  std?: number;
}

/**
 * y = x·Wᵀ + b with W of shape (out, in), as torch.nn.Linear.
 *
 * @example const proj = new Linear(16, 4); proj.forward(x) // (…, 16) → (…, 4)
 */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    this.weight = this.param('weight', normal([outFeatures, inFeatures], opts.std ?? INIT_STD));
    this.bias = opts.bias === false ? null : this.param('bias', zeros([outFeatures]));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/**
 * GPT-2's Conv1D: a linear layer whose weight is stored (in, out), the transpose of Linear's. hhkit keeps
 * GPT-2's layout so that parameter names, shapes and gradients are exactly those of a GPT-2 checkpoint.
 *
 * @example new Conv1D(16, 48).forward(x) // (B, T, 16) → (B, T, 48)
 */
export class Conv1D extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { std?: number } = {},
  ) {
    super();
    this.weight = this.param('weight', normal([inFeatures, outFeatures], opts.std ?? INIT_STD));
    this.bias = this.param('bias', zeros([outFeatures]));
  }
  forward(x: Tensor): Tensor {
    // linear() on the transposed view folds (B, T, in) into one addmm, as torch does for 3-D input.
    return linear(x, this.weight.transpose(0, 1), this.bias);
  }
}

/**
 * A lookup table (num, dim): rows picked by integer ids.
 *
 * @example new Embedding(50, 16).forward(ids) // (B, T) int64 → (B, T, 16)
 */
export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: { std?: number } = {},
  ) {
    super();
    this.weight = this.param('weight', normal([numEmbeddings, embeddingDim], opts.std ?? INIT_STD));
  }
  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}

/**
 * Layer normalisation over the last dim, with learned scale (ones) and shift (zeros).
 *
 * @example new LayerNorm(16).forward(x)
 */
export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param('weight', ones([dim]));
    this.bias = this.param('bias', zeros([dim]));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, [this.dim], this.weight, this.bias, this.eps);
  }
}

/**
 * Inverted dropout with probability `p`, active only in training mode; otherwise returns `x` itself.
 *
 * @example const drop = new Dropout(0.1); model.eval(); drop.forward(x) === x
 */
export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return this.training && this.p > 0 ? dropout(x, this.p, true) : x;
  }
}

/**
 * A list of submodules named '0', '1', … (GPT-2's `h.0`, `h.1`, …).
 *
 * @example const h = new ModuleList([new Block(c), new Block(c)]); h.at(1)
 */
export class ModuleList<M extends Module> extends Module {
  private readonly items: M[] = [];
  constructor(items: M[] = []) {
    super();
    for (const m of items) this.push(m);
  }
  push(m: M): void {
    this.items.push(this.module(String(this.items.length), m));
  }
  at(i: number): M {
    const m = this.items[i];
    if (!m) throw new RangeError(`ModuleList index ${i} out of range (length ${this.items.length})`);
    return m;
  }
  get length(): number {
    return this.items.length;
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/**
 * GPT-2's feed-forward block: c_fc (C → 4C), GELU (tanh approximation, "gelu_new"), c_proj (4C → C), dropout.
 * `projStd` is the init std of c_proj (GPT-2 scales residual projections by 1/√(2·nLayer)).
 *
 * @example new MLP(16, 0.1).forward(x) // (B, T, 16) → (B, T, 16)
 */
export class MLP extends Module {
  readonly c_fc: Conv1D;
  readonly c_proj: Conv1D;
  readonly dropout: Dropout;
  constructor(nEmbd: number, dropoutP: number, opts: { projStd?: number; inner?: number } = {}) {
    super();
    const inner = opts.inner ?? 4 * nEmbd;
    this.c_fc = this.module('c_fc', new Conv1D(nEmbd, inner));
    this.c_proj = this.module('c_proj', new Conv1D(inner, nEmbd, { std: opts.projStd }));
    this.dropout = this.module('dropout', new Dropout(dropoutP));
  }
  forward(x: Tensor): Tensor {
    // x: (B, T, C) → (B, T, 4C) → (B, T, C)
    return this.dropout.forward(this.c_proj.forward(this.c_fc.forward(x).gelu('tanh')));
  }
}
