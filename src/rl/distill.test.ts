import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { liveTensors, noGrad, randn, TrainingDivergenceError, tidy } from '../engine/index.ts';
import { ConfigError } from '../train/config.ts';
import { loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.ts';
import { GPT } from '../nn/gpt.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { QWEN25_CHAT_TEMPLATE, writeHfStyleTokenizer } from '../tokenizer/test-fixtures.ts';
import { batchKL, bucketKL, defaultDistillConfig, distill, validateDistillConfig } from './distill.ts';
import { buildTeacherCache, topKWithRest } from './distill-cache.ts';
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
  const saved = loadCheckpoint(report.checkpoint);
  assert.equal(saved.meta?.kind, 'policy');
  // Disposed here: left to the finalizer, a GC during the next test would free them and move its count.
  for (const p of saved.model.parameters()) p.dispose();
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

test('with a chat template (a default system turn): the student reads it, the teacher the HHH prompt instead; KL drops; the checkpoint keeps the template', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-distill-chat-'));
  try {
    const prompts = Array.from(
      { length: 24 },
      (_, i) => `\n\nHuman: What is ${i % 10} plus ${(i * 3) % 10}?\n\nAssistant:`,
    );
    const hhh = 'Below are dialogues.\n\nHuman: Say Q.\n\nAssistant: QQQ QQ Q.\n-----\n';
    const dialogues = Array.from({ length: 96 }, (_, i) => `${prompts[i % prompts.length]} It is ${i % 7}.`);
    const tokenizerPath = writeHfStyleTokenizer(dir, [...dialogues, hhh], QWEN25_CHAT_TEMPLATE);
    const tokenizer = Tokenizer.fromFile(tokenizerPath).withChatTemplate();
    const model = new GPT(
      { nLayer: 1, nHead: 2, nEmbd: 32, nPositions: 160, vocabSize: tokenizer.vocabSize, dropout: 0 },
      { seed: 3 },
    );
    const init = join(dir, 'init');
    saveCheckpoint(init, { model, meta: { kind: 'lm', lineage: [] }, tokenizerPath });
    for (const p of model.parameters()) p.dispose();
    const report = await distill({
      config: toyDistillConfig(join(dir, 'distill')),
      init,
      tokenizer,
      hhhPrompt: hhh,
      dialogues,
      evalPrompts: prompts.slice(0, 8),
      gold: letterReward('Q'),
    });
    assert.ok(report.klAfter < 0.5 * report.klBefore, `KL ${report.klBefore} → ${report.klAfter}`);
    assert.ok(Number.isFinite(report.goldTeacher) && Number.isFinite(report.goldAfter));
    assert.equal(report.prefixTokens, report.prefixTokensTotal, 'the whole HHH prompt fits');
    // The checkpoint remembers the template, so PPO and serve render as the student was trained.
    const saved = Tokenizer.fromFile(join(report.checkpoint, 'tokenizer.json'));
    assert.equal(saved.format.name, 'chatml');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the student KL reads the cache after its head: 0 against itself as teacher with the head as prefix', () => {
  const model = new GPT(
    { nLayer: 1, nHead: 2, nEmbd: 16, nPositions: 32, vocabSize: 40, dropout: 0 },
    { seed: 2 },
  );
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-distill-head-'));
  try {
    const head = [5, 6, 7, 8];
    const examples = [
      [9, 10, 11, 12, 13, 14],
      [15, 16, 17],
    ];
    const key = { teacher: 'self', prefixTokens: 4, k: 6, width: 6, examples: 2, dataHash: 'x' };
    const cache = buildTeacherCache(model, head, examples, { dir, k: 6, width: 6, key, padId: 0 });
    noGrad(() =>
      tidy(() => {
        const same = batchKL(model, cache, head, [0, 1], 0, 'fp32').item();
        assert.ok(Math.abs(same) < 1e-5, `KL ${same} with the teacher's context`);
        const without = batchKL(model, cache, [], [0, 1], 0, 'fp32').item();
        assert.ok(without > 1e-4, `KL ${without} without the head`);
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    for (const p of model.parameters()) p.dispose();
  }
});
