// Training checkpoints on disk, written so that a crash (kill -9, power loss) at any instant leaves the
// previous checkpoint or the new one, never a mix (the layout and the link are util/step-folders.ts's):
//
//   OUT/checkpoints/step-000200/   model (config.json, model.safetensors, tokenizer.json, hhkit.json)
//                                  + trainer.json (step, data position, config, losses)
//                                  + trainer-state.safetensors (AdamW moments, every rank's RNG states)
//   OUT/checkpoint -> checkpoints/step-000200      the latest complete one (symlink)
//
// A step folder is written atomically by saveCheckpoint (temp folder + rename, trainer files included);
// then the `checkpoint` symlink is replaced by rename (atomic on POSIX), so readers — `--resume`, or a
// later stage loading OUT/checkpoint — only ever see complete folders.
//
// The RNG states are each rank's CPU generator and, on a GPU, its CUDA generator (dropout draws from the
// generator of the device it runs on): a resumed run, one process or data-parallel, CPU or CUDA, draws
// the same dropout masks as an uninterrupted one.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AdamW,
  allGatherBytes,
  broadcast,
  encodeSafetensors,
  fromBytes,
  GradientReducer,
  getRngState,
  loadSafetensors,
  manualSeed,
  type OptimizerState,
  setRngState,
  type Tensor,
} from '../engine/index.ts';
import { CheckpointError } from '../nn/checkpoint.ts';
import { truncateMetrics } from '../util/metrics.ts';
import {
  commitStepFolder,
  latestStepFolder,
  pruneStepFolders,
  stepFolderPath,
} from '../util/step-folders.ts';
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
  /** The generator states at the checkpoint (uint8), by name: see generatorStates. */
  generators: Record<string, Tensor>;
}

const TRAINER_FILE = 'trainer.json';
const STATE_FILE = 'trainer-state.safetensors';

/**
 * The folder of the training checkpoint of `step` in `out` (whether or not it is written yet).
 *
 * @example trainingCheckpointDir('runs/lm', 200) // 'runs/lm/checkpoints/step-000200'
 */
export const trainingCheckpointDir = stepFolderPath;

/** The folder `OUT/checkpoint` points at, or null when there is none yet. */
export const latestCheckpointDir = (out: string): string | null => latestStepFolder(out, TRAINER_FILE);

// Names of the generator states in trainer-state.safetensors. Checkpoints from before per-rank states
// hold rank 0's CPU state alone, as 'rng'.
const cpuGenerator = (rank: number): string => `rng.cpu.${rank}`;
const cudaGenerator = (rank: number): string => `rng.cuda.${rank}`;
const LEGACY_GENERATOR = 'rng';

/**
 * Every rank's generator states for a checkpoint — its CPU generator and, when `device` is a GPU, that
 * device's CUDA generator — gathered onto every rank (rank 0 writes them). A collective: every rank calls
 * it at the same step. The caller frees the tensors.
 *
 * @example const generators = generatorStates(device); // { 'rng.cpu.0': …, 'rng.cpu.1': … } under launch --nproc 2
 */
export function generatorStates(device: string): Record<string, Tensor> {
  const states: Record<string, Tensor> = {};
  const gather = (name: (rank: number) => string, on: string): void => {
    const local = getRngState(on);
    const bytes = local.toBytes();
    local.dispose();
    allGatherBytes(bytes).forEach((b, rank) => {
      states[name(rank)] = fromBytes(b, 'uint8', [b.length]);
    });
  };
  gather(cpuGenerator, 'cpu');
  if (device.startsWith('cuda')) gather(cudaGenerator, device);
  return states;
}

/** Extra files a model writer must put into the checkpoint folder in the same atomic step. */
export type CheckpointFiles = Record<string, string | Uint8Array>;

/**
 * Writes a training checkpoint for `trainer.step` and makes it the latest. `writeModel(dir, files)` must
 * write the model and `files` into `dir` atomically (saveCheckpoint does, with its `files` option).
 * `generators` are generatorStates' (every rank's). Keeps the newest `keep` step folders.
 *
 * @example
 * writeTrainingCheckpoint('runs/lm', trainer, opt.state(), generatorStates(device),
 *   (dir, files) => saveCheckpoint(dir, { model, meta, files }), 2);
 */
export function writeTrainingCheckpoint(
  out: string,
  trainer: TrainerState<unknown>,
  optimizer: OptimizerState,
  generators: Record<string, Tensor>,
  writeModel: (dir: string, files: CheckpointFiles) => void,
  keep: number,
): string {
  const tensors: Record<string, Tensor> = { ...generators };
  for (const [key, t] of Object.entries(optimizer.tensors)) tensors[`optimizer.${key}`] = t;
  const files: CheckpointFiles = {
    [STATE_FILE]: encodeSafetensors(tensors, {
      optimizerStep: String(optimizer.step),
      lrs: JSON.stringify(optimizer.lrs),
    }),
    // trainer.json is what marks a folder as a training checkpoint (see latestCheckpointDir).
    [TRAINER_FILE]: `${JSON.stringify(trainer, null, 2)}\n`,
  };
  return commitStepFolder(out, trainer.step, (dir) => writeModel(dir, files), keep);
}

/**
 * The JSON object in a checkpoint's state file (trainer.json here, rl's run-state.json): a damaged file
 * (truncated, edited by hand) is a CheckpointError naming it (exit 2), not a raw SyntaxError; a state
 * without an integer `step` is damaged too.
 */
export function readStateFile<S>(path: string, what = 'trainer state'): S {
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
    if (!Number.isInteger((value as { step?: unknown }).step)) throw new Error('no integer "step"');
    return value as S;
  } catch (err) {
    throw new CheckpointError(
      `${path}: not a valid ${what} (${(err as Error).message}); restore it, resume from an older folder under checkpoints/, or use another --out`,
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
  const trainer = readStateFile<S>(join(dir, TRAINER_FILE));
  const statePath = join(dir, STATE_FILE);
  const { tensors, metadata } = loadSafetensors(statePath);
  const moments: Record<string, Tensor> = {};
  const generators: Record<string, Tensor> = {};
  for (const [key, t] of Object.entries(tensors)) {
    if (key.startsWith('optimizer.')) moments[key.slice('optimizer.'.length)] = t;
    else if (key === LEGACY_GENERATOR) generators[cpuGenerator(0)] = t;
    else if (key.startsWith('rng.')) generators[key] = t;
    else t.dispose();
  }
  if (!generators[cpuGenerator(0)]) {
    for (const t of [...Object.values(moments), ...Object.values(generators)]) t.dispose();
    throw new CheckpointError(`${statePath}: no RNG state ('${cpuGenerator(0)}'); the checkpoint is damaged`);
  }
  const optimizer: OptimizerState = {
    step: Number(metadata['optimizerStep']),
    lrs: JSON.parse(metadata['lrs'] ?? '[]') as number[],
    tensors: moments,
  };
  return { dir, trainer, optimizer, generators };
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
 * checkpoint's step, the step folders pruned (a killed run may have left one too many), and each rank
 * takes its own generator states from the checkpoint (CPU, and CUDA when `device` is a GPU), so dropout
 * goes on with the same masks as an uninterrupted run. A rank without a
 * saved state (a checkpoint of fewer processes, or from before per-rank states; a CPU checkpoint resumed
 * on a GPU) draws a fresh stream seeded by (seed, rank, step). Fresh: one dropout stream per rank and an
 * empty metrics.jsonl. Then every rank takes rank 0's weights, and the returned reducer sums gradients
 * over ranks during backward (a no-op on one process). Frees the checkpoint's tensors; only rank 0
 * writes metrics.
 *
 * @example
 * const reducer = startTrainingRun({ ckpt, optimizer, params, metricsPath, seed: 1, rank: 0, device: 'cpu',
 *   out: 'runs/lm', keepCheckpoints: 2 });
 */
export function startTrainingRun(opts: {
  ckpt: LoadedTrainingCheckpoint<TrainerState<unknown>> | null;
  optimizer: AdamW;
  params: readonly Tensor[];
  metricsPath: string;
  seed: number;
  rank: number;
  /** The device the run trains on ('cpu', 'cuda', 'cuda:1'): whose generator dropout draws from. */
  device: string;
  /** The run folder and how many step folders it keeps (a resume prunes what a killed run left). */
  out: string;
  keepCheckpoints: number;
}): GradientReducer {
  const { ckpt, rank, seed, metricsPath, device } = opts;
  const main = rank === 0;
  if (ckpt) {
    opts.optimizer.loadState(ckpt.optimizer);
    const cpu = ckpt.generators[cpuGenerator(rank)];
    const cuda = device.startsWith('cuda') ? ckpt.generators[cudaGenerator(rank)] : undefined;
    // A fresh stream first (it seeds the CPU and every CUDA generator) for whatever was not saved.
    if (!cpu || (device.startsWith('cuda') && !cuda)) manualSeed(seed + rank + 7919 * ckpt.trainer.step);
    if (cpu) setRngState(cpu);
    if (cuda) setRngState(cuda, device);
    for (const t of [...Object.values(ckpt.generators), ...Object.values(ckpt.optimizer.tensors)])
      t.dispose();
    if (main) truncateMetrics(metricsPath, ckpt.trainer.step);
    if (main) pruneStepFolders(opts.out, opts.keepCheckpoints);
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
