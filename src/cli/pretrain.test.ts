// Acceptance test of issue 3: a kill -9 during `hhkit pretrain` followed by `--resume` ends at the same
// loss and the same weights, bit for bit, as an uninterrupted run with the same seed.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { lastJson, runHhkit } from './test-cli.ts';
import { readTrainingCheckpoint } from '../train/state.ts';
import { tinyCorpus } from '../train/test-fixtures.ts';

test('kill -9 mid-training, then --resume: same final loss and bit-identical weights as an uninterrupted run', async () => {
  const corpus = tinyCorpus();
  // biome-ignore format: option/value pairs read best on few lines
  const common = [
    'pretrain', '--data', corpus.path, '--vocab-size', '300', '--steps', '150', '--checkpoint-every', '10',
    '--eval-every', '50', '--block-size', '32', '--n-layer', '1', '--n-head', '2', '--n-embd', '32',
    '--batch-size', '8', '--dropout', '0.1', '--lr', '3e-3', '--warmup-steps', '5', '--json',
  ];
  const outWhole = join(corpus.dir, 'whole');
  const outKilled = join(corpus.dir, 'killed');

  const whole = await runHhkit([...common, '--out', outWhole]);
  assert.equal(whole.code, 0, whole.stderr);

  // Kill as soon as the first checkpoint is reported: 140 steps are still to go.
  const killed = await runHhkit([...common, '--out', outKilled], {
    onStderrLine: (line, child) => {
      if (line.startsWith('checkpoint: step 10 ')) child.kill('SIGKILL');
    },
  });
  assert.equal(killed.signal, 'SIGKILL', `the run finished before the kill:\n${killed.stderr}`);
  const atKill = readTrainingCheckpoint(outKilled);
  assert.ok(atKill !== null && atKill.trainer.step >= 10 && atKill.trainer.step < 150);

  const resumed = await runHhkit([...common, '--out', outKilled, '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, new RegExp(`resuming from step ${atKill.trainer.step} `));
  const a = lastJson(whole.stdout);
  const b = lastJson(resumed.stdout);
  assert.equal(b['resumedFrom'], atKill.trainer.step);
  assert.equal(b['steps'], 150);
  assert.equal(b['lastLoss'], a['lastLoss']);
  assert.equal(b['evalLoss'], a['evalLoss']);
  assert.ok((a['lastLoss'] as number) < (a['firstLoss'] as number) - 2, JSON.stringify(a));
  const weights = (out: string): Buffer => readFileSync(join(out, 'checkpoint', 'model.safetensors'));
  assert.ok(weights(outWhole).equals(weights(outKilled)), 'final model.safetensors differ');
  // metrics.jsonl of the resumed run has each step once, as the uninterrupted one.
  const steps = (out: string): number[] =>
    readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step);
  assert.deepEqual(steps(outKilled), steps(outWhole));
});

test('usage errors: a mistyped option or a missing --data exits 2 with a message', async () => {
  const corpus = tinyCorpus(20);
  const typo = await runHhkit(['pretrain', '--data', corpus.path, '--batchsize', '4']);
  assert.equal(typo.code, 2);
  assert.match(
    typo.stderr,
    /unknown option --batchsize \(did you mean --batch-size\?\); known options: .*--steps/,
  );
  const missing = await runHhkit(['pretrain', '--steps', '3']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /data is required/);
});

test('--config FILE.json supplies options (either key style); flags override it; SFT runs from the CLI', async () => {
  const corpus = tinyCorpus(100);
  const configPath = join(corpus.dir, 'sft.json');
  const tiny = {
    'n-layer': 1,
    nHead: 2,
    nEmbd: 32,
    blockSize: 32,
    batchSize: 4,
    steps: 50,
    lossOn: 'assistant',
  };
  writeFileSync(configPath, JSON.stringify(tiny));
  const out = join(corpus.dir, 'sft');
  const run = await runHhkit([
    'pretrain',
    '--data',
    corpus.path,
    '--out',
    out,
    '--config',
    configPath,
    '--steps',
    '3',
    '--vocab-size',
    '300',
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(lastJson(run.stdout)['steps'], 3);
  const hhkitJson = JSON.parse(readFileSync(join(out, 'checkpoint', 'hhkit.json'), 'utf8')) as {
    kind: string;
    training: Record<string, unknown>;
  };
  assert.equal(hhkitJson.kind, 'lm');
  assert.equal(hhkitJson.training['stage'], 'sft');
  assert.equal(hhkitJson.training['nLayer'], 1);
  assert.equal(readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 3);
});

test('--precision bf16 trains with bfloat16 autocast (the loss falls, weights stay float32); --device cuda on a CPU build says how to get CUDA', async () => {
  const corpus = tinyCorpus();
  // biome-ignore format: option/value pairs read best on few lines
  const args = [
    'pretrain', '--data', corpus.path, '--vocab-size', '300', '--steps', '40', '--block-size', '32',
    '--n-layer', '1', '--n-head', '2', '--n-embd', '32', '--batch-size', '8', '--lr', '3e-3',
    '--warmup-steps', '2', '--eval-every', '0', '--json',
  ];
  const bf16 = await runHhkit([...args, '--out', join(corpus.dir, 'bf16'), '--precision', 'bf16']);
  assert.equal(bf16.code, 0, bf16.stderr);
  const s = lastJson(bf16.stdout);
  assert.ok((s['lastLoss'] as number) < (s['firstLoss'] as number) - 1.5, JSON.stringify(s));
  const header = readFileSync(join(corpus.dir, 'bf16', 'checkpoint', 'model.safetensors'));
  assert.match(header.subarray(0, 4096).toString(), /"dtype":"F32"/);
  assert.doesNotMatch(header.subarray(0, 4096).toString(), /"dtype":"BF16"/);
  const bad = await runHhkit([...args, '--out', join(corpus.dir, 'bad'), '--precision', 'fp8']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /precision expects 'fp32' or 'bf16'/);
  const builtWithCuda = (await import('../engine/index.ts')).builtWithCuda();
  if (!builtWithCuda) {
    const cuda = await runHhkit([...args, '--out', join(corpus.dir, 'cuda'), '--device', 'cuda']);
    assert.equal(cuda.code, 2, cuda.stderr);
    assert.match(cuda.stderr, /device cuda: this hhkit addon was built against a CPU-only libtorch/);
  }
});
