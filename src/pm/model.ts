// The preference model (Bai et al. 2022 §2.2): a GPT with a scalar head whose score is read at the
// end-of-context token appended to the transcript. Saved as an ordinary hhkit checkpoint of kind 'pm':
// the GPT's tensors under GPT-2 names plus `score.weight` / `score.bias` beside them.
import type { Tensor } from '../engine/index.ts';
import { CheckpointError, type HhkitMeta, loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.ts';
import { GPT, type GPTConfig } from '../nn/gpt.ts';
import { ScalarHead } from '../nn/heads.ts';
import { Module, prefixKeys, stripPrefix } from '../nn/module.ts';
import type { SequenceBatch } from './batch.ts';

/**
 * GPT + ScalarHead. `scores(batch)` is one number per row: the head applied to the final hidden state
 * at that row's END_OF_CONTEXT token.
 *
 * @example
 * const pm = PreferenceModel.fresh({ ...gptPresets.tiny, vocabSize: tok.vocabSize }, 1);
 * const scores = pm.scores(padSequences((await encodeTranscripts(tok, texts, 32)).ids, tok.padId)); // (N)
 */
export class PreferenceModel extends Module {
  readonly gpt: GPT;
  readonly head: ScalarHead;

  constructor(gpt: GPT, head: ScalarHead) {
    super();
    this.gpt = this.module('gpt', gpt);
    this.head = this.module('score', head);
  }

  /** A randomly initialised PM (no pretraining), seeded. */
  static fresh(config: GPTConfig, seed: number): PreferenceModel {
    return new PreferenceModel(new GPT(config, { seed }), new ScalarHead(config.nEmbd, { seed: seed + 1 }));
  }

  get config(): GPTConfig {
    return this.gpt.config;
  }

  /** Scores of a padded batch: (N). */
  scores(batch: SequenceBatch): Tensor {
    // Batches are built on the CPU; they go where the weights are.
    const device = this.gpt.device;
    const place = (t: Tensor): Tensor => (t.device === device ? t : t.to({ device }));
    const { hidden } = this.gpt.forwardHidden(place(batch.ids), {
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
 * Loads a PM checkpoint, or an LM checkpoint (hhkit or Hugging Face GPT-2) with a freshly initialised
 * head (seeded by `seed`): the start of PMP or of finetuning. `dropout` overrides the saved config's.
 *
 * @example const { pm } = loadPreferenceModel('runs/pm/checkpoint');
 */
export function loadPreferenceModel(
  dir: string,
  opts: { seed?: number; dropout?: number; allowNonFinite?: boolean } = {},
): LoadedPreferenceModel {
  const loaded = loadCheckpoint(dir, { allowNonFinite: opts.allowNonFinite ?? false });
  let gpt = loaded.model;
  if (opts.dropout !== undefined && opts.dropout !== gpt.config.dropout) {
    // Dropout is a constructor setting; rebuild with the same weights.
    gpt = new GPT({ ...loaded.config, dropout: opts.dropout });
    gpt.loadStateDict(loaded.model.stateDict());
    for (const p of loaded.model.parameters()) p.dispose();
  }
  const head = new ScalarHead(gpt.config.nEmbd, { seed: opts.seed ?? 1 });
  const headTensors = stripPrefix(loaded.extra, 'score');
  const hadHead = Object.keys(headTensors).length > 0;
  if (loaded.meta?.kind === 'pm' && !hadHead) {
    throw new CheckpointError(`${dir}: kind is 'pm' but model.safetensors has no score.* tensors`);
  }
  if (hadHead) head.loadStateDict(headTensors);
  for (const t of Object.values(loaded.extra)) t.dispose();
  return {
    pm: new PreferenceModel(gpt, head),
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
    model: pm.gpt,
    extra: prefixKeys(pm.head.stateDict(), 'score'),
    meta: { ...meta, kind: 'pm' },
    ...(tokenizerPath ? { tokenizerPath } : {}),
    ...(files ? { files } : {}),
  });
}
