// Loads the N-API addon (native/) and describes its functions. Tensors cross the boundary as integer
// handles (slots in a native table); src/engine/tensor.ts wraps them. Ops take and return handles.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A native tensor handle: an index into the addon's tensor table; 0 means "no tensor". */
export type Handle = number;
type H = Handle;
type Opt<T> = T | null | undefined;
type Shape = readonly number[];

/** Functions exported by native/*.cc (one per torch op). dtype arguments are codes from dtype.ts. */
export interface NativeBinding {
  // creation
  empty(shape: Shape, dtype: number, device: Opt<string>): H;
  zeros(shape: Shape, dtype: number, device: Opt<string>): H;
  ones(shape: Shape, dtype: number, device: Opt<string>): H;
  full(shape: Shape, value: number, dtype: number, device: Opt<string>): H;
  arange(start: number, end: number, step: number, dtype: number, device: Opt<string>): H;
  linspace(start: number, end: number, steps: number, dtype: number, device: Opt<string>): H;
  eye(n: number, dtype: number, device: Opt<string>): H;
  randn(shape: Shape, dtype: number, device: Opt<string>): H;
  rand(shape: Shape, dtype: number, device: Opt<string>): H;
  randint(low: number, high: number, shape: Shape, dtype: number, device: Opt<string>): H;
  randperm(n: number, dtype: number, device: Opt<string>): H;
  zeros_like(x: H): H;
  ones_like(x: H): H;
  full_like(x: H, value: number): H;
  randn_like(x: H): H;
  rand_like(x: H): H;
  bernoulli(p: H): H;
  multinomial(probs: H, n: number, replacement: boolean): H;
  from_buffer(data: ArrayBufferView | ArrayBuffer, dtype: number, shape: Shape): H;
  to_buffer(x: H): ArrayBuffer;
  // inspection
  shape(x: H): number[];
  strides(x: H): number[];
  dtype(x: H): number;
  device(x: H): string;
  numel(x: H): number;
  ndim(x: H): number;
  is_contiguous(x: H): boolean;
  item(x: H): number;
  describe(x: H): string;
  same_storage(x: H, y: H): boolean;
  // conversion
  to_dtype(x: H, dtype: number): H;
  to_device(x: H, device: string): H;
  clone(x: H): H;
  contiguous(x: H): H;
  detach(x: H): H;
  alias(x: H): H;
  // memory
  free(x: H): void;
  free_many(xs: H[]): void;
  live_tensors(): number;
  live_bytes(): number;
  // runtime
  set_num_threads(n: number): boolean;
  get_num_threads(): number;
  manual_seed(seed: number): void;
  get_rng_state(device: Opt<string>): H;
  set_rng_state(state: H, device: Opt<string>): void;
  cuda_available(): boolean;
  cuda_device_count(): number;
  cuda_synchronize(): void;
  torch_version(): string;
  built_with_cuda(): boolean;
  // mixed precision and fused attention (native/ops_nn.cc)
  set_autocast(device: string, enabled: boolean, dtype: number): void;
  autocast_enabled(device: string): boolean;
  set_allow_tf32(allow: boolean): void;
  allow_tf32(): boolean;
  sdpa_available(): boolean;
  sdpa(q: H, k: H, v: H, mask: Opt<H>, dropoutP: number, isCausal: boolean): H;
  // decoding-loop kernels, CPU float32 (native/ops_fused.cc)
  decode_attention(q: H, k: H, v: H, blocked: Opt<H>, scale: number): H;
  sample_categorical(weights: H): H;
  // GPT-2's tanh GELU: the kernel with its own backward on CPU float32, libtorch's op otherwise (ops_fused.cc)
  gelu_tanh(x: H): H;
  // attention over whole sequences with its own backward, CPU float32 (ops_fused.cc)
  seq_attention(q: H, k: H, v: H, blocked: Opt<H>, causal: boolean, scale: number): H;
  // linear()'s packed-weight path (native/ops_gemm.cc): on/off, and [weights, bytes, budget bytes, panel columns]
  set_packed_linear(on: boolean): void;
  packed_linear_stats(): number[];
  // one AdamW step over lists of parameters, grads and moments (optim.ts's update; CPU float32 in one pass)
  adamw_step(
    params: readonly H[],
    grads: readonly H[],
    expAvg: readonly H[],
    expAvgSq: readonly H[],
    decay: number,
    beta1: number,
    beta2: number,
    stepSize: number,
    bias2Sqrt: number,
    eps: number,
  ): void;
  // distributed (native/dist.cc): one c10d process group per process
  dist_init(
    backend: string,
    rank: number,
    size: number,
    addr: string,
    port: number,
    timeoutMs: number,
    localAddr: string | null,
  ): void;
  dist_destroy(): void;
  dist_available(): boolean;
  dist_nccl_available(): boolean;
  dist_all_reduce(tensors: readonly H[], op: string, bucketBytes: number): number;
  dist_broadcast(tensors: readonly H[], root: number): void;
  dist_barrier(): void;
  dist_reducer_new(params: readonly H[], bucketBytes: number, firstBucketBytes: number): number;
  dist_reducer_arm(id: number): void;
  dist_reducer_finish(id: number): number;
  dist_reducer_free(id: number): void;
  // shape ops
  reshape(x: H, shape: Shape): H;
  view(x: H, shape: Shape): H;
  transpose(x: H, d0: number, d1: number): H;
  permute(x: H, dims: Shape): H;
  narrow(x: H, dim: number, start: number, length: number): H;
  slice(x: H, dim: number, start: Opt<number>, end: Opt<number>, step: Opt<number>): H;
  select(x: H, dim: number, index: number): H;
  index_select(x: H, dim: number, index: H): H;
  gather(x: H, dim: number, index: H): H;
  scatter(x: H, dim: number, index: H, src: H): H;
  scatter_value(x: H, dim: number, index: H, value: number): H;
  scatter_add(x: H, dim: number, index: H, src: H): H;
  index_add(x: H, dim: number, index: H, src: H): H;
  index(x: H, indices: H[]): H;
  masked_select(x: H, mask: H): H;
  nonzero(x: H): H;
  cat(xs: H[], dim: number): H;
  stack(xs: H[], dim: number): H;
  split(x: H, size: number, dim: number): H[];
  split_with_sizes(x: H, sizes: Shape, dim: number): H[];
  chunk(x: H, chunks: number, dim: number): H[];
  unbind(x: H, dim: number): H[];
  squeeze(x: H, dim: Opt<number>): H;
  unsqueeze(x: H, dim: number): H;
  expand(x: H, shape: Shape): H;
  flatten(x: H, start: number, end: number): H;
  flip(x: H, dims: Shape): H;
  repeat(x: H, repeats: Shape): H;
  roll(x: H, shifts: Shape, dims: Shape): H;
  tril(x: H, k: number): H;
  triu(x: H, k: number): H;
  where(cond: H, x: H, y: H): H;
  masked_fill(x: H, mask: H, value: number): H;
  pad(x: H, pads: Shape, value: number): H;
  // elementwise
  add(x: H, y: H): H;
  add_scaled(x: H, y: H, alpha: number): H;
  sub(x: H, y: H): H;
  mul(x: H, y: H): H;
  div(x: H, y: H): H;
  pow(x: H, y: H): H;
  maximum(x: H, y: H): H;
  minimum(x: H, y: H): H;
  eq(x: H, y: H): H;
  ne(x: H, y: H): H;
  lt(x: H, y: H): H;
  le(x: H, y: H): H;
  gt(x: H, y: H): H;
  ge(x: H, y: H): H;
  logical_and(x: H, y: H): H;
  logical_or(x: H, y: H): H;
  logical_xor(x: H, y: H): H;
  lerp(x: H, y: H, weight: number): H;
  add_scalar(x: H, s: number): H;
  sub_scalar(x: H, s: number): H;
  rsub_scalar(x: H, s: number): H;
  mul_scalar(x: H, s: number): H;
  div_scalar(x: H, s: number): H;
  pow_scalar(x: H, s: number): H;
  eq_scalar(x: H, s: number): H;
  ne_scalar(x: H, s: number): H;
  lt_scalar(x: H, s: number): H;
  le_scalar(x: H, s: number): H;
  gt_scalar(x: H, s: number): H;
  ge_scalar(x: H, s: number): H;
  clamp(x: H, min: Opt<number>, max: Opt<number>): H;
  neg(x: H): H;
  exp(x: H): H;
  log(x: H): H;
  log1p(x: H): H;
  expm1(x: H): H;
  sqrt(x: H): H;
  rsqrt(x: H): H;
  abs(x: H): H;
  sign(x: H): H;
  sin(x: H): H;
  cos(x: H): H;
  tanh(x: H): H;
  sigmoid(x: H): H;
  log_sigmoid(x: H): H;
  relu(x: H): H;
  silu(x: H): H;
  softplus(x: H): H;
  square(x: H): H;
  reciprocal(x: H): H;
  floor(x: H): H;
  ceil(x: H): H;
  round(x: H): H;
  erf(x: H): H;
  logical_not(x: H): H;
  isnan(x: H): H;
  isinf(x: H): H;
  isfinite(x: H): H;
  gelu(x: H, approximate: Opt<string>): H;
  nan_to_num(x: H, nan: number, posinf: number, neginf: number): H;
  // reductions
  sum(x: H): H;
  sum_dims(x: H, dims: Shape, keepdim: boolean): H;
  mean(x: H): H;
  mean_dims(x: H, dims: Shape, keepdim: boolean): H;
  prod(x: H): H;
  max(x: H): H;
  min(x: H): H;
  max_dim(x: H, dim: number, keepdim: boolean): [H, H];
  min_dim(x: H, dim: number, keepdim: boolean): [H, H];
  argmax(x: H, dim: number, keepdim: boolean): H;
  argmin(x: H, dim: number, keepdim: boolean): H;
  logsumexp(x: H, dims: Shape, keepdim: boolean): H;
  var(x: H, dims: Shape, unbiased: boolean, keepdim: boolean): H;
  std(x: H, dims: Shape, unbiased: boolean, keepdim: boolean): H;
  norm(x: H, p: number): H;
  norm_dims(x: H, p: number, dims: Shape, keepdim: boolean): H;
  all(x: H): H;
  any(x: H): H;
  cumsum(x: H, dim: number): H;
  cumprod(x: H, dim: number): H;
  sort(x: H, dim: number, descending: boolean): [H, H];
  argsort(x: H, dim: number, descending: boolean): H;
  topk(x: H, k: number, dim: number, largest: boolean, sorted: boolean): [H, H];
  // linear algebra
  matmul(x: H, y: H): H;
  mm(x: H, y: H): H;
  bmm(x: H, y: H): H;
  linear(x: H, weight: H, bias: Opt<H>): H;
  addmm(bias: H, x: H, y: H): H;
  baddbmm(bias: H, x: H, y: H, beta: number, alpha: number): H;
  outer(x: H, y: H): H;
  einsum(equation: string, xs: H[]): H;
  linalg_cholesky(x: H): H;
  linalg_inv(x: H): H;
  linalg_eigh(x: H): [H, H];
  linalg_solve(a: H, b: H): H;
  // nn
  softmax(x: H, dim: number): H;
  log_softmax(x: H, dim: number): H;
  layer_norm(x: H, shape: Shape, weight: Opt<H>, bias: Opt<H>, eps: number): H;
  dropout(x: H, p: number, train: boolean): H;
  embedding(weight: H, indices: H): H;
  cross_entropy(logits: H, target: H, ignoreIndex: number, reduction: number, labelSmoothing: number): H;
  mse_loss(x: H, y: H, reduction: number): H;
  bce_with_logits(x: H, y: H, reduction: number): H;
  // autograd
  requires_grad(x: H): boolean;
  set_requires_grad(x: H, value: boolean): void;
  is_leaf(x: H): boolean;
  grad(x: H): H;
  set_grad(x: H, grad: Opt<H>): void;
  backward(x: H, grad: Opt<H>, retainGraph: boolean, createGraph: boolean): void;
  autograd_grad(outputs: H[], inputs: H[], gradOutputs: H[], retainGraph: boolean, createGraph: boolean): H[];
  grad_enabled(): boolean;
  set_grad_enabled(value: boolean): void;
  // in place
  add_(x: H, y: H, alpha: Opt<number>): void;
  add_scalar_(x: H, s: number): void;
  mul_(x: H, y: H): void;
  mul_scalar_(x: H, s: number): void;
  div_(x: H, y: H): void;
  div_scalar_(x: H, s: number): void;
  addcmul_(x: H, a: H, b: H, value: number): void;
  addcdiv_(x: H, a: H, b: H, value: number): void;
  lerp_(x: H, end: H, weight: number): void;
  copy_(x: H, src: H): void;
  zero_(x: H): void;
  fill_(x: H, value: number): void;
  clamp_(x: H, min: Opt<number>, max: Opt<number>): void;
  masked_fill_(x: H, mask: H, value: number): void;
  uniform_(x: H, low: number, high: number): void;
  normal_(x: H, mean: number, std: number): void;
}

/** Thrown on the engine's first use when the native addon is missing; says how to build it. */
export class NativeBuildError extends Error {
  override name = 'NativeBuildError';
}

function load(): NativeBinding {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const path = process.env.HHKIT_NATIVE ?? join(root, 'native', 'build', 'Release', 'hhkit.node');
  if (!existsSync(path)) {
    // The same command in a project that depends on hhkit and in a clone (scripts/install.mjs --setup).
    throw new NativeBuildError(
      `the native engine is not built (${path} is missing). Run \`npx hhkit setup\`: it finds libtorch ` +
        '(Debian libtorch-dev, a pip torch or $LIBTORCH; installs libtorch-dev with apt when root) and builds the addon.',
    );
  }
  // OpenMP's idle threads spin by default, fighting OpenBLAS's threads (and every other process) for the
  // cores: small ops ran ~10-40x slower on a busy 2-core machine. libgomp reads this when the addon loads
  // libtorch, so it must be set first; an explicit OMP_WAIT_POLICY in the environment wins.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  const binding = createRequire(import.meta.url)(path) as NativeBinding;
  // torch starts with one intra-op thread in some builds (Debian's reports 1 on 2 cores); use every core
  // unless HHKIT_NUM_THREADS says otherwise (runtime.ts's setNumThreads changes it later).
  const envThreads = Number(process.env.HHKIT_NUM_THREADS);
  binding.set_num_threads(
    Number.isInteger(envThreads) && envThreads > 0 ? envThreads : availableParallelism(),
  );
  // HHKIT_TF32=1 lets float32 matmuls and convolutions use TF32 on Ampere+ GPUs (torch's default is off for
  // matmuls); trainers in bf16 precision don't need it.
  if (process.env.HHKIT_TF32 === '1') binding.set_allow_tf32(true);
  return binding;
}

let loaded: NativeBinding | undefined;

/**
 * The addon, loaded on first use rather than on import, so `import … from 'hhkit'` (the world, data files,
 * the CLI's --help) works before the addon is built, and the first tensor op throws a NativeBuildError
 * naming the command to run. The first property read replaces this live binding with the addon itself, so
 * later calls (`native.add(…)` in every importer) go straight to it.
 */
export let native: NativeBinding = new Proxy({} as NativeBinding, {
  get(_target, key) {
    loaded ??= load();
    native = loaded;
    return Reflect.get(loaded, key);
  },
});
