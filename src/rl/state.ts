// Run folders of the RL commands (distill, ppo), laid out as every trainer's (util/step-folders.ts):
//   OUT/checkpoints/step-000040/   a model checkpoint (saveCheckpoint: atomic) + the run's state files
//   OUT/checkpoint -> checkpoints/step-000040   the latest complete one (symlink, replaced by rename)
//   OUT/metrics.jsonl              one JSON line per step / eval
// A kill at any instant leaves the previous checkpoint or the new one; `--resume` continues from it.
import { join } from 'node:path';
import type { Tokenizer } from '../tokenizer/index.ts';
import { readStateFile } from '../train/state.ts';
import { truncateMetrics as truncateMetricsLines } from '../util/metrics.ts';
import { commitStepFolder, latestStepFolder } from '../util/step-folders.ts';

export { pruneStepFolders, stepFolderName } from '../util/step-folders.ts';
export const RUN_STATE_FILE = 'run-state.json';

/** The folder OUT/checkpoint points at, or null when none is complete yet. */
export const latestRunCheckpoint = (out: string): string | null => latestStepFolder(out, RUN_STATE_FILE);

/**
 * The run state (step, controller values, …) of a checkpoint folder. A damaged run-state.json (truncated,
 * edited by hand) is a CheckpointError naming the file (exit 2), not a raw SyntaxError.
 */
export const readRunState = <T>(dir: string): T => readStateFile<T>(join(dir, RUN_STATE_FILE), 'run state');

/**
 * Writes OUT/checkpoints/step-N with `write(dir, files)` (which must write `files` into the folder in the
 * same atomic step, as saveCheckpoint's `files` option does), points OUT/checkpoint at it and keeps the
 * newest `keep` step folders.
 *
 * @example writeRunCheckpoint('runs/ppo', 40, { step: 40 }, {}, (dir, files) => saveCheckpoint(dir, { model, meta, files }), 2);
 */
export function writeRunCheckpoint(
  out: string,
  step: number,
  state: unknown,
  files: Record<string, string | Uint8Array>,
  write: (dir: string, files: Record<string, string | Uint8Array>) => void,
  keep: number,
): string {
  const all = { ...files, [RUN_STATE_FILE]: `${JSON.stringify(state, null, 2)}\n` };
  return commitStepFolder(out, step, (dir) => write(dir, all), keep);
}

/**
 * Keeps the lines of OUT/metrics.jsonl whose `step` is ≤ `step`, and those without a step (a resume drops
 * what the killed run logged after its last checkpoint, so the file reads as one uninterrupted run). With
 * `closingEval`, an `eval` line at `step` itself goes too: the closing evaluation a run writes after its
 * last checkpoint (distillation's), which the resumed run writes again.
 */
export function truncateMetrics(path: string, step: number, opts: { closingEval?: boolean } = {}): void {
  truncateMetricsLines(path, step, { keepUnstepped: true, ...opts });
}

/**
 * The tokenizer.json a run's checkpoints copy: the loaded checkpoint's, or, when the run's tokenizer
 * applies a chat template (--chat-template), OUT/tokenizer.json written by it — its tokenizer_config.json
 * marked, so later stages and serve render the same way without the flag (see Tokenizer.save). Only the
 * main process writes (`write` false on other ranks); every rank gets the same path.
 *
 * @example const tokenizerPath = runTokenizerPath(out, tokenizer, loaded.tokenizerPath, rank === 0);
 */
export function runTokenizerPath(
  out: string,
  tokenizer: Tokenizer,
  loadedPath: string | null,
  write = true,
): string | null {
  if (tokenizer.format.name === 'hh' || !loadedPath) return loadedPath;
  const path = join(out, 'tokenizer.json');
  if (write) tokenizer.save(path);
  return path;
}
