// What every hhkit model folder shares, whatever the family: the file names, hhkit.json's shape, the
// errors loaders throw, and GPT-2's config.json keys (the family hhkit has always written). The loaders
// (checkpoint.ts for hhkit's own folders, hf.ts for Hugging Face's) and hf-config.ts build on this file.
import { readFileSync } from 'node:fs';
import { type DType, firstNonFinite, type Tensor } from '../engine/index.ts';
import { HhkitError } from '../util/errors.ts';
import { type GPTConfig, GPTConfigError, validateGPTConfig } from './gpt.ts';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const TOKENIZER_FILE = 'tokenizer.json';
export const META_FILE = 'hhkit.json';

export type CheckpointKind = 'lm' | 'pm' | 'policy';
export const CHECKPOINT_KINDS: readonly CheckpointKind[] = ['lm', 'pm', 'policy'];

/** hhkit.json: what a checkpoint is and where it came from. Other keys (e.g. step) are kept as they are. */
export interface HhkitMeta {
  kind: CheckpointKind;
  /** Parent checkpoints (paths or ids), oldest first: e.g. [lm, pmp] for a PM finetuned from a PMP model. */
  lineage: string[];
  /** The training config that produced these weights. */
  training?: Record<string, unknown>;
  /** Final or latest metrics (loss, accuracy, …). */
  metrics?: Record<string, unknown>;
  /** ISO time; filled in by saveCheckpoint when absent. */
  createdAt?: string;
  [key: string]: unknown;
}

/** A checkpoint that cannot be read or written; the message names the file and what is wrong (CLI exit 2). */
export class CheckpointError extends HhkitError {
  override name = 'CheckpointError';

  constructor(message: string) {
    super(message, { exitCode: 2 });
  }
}

/**
 * A checkpoint whose weights hold NaN or ±Inf (a diverged run, or corrupted bytes behind a valid header);
 * loaders refuse it unless asked with `allowNonFinite` (`--allow-nonfinite`).
 */
export class NonFiniteCheckpointError extends CheckpointError {
  override name = 'NonFiniteCheckpointError';
}

// ---- config.json ----

/**
 * GPT-2 config.json keys for `config` (what transformers' GPT2Config writes).
 *
 * @example gptConfigToHf(gptPresets.tiny).n_embd // 16
 */
export function gptConfigToHf(config: GPTConfig, dtype: DType = 'float32'): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    activation_function: 'gelu_new',
    n_layer: config.nLayer,
    n_head: config.nHead,
    n_embd: config.nEmbd,
    n_positions: config.nPositions,
    n_ctx: config.nPositions,
    n_inner: null,
    vocab_size: config.vocabSize,
    layer_norm_epsilon: config.layerNormEps ?? 1e-5,
    attn_pdrop: config.dropout,
    embd_pdrop: config.dropout,
    resid_pdrop: config.dropout,
    initializer_range: 0.02,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: true,
    use_cache: true,
    torch_dtype: dtype,
  };
}

// Activations equal to GPT-2's tanh-approximated GELU.
const TANH_GELUS = new Set(['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast']);

/**
 * The GPTConfig of a GPT-2 config.json object; throws a CheckpointError naming `source` and the key for
 * anything hhkit's GPT cannot represent.
 */
export function gptConfigFromHf(hf: Record<string, unknown>, source = CONFIG_FILE): GPTConfig {
  const fail = (why: string): never => {
    throw new CheckpointError(`${source}: ${why}`);
  };
  if (hf['model_type'] !== undefined && hf['model_type'] !== 'gpt2') {
    fail(`model_type is ${JSON.stringify(hf['model_type'])}; only "gpt2" is supported`);
  }
  const int = (...keys: string[]): number => {
    for (const k of keys) {
      const v = hf[k];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
        fail(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
      return v as number;
    }
    return fail(`missing ${keys.join(' / ')}`);
  };
  const num = (key: string, fallback: number): number => {
    const v = hf[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number') fail(`${key} must be a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const act = hf['activation_function'] ?? 'gelu_new';
  if (typeof act !== 'string' || !TANH_GELUS.has(act)) {
    fail(
      `activation_function ${JSON.stringify(act)} is not supported (hhkit's GPT uses gelu_new, the tanh GELU)`,
    );
  }
  const config: GPTConfig = {
    nLayer: int('n_layer', 'num_hidden_layers'),
    nHead: int('n_head', 'num_attention_heads'),
    nEmbd: int('n_embd', 'hidden_size'),
    nPositions: int('n_positions', 'n_ctx', 'max_position_embeddings'),
    vocabSize: int('vocab_size'),
    // HF's GPT2Config defaults every dropout to 0.1.
    dropout: num('resid_pdrop', num('embd_pdrop', num('attn_pdrop', 0.1))),
    layerNormEps: num('layer_norm_epsilon', 1e-5),
  };
  const inner = hf['n_inner'];
  if (inner !== undefined && inner !== null && inner !== 4 * config.nEmbd) {
    fail(`n_inner ${JSON.stringify(inner)} is not supported (hhkit's MLP is 4·n_embd = ${4 * config.nEmbd})`);
  }
  if (hf['scale_attn_weights'] === false) fail('scale_attn_weights false is not supported');
  if (hf['scale_attn_by_inverse_layer_idx'] === true)
    fail('scale_attn_by_inverse_layer_idx is not supported');
  if (hf['tie_word_embeddings'] === false)
    fail('tie_word_embeddings false is not supported (hhkit ties lm_head to wte)');
  try {
    validateGPTConfig(config);
  } catch (err) {
    if (err instanceof GPTConfigError) fail(err.message);
    throw err;
  }
  return config;
}

/** A JSON object from `path`, or a CheckpointError naming the file. */
export function readJson(path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CheckpointError(`${path}: cannot read JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CheckpointError(`${path}: expected a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Throws NonFiniteCheckpointError when a tensor of `path` (decoded) holds NaN or ±Inf.
 *
 * @example refuseNonFinite('runs/lm/checkpoint/model.safetensors', decodeSafetensors(bytes).tensors);
 */
export function refuseNonFinite(path: string, tensors: Record<string, Tensor>): void {
  const found = firstNonFinite(Object.entries(tensors));
  if (found) {
    throw new NonFiniteCheckpointError(
      `${path}: tensor '${found.name}' holds ${found.count} NaN/±Inf value(s) of ${found.numel}; the file is corrupt or comes from a run that diverged. Load an earlier checkpoint, or pass --allow-nonfinite (allowNonFinite: true) to load it anyway`,
    );
  }
}
