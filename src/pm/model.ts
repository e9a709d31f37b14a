// The preference model (Bai et al. 2022 §2.2): a causal LM trunk of any family with a scalar head whose
// score is read at the end-of-context token appended to the transcript. Saved as an ordinary hhkit
// checkpoint of kind 'pm': the trunk's tensors under its family's names plus `score.weight` / `score.bias`,
// and, for a PM with the likelihood feature (likelihood.ts), `likelihood.weight` and the frozen LM's tensors
// under `likelihood.lm.` with its config and turn tokens in hhkit.json's `likelihood`.
import type { Tensor } from '../engine/index.ts';
import type { CausalLM, CausalLMConfig } from '../nn/causal-lm.ts';
import { CheckpointError, type HhkitMeta, loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.ts';
import { ScalarHead } from '../nn/heads.ts';
import {
  createCausalLM,
  type FamilyConfig,
  familyConfigFromHf,
  hfConfigOf,
  withDropout,
} from '../nn/hf-config.ts';
import { Module, prefixKeys, stripPrefix } from '../nn/module.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import type { SequenceBatch } from './batch.ts';
import { LikelihoodFeature, type LikelihoodTokens } from './likelihood.ts';

/**
 * LM trunk + ScalarHead. `scores(batch)` is one number per row: the head applied to the final hidden state
 * at that row's END_OF_CONTEXT token.
 *
 * @example
 * const pm = PreferenceModel.fresh({ family: 'gpt2', config: { ...gptPresets.tiny, vocabSize: tok.vocabSize } }, 1);
 * const scores = pm.scores(padSequences((await encodeTranscripts(tok, texts, 32)).ids, tok.padId)); // (N)
 */
export class PreferenceModel extends Module {
  readonly trunk: CausalLM;
  readonly head: ScalarHead;
  /** The likelihood feature (a frozen LM and a learned weight), or null: the paper's plain PM. */
  readonly likelihood: LikelihoodFeature | null;

  constructor(trunk: CausalLM, head: ScalarHead, likelihood: LikelihoodFeature | null = null) {
    super();
    // Registered as 'gpt', the name parameter lists had when every trunk was a GPT-2.
    this.trunk = this.module('gpt', trunk);
    this.head = this.module('score', head);
    this.likelihood = likelihood ? this.module('likelihood', likelihood) : null;
  }

  /** A copy of this PM with the likelihood feature over `lm` (frozen; its weight starts at 0). */
  withLikelihood(lm: CausalLM, tokens: LikelihoodTokens): PreferenceModel {
    if (lm.lmConfig.vocabSize !== this.config.vocabSize) {
      throw new CheckpointError(
        `likelihood LM: vocabulary ${lm.lmConfig.vocabSize} ≠ the PM's ${this.config.vocabSize} (it must share the PM's tokenizer)`,
      );
    }
    if (lm.device !== this.trunk.device) lm.to({ device: this.trunk.device });
    return new PreferenceModel(this.trunk, this.head, new LikelihoodFeature(lm, tokens));
  }

  /** Frees every tensor of the PM, the frozen likelihood LM's included. */
  dispose(): void {
    const lm = this.likelihood?.lm;
    for (const [, t] of [
      ...this.namedParameters(),
      ...this.namedBuffers(),
      ...(lm ? [...lm.namedParameters(), ...lm.namedBuffers()] : []),
    ])
      t.dispose();
  }

  /** Moves the trunk, head and likelihood weight (Module.to), and the frozen LM, which is not a parameter. */
  override to(target: Parameters<Module['to']>[0]): this {
    super.to(target);
    this.likelihood?.lm.to(target);
    return this;
  }

  /** A randomly initialised PM (no pretraining) of the given family, seeded. */
  static fresh(family: FamilyConfig, seed: number): PreferenceModel {
    const trunk = createCausalLM(family, { seed });
    return new PreferenceModel(trunk, new ScalarHead(trunk.lmConfig.hiddenSize, { seed: seed + 1 }));
  }

  /** The trunk's family-neutral sizes (maxPositions, vocabSize, …). */
  get config(): CausalLMConfig {
    return this.trunk.lmConfig;
  }

  /** Scores of a padded batch: (N). */
  scores(batch: SequenceBatch): Tensor {
    // Batches are built on the CPU; they go where the weights are.
    const device = this.trunk.device;
    const place = (t: Tensor): Tensor => (t.device === device ? t : t.to({ device }));
    // Only the end-of-context positions go through the last block (readout): hidden is (N, 1, C). The
    // readout stays where the batch was built: runBlocks checks its bounds there (no device sync) and moves it.
    const { hidden } = this.trunk.forwardHidden(place(batch.ids), {
      attentionMask: place(batch.attentionMask),
      readout: batch.readout,
    });
    const score = this.head.forward(hidden).squeeze(1); // (N)
    return this.likelihood ? score.add(this.likelihood.term(batch)) : score;
  }
}

/** The likelihood feature's tokens from a tokenizer with hhkit's turn markers; a clear error without them. */
export function likelihoodTokens(tokenizer: Tokenizer, source: string): LikelihoodTokens {
  const assistant = tokenizer.assistantTurnId;
  const human = tokenizer.humanTurnId;
  if (assistant === undefined || human === undefined) {
    throw new CheckpointError(
      `${source}: the likelihood feature needs a tokenizer with hhkit's turn markers ("\n\nHuman:", "\n\nAssistant:" as single tokens) to find the response`,
    );
  }
  return { assistantTurnId: assistant, stopIds: [tokenizer.eosId, human] };
}

export interface LoadedPreferenceModel {
  pm: PreferenceModel;
  meta: HhkitMeta | null;
  tokenizerPath: string | null;
  /** True when the folder held a trained score head (kind 'pm'); false for an LM given a fresh head. */
  hadHead: boolean;
}

/**
 * Loads a PM checkpoint, or an LM checkpoint (hhkit's, or a Hugging Face folder of any supported family) with a freshly initialised
 * head (seeded by `seed`): the start of PMP or of finetuning. `dropout` overrides the saved config's.
 *
 * @example const { pm } = loadPreferenceModel('runs/pm/checkpoint');
 */
export function loadPreferenceModel(
  dir: string,
  opts: { seed?: number; dropout?: number; allowNonFinite?: boolean } = {},
): LoadedPreferenceModel {
  const loaded = loadCheckpoint(dir, { allowNonFinite: opts.allowNonFinite ?? false });
  const trunk = opts.dropout === undefined ? loaded.model : withDropout(loaded.model, opts.dropout);
  const head = new ScalarHead(trunk.lmConfig.hiddenSize, { seed: opts.seed ?? 1 });
  const headTensors = stripPrefix(loaded.extra, 'score');
  const hadHead = Object.keys(headTensors).length > 0;
  if (loaded.meta?.kind === 'pm' && !hadHead) {
    throw new CheckpointError(`${dir}: kind is 'pm' but model.safetensors has no score.* tensors`);
  }
  if (hadHead) head.loadStateDict(headTensors);
  const likelihood = loadLikelihood(dir, loaded.meta, loaded.extra, trunk.device);
  for (const t of Object.values(loaded.extra)) t.dispose();
  return {
    pm: new PreferenceModel(trunk, head, likelihood),
    meta: loaded.meta,
    tokenizerPath: loaded.tokenizerPath,
    hadHead,
  };
}

/** hhkit.json's record of a PM's likelihood feature. */
interface LikelihoodMeta {
  /** The frozen LM's config.json. */
  config: Record<string, unknown>;
  assistantTurnId: number;
  stopIds: number[];
}

function loadLikelihood(
  dir: string,
  meta: HhkitMeta | null,
  extra: Record<string, Tensor>,
  device: string,
): LikelihoodFeature | null {
  const m = meta?.['likelihood'] as LikelihoodMeta | undefined;
  if (!m) return null;
  const weight = extra['likelihood.weight'];
  const lmTensors = stripPrefix(extra, 'likelihood.lm');
  if (!weight || Object.keys(lmTensors).length === 0) {
    throw new CheckpointError(
      `${dir}: hhkit.json names a likelihood feature but model.safetensors lacks ${weight ? 'the likelihood.lm.* tensors' : 'likelihood.weight'}`,
    );
  }
  const lm = createCausalLM(familyConfigFromHf(m.config, `${dir}/hhkit.json likelihood.config`), { device });
  lm.loadStateDict(lmTensors);
  const feature = new LikelihoodFeature(lm, { assistantTurnId: m.assistantTurnId, stopIds: m.stopIds });
  feature.loadStateDict({ weight });
  return feature;
}

/**
 * Writes `pm` as a checkpoint folder of kind 'pm' (atomically, with `files` beside it).
 *
 * @example savePreferenceModel('runs/pm/final', pm, { kind: 'pm', lineage: ['runs/lm/checkpoint'] }, 'tok.json');
 */
export function savePreferenceModel(
  dir: string,
  pm: PreferenceModel,
  meta: HhkitMeta,
  tokenizerPath?: string,
  files?: Record<string, string | Uint8Array>,
): void {
  const f = pm.likelihood;
  const likelihood: LikelihoodMeta | null = f
    ? {
        config: hfConfigOf(f.lm, f.lm.dtype),
        assistantTurnId: f.tokens.assistantTurnId,
        stopIds: f.tokens.stopIds,
      }
    : null;
  saveCheckpoint(dir, {
    model: pm.trunk,
    extra: {
      ...prefixKeys(pm.head.stateDict(), 'score'),
      ...(f
        ? { ...prefixKeys(f.stateDict(), 'likelihood'), ...prefixKeys(f.lm.stateDict(), 'likelihood.lm') }
        : {}),
    },
    // A stale `likelihood` from the init's meta never describes a PM without one.
    meta: { ...withoutKey(meta, 'likelihood'), kind: 'pm', ...(likelihood ? { likelihood } : {}) },
    ...(tokenizerPath ? { tokenizerPath } : {}),
    ...(files ? { files } : {}),
  });
}

function withoutKey(meta: HhkitMeta, key: string): HhkitMeta {
  const copy = { ...meta };
  delete copy[key];
  return copy;
}
