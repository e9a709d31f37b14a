// GPT-2 (Radford et al. 2019): learned positions, pre-LN blocks, final LayerNorm, LM head tied to the token
// embedding. Module names and parameter layouts are GPT-2's (transformer.h.0.attn.c_attn.weight, Conv1D
// (in, out)), so stateDict() is a GPT-2 state dict and Hugging Face checkpoints load as they are.
import { linear, noGrad, tidy, type DType, type Tensor } from '../engine/index.ts';
import { CausalSelfAttention, selectRows } from './attention.ts';
import {
  type CausalLM,
  type CausalLMConfig,
  type CausalLMForwardOptions,
  type CausalLMHidden,
  type CausalLMOutput,
  cacheFor,
  prepareForward,
  runBlocks,
  withLogits,
} from './causal-lm.ts';
import type { KVCache, KVCacheOptions } from './kvcache.ts';
import { Embedding, Dropout, LayerNorm, MLP, ModuleList } from './layers.ts';
import {
  Module,
  type LoadStateDictOptions,
  type LoadStateDictResult,
  StateDictError,
  withSeed,
} from './module.ts';

export interface GPTConfig {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  /** Context length (number of learned positions). */
  nPositions: number;
  vocabSize: number;
  /** Dropout on embeddings, attention probabilities and residual branches (GPT-2's *_pdrop). */
  dropout: number;
  /** Default 1e-5, as GPT-2. */
  layerNormEps?: number;
}

/** GPT-2 small (124M). */
export const defaultGPTConfig: GPTConfig = {
  nLayer: 12,
  nHead: 12,
  nEmbd: 768,
  nPositions: 1024,
  vocabSize: 50257,
  dropout: 0.1,
  layerNormEps: 1e-5,
};

/** Sizes for tests, demos and benchmarks; override vocabSize to match the tokenizer. */
export const gptPresets = {
  /** For unit tests: runs in milliseconds. */
  tiny: { nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 32, vocabSize: 50, dropout: 0, layerNormEps: 1e-5 },
  /** For the laptop demo on the assistant world. */
  small: {
    nLayer: 4,
    nHead: 4,
    nEmbd: 128,
    nPositions: 256,
    vocabSize: 4096,
    dropout: 0.1,
    layerNormEps: 1e-5,
  },
  /** The benchmark model of issue 3. */
  bench: {
    nLayer: 6,
    nHead: 8,
    nEmbd: 512,
    nPositions: 256,
    vocabSize: 8192,
    dropout: 0,
    layerNormEps: 1e-5,
  },
  gpt2: defaultGPTConfig,
} satisfies Record<string, GPTConfig>;

/** The family-neutral sizes of a GPT-2 config (what `GPT.lmConfig` returns). */
export function gptLMConfig(c: GPTConfig): CausalLMConfig {
  return {
    modelType: 'gpt2',
    nLayer: c.nLayer,
    nHead: c.nHead,
    nKVHead: c.nHead,
    headDim: c.nEmbd / c.nHead,
    hiddenSize: c.nEmbd,
    vocabSize: c.vocabSize,
    maxPositions: c.nPositions,
  };
}

export class GPTConfigError extends Error {
  override name = 'GPTConfigError';
}

/** Throws a GPTConfigError naming the first bad field. */
export function validateGPTConfig(c: GPTConfig): void {
  for (const key of ['nLayer', 'nHead', 'nEmbd', 'nPositions', 'vocabSize'] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 1) {
      throw new GPTConfigError(`GPTConfig.${key} must be a positive integer, got ${c[key]}`);
    }
  }
  if (c.nEmbd % c.nHead !== 0) {
    throw new GPTConfigError(`GPTConfig.nEmbd (${c.nEmbd}) must be divisible by nHead (${c.nHead})`);
  }
  if (!(c.dropout >= 0 && c.dropout < 1)) {
    throw new GPTConfigError(`GPTConfig.dropout must be in [0, 1), got ${c.dropout}`);
  }
}

/** GPT's names for the model interface's types (kept for existing callers). */
export type ForwardOptions = CausalLMForwardOptions;
export type GPTHidden = CausalLMHidden;
export type GPTOutput = CausalLMOutput;

/** One pre-LN transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)). */
export class Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: CausalSelfAttention;
  readonly ln_2: LayerNorm;
  readonly mlp: MLP;
  constructor(config: GPTConfig) {
    super();
    const eps = config.layerNormEps ?? 1e-5;
    // GPT-2 scales the init of residual projections by 1/√(2·nLayer) (two per block).
    const projStd = 0.02 / Math.sqrt(2 * config.nLayer);
    this.ln_1 = this.module('ln_1', new LayerNorm(config.nEmbd, eps));
    this.attn = this.module(
      'attn',
      new CausalSelfAttention(config.nEmbd, config.nHead, config.dropout, { projStd }),
    );
    this.ln_2 = this.module('ln_2', new LayerNorm(config.nEmbd, eps));
    this.mlp = this.module('mlp', new MLP(config.nEmbd, config.dropout, { projStd }));
  }
  forward(
    x: Tensor,
    opts: { blocked: Tensor | null; causal?: boolean; cache?: KVCache; layer: number; rows?: Tensor },
  ): Tensor {
    // With rows (the last block of a readout forward) only those positions go on: (B, 1, C).
    const y = (opts.rows ? selectRows(x, opts.rows) : x).add(this.attn.forward(this.ln_1.forward(x), opts));
    return y.add(this.mlp.forward(this.ln_2.forward(y)));
  }
}

/** GPT-2's `transformer` (GPT2Model): embeddings, blocks, final LayerNorm. */
export class GPTTransformer extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly drop: Dropout;
  readonly h: ModuleList<Block>;
  readonly ln_f: LayerNorm;
  constructor(config: GPTConfig) {
    super();
    this.wte = this.module('wte', new Embedding(config.vocabSize, config.nEmbd));
    this.wpe = this.module('wpe', new Embedding(config.nPositions, config.nEmbd));
    this.drop = this.module('drop', new Dropout(config.dropout));
    this.h = this.module('h', new ModuleList(Array.from({ length: config.nLayer }, () => new Block(config))));
    this.ln_f = this.module('ln_f', new LayerNorm(config.nEmbd, config.layerNormEps ?? 1e-5));
  }
}

export interface GPTOptions {
  /** Seeds the initialisation (the global generator's state is restored afterwards). */
  seed?: number;
  /** Device of the parameters (default 'cpu'); initialisation happens on CPU, so it is device-independent. */
  device?: string;
  dtype?: DType;
}

/**
 * GPT-2 language model.
 *
 * @example
 * const model = new GPT(gptPresets.tiny, { seed: 1 }).eval();
 * const { logits } = noGrad(() => model.forward(tensor([[1, 2, 3]], { dtype: 'int64' }))); // (1, 3, 50)
 */
export class GPT extends Module implements CausalLM {
  readonly config: GPTConfig;
  readonly transformer: GPTTransformer;

  constructor(config: GPTConfig, opts: GPTOptions = {}) {
    super();
    validateGPTConfig(config);
    this.config = { ...config, layerNormEps: config.layerNormEps ?? 1e-5 };
    // Initialised on CPU from the seed, so the weights do not depend on the device.
    this.transformer = this.module(
      'transformer',
      withSeed(opts.seed, () => new GPTTransformer(this.config)),
    );
    if (opts.device || opts.dtype) this.to({ device: opts.device, dtype: opts.dtype });
  }

  /** Where the parameters live: 'cpu', 'cuda:0', … */
  get device(): string {
    return this.transformer.wte.weight.device;
  }
  get dtype(): DType {
    return this.transformer.wte.weight.dtype;
  }
  /** The token embedding, also the LM head's weight (tied). */
  get wte(): Tensor {
    return this.transformer.wte.weight;
  }

  /** The family-neutral view of the config (the CausalLM interface). */
  get lmConfig(): CausalLMConfig {
    return gptLMConfig(this.config);
  }

  /** A KV cache for this model: L layers of (B, H, maxLength, D). */
  makeCache(batchSize: number, maxLength: number, opts?: KVCacheOptions): KVCache {
    return cacheFor(this.lmConfig, batchSize, maxLength, opts);
  }

  /** hidden (…, C) → logits (…, V) through the tied head (wteᵀ). */
  lmHead(hidden: Tensor): Tensor {
    return linear(hidden, this.wte);
  }

  /**
   * Embeddings and blocks without the LM head: what preference models and value heads read.
   *
   * @example const { hidden } = model.forwardHidden(ids, { attentionMask }); // (B, T, C)
   */
  forwardHidden(ids: Tensor, opts: ForwardOptions = {}): GPTHidden {
    const { t, past, positions } = prepareForward('GPT', ids, opts, this.config.nPositions);
    const tr = this.transformer;
    // x: (B, T, C)
    const x = tr.drop.forward(tr.wte.forward(ids).add(tr.wpe.forward(positions)));
    return runBlocks(x, tr.h, tr.ln_f, { t, past, opts, device: ids.device }, {});
  }

  /**
   * Logits for every position (lm_head = wteᵀ), plus the final hidden states.
   *
   * @example const { logits } = model.forward(ids); // (B, T, V)
   */
  forward(ids: Tensor, opts: ForwardOptions = {}): GPTOutput {
    return withLogits(this, this.forwardHidden(ids, opts), opts);
  }

  /**
   * Loads a GPT-2 state dict: keys with or without the `transformer.` prefix; the `attn.bias` /
   * `attn.masked_bias` mask buffers of older checkpoints are ignored; `lm_head.weight` is accepted when it
   * equals the (tied) token embedding.
   */
  override loadStateDict(sd: Record<string, Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const normalized: Record<string, Tensor> = {};
    let lmHead: Tensor | undefined;
    for (const [key, value] of Object.entries(sd)) {
      if (/(^|\.)attn\.(bias|masked_bias)$/.test(key)) continue;
      if (key === 'lm_head.weight') {
        lmHead = value;
        continue;
      }
      normalized[/^(wte|wpe|h|ln_f)\./.test(key) ? `transformer.${key}` : key] = value;
    }
    if (lmHead) {
      const wte = normalized['transformer.wte.weight'];
      const tied =
        wte !== undefined &&
        lmHead.shape.join() === wte.shape.join() &&
        noGrad(() => tidy(() => lmHead.to('float32').sub(wte.to('float32')).abs().max().item())) === 0;
      if (!tied) {
        throw new StateDictError(
          'loadStateDict into GPT: lm_head.weight differs from transformer.wte.weight; hhkit GPTs tie them (untied heads are not supported)',
        );
      }
    }
    return super.loadStateDict(normalized, opts);
  }
}
