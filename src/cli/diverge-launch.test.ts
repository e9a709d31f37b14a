// Issue 14, data parallel: under `hhkit launch --nproc 2`, a non-finite loss on ONE rank (rank 1, through
// the HHKIT_TEST_NONFINITE hook) stops both ranks at that step — they agree before the backward whose
// gradients are all-reduced — with the error naming the step and the last good checkpoint, which stays
// the run's checkpoint; nothing is written for the diverged step. Without the agreement the NaN reached
// rank 0 through the gradient sum and the run went on writing NaN checkpoints (exit 0).
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hhLines, tinyLMCheckpoint } from '../pm/test-fixtures.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { tinyCorpus } from '../train/test-fixtures.ts';
import { type ChildRun, runChild } from '../util/child.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `hhkit launch --nproc 2 -- <args>` with rank 1's loss NaN at `step`; killed after 90 s if it hangs. */
function launchDiverging(args: string[], step: number): Promise<ChildRun> {
  // biome-ignore format: a command line
  return runChild(process.execPath, [join(root, 'bin', 'hhkit.js'), 'launch', '--nproc', '2', '--threads', '1', '--', ...args], {
    cwd: root,
    env: { ...process.env, HHKIT_NUM_THREADS: '1', HHKIT_TEST_NONFINITE: `${step}@1`, HHKIT_DIST_TIMEOUT: '30' },
    timeoutMs: 90_000,
  });
}

/**
 * The run stopped (not killed) with exit status 3, and the ranks said why in one line each, no stack:
 * the step and the last good checkpoint.
 */
function assertStoppedTogether(run: ChildRun, trainer: string, step: number, good: string): void {
  assert.equal(run.signal, null, `killed: it hung\n${run.stderr}`);
  assert.equal(run.code, 3, run.stderr);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
  const stopped = `hhkit: ${trainer} step ${step}: the loss is NaN (on 1 of 2 ranks`;
  const rest = `; training stopped before the update. The last good checkpoint is ${good} `;
  const rank0 = run.stderr.split('\n').filter((l) => !l.startsWith('[rank 1]'));
  assert.ok(
    rank0.some((l) => l.startsWith(`${stopped})${rest}`)),
    `rank 0 stops at step ${step}:\n${run.stderr}`,
  );
  // Rank 1 may be stopped by the launcher before it prints; when it does, it names itself.
  for (const line of run.stderr.split('\n').filter((l) => l.startsWith(`[rank 1] ${stopped}`)))
    assert.ok(line.startsWith(`[rank 1] ${stopped}, rank 1 among them)${rest}`), line);
}

test('pretrain under launch: rank 1 alone diverges at step 3 → both ranks stop there; step 2 stays the checkpoint', async () => {
  const corpus = tinyCorpus(200);
  const out = join(corpus.dir, 'two');
  // biome-ignore format: option/value pairs read best on few lines
  const run = await launchDiverging([
    'pretrain', '--data', corpus.path, '--out', out, '--vocab-size', '300', '--block-size', '32',
    '--n-layer', '1', '--n-head', '2', '--n-embd', '32', '--batch-size', '4', '--steps', '5',
    '--checkpoint-every', '2', '--keep-checkpoints', '1', '--eval-every', '0', '--lr', '3e-3',
  ], 3);
  const good = join(out, 'checkpoints', 'step-000002');
  assertStoppedTogether(run, 'pretrain', 3, good);
  assert.deepEqual(readdirSync(join(out, 'checkpoints')), ['step-000002']);
  assert.equal(readlinkSync(join(out, 'checkpoint')), join('checkpoints', 'step-000002'));
});

test('pm train under launch: rank 1 alone diverges at step 3 → both ranks stop there; step 2 stays the checkpoint', async () => {
  const corpus = tinyCorpus(10); // just a temp folder
  const data = join(corpus.dir, 'helpful-train.jsonl');
  const lines = hhLines('helpful', 48, 0);
  writeFileSync(data, `${lines.join('\n')}\n`);
  const texts = lines.flatMap((l) => {
    const r = JSON.parse(l) as { chosen: string; rejected: string };
    return [r.chosen, r.rejected];
  });
  const lmDir = tinyLMCheckpoint(corpus.dir, Tokenizer.train(texts, { vocabSize: 300 }), { nPositions: 48 });
  const out = join(corpus.dir, 'pm');
  // biome-ignore format: option/value pairs read best on few lines
  const run = await launchDiverging([
    'pm', 'train', '--init', lmDir, '--data', data, '--out', out, '--batch-size', '4', '--steps', '5',
    '--checkpoint-every', '2', '--keep-checkpoints', '1', '--eval-every', '0', '--eval-fraction', '0.1',
  ], 3);
  const good = join(out, 'checkpoints', 'step-000002');
  assertStoppedTogether(run, 'pm', 3, good);
  assert.deepEqual(readdirSync(join(out, 'checkpoints')), ['step-000002']);
  assert.equal(readlinkSync(join(out, 'checkpoint')), join('checkpoints', 'step-000002'));
});
