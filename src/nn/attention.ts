// Causal multi-head self-attention as in GPT-2: one combined projection c_attn (C → 3C) for q, k, v,
// softmax(q·kᵀ/√D) over the allowed keys, and the output projection c_proj (C → C).
import {
  arange,
  decodeAttention,
  dropout,
  full,
  isGradEnabled,
  scaledDotProductAttention,
  sdpaAvailable,
  seqAttention,
  type Tensor,
} from '../engine/index.ts';
import type { KVCache } from './kvcache.ts';
import { Conv1D, Dropout } from './layers.ts';
import { Module } from './module.ts';

/** The most negative finite value of a float dtype: blocked scores get it instead of −∞, so a fully blocked
 * row (a padding query) softmaxes to a uniform row rather than NaN (as Hugging Face does). */
export function maskValue(dtype: string): number {
  if (dtype === 'float16') return -65504;
  if (dtype === 'float64') return -Number.MAX_VALUE;
  if (dtype === 'bfloat16') return -3.3895313892515355e38; // float32's limit overflows bf16's 8-bit mantissa
  return -3.4028234663852886e38; // float32
}

/**
 * Which (query, key) pairs are blocked, as a bool tensor broadcastable to the scores (B, H, T, S):
 * key j is blocked for query i when it lies in the future (j > past + i) or is padding
 * (attentionMask[b, j] false/0). Returns null when nothing is blocked (one new token, no padding).
 *
 * @example attentionBlocked(0, 4, null, 'cpu') // (4, 4) true above the diagonal
 */
export function attentionBlocked(
  past: number,
  t: number,
  attentionMask: Tensor | null | undefined,
  device: string,
): Tensor | null {
  const s = past + t;
  // causal: (T, S), true where key position > query position
  const causal =
    t === 1 ? null : arange(s, undefined, 1, { device }).gt(arange(past, s, 1, { device }).unsqueeze(1));
  if (!attentionMask) return causal;
  const b = attentionMask.size(0);
  // padding: (B, 1, 1, S)
  const padding = attentionMask.eq(0).view(b, 1, 1, s);
  return causal ? padding.logicalOr(causal) : padding;
}

/** x (B, T, C) → (B, 1, C): row b's vector at position rows[b]. */
export function selectRows(x: Tensor, rows: Tensor): Tensor {
  const [b, , c] = x.shape as [number, number, number];
  return x.gather(1, rows.view(b, 1, 1).expand(b, 1, c));
}

/** q (B, H, T, D) → (B, H, 1, D): each row's queries at position rows[b]. */
export function selectQueryRows(q: Tensor, rows: Tensor): Tensor {
  const [b, h, , d] = q.shape as [number, number, number, number];
  return q.gather(2, rows.view(b, 1, 1, 1).expand(b, h, 1, d));
}

// torch ≥ 2.0 has fused attention (flash / memory-efficient kernels on GPU); 1.13 does not. HHKIT_FUSED_ATTENTION=0
// forces the manual path (for comparisons). Decided on first use: the native engine loads lazily.
let fused: boolean | undefined;

/** Whether attention uses torch's scaled_dot_product_attention; `setFusedAttention(false)` forces the manual path. */
export const fusedAttention = (): boolean =>
  (fused ??= sdpaAvailable() && process.env.HHKIT_FUSED_ATTENTION !== '0');
/**
 * Chooses the attention path of every model: torch's fused scaled_dot_product_attention (true; an error
 * on a libtorch older than 2.0) or the manual softmax(q·kᵀ/√D)·v (false, for comparisons).
 *
 * @example setFusedAttention(false); // the manual path, as HHKIT_FUSED_ATTENTION=0
 */
export function setFusedAttention(on: boolean): void {
  if (on && !sdpaAvailable()) throw new Error('fused attention needs libtorch 2.0 or newer');
  fused = on;
}

// The decoding loop's native kernels on the CPU in float32, without autograd: a few new queries over a KV
// cache in one call (decodeAttention) instead of two batched matmuls that libtorch 1.13 runs as one sgemm
// per (batch, head), and one token per row by inverting the cumulative sum (sampleCategorical, in
// generate.ts) instead of multinomial's exponential per vocabulary entry. HHKIT_FUSED_DECODE=0 keeps the
// general ops (for comparisons).
let fusedDecode = process.env.HHKIT_FUSED_DECODE !== '0';
/** The most new queries per row that take the decoding kernel; longer (prefill, training) take matmuls. */
export const FUSED_DECODE_MAX_QUERIES = 4;

/** Whether decoding on the CPU uses the native kernels (default on; HHKIT_FUSED_DECODE=0 off). */
export const fusedDecoding = (): boolean => fusedDecode;
/**
 * Turns the decoding loop's native kernels on or off: attention over the cache gives the general path's
 * result to float rounding; sampling draws from the same distribution with different draws for a seed.
 *
 * @example setFusedDecoding(false); // as HHKIT_FUSED_DECODE=0
 */
export function setFusedDecoding(on: boolean): void {
  fusedDecode = on;
}

// What both native attention kernels take: CPU float32 q, k and v, no attention dropout.
function cpuFloat32(q: Tensor, k: Tensor, v: Tensor, dropoutP: number): boolean {
  return (
    dropoutP === 0 &&
    q.device === 'cpu' &&
    q.dtype === 'float32' &&
    k.dtype === 'float32' &&
    v.dtype === 'float32'
  );
}

function takesDecodeKernel(q: Tensor, k: Tensor, v: Tensor, dropoutP: number): boolean {
  return (
    fusedDecode &&
    q.size(2) <= FUSED_DECODE_MAX_QUERIES &&
    cpuFloat32(q, k, v, dropoutP) &&
    (!isGradEnabled() || !(q.requiresGrad || k.requiresGrad || v.requiresGrad))
  );
}

// Attention over whole sequences (training, prefill, PM scoring) on the CPU in float32: one native call with its
// own backward (seqAttention) instead of libtorch 1.13's two batched matmuls, scale, masked_fill and softmax,
// each a pass over (B, H, T, S) with its own backward; the causal mask's upper triangle is never computed.
// Where torch's scaled_dot_product_attention exists (libtorch ≥ 2.0) that is used instead. HHKIT_CPU_ATTENTION=0
// keeps the general ops (for comparisons).
let cpuAttention = process.env.HHKIT_CPU_ATTENTION !== '0';
/** Whether whole-sequence attention on the CPU in float32 uses the native kernel (default on; HHKIT_CPU_ATTENTION=0 off). */
export const nativeSeqAttention = (): boolean => cpuAttention;
/**
 * Turns the native whole-sequence attention kernel on or off: it gives the general path's values and gradients
 * to float rounding (second derivatives go through the general ops).
 *
 * @example setNativeSeqAttention(false); // as HHKIT_CPU_ATTENTION=0
 */
export function setNativeSeqAttention(on: boolean): void {
  cpuAttention = on;
}

export interface AttentionOptions {
  /** Blocked (query, key) pairs, from attentionBlocked(); null = attend to every key. */
  blocked: Tensor | null;
  /** `blocked` is exactly the causal mask of a fresh sequence (no cache, no padding): fused kernels take a flag. */
  causal?: boolean;
  cache?: KVCache;
  /** This block's index in the cache. */
  layer: number;
  /** (B) int64: compute only these query positions (the last block of a forward with `readout`). */
  rows?: Tensor;
}

/**
 * @example new CausalSelfAttention(16, 2, 0).forward(x, { blocked: attentionBlocked(0, T, null, 'cpu'), layer: 0 })
 */
export class CausalSelfAttention extends Module {
  readonly c_attn: Conv1D;
  readonly c_proj: Conv1D;
  readonly attnDropout: Dropout;
  readonly residDropout: Dropout;
  readonly headDim: number;

  constructor(
    readonly nEmbd: number,
    readonly nHead: number,
    dropoutP: number,
    opts: { projStd?: number } = {},
  ) {
    super();
    if (nEmbd % nHead !== 0) throw new RangeError(`nEmbd ${nEmbd} is not divisible by nHead ${nHead}`);
    this.headDim = nEmbd / nHead;
    this.c_attn = this.module('c_attn', new Conv1D(nEmbd, 3 * nEmbd));
    this.c_proj = this.module('c_proj', new Conv1D(nEmbd, nEmbd, { std: opts.projStd }));
    this.attnDropout = this.module('attn_dropout', new Dropout(dropoutP));
    this.residDropout = this.module('resid_dropout', new Dropout(dropoutP));
  }

  forward(x: Tensor, opts: AttentionOptions): Tensor {
    const [b, t, c] = x.shape as [number, number, number];
    const h = this.nHead;
    const d = this.headDim;
    // (B, T, 3C) → q, k, v: (B, H, T, D)
    const [q, kNew, vNew] = this.c_attn
      .forward(x)
      .split(c, 2)
      .map((z) => z.view(b, t, h, d).transpose(1, 2)) as [Tensor, Tensor, Tensor];
    // With a cache, keys/values cover every position so far: (B, H, S, D)
    const [k, v] = opts.cache ? opts.cache.update(opts.layer, kNew, vNew) : [kNew, vNew];
    const y = attend(opts.rows ? selectQueryRows(q, opts.rows) : q, k, v, {
      blocked: opts.blocked,
      isCausal: opts.causal === true && !opts.cache,
      dropoutP: this.attnDropout.training ? this.attnDropout.p : 0,
    });
    // (B, H, T, D) → (B, T, C); T is 1 with rows
    return this.residDropout.forward(this.c_proj.forward(y.transpose(1, 2).reshape(b, y.size(2), c)));
  }
}

/**
 * softmax(q·kᵀ/√D, blocked pairs excluded)·v for q (B, H, T, D) and k, v (B, H_kv, S, D): with fewer
 * key/value heads (grouped-query attention), each serves H / H_kv consecutive query heads, as Hugging
 * Face's repeat_kv. `isCausal` says `blocked` is exactly the causal mask of a fresh sequence (fused kernels
 * take a flag). Returns (B, H, T, D).
 *
 * @example const y = attend(q, k, v, { blocked: attentionBlocked(0, T, null, 'cpu'), isCausal: true, dropoutP: 0 });
 */
export function attend(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: { blocked: Tensor | null; isCausal: boolean; dropoutP: number },
): Tensor {
  const h = q.size(1);
  const hKV = k.size(1);
  if (h % hKV !== 0) throw new RangeError(`attend: ${h} query heads are not a multiple of ${hKV} KV heads`);
  if (takesDecodeKernel(q, k, v, opts.dropoutP))
    return decodeAttention(q, k, v, opts.blocked, 1 / Math.sqrt(q.size(3)));
  if (h !== hKV) {
    k = repeatKV(k, h / hKV);
    v = repeatKV(v, h / hKV);
  }
  if (cpuAttention && !fusedAttention() && cpuFloat32(q, k, v, opts.dropoutP))
    return seqAttention(
      q,
      k,
      v,
      opts.isCausal ? null : opts.blocked,
      opts.isCausal,
      1 / Math.sqrt(q.size(3)),
    );
  if (fusedAttention()) {
    const mask =
      opts.blocked && !opts.isCausal
        ? full(opts.blocked.shape, 0, { dtype: q.dtype, device: q.device }).maskedFill(
            opts.blocked,
            maskValue(q.dtype),
          )
        : null;
    return scaledDotProductAttention(q, k, v, { mask, dropoutP: opts.dropoutP, isCausal: opts.isCausal });
  }
  // scores: (B, H, T, S)
  let att = q.matmul(k.transpose(2, 3)).mul(1 / Math.sqrt(q.size(3)));
  if (opts.blocked) att = att.maskedFill(opts.blocked, maskValue(att.dtype));
  att = att.softmax(-1);
  if (opts.dropoutP > 0) att = dropout(att, opts.dropoutP, true);
  return att.matmul(v);
}

// (B, H_kv, S, D) → (B, H_kv · n, S, D): each KV head repeated n times, consecutively.
function repeatKV(x: Tensor, n: number): Tensor {
  const [b, hKV, s, d] = x.shape as [number, number, number, number];
  return x
    .unsqueeze(2)
    .expand(b, hKV, n, s, d)
    .reshape(b, hKV * n, s, d);
}
