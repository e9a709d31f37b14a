// Issue 14: the RL commands' failures are one line `hhkit: …` with the status main gives their error —
// a damaged run-state.json on --resume (2), an existing run without --resume (2), a PPO config error (2),
// a divergence (3) — never a stack trace or a blanket exit 1.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { tinyWorldLM } from '../online/test-fixtures.ts';
import { type CliRun, runHhkit } from './test-cli.ts';
import { KILL_WORLD } from './test-kill.ts';

/** Asserts a one-line failure: exit `code`, the last stderr line `hhkit: …` matching `pattern`, no stack. */
function oneLine(run: CliRun, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, run.stderr);
  const last = run.stderr.trim().split('\n').at(-1) ?? '';
  assert.match(last, /^hhkit: /, run.stderr);
  assert.match(last, pattern, run.stderr);
  assert.doesNotMatch(run.stderr, /\n\s+at .*:\d+:\d+\)?\n/, 'no stack trace');
}

test('ppo and distill: a damaged run-state.json on --resume, a second run without --resume, a bad config and a divergence are each one line with exit 2 or 3', {
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-rl-errors-'));
  const { world, lm } = await tinyWorldLM(dir, { worldSeed: 3, lmSeed: 1, counts: KILL_WORLD });
  const ppoOut = join(dir, 'ppo');
  // biome-ignore format: option/value pairs read best on few lines
  const ppo = (out: string, ...more: string[]): Promise<CliRun> => runHhkit([
    'ppo', '--init', lm, '--world', world, '--reward', 'gold', '--out', out, '--steps', '2',
    '--batch-size', '8', '--mini-batch-size', '4', '--max-new-tokens', '6', '--eval-every', '0', ...more,
  ], { timeoutMs: 60_000 });
  const first = await ppo(ppoOut);
  assert.equal(first.code, 0, first.stderr);
  oneLine(await ppo(ppoOut), 2, /already holds a PPO run .*pass resume \(--resume\)/);
  writeFileSync(join(ppoOut, 'checkpoint', 'run-state.json'), '{"step": 2, "klCo');
  oneLine(
    await ppo(ppoOut, '--resume'),
    2,
    /checkpoints\/step-000002\/run-state\.json: not a valid run state \(.*JSON.*\); restore it/,
  );
  oneLine(
    await ppo(join(dir, 'ppo-mb'), '--mini-batch-size', '9'),
    2,
    /miniBatchSize \(9\) exceeds batchSize \(8\)/,
  );
  const diverged = await runHhkit(
    [
      'ppo',
      '--init',
      lm,
      '--world',
      world,
      '--reward',
      'gold',
      '--out',
      join(dir, 'ppo-nan'),
      '--steps',
      '3',
      '--batch-size',
      '8',
      '--mini-batch-size',
      '4',
      '--max-new-tokens',
      '6',
      '--eval-every',
      '0',
      '--checkpoint-every',
      '1',
    ],
    { env: { HHKIT_TEST_NONFINITE: '2' }, timeoutMs: 60_000 },
  );
  oneLine(diverged, 3, /^hhkit: ppo step 2: .*NaN.*The last good checkpoint is .*step-000001/);

  const distillOut = join(dir, 'distill');
  // biome-ignore format: option/value pairs read best on few lines
  const distill = (...more: string[]): Promise<CliRun> => runHhkit([
    'distill', '--init', lm, '--world', world, '--out', distillOut, '--steps', '2', '--batch-size', '8',
    '--dialogues', '40', '--eval-examples', '8', '--eval-prompts', '2', '--max-new-tokens', '4',
    '--top-k', '8', ...more,
  ], { timeoutMs: 60_000 });
  const distilled = await distill();
  assert.equal(distilled.code, 0, distilled.stderr);
  oneLine(await distill(), 2, /already holds a distillation run/);
  writeFileSync(join(distillOut, 'checkpoint', 'run-state.json'), '[1, 2]');
  oneLine(await distill('--resume'), 2, /run-state\.json: not a valid run state \(expected a JSON object\)/);
});
