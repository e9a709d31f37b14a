// config.json ⇄ the families' configs, reading and writing the keys transformers' configuration classes
// read and write (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config, GPTNeoXConfig; GPT2Config lives in
// checkpoint.ts). Defaults for absent keys are those classes' defaults. Anything hhkit cannot represent is
// refused with a CheckpointError naming the file and the key, never silently approximated.
import type { DType } from '../engine/index.ts';
import type { CausalLM, CausalLMConfig } from './causal-lm.ts';
import { CheckpointError, gptConfigFromHf, gptConfigToHf } from './folder.ts';
import { GPT, type GPTConfig, gptLMConfig } from './gpt.ts';
import { type GPTNeoXConfig, GPTNeoXForCausalLM, neoxLMConfig } from './gpt-neox.ts';
import {
  LLAMA_MODEL_TYPES,
  type LlamaConfig,
  LlamaForCausalLM,
  type LlamaModelType,
  llamaLMConfig,
} from './llama.ts';
import type { Llama3RopeScaling } from './rope.ts';

export const SUPPORTED_MODEL_TYPES: readonly string[] = ['gpt2', ...LLAMA_MODEL_TYPES, 'gpt_neox'];

/** A folder whose model_type hhkit has no implementation for. */
export class UnsupportedModelError extends CheckpointError {
  override name = 'UnsupportedModelError';
}

export type FamilyConfig =
  | { family: 'gpt2'; config: GPTConfig }
  | { family: 'llama'; config: LlamaConfig }
  | { family: 'gpt_neox'; config: GPTNeoXConfig };

const ARCHITECTURES: Record<string, string> = {
  gpt2: 'GPT2LMHeadModel',
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
  gpt_neox: 'GPTNeoXForCausalLM',
};

// transformers' class defaults for max_position_embeddings.
const DEFAULT_MAX_POSITIONS: Record<LlamaModelType, number> = {
  llama: 2048,
  mistral: 4096 * 32,
  qwen2: 32768,
  qwen3: 32768,
};

function reader(hf: Record<string, unknown>, source: string) {
  const fail = (why: string): never => {
    throw new CheckpointError(`${source}: ${why}`);
  };
  const present = (k: string): boolean => hf[k] !== undefined && hf[k] !== null;
  const int = (k: string, fallback?: number): number => {
    if (!present(k)) return fallback ?? fail(`missing ${k}`);
    const v = hf[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      fail(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const num = (k: string, fallback: number): number => {
    if (!present(k)) return fallback;
    const v = hf[k];
    if (typeof v !== 'number') fail(`${k} must be a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const bool = (k: string, fallback: boolean): boolean => {
    if (!present(k)) return fallback;
    if (typeof hf[k] !== 'boolean') fail(`${k} must be true or false, got ${JSON.stringify(hf[k])}`);
    return hf[k] as boolean;
  };
  return { fail, present, int, num, bool };
}

// rope_scaling (transformers 4.x) or rope_parameters (5.x): only "default" and "llama3" are implemented.
function ropeOf(
  hf: Record<string, unknown>,
  r: ReturnType<typeof reader>,
): { theta: number; scaling: Llama3RopeScaling | null } {
  const params = (hf['rope_parameters'] ?? hf['rope_scaling'] ?? null) as Record<string, unknown> | null;
  const theta = r.num(
    'rope_theta',
    typeof params?.['rope_theta'] === 'number' ? (params['rope_theta'] as number) : 10000,
  );
  if (params === null) return { theta, scaling: null };
  if (typeof params !== 'object') return r.fail(`rope_scaling must be an object or null`);
  const type = params['rope_type'] ?? params['type'] ?? 'default';
  if (type === 'default') return { theta, scaling: null };
  if (type !== 'llama3') {
    return r.fail(
      `rope_scaling type ${JSON.stringify(type)} is not supported (hhkit implements "default" and "llama3")`,
    );
  }
  const need = (k: string): number => {
    const v = params[k];
    if (typeof v !== 'number')
      return r.fail(`rope_scaling.${k} must be a number for llama3, got ${JSON.stringify(v)}`);
    return v;
  };
  return {
    theta,
    scaling: {
      type: 'llama3',
      factor: need('factor'),
      lowFreqFactor: need('low_freq_factor'),
      highFreqFactor: need('high_freq_factor'),
      originalMaxPositions: need('original_max_position_embeddings'),
    },
  };
}

function llamaFromHf(hf: Record<string, unknown>, modelType: LlamaModelType, source: string): LlamaConfig {
  const r = reader(hf, source);
  const act = hf['hidden_act'] ?? 'silu';
  if (act !== 'silu')
    r.fail(`hidden_act ${JSON.stringify(act)} is not supported (the Llama family uses silu)`);
  const nHead = r.int('num_attention_heads');
  const hiddenSize = r.int('hidden_size');
  const { theta, scaling } = ropeOf(hf, r);
  if (modelType !== 'llama' && scaling) r.fail(`rope_scaling is only supported for model_type llama`);
  const attentionBias = r.bool('attention_bias', false);
  // Mistral always slides (default window 4096); Qwen2/3 only with use_sliding_window.
  let slidingWindow: number | null = null;
  if (modelType === 'mistral')
    slidingWindow = hf['sliding_window'] === null ? null : r.int('sliding_window', 4096);
  else if ((modelType === 'qwen2' || modelType === 'qwen3') && r.bool('use_sliding_window', false)) {
    slidingWindow = r.int('sliding_window', 4096);
  }
  return {
    modelType,
    vocabSize: r.int('vocab_size'),
    hiddenSize,
    intermediateSize: r.int('intermediate_size'),
    nLayer: r.int('num_hidden_layers'),
    nHead,
    nKVHead: r.int('num_key_value_heads', nHead),
    headDim: r.int('head_dim', Math.floor(hiddenSize / nHead)),
    maxPositions: r.int('max_position_embeddings', DEFAULT_MAX_POSITIONS[modelType]),
    rmsNormEps: r.num('rms_norm_eps', 1e-6),
    ropeTheta: theta,
    ropeScaling: scaling,
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    // Qwen2 always has q/k/v biases; Mistral never; Llama and Qwen3 follow attention_bias (q, k, v and o).
    qkvBias: modelType === 'qwen2' ? true : modelType === 'mistral' ? false : attentionBias,
    oBias: modelType === 'llama' || modelType === 'qwen3' ? attentionBias : false,
    mlpBias: modelType === 'llama' ? r.bool('mlp_bias', false) : false,
    qkNorm: modelType === 'qwen3',
    slidingWindow,
    attentionDropout: r.num('attention_dropout', 0),
  };
}

function neoxFromHf(hf: Record<string, unknown>, source: string): GPTNeoXConfig {
  const r = reader(hf, source);
  const act = hf['hidden_act'] ?? 'gelu';
  if (act !== 'gelu') r.fail(`hidden_act ${JSON.stringify(act)} is not supported (GPT-NeoX uses gelu)`);
  const scaling = hf['rope_scaling'] as Record<string, unknown> | null | undefined;
  if (scaling && (scaling['rope_type'] ?? scaling['type'] ?? 'default') !== 'default')
    r.fail(`rope_scaling is not supported for gpt_neox`);
  if (r.bool('tie_word_embeddings', false)) r.fail(`tie_word_embeddings true is not supported for gpt_neox`);
  return {
    vocabSize: r.int('vocab_size'),
    hiddenSize: r.int('hidden_size'),
    intermediateSize: r.int('intermediate_size'),
    nLayer: r.int('num_hidden_layers'),
    nHead: r.int('num_attention_heads'),
    maxPositions: r.int('max_position_embeddings', 2048),
    rotaryPct: r.num('rotary_pct', r.num('partial_rotary_factor', 0.25)),
    rotaryEmbBase: r.num('rotary_emb_base', r.num('rope_theta', 10000)),
    layerNormEps: r.num('layer_norm_eps', 1e-5),
    useParallelResidual: r.bool('use_parallel_residual', true),
    attentionBias: r.bool('attention_bias', true),
    attentionDropout: r.num('attention_dropout', 0),
    hiddenDropout: r.num('hidden_dropout', 0),
  };
}

/**
 * The family and config of a config.json object; throws UnsupportedModelError for an unknown model_type.
 *
 * @example familyConfigFromHf(JSON.parse(readFileSync('m/config.json', 'utf8')), 'm/config.json').family // 'llama'
 */
export function familyConfigFromHf(hf: Record<string, unknown>, source = 'config.json'): FamilyConfig {
  const modelType = hf['model_type'] ?? 'gpt2';
  if (modelType === 'gpt2') return { family: 'gpt2', config: gptConfigFromHf(hf, source) };
  if (modelType === 'gpt_neox') return { family: 'gpt_neox', config: neoxFromHf(hf, source) };
  if (LLAMA_MODEL_TYPES.includes(modelType as LlamaModelType)) {
    return { family: 'llama', config: llamaFromHf(hf, modelType as LlamaModelType, source) };
  }
  throw new UnsupportedModelError(
    `${source}: model_type ${JSON.stringify(modelType)} is not supported (hhkit supports ${SUPPORTED_MODEL_TYPES.join(', ')})`,
  );
}

/** A fresh model of the family (random weights, seeded). */
export function createCausalLM(
  fc: FamilyConfig,
  opts: { seed?: number; device?: string; dtype?: DType } = {},
): CausalLM {
  if (fc.family === 'gpt2') return new GPT(fc.config, opts);
  if (fc.family === 'llama') return new LlamaForCausalLM(fc.config, opts);
  return new GPTNeoXForCausalLM(fc.config, opts);
}

/** The family-neutral sizes of a family config, without building the model. */
export function lmConfigOf(fc: FamilyConfig): CausalLMConfig {
  if (fc.family === 'gpt2') return gptLMConfig(fc.config);
  if (fc.family === 'llama') return llamaLMConfig(fc.config);
  return neoxLMConfig(fc.config);
}

/**
 * `model` with its dropout probability set to `dropout`, in every place its family applies dropout: GPT-2's
 * embeddings, attention probabilities and residual branches; the Llama family's attention probabilities
 * (attention_dropout, its only dropout); GPT-NeoX's attention probabilities and its embeddings and residual
 * branches (attention_dropout and hidden_dropout). Dropout is a constructor setting, so a different value
 * rebuilds the model (same weights; the old parameters are freed; `seed` as for the family's constructor,
 * so with a seed the global random stream is untouched).
 *
 * @example model = withDropout(loadCheckpoint(dir).model, 0.1, { seed: 1 });
 */
export function withDropout(model: CausalLM, dropout: number, opts: { seed?: number } = {}): CausalLM {
  const changed = withDropoutConfig(familyConfigOf(model), dropout);
  if (changed === null) return model;
  const rebuilt = createCausalLM(changed, { seed: opts.seed, device: model.device, dtype: model.dtype });
  rebuilt.loadStateDict(model.stateDict());
  for (const p of model.parameters()) p.dispose();
  return rebuilt;
}

// The family config with every dropout probability set to p; null when they already are.
function withDropoutConfig(fc: FamilyConfig, p: number): FamilyConfig | null {
  switch (fc.family) {
    case 'gpt2':
      return fc.config.dropout === p ? null : { family: 'gpt2', config: { ...fc.config, dropout: p } };
    case 'llama':
      return fc.config.attentionDropout === p
        ? null
        : { family: 'llama', config: { ...fc.config, attentionDropout: p } };
    case 'gpt_neox':
      return fc.config.attentionDropout === p && fc.config.hiddenDropout === p
        ? null
        : { family: 'gpt_neox', config: { ...fc.config, attentionDropout: p, hiddenDropout: p } };
  }
}

/** The family and config of a model built by `createCausalLM` (or any family's constructor). */
export function familyConfigOf(model: CausalLM): FamilyConfig {
  if (model instanceof GPT) return { family: 'gpt2', config: model.config };
  if (model instanceof LlamaForCausalLM) return { family: 'llama', config: model.config };
  if (model instanceof GPTNeoXForCausalLM) return { family: 'gpt_neox', config: model.config };
  throw new UnsupportedModelError(`${model.constructor.name} is not a known family`);
}

/** The config.json keys transformers writes for `model` (torch_dtype = `dtype`). */
export function hfConfigOf(model: CausalLM, dtype: DType): Record<string, unknown> {
  if (model instanceof GPT) return gptConfigToHf(model.config, dtype);
  const common = { torch_dtype: dtype, use_cache: true, initializer_range: 0.02 };
  if (model instanceof GPTNeoXForCausalLM) {
    const c = model.config;
    return {
      model_type: 'gpt_neox',
      architectures: [ARCHITECTURES['gpt_neox']],
      vocab_size: c.vocabSize,
      hidden_size: c.hiddenSize,
      intermediate_size: c.intermediateSize,
      num_hidden_layers: c.nLayer,
      num_attention_heads: c.nHead,
      max_position_embeddings: c.maxPositions,
      hidden_act: 'gelu',
      rotary_pct: c.rotaryPct,
      rotary_emb_base: c.rotaryEmbBase,
      layer_norm_eps: c.layerNormEps,
      use_parallel_residual: c.useParallelResidual,
      attention_bias: c.attentionBias,
      attention_dropout: c.attentionDropout,
      hidden_dropout: c.hiddenDropout,
      tie_word_embeddings: false,
      ...common,
    };
  }
  if (model instanceof LlamaForCausalLM) {
    const c = model.config;
    const s = c.ropeScaling;
    const out: Record<string, unknown> = {
      model_type: c.modelType,
      architectures: [ARCHITECTURES[c.modelType]],
      vocab_size: c.vocabSize,
      hidden_size: c.hiddenSize,
      intermediate_size: c.intermediateSize,
      num_hidden_layers: c.nLayer,
      num_attention_heads: c.nHead,
      num_key_value_heads: c.nKVHead,
      head_dim: c.headDim,
      max_position_embeddings: c.maxPositions,
      hidden_act: 'silu',
      rms_norm_eps: c.rmsNormEps,
      rope_theta: c.ropeTheta,
      rope_scaling: s
        ? {
            rope_type: 'llama3',
            factor: s.factor,
            low_freq_factor: s.lowFreqFactor,
            high_freq_factor: s.highFreqFactor,
            original_max_position_embeddings: s.originalMaxPositions,
          }
        : null,
      tie_word_embeddings: c.tieWordEmbeddings,
      attention_dropout: c.attentionDropout,
      ...common,
    };
    if (c.modelType === 'llama') Object.assign(out, { attention_bias: c.qkvBias, mlp_bias: c.mlpBias });
    if (c.modelType === 'qwen3') out['attention_bias'] = c.qkvBias;
    if (c.modelType === 'mistral') out['sliding_window'] = c.slidingWindow;
    if (c.modelType === 'qwen2' || c.modelType === 'qwen3') {
      Object.assign(out, { use_sliding_window: c.slidingWindow !== null, sliding_window: c.slidingWindow });
    }
    return out;
  }
  throw new UnsupportedModelError(`hfConfigOf: ${model.constructor.name} is not a known family`);
}
