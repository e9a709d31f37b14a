// `--tensorboard DIR` on pretrain, pm train and ppo: each run's event file holds its per-step scalars,
// equal (as float32) to what the same run wrote to metrics.jsonl.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readEventDir, scalarSeries } from '../util/test-tfevents.ts';
import { generateWorld } from '../world/index.ts';
import { command as pm } from './pm.ts';
import { command as ppo } from './ppo.ts';
import { command as pretrain } from './pretrain.ts';

/** `key` of metrics.jsonl's lines of `type` (all lines when the file has no types), as [step, float32]. */
function metricSeries(out: string, key: string, type?: string): [number, number][] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number | string>)
    .filter((m) => type === undefined || m['type'] === type)
    .map((m): [number, number] => [m['step'] as number, Math.fround(m[key] as number)]);
}

test('pretrain, pm train and ppo write their progress as TensorBoard scalars with --tensorboard', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-tbcli-'));
  const quiet = { log: console.log, error: console.error };
  try {
    const world = join(dir, 'world');
    // biome-ignore format: one count per key reads worse
    await generateWorld({ out: world, seed: 2, size: 'small', counts: {
      pretrainDialogues: 200, pretrainForum: 0, forumThreads: 10, helpfulTrain: 40, helpfulTest: 16,
      harmlessTrain: 10, harmlessTest: 8, rlPrompts: 40, rlHeldOut: 8, oodHarmful: 4, oodBenign: 4,
      calibrationPairs: 20 } });
    const tb = join(dir, 'tb');
    console.log = () => {};
    console.error = () => {};

    const lm = join(dir, 'lm');
    // biome-ignore format: option/value pairs
    const lmArgs = ['--data', join(world, 'pretrain.jsonl'), '--out', lm, '--vocab-size', '300', '--steps', '6',
      '--block-size', '160', '--n-layer', '1', '--n-head', '2', '--n-embd', '32', '--batch-size', '4',
      '--eval-every', '3', '--eval-batches', '1', '--checkpoint-every', '6', '--tensorboard', join(tb, 'lm')];
    assert.equal(await pretrain.run(lmArgs), 0);

    const pmOut = join(dir, 'pm');
    // biome-ignore format: option/value pairs
    const pmArgs = ['train', '--init', join(lm, 'checkpoint'), '--data', join(world, 'helpful-train.jsonl'), '--eval',
      join(world, 'helpful-test.jsonl'), '--out', pmOut, '--steps', '4', '--batch-size', '4',
      '--checkpoint-every', '4', '--tensorboard', join(tb, 'pm')];
    assert.equal(await pm.run(pmArgs), 0);

    const policy = join(dir, 'ppo');
    // biome-ignore format: option/value pairs
    const ppoArgs = ['--init', join(lm, 'checkpoint'), '--world', world, '--reward', 'gold', '--out', policy, '--steps', '2',
      '--batch-size', '4', '--mini-batch-size', '2', '--max-new-tokens', '4', '--eval-every', '0',
      '--checkpoint-every', '2', '--tensorboard', join(tb, 'ppo')];
    assert.equal(await ppo.run(ppoArgs), 0);
    console.log = quiet.log;
    console.error = quiet.error;

    const lmEvents = readEventDir(join(tb, 'lm'));
    assert.equal(lmEvents[0]!.fileVersion, 'brain.Event:2');
    const lmLoss = scalarSeries(lmEvents, 'step/loss');
    assert.deepEqual(lmLoss, metricSeries(lm, 'loss'));
    assert.deepEqual(
      lmLoss.map(([step]) => step),
      [1, 2, 3, 4, 5, 6],
    );
    assert.deepEqual(
      scalarSeries(lmEvents, 'step/lr').map(([, v]) => v),
      metricSeries(lm, 'lr').map(([, v]) => v),
    );
    assert.deepEqual(
      scalarSeries(lmEvents, 'eval/loss').map(([step]) => step),
      [3, 6],
    );

    const pmEvents = readEventDir(join(tb, 'pm'));
    assert.equal(scalarSeries(pmEvents, 'step/loss').length, 4);
    assert.deepEqual(scalarSeries(pmEvents, 'step/loss'), metricSeries(pmOut, 'loss'));
    assert.deepEqual(scalarSeries(pmEvents, 'step/accuracy'), metricSeries(pmOut, 'accuracy'));
    assert.deepEqual(
      scalarSeries(pmEvents, 'eval/accuracy').map(([step]) => step),
      [4],
    );

    const ppoEvents = readEventDir(join(tb, 'ppo'));
    assert.equal(scalarSeries(ppoEvents, 'step/metrics/reward').length, 2);
    assert.deepEqual(scalarSeries(ppoEvents, 'step/metrics/reward'), metricSeries(policy, 'reward', 'step'));
    assert.deepEqual(scalarSeries(ppoEvents, 'step/metrics/kl'), metricSeries(policy, 'kl', 'step'));
    assert.equal(scalarSeries(ppoEvents, 'step/metrics/time/rollout').length, 2);
  } finally {
    console.log = quiet.log;
    console.error = quiet.error;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--tensorboard naming a file is a usage error naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-tbcli-'));
  const quiet = console.error;
  try {
    const file = join(dir, 'not-a-folder');
    writeFileSync(file, 'x');
    writeFileSync(join(dir, 'corpus.jsonl'), `${JSON.stringify({ text: 'Human: hi' })}\n`.repeat(50));
    console.error = () => {};
    await assert.rejects(
      pretrain.run([
        '--data',
        join(dir, 'corpus.jsonl'),
        '--out',
        join(dir, 'run'),
        '--steps',
        '1',
        '--tensorboard',
        file,
      ]),
      /--tensorboard .*not-a-folder: is a file, expected a folder/,
    );
  } finally {
    console.error = quiet;
    rmSync(dir, { recursive: true, force: true });
  }
});
