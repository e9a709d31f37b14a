// The Tensor class: a thin, typed handle over a libtorch tensor. Every method is one native call; shapes,
// broadcasting, type promotion and autograd are torch's own.
import { type DType, dtypeCode, dtypeFromCode, type TypedArray, viewBytes } from './dtype.ts';
import { type Handle, native as N } from './native.ts';
import { keep, release, type Tracked, track } from './scope.ts';

let fusedGelu = process.env.HHKIT_FUSED_GELU !== '0';
/**
 * Whether `gelu('tanh')` on CPU float32 runs the addon's kernel (native/ops_fused.cc: x·σ(2u), one exp per
 * element, its own backward) — the default — or libtorch's `gelu(x, 'tanh')` (`HHKIT_FUSED_GELU=0` or
 * `setFusedGelu(false)`, for comparisons). The two agree to 2e-6 + 1e-6·|y|; relative to |y| they differ only
 * where libtorch's 1 + tanh(u) cancels (x < −4, |y| < 1e-4), and there the kernel is the closer to the exact
 * value. Other devices and dtypes always take libtorch's op.
 */
export function setFusedGelu(on: boolean): void {
  fusedGelu = on;
}

const wrap = (h: Handle): Tensor => new Tensor(h);
const wrapPair = (hs: [Handle, Handle]): [Tensor, Tensor] => [new Tensor(hs[0]), new Tensor(hs[1])];
const dims = (d: number | readonly number[]): readonly number[] => (typeof d === 'number' ? [d] : d);
/** How a loss reduces over its elements. */
export type Reduction = 'none' | 'mean' | 'sum';
const REDUCTION: Readonly<Record<Reduction, number>> = { none: 0, mean: 1, sum: 2 };

/** A nested array of numbers, as returned by `toArray()`. */
export type NestedArray = number | boolean | NestedArray[];

export class Tensor implements Tracked {
  /** The native handle; 0 once disposed. */
  handle: Handle;
  tracking = 0;
  private cachedShape: number[] | undefined;

  /** Wraps a native handle; use the creation functions in ops.ts rather than this. */
  constructor(handle: Handle) {
    this.handle = handle;
    track(this);
  }

  // ---- inspection ----
  /** Sizes of each dimension, e.g. [B, T, C]. */
  get shape(): readonly number[] {
    if (this.cachedShape === undefined) this.cachedShape = N.shape(this.handle);
    return this.cachedShape;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get dtype(): DType {
    return dtypeFromCode(N.dtype(this.handle));
  }
  get device(): string {
    return N.device(this.handle);
  }
  get numel(): number {
    return N.numel(this.handle);
  }
  get isDisposed(): boolean {
    return this.handle === 0;
  }
  get requiresGrad(): boolean {
    return N.requires_grad(this.handle);
  }
  set requiresGrad(value: boolean) {
    N.set_requires_grad(this.handle, value);
  }
  /** The accumulated gradient (a new handle on the same memory), or null before any backward. */
  get grad(): Tensor | null {
    const h = N.grad(this.handle);
    return h === 0 ? null : wrap(h);
  }
  set grad(g: Tensor | null) {
    N.set_grad(this.handle, g ? g.handle : null);
  }
  get isLeaf(): boolean {
    return N.is_leaf(this.handle);
  }
  size(dim: number): number {
    const s = this.shape;
    const v = s[dim < 0 ? s.length + dim : dim];
    if (v === undefined) throw new RangeError(`size(${dim}): tensor has ${s.length} dims`);
    return v;
  }
  toString(): string {
    return `Tensor(${this.handle === 0 ? 'disposed' : N.describe(this.handle)})`;
  }

  // ---- data out ----
  /** The single value of a one-element tensor. */
  item(): number {
    return N.item(this.handle);
  }
  /** A copy of the values as a typed array (16-bit floats are returned as Float32Array). */
  toTypedArray(): TypedArray {
    const dtype = this.dtype;
    if (dtype === 'float16' || dtype === 'bfloat16') {
      const wide = N.to_dtype(this.handle, dtypeCode('float32'));
      try {
        return viewBytes('float32', N.to_buffer(wide));
      } finally {
        N.free(wide);
      }
    }
    return viewBytes(dtype, N.to_buffer(this.handle));
  }
  /** The raw little-endian bytes of the values (any dtype, bf16 included), contiguous. */
  toBytes(): Uint8Array {
    return new Uint8Array(N.to_buffer(this.handle));
  }
  /** The values as nested JS arrays (numbers; booleans for bool tensors). */
  toArray(): NestedArray {
    const flat = this.toTypedArray();
    const isBool = this.dtype === 'bool';
    const get = (i: number): number | boolean => {
      const v = flat[i]!;
      return isBool ? v !== 0 : Number(v);
    };
    const shape = this.shape;
    if (shape.length === 0) return get(0);
    let offset = 0;
    const build = (d: number): NestedArray[] => {
      const n = shape[d]!;
      const out: NestedArray[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = d === shape.length - 1 ? get(offset++) : build(d + 1);
      return out;
    };
    return build(0);
  }

  // ---- memory and autograd ----
  /** Frees the native memory now; the tensor cannot be used afterwards. */
  dispose(): void {
    release(this);
  }
  [Symbol.dispose](): void {
    release(this);
  }
  /** Keeps this tensor alive past every enclosing `tidy` scope. */
  keep(): this {
    return keep(this);
  }
  backward(grad?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    N.backward(this.handle, grad?.handle, opts.retainGraph ?? false, opts.createGraph ?? false);
  }
  detach(): Tensor {
    return wrap(N.detach(this.handle));
  }
  requiresGrad_(value = true): this {
    N.set_requires_grad(this.handle, value);
    return this;
  }

  // ---- conversion ----
  to(target: DType | { dtype?: DType; device?: string }): Tensor {
    if (typeof target === 'string') return wrap(N.to_dtype(this.handle, dtypeCode(target)));
    if (!target.dtype && !target.device) return wrap(N.alias(this.handle));
    if (!target.device) return wrap(N.to_dtype(this.handle, dtypeCode(target.dtype!)));
    if (!target.dtype) return wrap(N.to_device(this.handle, target.device));
    const converted = N.to_dtype(this.handle, dtypeCode(target.dtype));
    try {
      return wrap(N.to_device(converted, target.device));
    } finally {
      N.free(converted);
    }
  }
  float(): Tensor {
    return this.to('float32');
  }
  long(): Tensor {
    return this.to('int64');
  }
  clone(): Tensor {
    return wrap(N.clone(this.handle));
  }
  contiguous(): Tensor {
    return wrap(N.contiguous(this.handle));
  }

  // ---- shape ----
  reshape(...shape: number[]): Tensor {
    return wrap(N.reshape(this.handle, shape));
  }
  view(...shape: number[]): Tensor {
    return wrap(N.view(this.handle, shape));
  }
  transpose(d0: number, d1: number): Tensor {
    return wrap(N.transpose(this.handle, d0, d1));
  }
  permute(...order: number[]): Tensor {
    return wrap(N.permute(this.handle, order));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return wrap(N.narrow(this.handle, dim, start, length));
  }
  /** Python's x[..., start:end:step] along `dim`; negative indices count from the end. */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    return wrap(N.slice(this.handle, dim, start, end, step));
  }
  select(dim: number, index: number): Tensor {
    return wrap(N.select(this.handle, dim, index));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return wrap(N.index_select(this.handle, dim, index.handle));
  }
  gather(dim: number, index: Tensor): Tensor {
    return wrap(N.gather(this.handle, dim, index.handle));
  }
  scatter(dim: number, index: Tensor, src: Tensor | number): Tensor {
    if (typeof src === 'number') return wrap(N.scatter_value(this.handle, dim, index.handle, src));
    return wrap(N.scatter(this.handle, dim, index.handle, src.handle));
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return wrap(N.scatter_add(this.handle, dim, index.handle, src.handle));
  }
  indexAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return wrap(N.index_add(this.handle, dim, index.handle, src.handle));
  }
  /** Advanced indexing over the leading dims: x.index([rows, cols]) is Python's x[rows, cols]. */
  index(indices: Tensor[]): Tensor {
    return wrap(
      N.index(
        this.handle,
        indices.map((t) => t.handle),
      ),
    );
  }
  maskedSelect(mask: Tensor): Tensor {
    return wrap(N.masked_select(this.handle, mask.handle));
  }
  split(size: number | number[], dim = 0): Tensor[] {
    const hs =
      typeof size === 'number' ? N.split(this.handle, size, dim) : N.split_with_sizes(this.handle, size, dim);
    return hs.map(wrap);
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return N.chunk(this.handle, chunks, dim).map(wrap);
  }
  unbind(dim = 0): Tensor[] {
    return N.unbind(this.handle, dim).map(wrap);
  }
  squeeze(dim?: number): Tensor {
    return wrap(N.squeeze(this.handle, dim));
  }
  unsqueeze(dim: number): Tensor {
    return wrap(N.unsqueeze(this.handle, dim));
  }
  expand(...shape: number[]): Tensor {
    return wrap(N.expand(this.handle, shape));
  }
  flatten(start = 0, end = -1): Tensor {
    return wrap(N.flatten(this.handle, start, end));
  }
  flip(...dimList: number[]): Tensor {
    return wrap(N.flip(this.handle, dimList));
  }
  repeat(...repeats: number[]): Tensor {
    return wrap(N.repeat(this.handle, repeats));
  }
  roll(shifts: number | number[], dim: number | number[]): Tensor {
    return wrap(N.roll(this.handle, dims(shifts), dims(dim)));
  }
  tril(k = 0): Tensor {
    return wrap(N.tril(this.handle, k));
  }
  triu(k = 0): Tensor {
    return wrap(N.triu(this.handle, k));
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return wrap(N.masked_fill(this.handle, mask.handle, value));
  }
  /** Constant padding; `pads` as in torch.nn.functional.pad ([left, right] of the last dim first). */
  pad(pads: number[], value = 0): Tensor {
    return wrap(N.pad(this.handle, pads, value));
  }

  // ---- elementwise (broadcasting; a number is a scalar operand) ----
  add(other: Tensor | number, alpha?: number): Tensor {
    if (typeof other === 'number') return wrap(N.add_scalar(this.handle, other));
    if (alpha !== undefined) return wrap(N.add_scaled(this.handle, other.handle, alpha));
    return wrap(N.add(this.handle, other.handle));
  }
  sub(other: Tensor | number): Tensor {
    return wrap(
      typeof other === 'number' ? N.sub_scalar(this.handle, other) : N.sub(this.handle, other.handle),
    );
  }
  /** other − this. */
  rsub(other: number): Tensor {
    return wrap(N.rsub_scalar(this.handle, other));
  }
  mul(other: Tensor | number): Tensor {
    return wrap(
      typeof other === 'number' ? N.mul_scalar(this.handle, other) : N.mul(this.handle, other.handle),
    );
  }
  div(other: Tensor | number): Tensor {
    return wrap(
      typeof other === 'number' ? N.div_scalar(this.handle, other) : N.div(this.handle, other.handle),
    );
  }
  pow(other: Tensor | number): Tensor {
    return wrap(
      typeof other === 'number' ? N.pow_scalar(this.handle, other) : N.pow(this.handle, other.handle),
    );
  }
  maximum(other: Tensor): Tensor {
    return wrap(N.maximum(this.handle, other.handle));
  }
  minimum(other: Tensor): Tensor {
    return wrap(N.minimum(this.handle, other.handle));
  }
  lerp(end: Tensor, weight: number): Tensor {
    return wrap(N.lerp(this.handle, end.handle, weight));
  }
  eq(o: Tensor | number): Tensor {
    return wrap(typeof o === 'number' ? N.eq_scalar(this.handle, o) : N.eq(this.handle, o.handle));
  }
  ne(o: Tensor | number): Tensor {
    return wrap(typeof o === 'number' ? N.ne_scalar(this.handle, o) : N.ne(this.handle, o.handle));
  }
  lt(o: Tensor | number): Tensor {
    return wrap(typeof o === 'number' ? N.lt_scalar(this.handle, o) : N.lt(this.handle, o.handle));
  }
  le(o: Tensor | number): Tensor {
    return wrap(typeof o === 'number' ? N.le_scalar(this.handle, o) : N.le(this.handle, o.handle));
  }
  gt(o: Tensor | number): Tensor {
    return wrap(typeof o === 'number' ? N.gt_scalar(this.handle, o) : N.gt(this.handle, o.handle));
  }
  ge(o: Tensor | number): Tensor {
    return wrap(typeof o === 'number' ? N.ge_scalar(this.handle, o) : N.ge(this.handle, o.handle));
  }
  logicalAnd(o: Tensor): Tensor {
    return wrap(N.logical_and(this.handle, o.handle));
  }
  logicalOr(o: Tensor): Tensor {
    return wrap(N.logical_or(this.handle, o.handle));
  }
  logicalNot(): Tensor {
    return wrap(N.logical_not(this.handle));
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return wrap(N.clamp(this.handle, min, max));
  }
  neg(): Tensor {
    return wrap(N.neg(this.handle));
  }
  exp(): Tensor {
    return wrap(N.exp(this.handle));
  }
  log(): Tensor {
    return wrap(N.log(this.handle));
  }
  log1p(): Tensor {
    return wrap(N.log1p(this.handle));
  }
  expm1(): Tensor {
    return wrap(N.expm1(this.handle));
  }
  sqrt(): Tensor {
    return wrap(N.sqrt(this.handle));
  }
  rsqrt(): Tensor {
    return wrap(N.rsqrt(this.handle));
  }
  abs(): Tensor {
    return wrap(N.abs(this.handle));
  }
  sign(): Tensor {
    return wrap(N.sign(this.handle));
  }
  sin(): Tensor {
    return wrap(N.sin(this.handle));
  }
  cos(): Tensor {
    return wrap(N.cos(this.handle));
  }
  tanh(): Tensor {
    return wrap(N.tanh(this.handle));
  }
  sigmoid(): Tensor {
    return wrap(N.sigmoid(this.handle));
  }
  logSigmoid(): Tensor {
    return wrap(N.log_sigmoid(this.handle));
  }
  relu(): Tensor {
    return wrap(N.relu(this.handle));
  }
  silu(): Tensor {
    return wrap(N.silu(this.handle));
  }
  softplus(): Tensor {
    return wrap(N.softplus(this.handle));
  }
  square(): Tensor {
    return wrap(N.square(this.handle));
  }
  reciprocal(): Tensor {
    return wrap(N.reciprocal(this.handle));
  }
  floor(): Tensor {
    return wrap(N.floor(this.handle));
  }
  ceil(): Tensor {
    return wrap(N.ceil(this.handle));
  }
  round(): Tensor {
    return wrap(N.round(this.handle));
  }
  erf(): Tensor {
    return wrap(N.erf(this.handle));
  }
  isnan(): Tensor {
    return wrap(N.isnan(this.handle));
  }
  isinf(): Tensor {
    return wrap(N.isinf(this.handle));
  }
  isfinite(): Tensor {
    return wrap(N.isfinite(this.handle));
  }
  /**
   * GELU; 'tanh' is GPT-2's approximation ("gelu_new"), on CPU float32 by the addon's kernel (see
   * setFusedGelu) unless turned off.
   */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    if (approximate === 'tanh' && fusedGelu) return wrap(N.gelu_tanh(this.handle));
    return wrap(N.gelu(this.handle, approximate));
  }
  nanToNum(nan = 0, posinf = 3.4e38, neginf = -3.4e38): Tensor {
    return wrap(N.nan_to_num(this.handle, nan, posinf, neginf));
  }

  // ---- reductions (no dim = over all elements) ----
  sum(dim?: number | number[], keepdim = false): Tensor {
    return wrap(dim === undefined ? N.sum(this.handle) : N.sum_dims(this.handle, dims(dim), keepdim));
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return wrap(dim === undefined ? N.mean(this.handle) : N.mean_dims(this.handle, dims(dim), keepdim));
  }
  prod(): Tensor {
    return wrap(N.prod(this.handle));
  }
  max(): Tensor {
    return wrap(N.max(this.handle));
  }
  min(): Tensor {
    return wrap(N.min(this.handle));
  }
  /** [values, indices] along `dim`. */
  maxDim(dim: number, keepdim = false): [Tensor, Tensor] {
    return wrapPair(N.max_dim(this.handle, dim, keepdim));
  }
  minDim(dim: number, keepdim = false): [Tensor, Tensor] {
    return wrapPair(N.min_dim(this.handle, dim, keepdim));
  }
  argmax(dim: number, keepdim = false): Tensor {
    return wrap(N.argmax(this.handle, dim, keepdim));
  }
  argmin(dim: number, keepdim = false): Tensor {
    return wrap(N.argmin(this.handle, dim, keepdim));
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return wrap(N.logsumexp(this.handle, dims(dim), keepdim));
  }
  var(dim?: number | number[], opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return wrap(
      N.var(this.handle, dim === undefined ? [] : dims(dim), opts.unbiased ?? true, opts.keepdim ?? false),
    );
  }
  std(dim?: number | number[], opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return wrap(
      N.std(this.handle, dim === undefined ? [] : dims(dim), opts.unbiased ?? true, opts.keepdim ?? false),
    );
  }
  norm(p = 2, dim?: number | number[], keepdim = false): Tensor {
    return wrap(dim === undefined ? N.norm(this.handle, p) : N.norm_dims(this.handle, p, dims(dim), keepdim));
  }
  all(): Tensor {
    return wrap(N.all(this.handle));
  }
  any(): Tensor {
    return wrap(N.any(this.handle));
  }
  cumsum(dim: number): Tensor {
    return wrap(N.cumsum(this.handle, dim));
  }
  cumprod(dim: number): Tensor {
    return wrap(N.cumprod(this.handle, dim));
  }
  /** [values, indices]. */
  sort(dim = -1, descending = false): [Tensor, Tensor] {
    return wrapPair(N.sort(this.handle, dim, descending));
  }
  argsort(dim = -1, descending = false): Tensor {
    return wrap(N.argsort(this.handle, dim, descending));
  }
  /** [values, indices] of the k largest (or smallest) along `dim`. */
  topk(k: number, dim = -1, largest = true, sorted = true): [Tensor, Tensor] {
    return wrapPair(N.topk(this.handle, k, dim, largest, sorted));
  }

  // ---- linear algebra and nn ----
  matmul(other: Tensor): Tensor {
    return wrap(N.matmul(this.handle, other.handle));
  }
  softmax(dim: number): Tensor {
    return wrap(N.softmax(this.handle, dim));
  }
  logSoftmax(dim: number): Tensor {
    return wrap(N.log_softmax(this.handle, dim));
  }

  // ---- in place (return this) ----
  add_(other: Tensor | number, alpha?: number): this {
    if (typeof other === 'number') N.add_scalar_(this.handle, other);
    else N.add_(this.handle, other.handle, alpha);
    return this;
  }
  mul_(other: Tensor | number): this {
    if (typeof other === 'number') N.mul_scalar_(this.handle, other);
    else N.mul_(this.handle, other.handle);
    return this;
  }
  div_(other: Tensor | number): this {
    if (typeof other === 'number') N.div_scalar_(this.handle, other);
    else N.div_(this.handle, other.handle);
    return this;
  }
  /** this += value · a · b */
  addcmul_(a: Tensor, b: Tensor, value = 1): this {
    N.addcmul_(this.handle, a.handle, b.handle, value);
    return this;
  }
  /** this += value · a / b */
  addcdiv_(a: Tensor, b: Tensor, value = 1): this {
    N.addcdiv_(this.handle, a.handle, b.handle, value);
    return this;
  }
  lerp_(end: Tensor, weight: number): this {
    N.lerp_(this.handle, end.handle, weight);
    return this;
  }
  copy_(src: Tensor): this {
    N.copy_(this.handle, src.handle);
    return this;
  }
  zero_(): this {
    N.zero_(this.handle);
    return this;
  }
  fill_(value: number): this {
    N.fill_(this.handle, value);
    return this;
  }
  clamp_(min?: number | null, max?: number | null): this {
    N.clamp_(this.handle, min, max);
    return this;
  }
  maskedFill_(mask: Tensor, value: number): this {
    N.masked_fill_(this.handle, mask.handle, value);
    return this;
  }
  uniform_(low = 0, high = 1): this {
    N.uniform_(this.handle, low, high);
    return this;
  }
  normal_(mean = 0, std = 1): this {
    N.normal_(this.handle, mean, std);
    return this;
  }

  /** @internal shared with ops.ts */
  static readonly reductionCode = REDUCTION;
}
