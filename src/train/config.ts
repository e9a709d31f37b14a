// The LM training config: one flat, typed object with defaults (nanoGPT's train.py globals, made a
// type). Defaults are merged once at the edge (`resolveLMTrainConfig`); the loop only reads it.

import { getLocalRank, getWorldSize, resolveDevice } from '../engine/index.ts';

/** Where and in what precision a trainer runs (LM, PM and RL configs share these keys). */
export interface HardwareConfig {
  /** 'auto' (a GPU when there is one), 'cpu', 'cuda' or 'cuda:N'. */
  device: string;
  /** 'fp32', or 'bf16': autocast matmuls to bfloat16 with float32 master weights. */
  precision: string;
}

export const hardwareDocs: Record<keyof HardwareConfig, string> = {
  device: "'auto' (GPU if any), 'cpu', 'cuda' or 'cuda:N'; under hhkit launch cuda means cuda:LOCAL_RANK",
  precision: "'fp32', or 'bf16' (autocast to bfloat16, float32 master weights)",
};

/** The concrete device for a trainer (`cuda:LOCAL_RANK` under a multi-process launch); a ConfigError when CUDA is asked for but absent. */
export function trainingDevice(c: HardwareConfig): string {
  try {
    return resolveDevice(c.device, getLocalRank(), getWorldSize());
  } catch (err) {
    // resolveDevice's own errors are the config's; anything else (an engine not built) goes up as it is.
    if (err instanceof RangeError) throw new ConfigError(err.message);
    throw err;
  }
}

/**
 * Checks a config's device ('auto', 'cpu', 'cuda', 'cuda:N') and precision ('fp32', 'bf16'); a
 * ConfigError naming the value otherwise. Whether the device exists is trainingDevice's check.
 *
 * @example validateHardware({ device: 'cuda:1', precision: 'bf16' });
 */
export function validateHardware(c: HardwareConfig): void {
  if (c.precision !== 'fp32' && c.precision !== 'bf16') {
    throw new ConfigError(`precision expects 'fp32' or 'bf16', got ${JSON.stringify(c.precision)}`);
  }
  if (!/^(auto|cpu|cuda(:\d+)?)$/.test(c.device)) {
    throw new ConfigError(`device expects auto, cpu, cuda or cuda:N, got ${JSON.stringify(c.device)}`);
  }
}

/** What the loss is computed on: every token (pretraining) or only the Assistant's replies (SFT). */
export type LossOn = 'all' | 'assistant';

export interface LMTrainConfig extends HardwareConfig {
  // ---- data ----
  /** Corpus: JSON lines with a "text" (or "chosen") transcript per line, or plain .txt. */
  data: string;
  /** Run folder: checkpoints, metrics.jsonl, the tokenised-data cache. */
  out: string;
  lossOn: LossOn;
  /** Context length T: a random GPT-2 init's nPositions; with `init`, at most the model's context length. */
  blockSize: number;
  /** Fraction of documents (by a hash of their text) held out for eval loss. */
  evalFraction: number;
  // ---- model (GPT-2 architecture; vocabSize comes from the tokenizer) ----
  nLayer: number;
  nHead: number;
  nEmbd: number;
  dropout: number;
  /** Start from this checkpoint folder's weights (e.g. SFT on a pretrained LM) instead of a fresh init. */
  init: string;
  // ---- optimisation ----
  /** Sequences per micro-batch (B). */
  batchSize: number;
  /** Micro-batches per optimiser step; the effective batch is batchSize × gradAccum. */
  gradAccum: number;
  /** Optimiser steps. */
  steps: number;
  lr: number;
  /** The cosine decay ends here (nanoGPT: lr / 10). */
  minLr: number;
  warmupSteps: number;
  /** Steps of the warmup+cosine schedule; after it the lr stays at minLr. 0 = `steps`. */
  decaySteps: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  /** Clip the global gradient norm to this; 0 = off. */
  gradClip: number;
  // ---- bookkeeping ----
  seed: number;
  /** Eval loss every N steps (and at the end); 0 = only at the end. */
  evalEvery: number;
  /** Batches of the eval split per eval. */
  evalBatches: number;
  /** Checkpoint every N steps (and at the end). */
  checkpointEvery: number;
  /** How many step checkpoints to keep on disk (the latest is always kept). */
  keepCheckpoints: number;
}

/** Defaults: a small GPT that learns the world's corpus on a laptop CPU in minutes. */
export const defaultLMTrainConfig: LMTrainConfig = {
  data: '',
  out: 'runs/lm',
  lossOn: 'all',
  blockSize: 128,
  evalFraction: 0.05,
  nLayer: 4,
  nHead: 4,
  nEmbd: 128,
  dropout: 0,
  init: '',
  batchSize: 16,
  gradAccum: 1,
  steps: 2000,
  lr: 1e-3,
  minLr: 1e-4,
  warmupSteps: 100,
  decaySteps: 0,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  gradClip: 1,
  device: 'auto',
  precision: 'fp32',
  seed: 1,
  evalEvery: 200,
  evalBatches: 8,
  checkpointEvery: 200,
  keepCheckpoints: 2,
};

/** One line of documentation per key, for `--help` and error messages. */
export const lmTrainConfigDocs: Record<keyof LMTrainConfig, string> = {
  data: 'corpus: JSON lines with "text" (or "chosen"), or a .txt file (documents split at <|endoftext|>)',
  out: 'run folder: checkpoint/, checkpoints/, metrics.jsonl, data cache',
  lossOn: "'all' (pretraining) or 'assistant' (SFT: loss only on Assistant replies)",
  blockSize: "context length T (random init: the model's; with --init: at most the model's)",
  evalFraction: 'fraction of documents held out for eval (by a hash of their text)',
  nLayer: 'transformer blocks',
  nHead: 'attention heads',
  nEmbd: 'embedding width C (divisible by nHead)',
  dropout: 'dropout probability during training',
  init: 'checkpoint folder to start from instead of a random init (empty: random)',
  batchSize: 'sequences per micro-batch B',
  gradAccum: 'micro-batches per optimiser step',
  steps: 'optimiser steps',
  lr: 'peak learning rate (AdamW)',
  minLr: 'learning rate at the end of the cosine decay',
  warmupSteps: 'linear warmup steps',
  decaySteps: 'length of warmup + cosine decay in steps (0: = steps)',
  weightDecay: 'AdamW weight decay on ≥2-D weights (not biases, LayerNorm)',
  beta1: 'AdamW β1',
  beta2: 'AdamW β2',
  gradClip: 'clip the global gradient norm to this (0: off)',
  ...hardwareDocs,
  seed: 'seed of the model init, dropout and data order',
  evalEvery: 'eval loss every N steps (0: only at the end)',
  evalBatches: 'batches of the eval split per eval',
  checkpointEvery: 'checkpoint every N steps (and at the end)',
  keepCheckpoints: 'step checkpoints kept on disk',
};

/** A config value that cannot be used; the message names the key and what it expects. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `batch-size` → `batchSize`, so kebab-case CLI flags and camelCase config files name the same key. */
export const camelKey = (key: string): string => key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Defaults merged with `overrides` (values may be strings from a command line or config file) and
 * validated. Unknown keys throw, so a typo never silently trains with a default.
 *
 * @example resolveLMTrainConfig({ data: 'corpus.jsonl', 'batch-size': '8', steps: 100 }).batchSize // 8
 */
export function resolveLMTrainConfig(overrides: Record<string, unknown>): LMTrainConfig {
  const config = applyOverrides({ ...defaultLMTrainConfig }, overrides, Object.keys(defaultLMTrainConfig));
  validate(config);
  return config;
}

/**
 * Merges `--key value` overrides (kebab- or camelCase; strings from the command line or typed values from
 * a config file) into a copy of `defaults`, coercing each to its default's type. Unknown keys and keys in
 * `fixed` throw a ConfigError listing `known`, so a typo never silently trains with a default.
 *
 * @example applyOverrides({ steps: 10, data: '' }, { steps: '20' }, ['steps', 'data']).steps // 20
 */
export function applyOverrides<T extends object>(
  defaults: T,
  overrides: Record<string, unknown>,
  known: string[],
  fixed: string[] = [],
): T {
  const config = { ...defaults };
  const target = config as unknown as Record<string, unknown>;
  for (const [rawKey, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const key = camelKey(rawKey);
    if (!(key in defaults) || fixed.includes(key)) {
      throw new ConfigError(`unknown option '${rawKey}'; known: ${known.join(', ')}`);
    }
    const fallback = target[key];
    if (typeof fallback === 'number') {
      const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
      if ((typeof value === 'string' && value.trim() === '') || !Number.isFinite(n)) {
        throw new ConfigError(`${key} expects a number, got ${JSON.stringify(value)}`);
      }
      target[key] = n;
    } else {
      if (typeof value !== 'string')
        throw new ConfigError(`${key} expects a string, got ${JSON.stringify(value)}`);
      target[key] = value;
    }
  }
  return config;
}

function validate(c: LMTrainConfig): void {
  const positiveInts: (keyof LMTrainConfig)[] = [
    'blockSize',
    'nLayer',
    'nHead',
    'nEmbd',
    'batchSize',
    'gradAccum',
    'steps',
    'evalBatches',
    'checkpointEvery',
    'keepCheckpoints',
  ];
  for (const key of positiveInts) {
    const v = c[key] as number;
    if (!Number.isInteger(v) || v < 1) throw new ConfigError(`${key} expects a positive integer, got ${v}`);
  }
  for (const key of ['warmupSteps', 'decaySteps', 'evalEvery', 'seed'] as const) {
    const v = c[key];
    if (!Number.isInteger(v) || v < 0) throw new ConfigError(`${key} expects an integer ≥ 0, got ${v}`);
  }
  if (c.lossOn !== 'all' && c.lossOn !== 'assistant') {
    throw new ConfigError(`lossOn expects 'all' or 'assistant', got ${JSON.stringify(c.lossOn)}`);
  }
  if (c.nEmbd % c.nHead !== 0)
    throw new ConfigError(`nEmbd ${c.nEmbd} must be divisible by nHead ${c.nHead}`);
  if (!(c.evalFraction > 0 && c.evalFraction < 1)) {
    throw new ConfigError(`evalFraction expects a number in (0, 1), got ${c.evalFraction}`);
  }
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new ConfigError(`dropout expects [0, 1), got ${c.dropout}`);
  if (!(c.lr > 0) || !(c.minLr >= 0) || c.minLr > c.lr) {
    throw new ConfigError(`expected 0 ≤ minLr ≤ lr and lr > 0, got lr ${c.lr}, minLr ${c.minLr}`);
  }
  if (!(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1)) {
    throw new ConfigError(`beta1 and beta2 expect [0, 1), got ${c.beta1}, ${c.beta2}`);
  }
  if (!(c.weightDecay >= 0) || !(c.gradClip >= 0)) {
    throw new ConfigError(`weightDecay and gradClip expect numbers ≥ 0, got ${c.weightDecay}, ${c.gradClip}`);
  }
  validateHardware(c);
  if (!c.data) throw new ConfigError('data is required: a .jsonl or .txt corpus');
}
