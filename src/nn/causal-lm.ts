// The model interface: what every stage may ask of a decoder-only language model, whatever its family
// (GPT-2, Llama-like, GPT-NeoX). Hugging Face keeps one modeling file per family behind
// `AutoModelForCausalLM`; hhkit keeps one file per family behind `CausalLM`. Stages talk to this
// interface, never to a family's class or its parameter names.
import { arange, type DType, type Tensor, tidy } from '../engine/index.ts';
import { attentionBlocked } from './attention.ts';
import { KVCache, type KVCacheOptions } from './kvcache.ts';
import type { LoadStateDictOptions, LoadStateDictResult, Module } from './module.ts';

/** Family-neutral sizes of a causal LM (what heads, caches and samplers need). */
export interface CausalLMConfig {
  /** Hugging Face's `model_type`: 'gpt2', 'llama', 'mistral', 'qwen2', 'qwen3', 'gpt_neox'. */
  modelType: string;
  /** L: number of blocks. */
  nLayer: number;
  /** H: query heads. */
  nHead: number;
  /** Key/value heads (= nHead without grouped-query attention); the KV cache is sized by it. */
  nKVHead: number;
  /** D: per-head size (not always hiddenSize / nHead: Qwen3). */
  headDim: number;
  /** C: width of the residual stream and of `hidden`. */
  hiddenSize: number;
  /** V. */
  vocabSize: number;
  /** Longest context the model was made for (GPT-2's learned positions are a hard limit). */
  maxPositions: number;
}

export interface CausalLMForwardOptions {
  /** (B, T_total) bool or 0/1, false/0 = padding; combined with the causal mask. T_total = cache.length + T. */
  attentionMask?: Tensor;
  /**
   * (B, T) int64 positions. Default: from attentionMask when given (cumsum − 1, so left-padded rows start at
   * position 0 at their first real token), else cache.length + arange(T).
   */
  positionIds?: Tensor;
  /** Append this forward's keys/values to the cache and attend over everything cached (advances cache.length). */
  cache?: KVCache;
  /** Also return the residual stream before and after every block. */
  outputHiddenStates?: boolean;
  /** 'last' computes logits only for the last position: (B, 1, V). Default 'all'. */
  logits?: 'all' | 'last';
  /**
   * (B) int64: the one position per row whose final hidden state is wanted (a preference model's
   * end-of-context token). The last block then computes attention queries, its MLP and the final norm at
   * those positions only (keys and values still cover every position), and `hidden` is (B, 1, C): the same
   * numbers as `hidden[b, readout[b]]` of a full forward, for about (L − 1)/L of its work. Not with a cache
   * or outputHiddenStates. It may stay on the CPU when the model is elsewhere: its bounds are checked where
   * it lies (a CPU tensor costs no device sync) and it is moved to the model's device.
   */
  readout?: Tensor;
}

export interface CausalLMHidden {
  /** (B, T, C), after the final norm: what the LM head, preference models and value heads read. */
  hidden: Tensor;
  /**
   * With outputHiddenStates: L + 1 tensors (B, T, C), the embeddings then each block's output (the residual
   * stream). Unlike Hugging Face, the last entry is the raw last block output; `hidden` is it after the final norm.
   */
  hiddenStates?: Tensor[];
}

export interface CausalLMOutput extends CausalLMHidden {
  /** (B, T, V), or (B, 1, V) with logits: 'last'. */
  logits: Tensor;
}

/**
 * A decoder-only language model of any supported family. Every family is a `Module`, so a stage can hold
 * one as a submodule (a preference model is an LM trunk plus a scalar head).
 *
 * @example
 * const { model } = loadCausalLM('models/SmolLM2-135M');      // or new GPT(gptPresets.tiny)
 * const { hidden } = model.forwardHidden(ids, { attentionMask }); // (B, T, C)
 * const logits = model.lmHead(hidden);                         // (B, T, V)
 */
export interface CausalLM extends Module {
  readonly lmConfig: CausalLMConfig;
  /** Where the parameters live: 'cpu', 'cuda:0', … */
  readonly device: string;
  /** dtype of the parameters. */
  readonly dtype: DType;
  training: boolean;
  forward(ids: Tensor, opts?: CausalLMForwardOptions): CausalLMOutput;
  forwardHidden(ids: Tensor, opts?: CausalLMForwardOptions): CausalLMHidden;
  /** hidden (…, C) → logits (…, V). */
  lmHead(hidden: Tensor): Tensor;
  /** A KV cache shaped for this model (L layers of (B, nKVHead, maxLength, headDim)). */
  makeCache(batchSize: number, maxLength: number, opts?: KVCacheOptions): KVCache;
  stateDict(): Record<string, Tensor>;
  loadStateDict(sd: Record<string, Tensor>, opts?: LoadStateDictOptions): LoadStateDictResult;
  parameters(): Tensor[];
  namedParameters(): [string, Tensor][];
  /** Non-parameter tensors (e.g. rotary tables), so a caller can free the whole model. */
  namedBuffers(): [string, Tensor][];
  train(mode?: boolean): this;
  eval(): this;
  zeroGrad(): void;
  to(target: DType | { dtype?: DType; device?: string }): this;
}

/** A config that a family cannot represent; the message names the field. */
export class ModelConfigError extends Error {
  override name = 'ModelConfigError';
}

/** Makes a cache for `lm` (shorthand for `lm.makeCache`, sized by KV heads). */
export function cacheFor(
  config: CausalLMConfig,
  batchSize: number,
  maxLength: number,
  opts?: KVCacheOptions,
) {
  return new KVCache(
    { nLayer: config.nLayer, nKVHead: config.nKVHead, headDim: config.headDim },
    batchSize,
    maxLength,
    opts,
  );
}

/**
 * Checks the inputs of a forward and returns (past, positions): positions from `positionIds`, else from the
 * mask (cumsum − 1, clamped at 0), else cache.length + arange(T). Shared by every family.
 */
export function prepareForward(
  who: string,
  ids: Tensor,
  opts: CausalLMForwardOptions,
  maxPositions: number | null,
): { b: number; t: number; past: number; positions: Tensor } {
  if (ids.ndim !== 2)
    throw new RangeError(`${who}.forward: ids must be (B, T), got (${ids.shape.join(', ')})`);
  const [b, t] = ids.shape as [number, number];
  const cache = opts.cache;
  const past = cache ? cache.length : 0;
  cache?.reserve(b, t);
  const mask = opts.attentionMask;
  if (mask && (mask.ndim !== 2 || mask.size(0) !== b || mask.size(1) !== past + t)) {
    throw new RangeError(
      `${who}.forward: attentionMask must be (B, cache.length + T) = (${b}, ${past + t}), got (${mask.shape.join(', ')})`,
    );
  }
  let positions = opts.positionIds;
  if (!positions) {
    if (mask) {
      // Left padding: a row's first real token gets position 0.
      positions = mask.long().cumsum(1).sub(1).clamp(0).narrow(1, past, t);
    } else {
      if (maxPositions !== null && past + t > maxPositions) {
        throw new RangeError(
          `${who}.forward: positions up to ${past + t} exceed the model's context length (maxPositions ${maxPositions})`,
        );
      }
      positions = arange(past, past + t, 1, { device: ids.device }); // (T), broadcast over B
    }
  }
  return { b, t, past, positions };
}

/** What every family's block gets from runBlocks (a family adds its own, e.g. rotary cos/sin). */
export interface BlockContext {
  /** (…, T, S) true where a query may not attend (future keys, padding), or null. */
  blocked: Tensor | null;
  /** Whether `blocked` is exactly the causal mask of a fresh sequence (fused kernels take a flag). */
  causal: boolean;
  cache?: KVCache;
  layer: number;
  /** (B) int64, in the last block of a forward with `readout`: compute only these query positions; the block
   *  returns (B, 1, C), and `blocked` is then (B, 1, 1, S) for them. */
  rows?: Tensor;
}

/**
 * The part of forwardHidden every family shares, after its embeddings x (B, T, C): one blocked mask for
 * all blocks, each block with it and `extra`, the hidden states when asked (the embeddings, then each
 * block's output), the cache advanced by T, then the final norm.
 *
 * @example return runBlocks(x, this.model.layers, this.model.norm, { t, past, opts, device: ids.device }, { cos, sin });
 */
export function runBlocks<Extra extends object>(
  x: Tensor,
  blocks: Iterable<{ forward(x: Tensor, context: BlockContext & Extra): Tensor }>,
  finalNorm: { forward(x: Tensor): Tensor },
  at: { t: number; past: number; opts: CausalLMForwardOptions; device: string },
  extra: Extra,
): CausalLMHidden {
  const { t, past, opts } = at;
  const mask = opts.attentionMask;
  const blocked = attentionBlocked(past, t, mask, at.device);
  const hiddenStates = opts.outputHiddenStates ? [x] : undefined;
  const rows = opts.readout;
  const list = [...blocks];
  let lastContext: Partial<BlockContext> = {};
  if (rows) {
    const b = x.size(0);
    if (opts.cache || opts.outputHiddenStates)
      throw new RangeError(
        'forward: readout computes one position per row; not with a cache or outputHiddenStates',
      );
    if (rows.ndim !== 1 || rows.size(0) !== b)
      throw new RangeError(`forward: readout must be (B) = (${b}), got (${rows.shape.join(', ')})`);
    const [lo, hi] = [rows.min().item(), rows.max().item()]; // on rows' own device
    if (lo < 0 || hi >= t)
      throw new RangeError(
        `forward: readout positions must lie in [0, ${t}) (T = ${t}), got ${lo < 0 ? lo : hi}`,
      );
    // The readout queries' blocked keys: those after each row's position, and padding.
    const r = rows.to({ device: at.device });
    let rowBlocked = arange(t, undefined, 1, { device: at.device }).view(1, t).gt(r.view(b, 1)); // (B, S)
    if (mask) rowBlocked = rowBlocked.logicalOr(mask.eq(0));
    lastContext = { rows: r, blocked: rowBlocked.view(b, 1, 1, t), causal: false };
  }
  let layer = 0;
  for (const block of list) {
    const last = layer === list.length - 1;
    const context = {
      ...extra,
      blocked,
      causal: !mask && past === 0,
      cache: opts.cache,
      layer: layer++,
      ...(last ? lastContext : {}),
    };
    const input = x;
    // Each block in its own scope: its intermediates are freed when it returns, as PyTorch frees them when
    // their last reference goes (autograd holds what backward needs itself). Without it a forward inside
    // one tidy() keeps every layer's activations to the scope's end: 4 GB for SmolLM2-135M at B 8 × T 96.
    x = tidy(() => block.forward(input, context));
    hiddenStates?.push(x);
  }
  opts.cache?.advance(t);
  const hidden = finalNorm.forward(x);
  return hiddenStates ? { hidden, hiddenStates } : { hidden };
}

/**
 * forward() of every family: its forwardHidden output plus logits through its LM head, for every position
 * or, with `logits: 'last'`, the last one only.
 *
 * @example return withLogits(this, this.forwardHidden(ids, opts), opts);
 */
export function withLogits(
  lm: { lmHead(hidden: Tensor): Tensor },
  out: CausalLMHidden,
  opts: CausalLMForwardOptions,
): CausalLMOutput {
  const h = opts.logits === 'last' ? out.hidden.narrow(1, out.hidden.size(1) - 1, 1) : out.hidden;
  return { ...out, logits: lm.lmHead(h) };
}
