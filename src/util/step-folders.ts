// The step folders of a training run, one layout for every trainer (train/state.ts for the LM and PM
// trainers, rl/state.ts for distillation and PPO):
//   OUT/checkpoints/step-000200/                  one complete checkpoint, written atomically by its writer
//   OUT/checkpoint -> checkpoints/step-000200     the latest complete one (symlink, replaced by rename)
// A kill -9 at any instant leaves OUT/checkpoint at the previous folder or at the new one. What a killed
// writer leaves behind — a step folder never linked, a half-written `.step-*` sibling of saveCheckpoint, a
// `.checkpoint.tmp-*` link — is overwritten or removed by the next write, so it never changes a resume.
import { existsSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { basename, join } from 'node:path';

const LATEST = 'checkpoint';
const LINK_TMP = `.${LATEST}.tmp-`;

/** `step-000200` for step 200. */
export const stepFolderName = (step: number): string => `step-${String(step).padStart(6, '0')}`;

/**
 * The folder of the checkpoint of `step` in `out` (whether or not it is written yet).
 *
 * @example stepFolderPath('runs/lm', 200) // 'runs/lm/checkpoints/step-000200'
 */
export const stepFolderPath = (out: string, step: number): string =>
  join(out, 'checkpoints', stepFolderName(step));

/**
 * The folder OUT/checkpoint points at when it holds `marker` (the file that makes it a checkpoint of this
 * kind: trainer.json, run-state.json), else null.
 */
export function latestStepFolder(out: string, marker: string): string | null {
  try {
    const dir = join(out, readlinkSync(join(out, LATEST)));
    return existsSync(join(dir, marker)) ? dir : null;
  } catch {
    return null;
  }
}

/**
 * Writes the step folder of `step` with `write(dir)` (which must write it atomically, as saveCheckpoint
 * does), points OUT/checkpoint at it, then keeps the newest `keep` step folders and removes what killed
 * writers left. Returns the folder.
 *
 * @example commitStepFolder('runs/ppo', 40, (dir) => saveCheckpoint(dir, { model, meta, files }), 2);
 */
export function commitStepFolder(
  out: string,
  step: number,
  write: (dir: string) => void,
  keep: number,
): string {
  const parent = join(out, 'checkpoints');
  mkdirSync(parent, { recursive: true });
  const name = stepFolderName(step);
  const dir = join(parent, name);
  write(dir);
  const link = join(out, `${LINK_TMP}${process.pid}`);
  rmSync(link, { force: true });
  symlinkSync(join('checkpoints', name), link);
  pauseForTest('link', step);
  renameSync(link, join(out, LATEST));
  pauseForTest('prune', step);
  pruneStepFolders(out, keep);
  return dir;
}

/**
 * Keeps the newest `keep` step folders of `out` (and always the one OUT/checkpoint points at) and removes
 * what killed writes left: saveCheckpoint's temp and backup siblings (`.step-*`) and temporary links of
 * other processes that never replaced OUT/checkpoint. Every checkpoint write ends with it; a resumed run
 * calls it first, since a run killed after its last write (or resumed when finished) writes no other.
 *
 * @example pruneStepFolders('runs/ppo', 2);
 */
export function pruneStepFolders(out: string, keep: number): void {
  const parent = join(out, 'checkpoints');
  if (!existsSync(parent)) return;
  let latest = '';
  try {
    latest = basename(readlinkSync(join(out, LATEST)));
  } catch {
    // no link yet: nothing is protected
  }
  const steps = readdirSync(parent)
    .filter((n) => /^step-\d+$/.test(n))
    .sort();
  for (const n of steps.slice(0, Math.max(0, steps.length - keep))) {
    if (n !== latest) rmSync(join(parent, n), { recursive: true, force: true });
  }
  for (const n of readdirSync(parent))
    if (n.startsWith('.step-')) rmSync(join(parent, n), { recursive: true, force: true });
  for (const n of readdirSync(out)) if (n.startsWith(LINK_TMP)) rmSync(join(out, n), { force: true });
}

/** Where a checkpoint write can be held by HHKIT_TEST_CHECKPOINT_PAUSE. */
export type CheckpointPausePhase = 'link' | 'prune';

/**
 * Test hook, inert unless a test sets HHKIT_TEST_CHECKPOINT_PAUSE=PHASE@STEP: the checkpoint write of that
 * step stops at PHASE — 'link': the step folder is complete and a temporary link to it exists, but
 * OUT/checkpoint still points at the previous one; 'prune': OUT/checkpoint points at it, the older folders
 * are not removed yet — writes one line to stderr and holds still for up to 60 s, so that a kill -9 test
 * can kill the process exactly there (it waits for the line). Used by the CLI kill tests.
 */
function pauseForTest(phase: CheckpointPausePhase, step: number): void {
  const spec = process.env['HHKIT_TEST_CHECKPOINT_PAUSE'];
  if (spec !== `${phase}@${step}`) return;
  process.stderr.write(`hhkit test: checkpoint write of step ${step} held at '${phase}'\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
}
