// Run folders of the RL commands (distill, ppo), laid out as src/train's:
//   OUT/checkpoints/step-000040/   a model checkpoint (saveCheckpoint: atomic) + the run's state files
//   OUT/checkpoint -> checkpoints/step-000040   the latest complete one (symlink, replaced by rename)
//   OUT/metrics.jsonl              one JSON line per step / eval
// A kill at any instant leaves the previous checkpoint or the new one; `--resume` continues from it.
import { truncateMetrics as truncateMetricsLines } from '../util/metrics.ts';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { join } from 'node:path';

const LATEST = 'checkpoint';
export const RUN_STATE_FILE = 'run-state.json';
export const stepFolderName = (step: number): string => `step-${String(step).padStart(6, '0')}`;

/** The folder OUT/checkpoint points at, or null when none is complete yet. */
export function latestRunCheckpoint(out: string): string | null {
  try {
    const dir = join(out, readlinkSync(join(out, LATEST)));
    return existsSync(join(dir, RUN_STATE_FILE)) ? dir : null;
  } catch {
    return null;
  }
}

/** The run state (step, controller values, …) of a checkpoint folder. */
export function readRunState<T>(dir: string): T {
  return JSON.parse(readFileSync(join(dir, RUN_STATE_FILE), 'utf8')) as T;
}

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
  const parent = join(out, 'checkpoints');
  mkdirSync(parent, { recursive: true });
  const name = stepFolderName(step);
  const dir = join(parent, name);
  write(dir, { ...files, [RUN_STATE_FILE]: `${JSON.stringify(state, null, 2)}\n` });
  const link = join(out, `.${LATEST}.tmp-${process.pid}`);
  rmSync(link, { force: true });
  symlinkSync(join('checkpoints', name), link);
  renameSync(link, join(out, LATEST));
  const steps = readdirSync(parent)
    .filter((n) => /^step-\d+$/.test(n))
    .sort();
  for (const n of steps.slice(0, Math.max(0, steps.length - keep))) {
    if (n !== name) rmSync(join(parent, n), { recursive: true, force: true });
  }
  for (const n of readdirSync(parent))
    if (n.startsWith('.step-')) rmSync(join(parent, n), { recursive: true, force: true });
  return dir;
}

/**
 * Keeps the lines of OUT/metrics.jsonl whose `step` is ≤ `step`, and those without a step (a resume drops
 * what the killed run logged after its last checkpoint, so the file reads as one uninterrupted run).
 */
export function truncateMetrics(path: string, step: number): void {
  truncateMetricsLines(path, step, { keepUnstepped: true });
}
