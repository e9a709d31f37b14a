// The Llama family (Touvron et al. 2023) as Hugging Face's modeling_llama / _mistral / _qwen2 / _qwen3: token
// embedding, pre-norm blocks with RMSNorm, rotary positions, grouped-query attention and a SwiGLU MLP, a
// final RMSNorm, and an LM head tied to the embedding or not. The variants differ only in switches:
//   llama    attention_bias (q, k, v, o), mlp_bias, rope_scaling "llama3"
//   mistral  sliding_window (refused when a forward would need it)
//   qwen2    biases on q, k, v (not o)
//   qwen3    per-head RMSNorm on q and k before the rotation; head_dim ≠ hidden_size / heads
// Module names are Hugging Face's (model.layers.0.self_attn.q_proj.weight, lm_head.weight), so stateDict()
// is a transformers state dict and gradients carry its names.
import { type DType, linear, ones, type Tensor } from '../engine/index.ts';
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
import { Embedding, Linear, ModuleList } from './layers.ts';
import { Module, type LoadStateDictOptions, type LoadStateDictResult, withSeed } from './module.ts';
import { type Llama3RopeScaling, RotaryEmbedding } from './rope.ts';

export type LlamaModelType = 'llama' | 'mistral' | 'qwen2' | 'qwen3';
export const LLAMA_MODEL_TYPES: readonly LlamaModelType[] = ['llama', 'mistral', 'qwen2', 'qwen3'];

export interface LlamaConfig {
  modelType: LlamaModelType;
  vocabSize: number;
  hiddenSize: number;
  /** SwiGLU width. */
  intermediateSize: number;
  nLayer: number;
  nHead: number;
  /** Key/value heads (grouped-query attention when < nHead). */
  nKVHead: number;
  /** Per-head size; Qwen3's differs from hiddenSize / nHead. */
  headDim: number;
  maxPositions: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  /** lm_head shares the embedding (no lm_head.weight of its own). */
  tieWordEmbeddings: boolean;
  /** Biases on q_proj, k_proj, v_proj (Qwen2; Llama's attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama's and Qwen3's attention_bias). */
  oBias: boolean;
  /** Biases on the MLP's projections (Llama's mlp_bias). */
  mlpBias: boolean;
  /** Qwen3's per-head RMSNorm of q and k. */
  qkNorm: boolean;
  /** Mistral's window (tokens); a forward longer than it is refused. null = full attention. */
  slidingWindow: number | null;
  /** Dropout on the attention probabilities in training mode (attention_dropout; 0 in released configs). */
  attentionDropout: number;
}

/** Throws a ModelConfigError naming the first field this implementation cannot represent. */
export function validateLlamaConfig(c: LlamaConfig): void {
  for (const key of [
    'vocabSize',
    'hiddenSize',
    'intermediateSize',
    'nLayer',
    'nHead',
    'nKVHead',
    'headDim',
    'maxPositions',
  ] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 1) {
      throw new ModelConfigError(`LlamaConfig.${key} must be a positive integer, got ${c[key]}`);
    }
  }
  if (c.nHead % c.nKVHead !== 0) {
    throw new ModelConfigError(`LlamaConfig: nHead ${c.nHead} is not a multiple of nKVHead ${c.nKVHead}`);
  }
  if (c.headDim % 2 !== 0) throw new ModelConfigError(`LlamaConfig.headDim must be even, got ${c.headDim}`);
  if (!(c.attentionDropout >= 0 && c.attentionDropout < 1)) {
    throw new ModelConfigError(`LlamaConfig.attentionDropout must be in [0, 1), got ${c.attentionDropout}`);
  }
}

/**
 * Root-mean-square normalisation (Zhang & Sennrich 2019), computed in float32 whatever the input dtype, then
 * scaled by a learned weight (ones), as Hugging Face's LlamaRMSNorm.
 *
 * @example new RMSNorm(16, 1e-6).forward(x) // (…, 16)
 */
/** The family-neutral sizes of a LlamaConfig (what the model's `lmConfig` returns). */
export function llamaLMConfig(c: LlamaConfig): CausalLMConfig {
  return {
    modelType: c.modelType,
    nLayer: c.nLayer,
    nHead: c.nHead,
    nKVHead: c.nKVHead,
    headDim: c.headDim,
    hiddenSize: c.hiddenSize,
    vocabSize: c.vocabSize,
    // Sliding-window attention is not implemented (forward refuses past the window), so the usable context
    // is the window: stages cut transcripts to it instead of failing mid-run.
    maxPositions: c.slidingWindow === null ? c.maxPositions : Math.min(c.maxPositions, c.slidingWindow),
  };
}

export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(
    readonly dim: number,
    readonly eps: number,
  ) {
    super();
    this.weight = this.param('weight', ones([dim]));
  }
  forward(x: Tensor): Tensor {
    const x32 = x.float();
    const normed = x32.mul(x32.square().mean(-1, true).add(this.eps).rsqrt());
    return this.weight.mul(normed.to(x.dtype));
  }
}

/** runBlocks' context plus the rotary tables cos, sin: (B or 1, 1, T, rotaryDim). */
/** What a Llama block's forward takes: the decoder's shared context and the rotary cos/sin. */
export type LlamaBlockOptions = BlockContext & { cos: Tensor; sin: Tensor };

export class LlamaAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  readonly q_norm: RMSNorm | null;
  readonly k_norm: RMSNorm | null;
  constructor(
    readonly config: LlamaConfig,
    private readonly rope: RotaryEmbedding,
  ) {
    super();
    const { hiddenSize: c, nHead: h, nKVHead: hKV, headDim: d } = config;
    this.q_proj = this.module('q_proj', new Linear(c, h * d, { bias: config.qkvBias }));
    this.k_proj = this.module('k_proj', new Linear(c, hKV * d, { bias: config.qkvBias }));
    this.v_proj = this.module('v_proj', new Linear(c, hKV * d, { bias: config.qkvBias }));
    this.o_proj = this.module('o_proj', new Linear(h * d, c, { bias: config.oBias }));
    this.q_norm = config.qkNorm ? this.module('q_norm', new RMSNorm(d, config.rmsNormEps)) : null;
    this.k_norm = config.qkNorm ? this.module('k_norm', new RMSNorm(d, config.rmsNormEps)) : null;
  }

  forward(x: Tensor, opts: LlamaBlockOptions): Tensor {
    const [b, t] = x.shape as [number, number, number];
    const { nHead: h, nKVHead: hKV, headDim: d } = this.config;
    // (B, T, H·D) → (B, T, H, D); Qwen3 normalises each head before the rotation.
    let q = this.q_proj.forward(x).view(b, t, h, d);
    let k = this.k_proj.forward(x).view(b, t, hKV, d);
    if (this.q_norm && this.k_norm) {
      q = this.q_norm.forward(q);
      k = this.k_norm.forward(k);
    }
    const v = this.v_proj.forward(x).view(b, t, hKV, d).transpose(1, 2); // (B, H_kv, T, D)
    // q: (B, H, T, D), k: (B, H_kv, T, D), rotated; the cache stores rotated keys.
    q = this.rope.apply(q.transpose(1, 2), opts.cos, opts.sin);
    k = this.rope.apply(k.transpose(1, 2), opts.cos, opts.sin);
    const [keys, values] = opts.cache ? opts.cache.update(opts.layer, k, v) : [k, v];
    // Hugging Face's only dropout in this family: on the attention probabilities, in training mode.
    const y = attend(opts.rows ? selectQueryRows(q, opts.rows) : q, keys, values, {
      blocked: opts.blocked,
      isCausal: opts.causal && !opts.cache,
      dropoutP: this.training ? this.config.attentionDropout : 0,
    });
    // (B, H, T, D) → (B, T, H·D); T is 1 with rows
    return this.o_proj.forward(y.transpose(1, 2).reshape(b, y.size(2), h * d));
  }
}

/** SwiGLU: down(silu(gate(x)) · up(x)). */
export class LlamaMLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;
  constructor(config: LlamaConfig) {
    super();
    const { hiddenSize: c, intermediateSize: m, mlpBias: bias } = config;
    this.gate_proj = this.module('gate_proj', new Linear(c, m, { bias }));
    this.up_proj = this.module('up_proj', new Linear(c, m, { bias }));
    this.down_proj = this.module('down_proj', new Linear(m, c, { bias }));
  }
  forward(x: Tensor): Tensor {
    return this.down_proj.forward(this.gate_proj.forward(x).silu().mul(this.up_proj.forward(x)));
  }
}

/** x + attn(input_layernorm(x)), then x + mlp(post_attention_layernorm(x)). */
export class LlamaDecoderLayer extends Module {
  readonly self_attn: LlamaAttention;
  readonly mlp: LlamaMLP;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;
  constructor(config: LlamaConfig, rope: RotaryEmbedding) {
    super();
    this.self_attn = this.module('self_attn', new LlamaAttention(config, rope));
    this.mlp = this.module('mlp', new LlamaMLP(config));
    this.input_layernorm = this.module('input_layernorm', new RMSNorm(config.hiddenSize, config.rmsNormEps));
    this.post_attention_layernorm = this.module(
      'post_attention_layernorm',
      new RMSNorm(config.hiddenSize, config.rmsNormEps),
    );
  }
  forward(x: Tensor, opts: LlamaBlockOptions): Tensor {
    const residual = opts.rows ? selectRows(x, opts.rows) : x; // (B, 1, C) with rows
    const y = residual.add(this.self_attn.forward(this.input_layernorm.forward(x), opts));
    return y.add(this.mlp.forward(this.post_attention_layernorm.forward(y)));
  }
}

/** Hugging Face's LlamaModel: `embed_tokens`, `layers`, `norm`. */
export class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<LlamaDecoderLayer>;
  readonly norm: RMSNorm;
  /** Shared by every layer's attention; holds the non-persistent inv_freq buffer. */
  readonly rotary_emb: RotaryEmbedding;
  constructor(config: LlamaConfig, rope: RotaryEmbedding) {
    super();
    this.embed_tokens = this.module('embed_tokens', new Embedding(config.vocabSize, config.hiddenSize));
    this.layers = this.module(
      'layers',
      new ModuleList(Array.from({ length: config.nLayer }, () => new LlamaDecoderLayer(config, rope))),
    );
    this.norm = this.module('norm', new RMSNorm(config.hiddenSize, config.rmsNormEps));
    this.rotary_emb = this.module('rotary_emb', rope);
  }
}

export interface ModelOptions {
  /** Seeds the initialisation (the global generator's state is restored afterwards). */
  seed?: number;
  /** Device of the parameters (default 'cpu'); initialisation happens on CPU. */
  device?: string;
  dtype?: DType;
}

/**
 * A Llama-family causal LM (Llama 2/3, SmolLM, Mistral, Qwen2/2.5, Qwen3).
 *
 * @example
 * const model = new LlamaForCausalLM(config, { seed: 1 }).eval();
 * const { logits } = noGrad(() => model.forward(ids)); // (B, T, V)
 */
export class LlamaForCausalLM extends Module implements CausalLM {
  readonly config: LlamaConfig;
  readonly model: LlamaModel;
  /** Untied head (V, C); null when tied to model.embed_tokens. */
  readonly lm_head: Linear | null;
  readonly rope: RotaryEmbedding;

  constructor(config: LlamaConfig, opts: ModelOptions = {}) {
    super();
    validateLlamaConfig(config);
    this.config = { ...config };
    this.rope = new RotaryEmbedding(config.headDim, config.ropeTheta, config.ropeScaling);
    const built = withSeed(opts.seed, () => ({
      model: new LlamaModel(this.config, this.rope),
      head: config.tieWordEmbeddings
        ? null
        : new Linear(config.hiddenSize, config.vocabSize, { bias: false }),
    }));
    this.model = this.module('model', built.model);
    this.lm_head = built.head ? this.module('lm_head', built.head) : null;
    if (opts.device || opts.dtype) this.to({ device: opts.device, dtype: opts.dtype });
  }

  get device(): string {
    return this.model.embed_tokens.weight.device;
  }
  get dtype(): DType {
    return this.model.embed_tokens.weight.dtype;
  }
  get lmConfig(): CausalLMConfig {
    return llamaLMConfig(this.config);
  }

  makeCache(batchSize: number, maxLength: number, opts?: KVCacheOptions): KVCache {
    return cacheFor(this.lmConfig, batchSize, maxLength, opts);
  }

  lmHead(hidden: Tensor): Tensor {
    // (…, C) → (…, V); tied: the embedding's transpose
    return this.lm_head ? this.lm_head.forward(hidden) : linear(hidden, this.model.embed_tokens.weight);
  }

  forwardHidden(ids: Tensor, opts: CausalLMForwardOptions = {}): CausalLMHidden {
    // Rotary positions have no table: any position works, so no maxPositions check here.
    const { t, past, positions } = prepareForward('LlamaForCausalLM', ids, opts, null);
    const window = this.config.slidingWindow;
    if (window !== null && past + t > window) {
      throw new ModelConfigError(
        `LlamaForCausalLM.forward: ${past + t} positions exceed sliding_window ${window}; hhkit attends to the full context and does not implement sliding-window attention`,
      );
    }
    const x = this.model.embed_tokens.forward(ids); // (B, T, C)
    const [cos, sin] = this.rope.cosSin(positions, x.dtype);
    return runBlocks(
      x,
      this.model.layers,
      this.model.norm,
      { t, past, opts, device: ids.device },
      { cos, sin },
    );
  }

  forward(ids: Tensor, opts: CausalLMForwardOptions = {}): CausalLMOutput {
    return withLogits(this, this.forwardHidden(ids, opts), opts);
  }

  /** A transformers state dict; a tied model ignores `lm_head.weight` (transformers re-ties it on load too). */
  override loadStateDict(sd: Record<string, Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    if (!this.config.tieWordEmbeddings) return super.loadStateDict(sd, opts);
    const { 'lm_head.weight': _tied, ...rest } = sd;
    return super.loadStateDict(rest, opts);
  }
}
