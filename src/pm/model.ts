// The preference model (Bai et al. 2022 §2.2): a causal LM trunk of any family with a scalar head whose
// score is read at the end-of-context token appended to the transcript. Saved as an ordinary hhkit
// checkpoint of kind 'pm': the trunk's tensors under its family's names plus `score.weight` / `score.bias`.
import type { Tensor } from '../engine/index.ts';
import type { CausalLM, CausalLMConfig } from '../nn/causal-lm.ts';
import { CheckpointError, type HhkitMeta, loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.ts';
import { ScalarHead } from '../nn/heads.ts';
import { createCausalLM, type FamilyConfig, withDropout } from '../nn/hf-config.ts';
import { Module, prefixKeys, stripPrefix } from '../nn/module.ts';
import type { SequenceBatch } from './batch.ts';

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

  constructor(trunk: CausalLM, head: ScalarHead) {
    super();
    // Registered as 'gpt', the name parameter lists had when every trunk was a GPT-2.
    this.trunk = this.module('gpt', trunk);
    this.head = this.module('score', head);
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
    const { hidden } = this.trunk.forwardHidden(place(batch.ids), {
      attentionMask: place(batch.attentionMask),
    }); // (N, T, C)
    return this.head.score(hidden, place(batch.readout));
  }
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
  for (const t of Object.values(loaded.extra)) t.dispose();
  return {
    pm: new PreferenceModel(trunk, head),
    meta: loaded.meta,
    tokenizerPath: loaded.tokenizerPath,
    hadHead,
  };
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
  saveCheckpoint(dir, {
    model: pm.trunk,
    extra: prefixKeys(pm.head.stateDict(), 'score'),
    meta: { ...meta, kind: 'pm' },
    ...(tokenizerPath ? { tokenizerPath } : {}),
    ...(files ? { files } : {}),
  });
}
