// Tensor creation and the functions that take several tensors (joins, nn functions, autograd).
import { type DType, dtypeCode, type TypedArray } from './dtype.ts';
import { native as N } from './native.ts';
import { type NestedArray, type Reduction, Tensor } from './tensor.ts';

const wrap = (h: number): Tensor => new Tensor(h);

export interface CreateOptions {
  dtype?: DType;
  /** 'cpu' (default), 'cuda', 'cuda:1', … */
  device?: string;
}

const code = (o: CreateOptions | undefined, fallback: DType = 'float32'): number =>
  dtypeCode(o?.dtype ?? fallback);

function flatten(data: NestedArray, shape: number[], out: number[], depth: number): void {
  if (Array.isArray(data)) {
    if (shape.length === depth) shape.push(data.length);
    else if (shape[depth] !== data.length) {
      throw new RangeError(
        `tensor(): ragged nested array at depth ${depth} (${data.length} vs ${shape[depth]})`,
      );
    }
    for (const d of data) flatten(d, shape, out, depth + 1);
  } else {
    if (depth !== shape.length) throw new RangeError('tensor(): ragged nested array');
    out.push(typeof data === 'boolean' ? (data ? 1 : 0) : data);
  }
}

function typedFor(dtype: DType, values: number[]): TypedArray {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(values);
    case 'float64':
      return Float64Array.from(values);
    case 'int64':
      return BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
    case 'int32':
      return Int32Array.from(values);
    case 'int8':
      return Int8Array.from(values);
    case 'bool':
    case 'uint8':
      return Uint8Array.from(values);
    default:
      throw new TypeError(`tensor(): create ${dtype} tensors from float32 data with .to('${dtype}')`);
  }
}

/**
 * A tensor from (nested) JS numbers or a typed array; dtype defaults to float32 (int64 for BigInt64Array).
 *
 * @example tensor([[1, 2], [3, 4]]).shape // [2, 2]
 * @example tensor(new Float32Array(6), { shape: [2, 3] })
 */
export function tensor(
  data: NestedArray | TypedArray,
  opts: CreateOptions & { shape?: number[] } = {},
): Tensor {
  let dtype = opts.dtype;
  let values: TypedArray;
  let shape: number[];
  if (ArrayBuffer.isView(data)) {
    dtype ??= data instanceof BigInt64Array ? 'int64' : data instanceof Float64Array ? 'float64' : 'float32';
    values = data;
    shape = opts.shape ?? [data.length];
    const natural =
      data instanceof Float32Array
        ? 'float32'
        : data instanceof Float64Array
          ? 'float64'
          : data instanceof BigInt64Array
            ? 'int64'
            : data instanceof Int32Array
              ? 'int32'
              : data instanceof Int8Array
                ? 'int8'
                : 'uint8';
    if (natural !== dtype && !(natural === 'uint8' && dtype === 'bool')) {
      values = typedFor(dtype, Array.from(data as ArrayLike<number | bigint>, Number));
    }
  } else {
    dtype ??= 'float32';
    const flat: number[] = [];
    shape = [];
    flatten(data, shape, flat, 0);
    if (opts.shape) shape = opts.shape;
    values = typedFor(dtype, flat);
  }
  const h = N.from_buffer(values, dtypeCode(dtype), shape);
  if (opts.device && opts.device !== 'cpu') {
    const moved = N.to_device(h, opts.device);
    N.free(h);
    return wrap(moved);
  }
  return wrap(h);
}

/** A tensor from raw little-endian bytes (e.g. a safetensors payload), copied. */
export function fromBytes(bytes: Uint8Array, dtype: DType, shape: readonly number[]): Tensor {
  return wrap(N.from_buffer(bytes, dtypeCode(dtype), shape));
}

export const empty = (shape: readonly number[], o?: CreateOptions): Tensor =>
  wrap(N.empty(shape, code(o), o?.device));
export const zeros = (shape: readonly number[], o?: CreateOptions): Tensor =>
  wrap(N.zeros(shape, code(o), o?.device));
export const ones = (shape: readonly number[], o?: CreateOptions): Tensor =>
  wrap(N.ones(shape, code(o), o?.device));
export const full = (shape: readonly number[], value: number, o?: CreateOptions): Tensor =>
  wrap(N.full(shape, value, code(o), o?.device));
/** [start, end) with `step`; int64 when all bounds are integers (as torch.arange), else float32. */
export function arange(start: number, end?: number, step = 1, o?: CreateOptions): Tensor {
  const [from, to] = end === undefined ? [0, start] : [start, end];
  const integral = Number.isInteger(from) && Number.isInteger(to) && Number.isInteger(step);
  return wrap(N.arange(from, to, step, code(o, integral ? 'int64' : 'float32'), o?.device));
}
export const linspace = (start: number, end: number, steps: number, o?: CreateOptions): Tensor =>
  wrap(N.linspace(start, end, steps, code(o), o?.device));
export const eye = (n: number, o?: CreateOptions): Tensor => wrap(N.eye(n, code(o), o?.device));
/** Standard normal samples from the global generator (seed with manualSeed). */
export const randn = (shape: readonly number[], o?: CreateOptions): Tensor =>
  wrap(N.randn(shape, code(o), o?.device));
export const rand = (shape: readonly number[], o?: CreateOptions): Tensor =>
  wrap(N.rand(shape, code(o), o?.device));
export const randint = (low: number, high: number, shape: readonly number[], o?: CreateOptions): Tensor =>
  wrap(N.randint(low, high, shape, code(o, 'int64'), o?.device));
export const randperm = (n: number, o?: CreateOptions): Tensor =>
  wrap(N.randperm(n, code(o, 'int64'), o?.device));
export const zerosLike = (x: Tensor): Tensor => wrap(N.zeros_like(x.handle));
export const onesLike = (x: Tensor): Tensor => wrap(N.ones_like(x.handle));
export const fullLike = (x: Tensor, value: number): Tensor => wrap(N.full_like(x.handle, value));
export const randnLike = (x: Tensor): Tensor => wrap(N.randn_like(x.handle));
export const randLike = (x: Tensor): Tensor => wrap(N.rand_like(x.handle));
export const bernoulli = (p: Tensor): Tensor => wrap(N.bernoulli(p.handle));
/** Samples `n` indices per row of `probs` (rows need not be normalised). */
export const multinomial = (probs: Tensor, n: number, replacement = false): Tensor =>
  wrap(N.multinomial(probs.handle, n, replacement));

// ---- joins and selection ----
export const cat = (xs: Tensor[], dim = 0): Tensor =>
  wrap(
    N.cat(
      xs.map((x) => x.handle),
      dim,
    ),
  );
export const stack = (xs: Tensor[], dim = 0): Tensor =>
  wrap(
    N.stack(
      xs.map((x) => x.handle),
      dim,
    ),
  );
/** cond ? x : y, elementwise with broadcasting. */
export const where = (cond: Tensor, x: Tensor, y: Tensor): Tensor =>
  wrap(N.where(cond.handle, x.handle, y.handle));
export const einsum = (equation: string, ...xs: Tensor[]): Tensor =>
  wrap(
    N.einsum(
      equation,
      xs.map((x) => x.handle),
    ),
  );

// ---- linear algebra ----
export const matmul = (a: Tensor, b: Tensor): Tensor => wrap(N.matmul(a.handle, b.handle));
export const mm = (a: Tensor, b: Tensor): Tensor => wrap(N.mm(a.handle, b.handle));
export const bmm = (a: Tensor, b: Tensor): Tensor => wrap(N.bmm(a.handle, b.handle));
/** x · Wᵀ + b, with W of shape (out, in) as torch.nn.Linear. */
export const linear = (x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor =>
  wrap(N.linear(x.handle, weight.handle, bias?.handle));
/** bias + a · b (2-D). */
export const addmm = (bias: Tensor, a: Tensor, b: Tensor): Tensor =>
  wrap(N.addmm(bias.handle, a.handle, b.handle));
export const baddbmm = (bias: Tensor, a: Tensor, b: Tensor, beta = 1, alpha = 1): Tensor =>
  wrap(N.baddbmm(bias.handle, a.handle, b.handle, beta, alpha));
export const outer = (a: Tensor, b: Tensor): Tensor => wrap(N.outer(a.handle, b.handle));
export const cholesky = (a: Tensor): Tensor => wrap(N.linalg_cholesky(a.handle));
export const inv = (a: Tensor): Tensor => wrap(N.linalg_inv(a.handle));
/** [eigenvalues ascending, eigenvectors] of a symmetric matrix. */
export const eigh = (a: Tensor): [Tensor, Tensor] => {
  const [w, v] = N.linalg_eigh(a.handle);
  return [wrap(w), wrap(v)];
};
export const solve = (a: Tensor, b: Tensor): Tensor => wrap(N.linalg_solve(a.handle, b.handle));

// ---- nn functions ----
export const softmax = (x: Tensor, dim: number): Tensor => x.softmax(dim);
export const logSoftmax = (x: Tensor, dim: number): Tensor => x.logSoftmax(dim);
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor => x.gelu(approximate);
/** Layer normalisation over the trailing `normalizedShape` dims. */
export const layerNorm = (
  x: Tensor,
  normalizedShape: number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor => wrap(N.layer_norm(x.handle, normalizedShape, weight?.handle, bias?.handle, eps));
/** Inverted dropout; identity when `train` is false. */
export const dropout = (x: Tensor, p: number, train: boolean): Tensor => wrap(N.dropout(x.handle, p, train));

/** Whether torch's fused scaled_dot_product_attention exists in this libtorch (2.0+; Debian's 1.13 lacks it). */
export const sdpaAvailable = (): boolean => N.sdpa_available();

/**
 * softmax(q·kᵀ/√D + mask)·v with torch's fused kernels (flash / memory-efficient on GPU), as
 * torch.nn.functional.scaled_dot_product_attention. `mask` is additive (float) or boolean (true = may
 * attend); `isCausal` masks future keys without a mask tensor. Throws on libtorch < 2.0 (sdpaAvailable()).
 *
 * @example const y = scaledDotProductAttention(q, k, v, { isCausal: true }); // q, k, v: (B, H, T, D)
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: { mask?: Tensor | null; dropoutP?: number; isCausal?: boolean } = {},
): Tensor {
  return wrap(
    N.sdpa(q.handle, k.handle, v.handle, opts.mask?.handle, opts.dropoutP ?? 0, opts.isCausal ?? false),
  );
}
/** Rows of `weight` (V, C) picked by integer `indices`. */
export const embedding = (weight: Tensor, indices: Tensor): Tensor =>
  wrap(N.embedding(weight.handle, indices.handle));

export interface CrossEntropyOptions {
  /** Targets equal to this are skipped (default −100, as torch). */
  ignoreIndex?: number;
  reduction?: Reduction;
  labelSmoothing?: number;
}

/**
 * Cross-entropy of logits (N, C) against integer targets (N).
 *
 * @example crossEntropy(logits.view(-1, V), targets.view(-1), { ignoreIndex: -1 })
 */
export const crossEntropy = (logits: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor =>
  wrap(
    N.cross_entropy(
      logits.handle,
      target.handle,
      o.ignoreIndex ?? -100,
      Tensor.reductionCode[o.reduction ?? 'mean'],
      o.labelSmoothing ?? 0,
    ),
  );
export const mseLoss = (x: Tensor, y: Tensor, reduction: Reduction = 'mean'): Tensor =>
  wrap(N.mse_loss(x.handle, y.handle, Tensor.reductionCode[reduction]));
export const bceWithLogits = (x: Tensor, y: Tensor, reduction: Reduction = 'mean'): Tensor =>
  wrap(N.bce_with_logits(x.handle, y.handle, Tensor.reductionCode[reduction]));

// ---- autograd ----
/**
 * Runs `fn` with gradient recording off (inference, rollouts, optimiser updates).
 *
 * @example const logits = noGrad(() => model.forward(ids));
 */
export function noGrad<T>(fn: () => T): T {
  const was = N.grad_enabled();
  N.set_grad_enabled(false);
  try {
    return fn();
  } finally {
    N.set_grad_enabled(was);
  }
}

export const isGradEnabled = (): boolean => N.grad_enabled();

/** Gradients of `outputs` w.r.t. `inputs` without touching `.grad` (torch.autograd.grad). */
export function grad(
  outputs: Tensor[],
  inputs: Tensor[],
  opts: { gradOutputs?: Tensor[]; retainGraph?: boolean; createGraph?: boolean } = {},
): Tensor[] {
  return N.autograd_grad(
    outputs.map((t) => t.handle),
    inputs.map((t) => t.handle),
    (opts.gradOutputs ?? []).map((t) => t.handle),
    opts.retainGraph ?? false,
    opts.createGraph ?? false,
  ).map(wrap);
}
