import assert from 'node:assert/strict';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { liveTensors, noGrad, randn, TrainingDivergenceError, tidy } from '../engine/index.ts';
import { ConfigError } from '../train/config.ts';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { defaultDistillConfig, distill, validateDistillConfig } from './distill.ts';
import { topKWithRest } from './distill-cache.ts';
import { bucketKL } from './distill.ts';
import { letterReward, tinyPolicy, toyDistillConfig } from './test-fixtures.ts';

test('bucket KL: 0 when the student equals the teacher, equals the exact KL when k covers the vocabulary', () => {
  noGrad(() =>
    tidy(() => {
      const teacher = randn([2, 3, 12]);
      const student = randn([2, 3, 12]);
      const t = topKWithRest(teacher, 4);
      const self = bucketKL(teacher, t.ids, t.logprobs, t.rest);
      assert.ok(self.abs().max().item() < 1e-5);
      // k = V − 1: the rest bucket is the single remaining token, so the bucket KL is the exact KL.
      const full = topKWithRest(teacher, 11);
      const exact = teacher
        .logSoftmax(-1)
        .exp()
        .mul(teacher.logSoftmax(-1).sub(student.logSoftmax(-1)))
        .sum(-1);
      const got = bucketKL(student, full.ids, full.logprobs, full.rest);
      assert.ok(got.sub(exact).abs().max().item() < 1e-4);
      // Coarser buckets can only lose information: bucket KL ≤ exact KL (data processing inequality).
      const coarse = bucketKL(student, t.ids, t.logprobs, t.rest);
      assert.ok(coarse.sub(exact).max().item() <= 1e-5);
    }),
  );
});

test('context distillation reduces KL to the prompted teacher by a margin, caches the teacher, reports gold', async () => {
  const fx = tinyPolicy(3);
  const hhh = 'Below are dialogues.\n-----\n\nHuman: Say Q.\n\nAssistant: QQQ QQ Q.\n-----\n';
  const dialogues = Array.from(
    { length: 96 },
    (_, i) => `${fx.prompts[i % fx.prompts.length]} It is ${i % 7}.`,
  );
  const out = join(fx.dir, 'distill');
  const before = liveTensors();
  const report = await distill({
    config: toyDistillConfig(out),
    init: fx.init,
    tokenizer: fx.tokenizer,
    hhhPrompt: hhh,
    dialogues,
    evalPrompts: fx.prompts.slice(0, 8),
    gold: letterReward('Q'),
  });
  assert.equal(liveTensors(), before, 'teacher, student and optimiser state are freed');
  assert.ok(report.klAfter < 0.5 * report.klBefore, `KL ${report.klBefore} → ${report.klAfter}`);
  assert.ok(
    Number.isFinite(report.goldBefore) &&
      Number.isFinite(report.goldAfter) &&
      Number.isFinite(report.goldTeacher),
  );
  assert.ok(report.prefixTokens > 0 && report.prefixTokens <= report.prefixTokensTotal);
  assert.ok(existsSync(join(out, 'teacher-cache', 'ids.bin')));
  assert.equal(loadCheckpoint(report.checkpoint).meta?.kind, 'policy');
});

test('distillation at lr 1e6 stops on the first non-finite loss or gradient with one error naming the step and the last good checkpoint', async () => {
  const fx = tinyPolicy(4);
  const dialogues = Array.from(
    { length: 40 },
    (_, i) => `${fx.prompts[i % fx.prompts.length]} It is ${i % 7}.`,
  );
  const out = join(fx.dir, 'diverge');
  const before = liveTensors();
  let step = 0;
  await assert.rejects(
    distill({
      config: toyDistillConfig(out, { steps: 8, lr: 1e6, checkpointEvery: 1, keepCheckpoints: 1 }),
      init: fx.init,
      tokenizer: fx.tokenizer,
      hhhPrompt: 'Below are dialogues.\n\nHuman: Say Q.\n\nAssistant: QQQ.\n',
      dialogues,
    }),
    (err: Error) => {
      if (!(err instanceof TrainingDivergenceError)) return false;
      step = err.context.step;
      const good = join(out, 'checkpoints', `step-${String(step - 1).padStart(6, '0')}`);
      return (
        step >= 2 &&
        new RegExp(`^distill step ${step}: the (loss|gradient norm|weights after the update) `).test(
          err.message,
        ) &&
        err.message.includes(`The last good checkpoint is ${good} `)
      );
    },
  );
  assert.equal(liveTensors(), before, 'teacher, student and optimiser state are freed');
  const good = `step-${String(step - 1).padStart(6, '0')}`;
  assert.deepEqual(readdirSync(join(out, 'checkpoints')), [good]);
  assert.equal(readlinkSync(join(out, 'checkpoint')), join('checkpoints', good));
  const loaded = loadCheckpoint(join(out, 'checkpoint')); // finite: loads without allowNonFinite
  for (const p of loaded.model.parameters()) p.dispose();
});

test('a distillation config that cannot run is a ConfigError naming the key, before anything is loaded', async () => {
  const bad: [Partial<typeof defaultDistillConfig>, RegExp][] = [
    [{ batchSize: 0 }, /^distill: batchSize must be a whole number ≥ 1, got 0$/],
    [{ steps: 2.5 }, /^distill: steps must be a whole number ≥ 1, got 2\.5$/],
    [{ topK: -1 }, /topK/],
    [{ evalExamples: 0 }, /evalExamples/],
    [{ checkpointEvery: 0 }, /checkpointEvery/],
    [{ lr: 0 }, /^distill: lr must be a number > 0, got 0$/],
    [{ lr: Number.NaN }, /lr must be a number > 0/],
    [{ seed: 0.5 }, /seed/],
    [{ precision: 'fp16' }, /precision expects 'fp32' or 'bf16'/],
  ];
  for (const [override, message] of bad) {
    const config = { ...defaultDistillConfig, ...override };
    assert.throws(
      () => validateDistillConfig(config),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, message);
        return true;
      },
    );
  }
  assert.doesNotThrow(() => validateDistillConfig(defaultDistillConfig));
  // distill() checks first: the missing init folder is never reached.
  await assert.rejects(
    distill({
      config: { ...defaultDistillConfig, batchSize: 0 },
      init: '/no/such/checkpoint',
      tokenizer: undefined as never,
      hhhPrompt: '',
      dialogues: [],
    }),
    /batchSize must be a whole number ≥ 1/,
  );
});
