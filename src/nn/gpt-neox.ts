// GPT-NeoX (Black et al. 2022; the Pythia suite) as Hugging Face's modeling_gpt_neox: LayerNorm blocks with a
// fused query_key_value projection laid out per head as (q, k, v) — the weight's rows are (H, 3, D), not
// (3, H, D) as GPT-2's c_attn —, rotary positions on only the first rotary_pct of each head's channels,
// exact (erf) GELU, a parallel residual x + attn(ln1(x)) + mlp(ln2(x)) by default, and an untied
// `embed_out` head. Module names are transformers' (gpt_neox.layers.0.attention.query_key_value.weight).
import type { DType, Tensor } from '../engine/index.ts';
import { attend, selectQueryRows, selectRows } from './attention.ts';
import {
  type BlockContext,
  type CausalLM,
  type CausalLMConfig,
  type CausalLMForwardOptions,
  type CausalLMHidden,
  type CausalLMOutput,
  cacheFor,
  ModelConfigError,
  prepareForward,
  runBlocks,
  withLogits,
} from './causal-lm.ts';
import type { KVCache, KVCacheOptions } from './kvcache.ts';
import { Dropout, Embedding, LayerNorm, Linear, ModuleList } from './layers.ts';
import type { ModelOptions } from './llama.ts';
import { Module, withSeed } from './module.ts';
import { RotaryEmbedding } from './rope.ts';

export interface GPTNeoXConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  nLayer: number;
  nHead: number;
  maxPositions: number;
  /** Fraction of each head's channels that are rotated (Pythia: 0.25). */
  rotaryPct: number;
  /** θ of the rotary frequencies (rotary_emb_base). */
  rotaryEmbBase: number;
  layerNormEps: number;
  /** x + attn(ln1(x)) + mlp(ln2(x)) (true, Pythia) or two sequential residual steps. */
  useParallelResidual: boolean;
  /** Biases on query_key_value and dense. */
  attentionBias: boolean;
  /** Dropout on the attention probabilities in training mode (attention_dropout; 0 in Pythia's configs). */
  attentionDropout: number;
  /**
   * Dropout in training mode on the embeddings and on each layer's attention and MLP outputs before they
   * join the residual stream (hidden_dropout; 0 in Pythia's configs).
   */
  hiddenDropout: number;
}

/**
 * Checks a GPT-NeoX config before any weight is made: positive integer sizes, a hidden size divisible by
 * the heads, and a rotary fraction giving an even number ≥ 2 of rotary channels per head; a
 * ModelConfigError naming the key otherwise.
 *
 * @example validateGPTNeoXConfig({ ...config, rotaryPct: 0.25 });
 */
export function validateGPTNeoXConfig(c: GPTNeoXConfig): void {
  for (const key of [
    'vocabSize',
    'hiddenSize',
    'intermediateSize',
    'nLayer',
    'nHead',
    'maxPositions',
  ] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 1) {
      throw new ModelConfigError(`GPTNeoXConfig.${key} must be a positive integer, got ${c[key]}`);
    }
  }
  if (c.hiddenSize % c.nHead !== 0) {
    throw new ModelConfigError(
      `GPTNeoXConfig: hiddenSize ${c.hiddenSize} is not divisible by nHead ${c.nHead}`,
    );
  }
  const rotary = Math.floor((c.hiddenSize / c.nHead) * c.rotaryPct);
  if (!(c.rotaryPct > 0 && c.rotaryPct <= 1) || rotary < 2 || rotary % 2 !== 0) {
    throw new ModelConfigError(
      `GPTNeoXConfig.rotaryPct ${c.rotaryPct} gives ${rotary} rotary channels per head; need an even number ≥ 2`,
    );
  }
  for (const key of ['attentionDropout', 'hiddenDropout'] as const) {
    if (!(c[key] >= 0 && c[key] < 1)) {
      throw new ModelConfigError(`GPTNeoXConfig.${key} must be in [0, 1), got ${c[key]}`);
    }
  }
}

/** runBlocks' context plus the rotary tables cos, sin: (B or 1, 1, T, rotaryDim). */
/** What a GPT-NeoX layer's forward takes: the decoder's shared context and the rotary cos/sin. */
export type NeoXLayerOptions = BlockContext & { cos: Tensor; sin: Tensor };

/** The family-neutral sizes of a GPTNeoXConfig (what the model's `lmConfig` returns). */
export function neoxLMConfig(c: GPTNeoXConfig): CausalLMConfig {
  return {
    modelType: 'gpt_neox',
    nLayer: c.nLayer,
    nHead: c.nHead,
    nKVHead: c.nHead,
    headDim: c.hiddenSize / c.nHead,
    hiddenSize: c.hiddenSize,
    vocabSize: c.vocabSize,
    maxPositions: c.maxPositions,
  };
}

export class GPTNeoXAttention extends Module {
  readonly query_key_value: Linear;
  readonly dense: Linear;
  constructor(
    readonly config: GPTNeoXConfig,
    private readonly rope: RotaryEmbedding,
  ) {
    super();
    const c = config.hiddenSize;
    this.query_key_value = this.module(
      'query_key_value',
      new Linear(c, 3 * c, { bias: config.attentionBias }),
    );
    this.dense = this.module('dense', new Linear(c, c, { bias: config.attentionBias }));
  }
  forward(x: Tensor, opts: NeoXLayerOptions): Tensor {
    const [b, t, c] = x.shape as [number, number, number];
    const h = this.config.nHead;
    const d = c / h;
    // (B, T, 3C) → (B, H, T, 3D) → q, k, v: (B, H, T, D) each
    const [q, k, v] = this.query_key_value
      .forward(x)
      .view(b, t, h, 3 * d)
      .transpose(1, 2)
      .split(d, 3) as [Tensor, Tensor, Tensor];
    const qr = this.rope.apply(q, opts.cos, opts.sin);
    const kr = this.rope.apply(k, opts.cos, opts.sin);
    const [keys, values] = opts.cache ? opts.cache.update(opts.layer, kr, v) : [kr, v];
    const y = attend(opts.rows ? selectQueryRows(qr, opts.rows) : qr, keys, values, {
      blocked: opts.blocked,
      isCausal: opts.causal && !opts.cache,
      dropoutP: this.training ? this.config.attentionDropout : 0,
    });
    return this.dense.forward(y.transpose(1, 2).reshape(b, y.size(2), c)); // T is 1 with rows
  }
}

/** dense_4h_to_h(gelu(dense_h_to_4h(x))), exact GELU ("gelu"). */
export class GPTNeoXMLP extends Module {
  readonly dense_h_to_4h: Linear;
  readonly dense_4h_to_h: Linear;
  constructor(config: GPTNeoXConfig) {
    super();
    this.dense_h_to_4h = this.module('dense_h_to_4h', new Linear(config.hiddenSize, config.intermediateSize));
    this.dense_4h_to_h = this.module('dense_4h_to_h', new Linear(config.intermediateSize, config.hiddenSize));
  }
  forward(x: Tensor): Tensor {
    return this.dense_4h_to_h.forward(this.dense_h_to_4h.forward(x).gelu('none'));
  }
}

export class GPTNeoXLayer extends Module {
  readonly input_layernorm: LayerNorm;
  readonly post_attention_layernorm: LayerNorm;
  readonly attention: GPTNeoXAttention;
  readonly mlp: GPTNeoXMLP;
  readonly post_attention_dropout: Dropout;
  readonly post_mlp_dropout: Dropout;
  constructor(
    readonly config: GPTNeoXConfig,
    rope: RotaryEmbedding,
  ) {
    super();
    this.input_layernorm = this.module(
      'input_layernorm',
      new LayerNorm(config.hiddenSize, config.layerNormEps),
    );
    this.post_attention_layernorm = this.module(
      'post_attention_layernorm',
      new LayerNorm(config.hiddenSize, config.layerNormEps),
    );
    this.attention = this.module('attention', new GPTNeoXAttention(config, rope));
    this.mlp = this.module('mlp', new GPTNeoXMLP(config));
    this.post_attention_dropout = this.module('post_attention_dropout', new Dropout(config.hiddenDropout));
    this.post_mlp_dropout = this.module('post_mlp_dropout', new Dropout(config.hiddenDropout));
  }
  forward(x: Tensor, opts: NeoXLayerOptions): Tensor {
    const attn = this.post_attention_dropout.forward(
      this.attention.forward(this.input_layernorm.forward(x), opts),
    );
    // With rows (the last layer of a readout forward) only those positions go on: (B, 1, C).
    if (opts.rows) x = selectRows(x, opts.rows);
    const mlp = (h: Tensor): Tensor =>
      this.post_mlp_dropout.forward(this.mlp.forward(this.post_attention_layernorm.forward(h)));
    if (this.config.useParallelResidual) {
      // x + attn(ln1(x)) + mlp(ln2(x)), in Hugging Face's order of additions
      return mlp(x).add(attn).add(x);
    }
    const y = attn.add(x);
    return mlp(y).add(y);
  }
}

/** Hugging Face's GPTNeoXModel: `embed_in`, `emb_dropout`, `layers`, `final_layer_norm`. */
export class GPTNeoXModel extends Module {
  readonly embed_in: Embedding;
  readonly emb_dropout: Dropout;
  readonly layers: ModuleList<GPTNeoXLayer>;
  readonly final_layer_norm: LayerNorm;
  /** Shared by every layer's attention; holds the non-persistent inv_freq buffer. */
  readonly rotary_emb: RotaryEmbedding;
  constructor(config: GPTNeoXConfig, rope: RotaryEmbedding) {
    super();
    this.embed_in = this.module('embed_in', new Embedding(config.vocabSize, config.hiddenSize));
    this.emb_dropout = this.module('emb_dropout', new Dropout(config.hiddenDropout));
    this.layers = this.module(
      'layers',
      new ModuleList(Array.from({ length: config.nLayer }, () => new GPTNeoXLayer(config, rope))),
    );
    this.final_layer_norm = this.module(
      'final_layer_norm',
      new LayerNorm(config.hiddenSize, config.layerNormEps),
    );
    this.rotary_emb = this.module('rotary_emb', rope);
  }
}

/**
 * A GPT-NeoX causal LM (Pythia 70M … 12B).
 *
 * @example const model = new GPTNeoXForCausalLM(config, { seed: 1 }); model.forward(ids).logits // (B, T, V)
 */
export class GPTNeoXForCausalLM extends Module implements CausalLM {
  readonly config: GPTNeoXConfig;
  readonly gpt_neox: GPTNeoXModel;
  /** The untied LM head (V, C). */
  readonly embed_out: Linear;
  readonly rope: RotaryEmbedding;

  constructor(config: GPTNeoXConfig, opts: ModelOptions = {}) {
    super();
    validateGPTNeoXConfig(config);
    this.config = { ...config };
    const headDim = config.hiddenSize / config.nHead;
    this.rope = new RotaryEmbedding(Math.floor(headDim * config.rotaryPct), config.rotaryEmbBase);
    const built = withSeed(opts.seed, () => ({
      trunk: new GPTNeoXModel(this.config, this.rope),
      head: new Linear(config.hiddenSize, config.vocabSize, { bias: false }),
    }));
    this.gpt_neox = this.module('gpt_neox', built.trunk);
    this.embed_out = this.module('embed_out', built.head);
    if (opts.device || opts.dtype) this.to({ device: opts.device, dtype: opts.dtype });
  }

  get device(): string {
    return this.gpt_neox.embed_in.weight.device;
  }
  get dtype(): DType {
    return this.gpt_neox.embed_in.weight.dtype;
  }
  get lmConfig(): CausalLMConfig {
    return neoxLMConfig(this.config);
  }

  makeCache(batchSize: number, maxLength: number, opts?: KVCacheOptions): KVCache {
    return cacheFor(this.lmConfig, batchSize, maxLength, opts);
  }

  lmHead(hidden: Tensor): Tensor {
    return this.embed_out.forward(hidden);
  }

  forwardHidden(ids: Tensor, opts: CausalLMForwardOptions = {}): CausalLMHidden {
    const { t, past, positions } = prepareForward('GPTNeoXForCausalLM', ids, opts, null);
    const nn = this.gpt_neox;
    const x = nn.emb_dropout.forward(nn.embed_in.forward(ids)); // (B, T, C)
    const [cos, sin] = this.rope.cosSin(positions, x.dtype);
    return runBlocks(x, nn.layers, nn.final_layer_norm, { t, past, opts, device: ids.device }, { cos, sin });
  }

  forward(ids: Tensor, opts: CausalLMForwardOptions = {}): CausalLMOutput {
    return withLogits(this, this.forwardHidden(ids, opts), opts);
  }
}
