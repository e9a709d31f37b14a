// Writing a trained LM as an hhkit checkpoint folder (nn/checkpoint.ts) with its hhkit.json.
import { type HhkitMeta, saveCheckpoint } from '../nn/checkpoint.ts';
import type { CausalLM } from '../nn/causal-lm.ts';
import type { CheckpointFiles, TrainerState } from './state.ts';

/**
 * Saves `model` to `dir` (atomically, with `files` beside it) as kind 'lm' (pretrained or SFT, told
 * apart by training.stage), recording the training config, the step and the latest losses in
 * hhkit.json. Lineage is the init checkpoint, if any.
 *
 * @example saveLMCheckpoint('runs/lm/checkpoints/step-000200', model, trainer, 'runs/lm/tokenizer.json', {});
 */
export function saveLMCheckpoint(
  dir: string,
  model: CausalLM,
  trainer: TrainerState,
  tokenizerPath: string,
  files: CheckpointFiles,
): void {
  const c = trainer.config;
  const meta: HhkitMeta = {
    kind: 'lm',
    lineage: c.init ? [c.init] : [],
    training: { stage: c.lossOn === 'assistant' ? 'sft' : 'pretrain', ...c },
    metrics: {
      step: trainer.step,
      tokens: trainer.tokensSeen,
      loss: trainer.lastLoss,
      evalLoss: trainer.lastEvalLoss,
    },
    step: trainer.step,
  };
  saveCheckpoint(dir, { model, meta, tokenizerPath, files });
}
