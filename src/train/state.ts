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
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import {
  type AdamW,
  broadcast,
  encodeSafetensors,
  GradientReducer,
  loadSafetensors,
  manualSeed,
  type OptimizerState,
  setRngState,
  type Tensor,
} from '../engine/index.ts';
import { CheckpointError } from '../nn/checkpoint.ts';
import { truncateMetrics } from '../util/metrics.ts';
import { ConfigError, type LMTrainConfig } from './config.ts';

/** What, besides the model and the optimiser, a resume needs (trainer.json); C is the trainer's config. */
export interface TrainerState<C = LMTrainConfig> {
  /** Optimiser steps completed. */
  step: number;
  /** Examples handed out by the data order so far (its whole state). */
  examplesSeen: number;
  tokensSeen: number;
  /** Training loss of the run's first step, and of the last step before this checkpoint. */
  firstLoss: number;
  lastLoss: number;
  lastEvalLoss: number | null;
  config: C;
}

/** The trainer state before the first step. */
export function initialTrainerState<C>(config: C): TrainerState<C> {
  return {
    step: 0,
    examplesSeen: 0,
    tokensSeen: 0,
    firstLoss: Number.NaN,
    lastLoss: Number.NaN,
    lastEvalLoss: null,
    config,
  };
}

export interface LoadedTrainingCheckpoint<S extends TrainerState<unknown> = TrainerState> {
  /** The step folder (a model checkpoint that loadCheckpoint reads). */
  dir: string;
  trainer: S;
  optimizer: OptimizerState;
  /** The CPU generator state at the checkpoint (uint8). */
  rng: Tensor;
}

const LATEST = 'checkpoint';
const TRAINER_FILE = 'trainer.json';
const STATE_FILE = 'trainer-state.safetensors';
const stepName = (step: number): string => `step-${String(step).padStart(6, '0')}`;

/**
 * The folder of the training checkpoint of `step` in `out` (whether or not it is written yet).
 *
 * @example trainingCheckpointDir('runs/lm', 200) // 'runs/lm/checkpoints/step-000200'
 */
export const trainingCheckpointDir = (out: string, step: number): string =>
  join(out, 'checkpoints', stepName(step));

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
  trainer: TrainerState<unknown>,
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
  const final = trainingCheckpointDir(out, trainer.step);
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

// A damaged trainer.json (truncated, edited by hand) is a CheckpointError naming the file, not a raw SyntaxError.
function readTrainerFile<S>(path: string): S {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CheckpointError(
      `${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new Error('expected a JSON object');
    return value as S;
  } catch (err) {
    throw new CheckpointError(
      `${path}: not a valid trainer state (${(err as Error).message}); restore it, resume from an older folder under checkpoints/, or use another --out`,
    );
  }
}

/**
 * Reads the latest training checkpoint of `out`, or null when there is none.
 *
 * @example const ckpt = readTrainingCheckpoint('runs/lm'); ckpt?.trainer.step // 200
 */
export function readTrainingCheckpoint<S extends TrainerState<unknown> = TrainerState>(
  out: string,
): LoadedTrainingCheckpoint<S> | null {
  const dir = latestCheckpointDir(out);
  if (dir === null) return null;
  const trainer = readTrainerFile<S>(join(dir, TRAINER_FILE));
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
 * The checkpoint a run continues from: the latest in `out` when `resume`, null when there is none; an
 * existing checkpoint without `resume` is a ConfigError (a run never overwrites another silently).
 */
export function resumableCheckpoint<S extends TrainerState<unknown> = TrainerState>(
  out: string,
  resume: boolean | undefined,
): LoadedTrainingCheckpoint<S> | null {
  const ckpt = readTrainingCheckpoint<S>(out);
  if (ckpt && !resume) {
    throw new ConfigError(`${out} already has a checkpoint (${ckpt.dir}); resume it or choose another out`);
  }
  return ckpt;
}

/**
 * The rank-aware start of a training run, once the model is built (and on resume holds the checkpoint's
 * weights) and the optimiser exists. Resuming: the AdamW moments and metrics.jsonl cut back to the
 * checkpoint's step; rank 0 takes the checkpoint's RNG state and the other ranks fresh dropout streams.
 * Fresh: one dropout stream per rank and an empty metrics.jsonl. Then every rank takes rank 0's weights,
 * and the returned reducer sums gradients over ranks during backward (a no-op on one process). Frees the
 * checkpoint's tensors; only rank 0 writes metrics.
 *
 * @example const reducer = startTrainingRun({ ckpt, optimizer, params, metricsPath, seed: 1, rank: 0 });
 */
export function startTrainingRun(opts: {
  ckpt: LoadedTrainingCheckpoint<TrainerState<unknown>> | null;
  optimizer: AdamW;
  params: readonly Tensor[];
  metricsPath: string;
  seed: number;
  rank: number;
}): GradientReducer {
  const { ckpt, rank, seed, metricsPath } = opts;
  const main = rank === 0;
  if (ckpt) {
    opts.optimizer.loadState(ckpt.optimizer);
    if (main) setRngState(ckpt.rng);
    else manualSeed(seed + rank + 7919 * ckpt.trainer.step);
    for (const t of [ckpt.rng, ...Object.values(ckpt.optimizer.tensors)]) t.dispose();
    if (main) truncateMetrics(metricsPath, ckpt.trainer.step);
  } else {
    manualSeed(seed + rank);
    if (main) writeFileSync(metricsPath, '');
  }
  // Every rank starts from rank 0's weights (they agree already when all read the same init or checkpoint).
  broadcast(opts.params, 0);
  return new GradientReducer(opts.params);
}

/**
 * The end of a run started by startTrainingRun: removes the reducer's hooks and frees the weights and the
 * optimiser's moments. Returns the parameter count (for the run summary).
 */
export function endTrainingRun(
  reducer: GradientReducer,
  params: readonly Tensor[],
  optimizer: AdamW,
): number {
  reducer.dispose();
  const parameters = params.reduce((n, p) => n + p.numel, 0);
  for (const t of [...params, ...Object.values(optimizer.state().tensors)]) t.dispose();
  return parameters;
}
