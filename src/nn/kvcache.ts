// A preallocated key/value cache for incremental decoding. Each layer owns key and value tensors
// (B, H_kv, maxLength, D) — H_kv is the number of key/value heads, fewer than the query heads under
// grouped-query attention; a forward writes its new tokens' k/v in place at [length, length + T) with
// narrow + copy_ and attends over the view [0, length + T), so generation never concatenates per token.
import { type DType, keep, type Tensor, zeros } from '../engine/index.ts';
import type { GPTConfig } from './gpt.ts';

export interface KVCacheOptions {
  /** Allocate now on this device; by default the cache is allocated at the first forward, like the model. */
  device?: string;
  dtype?: DType;
}

/** The cache's shape: layers, key/value heads and per-head size (a CausalLMConfig has all three). */
export interface KVCacheShape {
  nLayer: number;
  nKVHead: number;
  headDim: number;
}

// A GPTConfig (what earlier callers pass) or an explicit shape.
function shapeOf(config: GPTConfig | KVCacheShape): KVCacheShape {
  if ('nKVHead' in config && 'headDim' in config) return config;
  const gpt = config as GPTConfig;
  if (gpt.nEmbd % gpt.nHead !== 0) {
    throw new KVCacheError(`nEmbd ${gpt.nEmbd} is not divisible by nHead ${gpt.nHead}`);
  }
  return { nLayer: gpt.nLayer, nKVHead: gpt.nHead, headDim: gpt.nEmbd / gpt.nHead };
}

export class KVCacheError extends Error {
  override name = 'KVCacheError';
}

/**
 * @example
 * const cache = new KVCache(model.config, B, promptLen + maxNew);
 * let { logits } = model.forward(prompt, { cache });   // cache.length = promptLen
 * ({ logits } = model.forward(next, { cache }));         // cache.length = promptLen + 1
 * cache.dispose();
 */
export class KVCache {
  /** Number of positions filled so far (advanced by the model's forward). */
  length = 0;
  private keys: Tensor[] = [];
  private values: Tensor[] = [];
  /** Layers, key/value heads and per-head size. */
  readonly shape: KVCacheShape;

  /** `config`: a GPTConfig, or the shape of any CausalLM (prefer `model.makeCache(B, maxLength)`). */
  constructor(
    readonly config: GPTConfig | KVCacheShape,
    readonly batchSize: number,
    readonly maxLength: number,
    opts: KVCacheOptions = {},
  ) {
    this.shape = shapeOf(config);
    if (!Number.isInteger(batchSize) || batchSize < 1 || !Number.isInteger(maxLength) || maxLength < 1) {
      throw new KVCacheError(`KVCache: batchSize and maxLength must be positive integers`);
    }
    if (opts.device || opts.dtype) this.allocate(opts.dtype ?? 'float32', opts.device ?? 'cpu');
  }

  get allocated(): boolean {
    return this.keys.length > 0;
  }

  private allocate(dtype: DType, device: string): void {
    const shape = [this.batchSize, this.shape.nKVHead, this.maxLength, this.shape.headDim];
    for (let l = 0; l < this.shape.nLayer; l++) {
      this.keys.push(keep(zeros(shape, { dtype, device })));
      this.values.push(keep(zeros(shape, { dtype, device })));
    }
  }

  /** Checks that `t` new tokens fit; called by GPT.forward before any layer writes. */
  reserve(batch: number, t: number): void {
    if (batch !== this.batchSize) {
      throw new KVCacheError(`KVCache holds batch ${this.batchSize} but the input has batch ${batch}`);
    }
    if (this.length + t > this.maxLength) {
      throw new KVCacheError(
        `KVCache full: ${this.length} cached + ${t} new positions exceed maxLength ${this.maxLength}`,
      );
    }
  }

  /**
   * Writes layer `layer`'s new k, v (B, H_kv, T, D) at [length, length + T) and returns views of the keys and
   * values for [0, length + T). Does not advance `length` (GPT.forward does, once all layers have run).
   */
  update(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    if (!this.allocated) this.allocate(k.dtype, k.device);
    const keys = this.keys[layer];
    const values = this.values[layer];
    if (!keys || !values) throw new KVCacheError(`KVCache has no layer ${layer}`);
    const t = k.size(2);
    keys.narrow(2, this.length, t).copy_(k);
    values.narrow(2, this.length, t).copy_(v);
    return [keys.narrow(2, 0, this.length + t), values.narrow(2, 0, this.length + t)];
  }

  /** Marks `t` more positions as filled. */
  advance(t: number): void {
    this.length += t;
  }

  /** Forgets the cached positions (the memory is kept for reuse). */
  reset(): void {
    this.length = 0;
  }

  /** Frees the cache's memory; the cache can be used again (it reallocates). */
  dispose(): void {
    for (const t of [...this.keys, ...this.values]) t.dispose();
    this.keys = [];
    this.values = [];
    this.length = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
