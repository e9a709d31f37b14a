// `--tensorboard DIR` on pretrain, pm train, distill, ppo and online: each run's event file holds its
// per-step scalars, equal (as float32) to what the same run wrote to metrics.jsonl; a resumed run leaves
// each step in the folder once, with the values of the run that went on.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { tinyWorldLM } from '../online/test-fixtures.ts';
import { type ReadEvent, readEventDir, readEventDirFiles, scalarSeries } from '../util/test-tfevents.ts';
import { generateWorld } from '../world/index.ts';
import { command as distill } from './distill.ts';
import { command as online } from './online.ts';
import { command as pm } from './pm.ts';
import { command as ppo } from './ppo.ts';
import { command as pretrain } from './pretrain.ts';
import { KILL_WORLD } from './test-kill.ts';

/** `key` of metrics.jsonl's lines of `type` (all lines when the file has no types), as [step, float32]. */
function metricSeries(out: string, key: string, type?: string): [number, number][] {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number | string>)
    .filter((m) => type === undefined || m['type'] === type)
    .map((m): [number, number] => [m['step'] as number, Math.fround(m[key] as number)]);
}

/** `tag`'s [step, value] pairs over every event file of `dir`, in TensorBoard's file order. */
const folderSeries = (dir: string, tag: string): [number, number][] =>
  scalarSeries(readEventDirFiles(dir).flat(), tag);

/** The (tag, step) pairs that are in `events` more than once. */
function repeated(events: readonly ReadEvent[]): string[] {
  const seen = new Set<string>();
  const twice: string[] = [];
  for (const e of events)
    for (const v of e.values) {
      const key = `${v.tag}@${e.step}`;
      if (seen.has(key)) twice.push(key);
      seen.add(key);
    }
  return twice;
}

/** Runs a command in this process with its console output dropped. */
async function quietly<T>(run: () => Promise<T>): Promise<T> {
  const saved = { log: console.log, error: console.error };
  console.log = () => {};
  console.error = () => {};
  try {
    return await run();
  } finally {
    console.log = saved.log;
    console.error = saved.error;
  }
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

test('pretrain killed after its step-3 checkpoint, resumed with another lr: each step in the folder once, the resumed values', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-tbcli-'));
  try {
    const corpus = join(dir, 'corpus.jsonl');
    const lines = Array.from({ length: 300 }, (_, i) => {
      const [a, b] = [i % 10, Math.floor(i / 10) % 10];
      return JSON.stringify({ text: `\n\nHuman: What is ${a} plus ${b}?\n\nAssistant: It is ${a + b}.` });
    });
    writeFileSync(corpus, `${lines.join('\n')}\n`);
    const [lm, tb] = [join(dir, 'lm'), join(dir, 'tb')];
    // biome-ignore format: option/value pairs
    const args = ['--data', corpus, '--out', lm, '--vocab-size', '300', '--steps', '6', '--block-size', '32',
      '--n-layer', '1', '--n-head', '2', '--n-embd', '32', '--batch-size', '4', '--eval-every', '3',
      '--eval-batches', '1', '--checkpoint-every', '3', '--tensorboard', tb];

    // The first run dies at step 5 (a NaN loss, the trainers' test hook): steps 1–4 logged, checkpoint 3.
    process.env['HHKIT_TEST_NONFINITE'] = '5';
    try {
      await assert.rejects(
        quietly(() => pretrain.run(args)),
        /step 5/,
      );
    } finally {
      delete process.env['HHKIT_TEST_NONFINITE'];
    }
    assert.deepEqual(
      folderSeries(tb, 'step/loss').map(([step]) => step),
      [1, 2, 3, 4],
    );
    const killedLr = folderSeries(tb, 'step/lr');

    // Resumed from step 3 with a higher lr: steps 4–6 again, step 4 with a different lr than before.
    assert.equal(await quietly(() => pretrain.run([...args, '--resume', '--lr', '3e-3'])), 0);
    const files = readEventDirFiles(tb);
    assert.equal(files.length, 2, 'the killed run keeps its file (cut back), the resumed run adds one');
    assert.deepEqual(repeated(files.flat()), [], 'no (tag, step) twice in the folder');
    assert.deepEqual(folderSeries(tb, 'step/loss'), metricSeries(lm, 'loss'));
    const lr = folderSeries(tb, 'step/lr');
    assert.deepEqual(lr, metricSeries(lm, 'lr'));
    assert.deepEqual(lr.slice(0, 3), killedLr.slice(0, 3), "steps 1–3 are the killed run's");
    assert.notEqual(lr[3]![1], killedLr[3]![1], "step 4 is the resumed run's, not the killed run's");
    assert.deepEqual(
      folderSeries(tb, 'eval/loss').map(([step]) => step),
      [3, 6],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('distill and online write --tensorboard scalars; a rerun (distill --resume, online again) logs each step once', {
  timeout: 300_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-tbcli-'));
  try {
    const { world, lm } = await tinyWorldLM(dir, { worldSeed: 3, lmSeed: 1, lr: 1e-2, counts: KILL_WORLD });
    const tb = join(dir, 'tb');

    // distill: per-step KL loss and the evaluations before (step 0) and after (the last step).
    const out = join(dir, 'distill');
    // biome-ignore format: option/value pairs
    const distillArgs = ['--init', lm, '--world', world, '--out', out, '--steps', '4', '--batch-size', '8',
      '--dialogues', '40', '--eval-examples', '8', '--eval-prompts', '2', '--max-new-tokens', '4', '--top-k', '10',
      '--checkpoint-every', '2', '--tensorboard', join(tb, 'distill')];
    assert.equal(await quietly(() => distill.run(distillArgs)), 0);
    assert.deepEqual(folderSeries(join(tb, 'distill'), 'step/loss'), metricSeries(out, 'loss', 'step'));
    assert.deepEqual(folderSeries(join(tb, 'distill'), 'eval/kl'), metricSeries(out, 'kl', 'eval'));
    assert.deepEqual(
      folderSeries(join(tb, 'distill'), 'eval/goldTeacher').map(([step]) => step),
      [0],
    );
    // Resuming the finished run does its closing evaluation again: it replaces the first one.
    assert.equal(await quietly(() => distill.run([...distillArgs, '--resume'])), 0);
    assert.deepEqual(repeated(readEventDirFiles(join(tb, 'distill')).flat()), []);
    assert.deepEqual(
      folderSeries(join(tb, 'distill'), 'eval/kl').map(([step]) => step),
      [0, 4],
    );

    // online, one round: each round's PM and PPO steps in a run of their own, the rounds' figures in
    // DIR/rounds with the round as the step.
    // biome-ignore format: option/value pairs
    const onlineArgs = ['--world', world, '--init', lm, '--out', join(dir, 'online'), '--rounds', '1',
      '--comparisons', '8', '--eval-comparisons', '8', '--collect-batch', '8', '--max-new-tokens', '6',
      '--eval-prompts', '4', '--bootstrap', '10', '--pm-steps', '2', '--pm-batch-size', '8',
      '--pm-lr-multiplier', '0.1', '--ppo-steps', '2', '--ppo-batch-size', '8', '--ppo-mini-batch-size', '8',
      '--ppo-ppo-epochs', '1', '--ppo-max-new-tokens', '6', '--tensorboard', join(tb, 'online'), '--json'];
    const summaries: string[] = [];
    const runOnline = async (): Promise<{ rows: { round: number; gold: number; elo?: number }[] }> => {
      const saved = console.log;
      try {
        assert.equal(
          await quietly(() => {
            console.log = (line: string) => summaries.push(line);
            return online.run(onlineArgs);
          }),
          0,
        );
      } finally {
        console.log = saved;
      }
      return JSON.parse(summaries.at(-1)!) as { rows: { round: number; gold: number; elo?: number }[] };
    };
    const first = await runOnline();
    for (const round of [0, 1]) {
      assert.deepEqual(
        folderSeries(join(tb, 'online', 'pm', `round-${round}`), 'step/loss').map(([step]) => step),
        [1, 2],
      );
      assert.deepEqual(
        folderSeries(join(tb, 'online', 'ppo', `round-${round}`), 'step/metrics/reward').map(
          ([step]) => step,
        ),
        [1, 2],
      );
    }
    const rounds = join(tb, 'online', 'rounds');
    assert.deepEqual(
      folderSeries(rounds, 'evaluate/gold'),
      first.rows.map((r) => [r.round, Math.fround(r.gold)]),
    );
    assert.deepEqual(
      folderSeries(rounds, 'pm/goldAccuracy').map(([step]) => step),
      [0, 1],
    );
    assert.deepEqual(
      folderSeries(rounds, 'collect/comparisons'),
      [
        [1, 8],
        [2, 8],
      ],
      'round 1 and the closing round collected 8 comparisons each',
    );
    assert.deepEqual(
      folderSeries(rounds, 'elo/crowd'),
      first.rows.map((r) => [r.round, Math.fround(r.elo!)]),
    );

    // A rerun of the finished run skips every stage and computes Elo again: the figures are in the folder once.
    const again = await runOnline();
    assert.deepEqual(repeated(readEventDirFiles(rounds).flat()), []);
    assert.deepEqual(
      folderSeries(rounds, 'elo/crowd'),
      again.rows.map((r) => [r.round, Math.fround(r.elo!)]),
    );
    assert.deepEqual(
      folderSeries(rounds, 'evaluate/gold').map(([step]) => step),
      [0, 1],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
