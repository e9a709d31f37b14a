// The preference-model training config: one flat typed object with defaults per phase, merged once at
// the edge (`resolvePMTrainConfig`), then only read. The phases are the paper's (§2.2, §3.2): PMP on
// ranked pairs at 0.1× the pretraining learning rate, then finetuning on human comparisons at 0.01×,
// one epoch each.
import {
  applyOverrides,
  ConfigError,
  type HardwareConfig,
  hardwareDocs,
  validateHardware,
} from '../train/config.ts';

export type PMPhase = 'pmp' | 'finetune';

export interface PMTrainConfig extends HardwareConfig {
  phase: PMPhase;
  // ---- data ----
  /** Training comparison files (JSONL, optionally gzipped), comma-separated. */
  data: string;
  /** Held-out comparison files, comma-separated; empty: hold out `evalFraction` of `data` by conversation hash. */
  eval: string;
  evalFraction: number;
  /** Use at most this many training comparisons (a seeded sample; 0 = all): the small-data regime. */
  maxComparisons: number;
  /** Run folder: checkpoint/, checkpoints/, metrics.jsonl. */
  out: string;
  // ---- model ----
  /** LM or PM checkpoint to start from; empty: a random init of the size below (a baseline). */
  init: string;
  /** tokenizer.json when `init` has none (or no init). */
  tokenizer: string;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  nPositions: number;
  /** Token budget per transcript, END_OF_CONTEXT included (0 = the model's context length, lmConfig.maxPositions); longer ones lose their start. */
  maxLength: number;
  dropout: number;
  /** LM checkpoint whose frozen copy gives the PM its likelihood feature (pm/likelihood.ts); empty: none, or
   *  the init's when the init is a PM that has one. */
  likelihoodLm: string;
  /** The likelihood feature's weight (one number, from 0) learns at this multiple of lr. */
  likelihoodLrScale: number;
  // ---- optimisation ----
  /** Comparisons per step (each is two sequences in the batch). */
  batchSize: number;
  epochs: number;
  /** Optimiser steps; 0 = ceil(epochs × comparisons / batchSize). */
  steps: number;
  /** The pretraining learning rate the multiplier applies to; 0 = read from init's hhkit.json (else 1e-3). */
  baseLr: number;
  /** lr = lrMultiplier × baseLr; the paper's 0.1 for PMP, 0.01 for finetuning. */
  lrMultiplier: number;
  warmupSteps: number;
  /** The cosine decay ends at minLrRatio × lr. */
  minLrRatio: number;
  weightDecay: number;
  gradClip: number;
  /** λ: loss weight of harmless comparisons (L = L_help + λ·L_harm). */
  harmlessWeight: number;
  // ---- bookkeeping ----
  seed: number;
  /** Held-out accuracy every N steps (and at the end); 0 = only at the end. */
  evalEvery: number;
  /** Cap on held-out comparisons scored at intermediate evals (the final eval scores all). */
  evalLimit: number;
  checkpointEvery: number;
  keepCheckpoints: number;
}

const common: Omit<PMTrainConfig, 'phase' | 'lrMultiplier' | 'out'> = {
  data: '',
  eval: '',
  evalFraction: 0.05,
  maxComparisons: 0,
  init: '',
  tokenizer: '',
  nLayer: 2,
  nHead: 4,
  nEmbd: 64,
  nPositions: 128,
  maxLength: 0,
  dropout: 0,
  likelihoodLm: '',
  likelihoodLrScale: 20,
  batchSize: 16,
  epochs: 1,
  steps: 0,
  baseLr: 0,
  warmupSteps: 10,
  minLrRatio: 0.1,
  weightDecay: 0.01,
  gradClip: 1,
  harmlessWeight: 1,
  device: 'auto',
  precision: 'fp32',
  seed: 1,
  evalEvery: 0,
  evalLimit: 256,
  checkpointEvery: 100,
  keepCheckpoints: 2,
};

/** Defaults of each phase: the paper's learning-rate multipliers, one epoch. */
export const defaultPMTrainConfigs: Record<PMPhase, PMTrainConfig> = {
  pmp: { ...common, phase: 'pmp', out: 'runs/pmp', lrMultiplier: 0.1 },
  finetune: { ...common, phase: 'finetune', out: 'runs/pm', lrMultiplier: 0.01 },
};

/** One line per key, for --help. */
export const pmTrainConfigDocs: Record<Exclude<keyof PMTrainConfig, 'phase'>, string> = {
  data: 'training comparison files (.jsonl / .jsonl.gz), comma-separated',
  eval: 'held-out comparison files, comma-separated (empty: hash-split evalFraction of data)',
  evalFraction: 'fraction of data held out by conversation when eval is empty',
  maxComparisons: 'use at most N training comparisons, a seeded sample (0: all)',
  out: 'run folder: checkpoint/, checkpoints/, metrics.jsonl',
  init: 'LM or PM checkpoint to start from (empty: random init of the size below)',
  tokenizer: 'tokenizer.json when init has none',
  nLayer: 'blocks (random init only)',
  nHead: 'heads (random init only)',
  nEmbd: 'width (random init only)',
  nPositions: 'context length (random GPT-2 init only)',
  maxLength: "tokens per transcript incl. end-of-context (0: the model's context length); the start is cut",
  dropout: 'dropout during training',
  likelihoodLm:
    "LM checkpoint whose frozen copy scores the response's mean log-likelihood, added to the PM's score with a learned weight (inherited from an init PM that has one; empty: none)",
  likelihoodLrScale: "the likelihood feature's weight learns at this multiple of lr (it starts at 0)",
  batchSize: 'comparisons per step',
  epochs: 'passes over the training comparisons',
  steps: 'optimiser steps (0: epochs × comparisons / batchSize)',
  baseLr: "pretraining learning rate (0: init's hhkit.json, else 1e-3)",
  lrMultiplier: 'lr = lrMultiplier × baseLr (paper: 0.1 PMP, 0.01 finetuning)',
  warmupSteps: 'linear warmup steps',
  minLrRatio: 'cosine decay ends at this fraction of lr',
  weightDecay: 'AdamW weight decay on ≥2-D weights',
  gradClip: 'clip the global gradient norm (0: off)',
  harmlessWeight: 'λ: loss weight on harmless comparisons (L = L_help + λ·L_harm)',
  ...hardwareDocs,
  seed: 'seed of the head init, data order and sample',
  evalEvery: 'held-out accuracy every N steps (0: only at the end)',
  evalLimit: 'held-out comparisons scored at intermediate evals',
  checkpointEvery: 'checkpoint every N steps (and at the end)',
  keepCheckpoints: 'step checkpoints kept on disk',
};

/**
 * The phase's defaults merged with `overrides` (strings from a command line or config file are
 * converted) and validated; unknown keys throw.
 *
 * @example resolvePMTrainConfig('finetune', { data: 'helpful-train.jsonl', 'batch-size': '8' }).lrMultiplier // 0.01
 */
export function resolvePMTrainConfig(phase: PMPhase, overrides: Record<string, unknown>): PMTrainConfig {
  const defaults = defaultPMTrainConfigs[phase];
  const config = applyOverrides(defaults, overrides, Object.keys(pmTrainConfigDocs), ['phase']);
  validate(config);
  return config;
}

function validate(c: PMTrainConfig): void {
  for (const key of [
    'nLayer',
    'nHead',
    'nEmbd',
    'nPositions',
    'batchSize',
    'checkpointEvery',
    'keepCheckpoints',
  ] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 1)
      throw new ConfigError(`${key} expects a positive integer, got ${c[key]}`);
  }
  for (const key of [
    'steps',
    'warmupSteps',
    'evalEvery',
    'seed',
    'maxComparisons',
    'maxLength',
    'evalLimit',
  ] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 0)
      throw new ConfigError(`${key} expects an integer ≥ 0, got ${c[key]}`);
  }
  if (c.maxLength === 1) throw new ConfigError("maxLength must be 0 (the model's context length) or ≥ 2");
  if (c.nEmbd % c.nHead !== 0)
    throw new ConfigError(`nEmbd ${c.nEmbd} must be divisible by nHead ${c.nHead}`);
  if (!(c.epochs > 0)) throw new ConfigError(`epochs expects a number > 0, got ${c.epochs}`);
  if (!(c.evalFraction >= 0 && c.evalFraction < 1))
    throw new ConfigError(`evalFraction expects [0, 1), got ${c.evalFraction}`);
  if (!(c.baseLr >= 0) || !(c.lrMultiplier > 0)) {
    throw new ConfigError(`expected baseLr ≥ 0 and lrMultiplier > 0, got ${c.baseLr}, ${c.lrMultiplier}`);
  }
  if (!(c.minLrRatio >= 0 && c.minLrRatio <= 1))
    throw new ConfigError(`minLrRatio expects [0, 1], got ${c.minLrRatio}`);
  if (!(c.likelihoodLrScale > 0))
    throw new ConfigError(`likelihoodLrScale expects a number > 0, got ${c.likelihoodLrScale}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new ConfigError(`dropout expects [0, 1), got ${c.dropout}`);
  if (!(c.weightDecay >= 0) || !(c.gradClip >= 0) || !(c.harmlessWeight >= 0)) {
    throw new ConfigError('weightDecay, gradClip and harmlessWeight expect numbers ≥ 0');
  }
  validateHardware(c);
  if (!c.data) throw new ConfigError('data is required: one or more comparison files, comma-separated');
}
