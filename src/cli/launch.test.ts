// Acceptance of issue 9 on CPU: `hhkit launch --nproc 2` (c10d gloo on loopback) takes the same steps as
// one process on the concatenated batch, and a rank that dies stops the whole job with a clear message.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadSafetensors } from '../engine/index.ts';
import { tinyCorpus } from '../train/test-fixtures.ts';
import { lastJson, runHhkit } from './test-cli.ts';

// biome-ignore format: option/value pairs read best on few lines
const model = [
  '--vocab-size', '300', '--block-size', '32', '--n-layer', '1', '--n-head', '2', '--n-embd', '32',
  '--lr', '3e-3', '--warmup-steps', '2', '--eval-every', '0', '--json',
];

test('2 gloo processes × batch 4 end with the same weights as 1 process × batch 8', async () => {
  const corpus = tinyCorpus();
  const one = join(corpus.dir, 'one');
  const two = join(corpus.dir, 'two');
  const steps = ['--steps', '6', '--grad-accum', '2', '--checkpoint-every', '3'];
  const single = await runHhkit([
    'pretrain',
    '--data',
    corpus.path,
    '--out',
    one,
    '--batch-size',
    '8',
    ...steps,
    ...model,
  ]);
  assert.equal(single.code, 0, single.stderr);
  const launched = await runHhkit([
    'launch',
    '--nproc',
    '2',
    '--threads',
    '1',
    '--',
    'pretrain',
    '--data',
    corpus.path,
    '--out',
    two,
    '--batch-size',
    '4',
    ...steps,
    ...model,
  ]);
  assert.equal(launched.code, 0, launched.stderr);
  assert.match(launched.stderr, /launch: rank 1 of 2 started/);
  assert.match(launched.stderr, /data-parallel: 2 processes/);
  const a = lastJson(single.stdout);
  const b = lastJson(launched.stdout);
  assert.equal(b['worldSize'], 2);
  assert.equal(b['steps'], 6);
  assert.ok(
    Math.abs((a['lastLoss'] as number) - (b['lastLoss'] as number)) < 1e-4,
    `${a['lastLoss']} vs ${b['lastLoss']}`,
  );
  assert.ok((b['lastLoss'] as number) < (b['firstLoss'] as number), 'the loss fell');
  const wa = loadSafetensors(join(one, 'checkpoint', 'model.safetensors')).tensors;
  const wb = loadSafetensors(join(two, 'checkpoint', 'model.safetensors')).tensors;
  assert.deepEqual(Object.keys(wb).sort(), Object.keys(wa).sort());
  let worst = 0;
  let moved = 0;
  for (const [name, t] of Object.entries(wa)) {
    worst = Math.max(worst, t.sub(wb[name]!).abs().max().item());
    moved = Math.max(moved, t.abs().max().item());
  }
  assert.ok(worst < 2e-5, `largest parameter difference ${worst}`);
  assert.ok(moved > 0);
  // One metrics line per step, written by rank 0 alone.
  const lines = readFileSync(join(two, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.deepEqual(
    lines.map((l) => JSON.parse(l).step),
    [1, 2, 3, 4, 5, 6],
  );
});

test('a rank killed mid-training stops the job: the launcher names it and exits non-zero', async () => {
  const corpus = tinyCorpus();
  const out = join(corpus.dir, 'killed');
  const pids = new Map<number, number>();
  let killedAt = 0;
  const run = await runHhkit(
    [
      'launch',
      '--nproc',
      '2',
      '--threads',
      '1',
      '--',
      'pretrain',
      '--data',
      corpus.path,
      '--out',
      out,
      '--batch-size',
      '4',
      '--steps',
      '100000',
      '--checkpoint-every',
      '2',
      ...model,
    ],
    {
      onStderrLine: (line) => {
        const m = /^launch: rank (\d) of 2 started \(pid (\d+)\)/.exec(line);
        if (m) pids.set(Number(m[1]), Number(m[2]));
        if (line.startsWith('checkpoint: step 2 ') && killedAt === 0) {
          killedAt = Date.now();
          process.kill(pids.get(1)!, 'SIGKILL');
        }
      },
    },
  );
  assert.ok(killedAt > 0, `rank 0 never checkpointed:\n${run.stderr}`);
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /launch: rank 1 was killed by SIGKILL; stopping the other ranks/);
  const seconds = (Date.now() - killedAt) / 1000;
  assert.ok(seconds < 20, `the job took ${seconds} s to stop after the kill`);
});

test('launch refuses commands that do not train data-parallel, and a missing `--`', async () => {
  const evalRun = await runHhkit(['launch', '--nproc', '2', '--', 'eval', '--help']);
  assert.equal(evalRun.code, 2);
  assert.match(evalRun.stderr, /`eval` does not train data-parallel/);
  const noSplit = await runHhkit(['launch', '--nproc', '2', 'pretrain']);
  assert.equal(noSplit.code, 2);
  assert.match(noSplit.stderr, /give the command after --/);
});
