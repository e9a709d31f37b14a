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

/**
 * An uninitialised tensor of `shape` (float32 unless `dtype`): for buffers that are written before read.
 *
 * @example empty([2, 3]).shape // [2, 3]
 */
export const empty = (shape: readonly number[], o?: CreateOptions): Tensor =>
  wrap(N.empty(shape, code(o), o?.device));
/**
 * A tensor of `shape` filled with 0 (float32 unless `dtype`).
 *
 * @example zeros([2, 3], { dtype: 'int64' }).toArray() // [[0, 0, 0], [0, 0, 0]]
 */
export const zeros = (shape: readonly number[], o?: CreateOptions): Tensor =>
  wrap(N.zeros(shape, code(o), o?.device));
/**
 * A tensor of `shape` filled with 1 (float32 unless `dtype`).
 *
 * @example ones([3]).toArray() // [1, 1, 1]
 */
export const ones = (shape: readonly number[], o?: CreateOptions): Tensor =>
  wrap(N.ones(shape, code(o), o?.device));
/**
 * A tensor of `shape` filled with `value` (float32 unless `dtype`).
 *
 * @example full([2], -Infinity) // a mask row
 */
export const full = (shape: readonly number[], value: number, o?: CreateOptions): Tensor =>
  wrap(N.full(shape, value, code(o), o?.device));
/** [start, end) with `step`; int64 when all bounds are integers (as torch.arange), else float32. */
export function arange(start: number, end?: number, step = 1, o?: CreateOptions): Tensor {
  const [from, to] = end === undefined ? [0, start] : [start, end];
  const integral = Number.isInteger(from) && Number.isInteger(to) && Number.isInteger(step);
  return wrap(N.arange(from, to, step, code(o, integral ? 'int64' : 'float32'), o?.device));
}
/**
 * `steps` evenly spaced values from `start` to `end`, both included (float32 unless `dtype`).
 *
 * @example linspace(0, 1, 5).toArray() // [0, 0.25, 0.5, 0.75, 1]
 */
export const linspace = (start: number, end: number, steps: number, o?: CreateOptions): Tensor =>
  wrap(N.linspace(start, end, steps, code(o), o?.device));
/**
 * The n × n identity matrix (float32 unless `dtype`).
 *
 * @example eye(3).sum().item() // 3
 */
export const eye = (n: number, o?: CreateOptions): Tensor => wrap(N.eye(n, code(o), o?.device));
/** Standard normal samples from the global generator (seed with manualSeed). */
export const randn = (shape: readonly number[], o?: CreateOptions): Tensor =>
  wrap(N.randn(shape, code(o), o?.device));
/**
 * Uniform samples in [0, 1) of `shape` from the global generator (seed with manualSeed).
 *
 * @example manualSeed(1); const u = rand([4]); // 4 values in [0, 1)
 */
export const rand = (shape: readonly number[], o?: CreateOptions): Tensor =>
  wrap(N.rand(shape, code(o), o?.device));
/**
 * Integers drawn uniformly from [low, high) of `shape` (int64 unless `dtype`), from the global generator.
 *
 * @example randint(0, 10, [2, 3]) // (2, 3) int64 values 0 … 9
 */
export const randint = (low: number, high: number, shape: readonly number[], o?: CreateOptions): Tensor =>
  wrap(N.randint(low, high, shape, code(o, 'int64'), o?.device));
/**
 * A random permutation of 0 … n − 1 (int64 unless `dtype`), from the global generator.
 *
 * @example manualSeed(1); randperm(5).toArray() // the indices 0 … 4 in a seeded order
 */
export const randperm = (n: number, o?: CreateOptions): Tensor =>
  wrap(N.randperm(n, code(o, 'int64'), o?.device));
/**
 * Zeros of `x`'s shape, dtype and device.
 *
 * @example const grad = zerosLike(param);
 */
export const zerosLike = (x: Tensor): Tensor => wrap(N.zeros_like(x.handle));
/**
 * Ones of `x`'s shape, dtype and device.
 *
 * @example const mask = onesLike(ids); // (B, T)
 */
export const onesLike = (x: Tensor): Tensor => wrap(N.ones_like(x.handle));
/**
 * `value` in `x`'s shape, dtype and device.
 *
 * @example const negInf = fullLike(scores, -Infinity);
 */
export const fullLike = (x: Tensor, value: number): Tensor => wrap(N.full_like(x.handle, value));
/**
 * Standard normal samples of `x`'s shape, dtype and device, from the global generator.
 *
 * @example const noise = randnLike(weights).mul(0.01);
 */
export const randnLike = (x: Tensor): Tensor => wrap(N.randn_like(x.handle));
/**
 * Uniform samples in [0, 1) of `x`'s shape, dtype and device, from the global generator.
 *
 * @example const keep = randLike(x).lt(0.9); // a dropout mask
 */
export const randLike = (x: Tensor): Tensor => wrap(N.rand_like(x.handle));
/**
 * 0/1 samples, 1 with probability `p` elementwise (same shape and dtype as `p`), from the global generator.
 *
 * @example bernoulli(full([1000], 0.3)).mean().item() // ≈ 0.3
 */
export const bernoulli = (p: Tensor): Tensor => wrap(N.bernoulli(p.handle));
/**
 * One index per row of `weights` (B, V), float32 on the CPU, nonnegative, rows need not be normalised:
 * P(j) = w_j / Σ w, by inverting the row's cumulative sum at one uniform from the global generator
 * (reproducible under manualSeed). The same distribution as `multinomial(weights, 1)`, ~10× faster on a
 * vocabulary of 512 (torch's multinomial draws an exponential per entry); different draws for a seed.
 * Returns (B, 1) int64.
 *
 * @example sampleCategorical(tensor([[0, 1, 3]])) // [[2]] three times in four
 */
export const sampleCategorical = (weights: Tensor): Tensor => wrap(N.sample_categorical(weights.handle));
/** Samples `n` indices per row of `probs` (rows need not be normalised). */
export const multinomial = (probs: Tensor, n: number, replacement = false): Tensor =>
  wrap(N.multinomial(probs.handle, n, replacement));

// ---- joins and selection ----
/**
 * Joins tensors along an existing dimension `dim` (their other dimensions must agree), as torch.cat.
 *
 * @example cat([zeros([2, 3]), ones([1, 3])]).shape // [3, 3]
 */
export const cat = (xs: Tensor[], dim = 0): Tensor =>
  wrap(
    N.cat(
      xs.map((x) => x.handle),
      dim,
    ),
  );
/**
 * Joins tensors of one shape along a new dimension `dim`, as torch.stack.
 *
 * @example stack([zeros([3]), ones([3])]).shape // [2, 3]
 */
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
/**
 * Einstein summation over `xs` as described by `equation`, as torch.einsum.
 *
 * @example const scores = einsum('bhtd,bhsd->bhts', q, k); // (B, H, T, T)
 */
export const einsum = (equation: string, ...xs: Tensor[]): Tensor =>
  wrap(
    N.einsum(
      equation,
      xs.map((x) => x.handle),
    ),
  );

// ---- linear algebra ----
/**
 * Matrix product with torch.matmul's broadcasting: vectors, matrices and batched (…, n, m) @ (…, m, p).
 *
 * @example matmul(randn([4, 2, 3]), randn([3, 5])).shape // [4, 2, 5]
 */
export const matmul = (a: Tensor, b: Tensor): Tensor => wrap(N.matmul(a.handle, b.handle));
/**
 * Product of two matrices, (n, m) @ (m, p) → (n, p), without broadcasting.
 *
 * @example mm(eye(2), tensor([[1, 2], [3, 4]])).toArray() // [[1, 2], [3, 4]]
 */
export const mm = (a: Tensor, b: Tensor): Tensor => wrap(N.mm(a.handle, b.handle));
/**
 * Batched matrix product, (B, n, m) @ (B, m, p) → (B, n, p), without broadcasting.
 *
 * @example bmm(randn([8, 2, 3]), randn([8, 3, 4])).shape // [8, 2, 4]
 */
export const bmm = (a: Tensor, b: Tensor): Tensor => wrap(N.bmm(a.handle, b.handle));
/**
 * x · Wᵀ + b, with W of shape (out, in) as torch.nn.Linear. Without autograd on CPU float32 (up to 16384
 * rows: decoding steps, prefill, reference and value passes, scoring) the addon keeps W packed between calls
 * and runs its own kernel (native/ops_gemm.cc; see {@link setPackedLinear}); otherwise libtorch's `linear`.
 */
export const linear = (x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor =>
  wrap(N.linear(x.handle, weight.handle, bias?.handle));
/**
 * Turns the packed-weight path of {@link linear} on (the default) or off (`HHKIT_PACKED_LINEAR=0` at start);
 * off also frees the packed copies. Its results differ from libtorch's sgemm by float32 rounding.
 *
 * @example setPackedLinear(false); // every linear() through libtorch, e.g. to compare
 */
export function setPackedLinear(on: boolean): void {
  N.set_packed_linear(on);
}
/**
 * What the packed-weight cache of {@link linear} holds: weights, bytes, its budget in bytes
 * (`HHKIT_PACKED_LINEAR_MB`, default 1024; a weight that would pass it takes libtorch's path), and the
 * kernel's columns per panel (32 with AVX-512, 16 with AVX2, 0 where the CPU has neither and the path is off).
 */
export function packedLinearStats(): {
  weights: number;
  bytes: number;
  budgetBytes: number;
  panelColumns: number;
} {
  const [weights = 0, bytes = 0, budgetBytes = 0, panelColumns = 0] = N.packed_linear_stats();
  return { weights, bytes, budgetBytes, panelColumns };
}
/** bias + a · b (2-D). */
export const addmm = (bias: Tensor, a: Tensor, b: Tensor): Tensor =>
  wrap(N.addmm(bias.handle, a.handle, b.handle));
/**
 * β·bias + α·(a @ b) for batches (B, n, m) @ (B, m, p), `bias` broadcast to (B, n, p), as torch.baddbmm.
 *
 * @example const scores = baddbmm(mask, q, kT, 1, 1 / Math.sqrt(D)); // (B, T, T)
 */
export const baddbmm = (bias: Tensor, a: Tensor, b: Tensor, beta = 1, alpha = 1): Tensor =>
  wrap(N.baddbmm(bias.handle, a.handle, b.handle, beta, alpha));
/**
 * Outer product of vectors a (n) and b (m): the (n, m) matrix aᵢ·bⱼ.
 *
 * @example outer(tensor([1, 2]), tensor([1, 10, 100])).toArray() // [[1, 10, 100], [2, 20, 200]]
 */
export const outer = (a: Tensor, b: Tensor): Tensor => wrap(N.outer(a.handle, b.handle));
/**
 * The lower-triangular L with a = L·Lᵀ of a symmetric positive-definite matrix (batches allowed).
 *
 * @example const L = cholesky(covariance); // (C, C)
 */
export const cholesky = (a: Tensor): Tensor => wrap(N.linalg_cholesky(a.handle));
/**
 * The inverse of a square matrix (batches allowed); throws when it is singular.
 *
 * @example inv(tensor([[2, 0], [0, 4]])).toArray() // [[0.5, 0], [0, 0.25]]
 */
export const inv = (a: Tensor): Tensor => wrap(N.linalg_inv(a.handle));
/** [eigenvalues ascending, eigenvectors] of a symmetric matrix. */
export const eigh = (a: Tensor): [Tensor, Tensor] => {
  const [w, v] = N.linalg_eigh(a.handle);
  return [wrap(w), wrap(v)];
};
/**
 * x with a·x = b for a square `a`, more accurately than inv(a)·b (torch.linalg.solve).
 *
 * @example solve(tensor([[2, 0], [0, 4]]), tensor([2, 8])).toArray() // [1, 2]
 */
export const solve = (a: Tensor, b: Tensor): Tensor => wrap(N.linalg_solve(a.handle, b.handle));

// ---- nn functions ----
/**
 * Softmax along `dim`: exp(x) normalised to sum to 1 (computed stably).
 *
 * @example const probs = softmax(logits, -1); // (B, T, V)
 */
export const softmax = (x: Tensor, dim: number): Tensor => x.softmax(dim);
/**
 * log(softmax(x)) along `dim`, computed stably (no log of a tiny probability).
 *
 * @example const logProbs = logSoftmax(logits, -1).gather(-1, ids.unsqueeze(-1)); // (B, T, 1)
 */
export const logSoftmax = (x: Tensor, dim: number): Tensor => x.logSoftmax(dim);
/**
 * GELU, exact (erf) or with GPT-2's tanh approximation (`'tanh'`, the `gelu_new` of Hugging Face's GPT-2).
 *
 * @example const h = gelu(x, 'tanh');
 */
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
/**
 * softmax(scale · q·kᵀ, blocked pairs excluded)·v for a few new queries over a KV cache, in one native
 * call on the CPU in float32: q (B, H, T, D), k and v (B, H_kv, S, D) (views of a cache are read in place;
 * each key/value head serves H / H_kv query heads), `blocked` a bool tensor broadcastable to (B, H, T, S),
 * true where a query may not attend, or null. Blocked scores get float32's lowest finite value, as the
 * manual path (a fully blocked row attends uniformly). Returns (B, H, T, D). No autograd: for decoding.
 *
 * @example const y = decodeAttention(q, keys, values, padding, 1 / Math.sqrt(D)); // q: (B, H, 1, D)
 */
export const decodeAttention = (
  q: Tensor,
  k: Tensor,
  v: Tensor,
  blocked: Tensor | null,
  scale: number,
): Tensor => wrap(N.decode_attention(q.handle, k.handle, v.handle, blocked?.handle, scale));
/**
 * softmax(scale · q·kᵀ, blocked pairs excluded)·v over whole sequences in one native call, with its own
 * backward (differentiable in q, k and v): CPU float32 only, q (B, H, T, D), k and v (B, H, S, D). `blocked` is a
 * bool tensor broadcastable to (B, H, T, S) or null; `causal` adds the causal mask of a fresh sequence (key s
 * blocked for query t when s > t + S − T), whose scores are then never computed. Blocked scores behave as the
 * manual path's float32-lowest fill: a fully blocked row attends uniformly and passes no gradient to its scores.
 *
 * @example const y = seqAttention(q, k, v, null, true, 1 / Math.sqrt(D)); // q, k, v: (B, H, T, D)
 */
export const seqAttention = (
  q: Tensor,
  k: Tensor,
  v: Tensor,
  blocked: Tensor | null,
  causal: boolean,
  scale: number,
): Tensor => wrap(N.seq_attention(q.handle, k.handle, v.handle, blocked?.handle, causal, scale));
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
/**
 * Squared error between `x` and `y`: their mean (default), sum, or each element (`'none'`).
 *
 * @example const valueLoss = mseLoss(values, returns); // a scalar
 */
export const mseLoss = (x: Tensor, y: Tensor, reduction: Reduction = 'mean'): Tensor =>
  wrap(N.mse_loss(x.handle, y.handle, Tensor.reductionCode[reduction]));
/**
 * Binary cross-entropy of sigmoid(x) against targets `y` in [0, 1], computed stably from the logits `x`.
 *
 * @example const loss = bceWithLogits(scores, labels); // mean over elements
 */
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

/**
 * Whether autograd records operations on this thread (false inside noGrad).
 *
 * @example noGrad(() => isGradEnabled()) // false
 */
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
