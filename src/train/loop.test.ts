import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { liveTensors, loadSafetensors, type Tensor, TrainingDivergenceError } from '../engine/index.ts';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { type TrainEvent, trainLM } from './loop.ts';
import { tinyConfig, tinyCorpus } from './test-fixtures.ts';

function weights(dir: string): Record<string, Tensor> {
  return loadSafetensors(join(dir, 'model.safetensors')).tensors;
}

function maxAbsDiff(a: Record<string, Tensor>, b: Record<string, Tensor>): number {
  let max = 0;
  for (const [name, t] of Object.entries(a)) max = Math.max(max, t.sub(b[name]!).abs().max().item());
  return max;
}

test('loss falls by a wide margin on a tiny corpus; eval runs; no tensor leaks across steps', async () => {
  const corpus = tinyCorpus();
  const live: number[] = [];
  const evals: number[] = [];
  const result = await trainLM(tinyConfig(corpus, { steps: 60, evalEvery: 15 }), {
    tokenizer: corpus.tokenizer,
    onEvent: (e) => {
      if (e.type === 'step') live.push(liveTensors());
      if (e.type === 'eval') evals.push(e.loss);
    },
  });
  assert.equal(result.steps, 60);
  assert.ok(result.firstLoss > 5, `first loss ${result.firstLoss} ≈ ln(300)`);
  assert.ok(result.lastLoss < result.firstLoss - 3, `loss ${result.firstLoss} → ${result.lastLoss}`);
  assert.equal(evals.length, 4);
  assert.ok(evals[3]! < evals[0]!, `eval loss ${evals.join(' → ')}`);
  // From step 2 on (AdamW's moments exist), every step, eval and checkpoint frees all it made.
  assert.deepEqual(new Set(live.slice(1)), new Set([live[1]]), `live tensors per step: ${live.join(',')}`);
});

test('stopping and resuming gives bit-for-bit the weights and loss of an uninterrupted run', async () => {
  const corpus = tinyCorpus();
  const opts = { tokenizer: corpus.tokenizer };
  // dropout on, so the restored RNG state matters too; decaySteps fixed so both schedules agree.
  const base = { dropout: 0.1, decaySteps: 12, checkpointEvery: 4, evalEvery: 4 };
  const whole = await trainLM(
    tinyConfig(corpus, { ...base, steps: 12, out: join(corpus.dir, 'whole') }),
    opts,
  );
  const out = join(corpus.dir, 'split');
  const first = await trainLM(tinyConfig(corpus, { ...base, steps: 8, out }), opts);
  assert.equal(first.steps, 8);
  await assert.rejects(
    trainLM(tinyConfig(corpus, { ...base, steps: 12, out }), opts),
    /already has a checkpoint/,
  );
  const second = await trainLM(tinyConfig(corpus, { ...base, steps: 12, out }), { ...opts, resume: true });
  assert.equal(second.resumedFrom, 8);
  assert.equal(second.lastLoss, whole.lastLoss);
  assert.equal(second.evalLoss, whole.evalLoss);
  assert.equal(second.firstLoss, whole.firstLoss);
  assert.equal(maxAbsDiff(weights(second.checkpoint), weights(whole.checkpoint)), 0);
  await assert.rejects(
    trainLM(tinyConfig(corpus, { ...base, steps: 16, out, batchSize: 4 }), { ...opts, resume: true }),
    /cannot resume with a different batchSize: 8 → 4/,
  );
});

test('gradient accumulation: 2 micro-batches of B/2 give the step of one batch of B', async () => {
  const corpus = tinyCorpus();
  const opts = { tokenizer: corpus.tokenizer };
  const one = { steps: 1, evalEvery: 0, warmupSteps: 0, lr: 1e-2 };
  const full = await trainLM(tinyConfig(corpus, { ...one, batchSize: 8, out: join(corpus.dir, 'b8') }), opts);
  const accum = await trainLM(
    tinyConfig(corpus, { ...one, batchSize: 4, gradAccum: 2, out: join(corpus.dir, 'b4x2') }),
    opts,
  );
  const untrained = await trainLM(
    tinyConfig(corpus, { ...one, lr: 1e-9, minLr: 0, out: join(corpus.dir, 'b0') }),
    opts,
  );
  assert.ok(Math.abs(full.lastLoss - accum.lastLoss) < 1e-5, `${full.lastLoss} vs ${accum.lastLoss}`);
  const moved = maxAbsDiff(weights(full.checkpoint), weights(untrained.checkpoint));
  const diff = maxAbsDiff(weights(full.checkpoint), weights(accum.checkpoint));
  assert.ok(moved > 5e-3, `the step moved weights by ${moved}`);
  // Adam's first step is ≈ lr·sign(g), so float rounding in tiny gradients shows up at ~1e-5, not 1e-8.
  assert.ok(diff < moved / 100, `accumulated vs full batch differ by ${diff} (the step moved ${moved})`);
});

test("SFT: lossOn 'assistant' trains on replies only and its loss falls", async () => {
  const corpus = tinyCorpus();
  const result = await trainLM(tinyConfig(corpus, { steps: 30, lossOn: 'assistant' }), {
    tokenizer: corpus.tokenizer,
  });
  assert.ok(result.lastLoss < result.firstLoss - 2, `loss ${result.firstLoss} → ${result.lastLoss}`);
});

test('lr 1e6: the NaN loss at step 2 stops the run with one error naming it and the last good checkpoint; nothing non-finite is written or pruned', async () => {
  const corpus = tinyCorpus(100);
  const out = join(corpus.dir, 'diverge');
  // A checkpoint every step and only one kept: a NaN checkpoint would have replaced the good one.
  const config = tinyConfig(corpus, {
    out,
    steps: 6,
    lr: 1e6,
    minLr: 1e5,
    warmupSteps: 0,
    checkpointEvery: 1,
    keepCheckpoints: 1,
    evalEvery: 0,
  });
  const before = liveTensors();
  const good = join(out, 'checkpoints', 'step-000001');
  await assert.rejects(
    trainLM(config, { tokenizer: corpus.tokenizer, label: 'pretrain' }),
    (err: Error) =>
      err instanceof TrainingDivergenceError &&
      err.exitCode === 3 &&
      err.message.startsWith('pretrain step 2: the loss is NaN; training stopped before the update.') &&
      err.message.includes(`The last good checkpoint is ${good} `),
  );
  assert.equal(liveTensors(), before, 'a stopped run frees its weights, moments and hooks');
  assert.deepEqual(readdirSync(join(out, 'checkpoints')), ['step-000001']);
  assert.equal(readlinkSync(join(out, 'checkpoint')), join('checkpoints', 'step-000001'));
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as { step: number }).step),
    [1],
  );
  const loaded = loadCheckpoint(join(out, 'checkpoint')); // finite: loads without allowNonFinite
  for (const p of loaded.model.parameters()) p.dispose();
});

test('a resume with a changed lr goes on with the new value and warns, naming both', async () => {
  const corpus = tinyCorpus(100);
  const out = join(corpus.dir, 'relr');
  const base = { out, checkpointEvery: 4, evalEvery: 0, decaySteps: 8 };
  await trainLM(tinyConfig(corpus, { ...base, steps: 4 }), { tokenizer: corpus.tokenizer });
  const events: TrainEvent[] = [];
  const resumed = await trainLM(tinyConfig(corpus, { ...base, steps: 6, lr: 1e-3 }), {
    tokenizer: corpus.tokenizer,
    resume: true,
    onEvent: (e) => events.push(e),
  });
  assert.equal(resumed.resumedFrom, 4);
  const warnings = events.flatMap((e) => (e.type === 'warning' ? [e.message] : []));
  assert.deepEqual(warnings, [
    "resuming with lr 0.001 (the checkpoint's run used 0.003); the schedule goes on from the checkpoint's step with the new value",
  ]);
  const lrs = events.flatMap((e) => (e.type === 'step' ? [e.lr] : []));
  assert.ok(
    lrs.every((lr) => lr <= 1e-3),
    `the new peak lr is used: ${lrs}`,
  );
});
