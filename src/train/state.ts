// Training checkpoints on disk, written so that a crash (kill -9, power loss) at any instant leaves the
// previous checkpoint or the new one, never a mix:
//
//   OUT/checkpoints/step-000200/   model (config.json, model.safetensors, tokenizer.json, hhkit.json)
//                                  + trainer.json (step, data position, config, losses)
//                                  + trainer-state.safetensors (AdamW moments, RNG state)
//   OUT/checkpoint -> checkpoints/step-000200      the latest complete one (symlink)
//
// A step folder is written atomically by saveCheckpoint (temp folder + rename, trainer files included);
// then the `checkpoint` symlink is replaced by rename (atomic on POSIX), so readers — `--resume`, or a
// later stage loading OUT/checkpoint — only ever see complete folders.
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import {
  type AdamW,
  encodeSafetensors,
  loadSafetensors,
  type OptimizerState,
  setRngState,
  type Tensor,
} from '../engine/index.ts';
import { truncateMetrics } from '../util/metrics.ts';
import type { LMTrainConfig } from './config.ts';

/** What, besides the model and the optimiser, a resume needs (trainer.json). */
export interface TrainerState {
  /** Optimiser steps completed. */
  step: number;
  /** Examples handed out by the data order so far (its whole state). */
  examplesSeen: number;
  tokensSeen: number;
  /** Training loss of the run's first step, and of the last step before this checkpoint. */
  firstLoss: number;
  lastLoss: number;
  lastEvalLoss: number | null;
  config: LMTrainConfig;
}

export interface LoadedTrainingCheckpoint {
  /** The step folder (a model checkpoint that loadCheckpoint reads). */
  dir: string;
  trainer: TrainerState;
  optimizer: OptimizerState;
  /** The CPU generator state at the checkpoint (uint8). */
  rng: Tensor;
}

const LATEST = 'checkpoint';
const TRAINER_FILE = 'trainer.json';
const STATE_FILE = 'trainer-state.safetensors';
const stepName = (step: number): string => `step-${String(step).padStart(6, '0')}`;

/** The folder `OUT/checkpoint` points at, or null when there is none yet. */
export function latestCheckpointDir(out: string): string | null {
  const link = join(out, LATEST);
  try {
    const target = readlinkSync(link);
    const dir = join(out, target);
    return existsSync(join(dir, TRAINER_FILE)) ? dir : null;
  } catch {
    return null;
  }
}

/** Extra files a model writer must put into the checkpoint folder in the same atomic step. */
export type CheckpointFiles = Record<string, string | Uint8Array>;

/**
 * Writes a training checkpoint for `trainer.step` and makes it the latest. `writeModel(dir, files)` must
 * write the model and `files` into `dir` atomically (saveCheckpoint does, with its `files` option).
 * Keeps the newest `keep` step folders.
 *
 * @example
 * writeTrainingCheckpoint('runs/lm', trainer, opt.state(), getRngState(),
 *   (dir, files) => saveCheckpoint(dir, { model, meta, files }), 2);
 */
export function writeTrainingCheckpoint(
  out: string,
  trainer: TrainerState,
  optimizer: OptimizerState,
  rng: Tensor,
  writeModel: (dir: string, files: CheckpointFiles) => void,
  keep: number,
): string {
  const parent = join(out, 'checkpoints');
  mkdirSync(parent, { recursive: true });
  const name = stepName(trainer.step);
  const tensors: Record<string, Tensor> = { rng };
  for (const [key, t] of Object.entries(optimizer.tensors)) tensors[`optimizer.${key}`] = t;
  const files: CheckpointFiles = {
    [STATE_FILE]: encodeSafetensors(tensors, {
      optimizerStep: String(optimizer.step),
      lrs: JSON.stringify(optimizer.lrs),
    }),
    // trainer.json is what marks a folder as a training checkpoint (see latestCheckpointDir).
    [TRAINER_FILE]: `${JSON.stringify(trainer, null, 2)}\n`,
  };
  const final = join(parent, name);
  writeModel(final, files);
  const link = join(out, `.${LATEST}.tmp-${process.pid}`);
  rmSync(link, { force: true });
  symlinkSync(join('checkpoints', name), link);
  renameSync(link, join(out, LATEST));
  prune(out, parent, keep);
  return final;
}

// Removes step folders beyond the newest `keep` and temporary folders of crashed writers.
function prune(out: string, parent: string, keep: number): void {
  const latest = latestCheckpointDir(out);
  const steps = readdirSync(parent)
    .filter((n) => /^step-\d+$/.test(n))
    .sort();
  const doomed = steps.slice(0, Math.max(0, steps.length - keep));
  for (const n of doomed) {
    if (latest !== null && basename(latest) === n) continue;
    rmSync(join(parent, n), { recursive: true, force: true });
  }
  // Leftovers of writes that a crash interrupted (never pointed at by OUT/checkpoint).
  for (const n of readdirSync(parent)) {
    if (n.startsWith('.step-')) rmSync(join(parent, n), { recursive: true, force: true });
  }
}

/**
 * Reads the latest training checkpoint of `out`, or null when there is none.
 *
 * @example const ckpt = readTrainingCheckpoint('runs/lm'); ckpt?.trainer.step // 200
 */
export function readTrainingCheckpoint(out: string): LoadedTrainingCheckpoint | null {
  const dir = latestCheckpointDir(out);
  if (dir === null) return null;
  const trainer = JSON.parse(readFileSync(join(dir, TRAINER_FILE), 'utf8')) as TrainerState;
  const { tensors, metadata } = loadSafetensors(join(dir, STATE_FILE));
  const rng = tensors['rng'];
  if (!rng) throw new Error(`${join(dir, STATE_FILE)}: no 'rng' tensor`);
  const moments: Record<string, Tensor> = {};
  for (const [key, t] of Object.entries(tensors)) {
    if (key.startsWith('optimizer.')) moments[key.slice('optimizer.'.length)] = t;
  }
  const optimizer: OptimizerState = {
    step: Number(metadata['optimizerStep']),
    lrs: JSON.parse(metadata['lrs'] ?? '[]') as number[],
    tensors: moments,
  };
  return { dir, trainer, optimizer, rng };
}

/**
 * Restores what a training checkpoint holds besides the weights (the caller loads those): the AdamW
 * moments, the RNG state, and metrics.jsonl cut back to the checkpoint's step. Frees the checkpoint's
 * tensors.
 *
 * @example restoreTrainingState(ckpt, optimizer, 'runs/lm/metrics.jsonl');
 */
export function restoreTrainingState(
  ckpt: LoadedTrainingCheckpoint,
  optimizer: AdamW,
  metricsPath: string | null,
): void {
  optimizer.loadState(ckpt.optimizer);
  setRngState(ckpt.rng);
  for (const t of [ckpt.rng, ...Object.values(ckpt.optimizer.tensors)]) t.dispose();
  if (metricsPath !== null) truncateMetrics(metricsPath, ckpt.trainer.step);
}
