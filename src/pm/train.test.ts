// PM training checkpoints: a run rewound to its middle checkpoint (as after a crash) and resumed ends
// bit-identical to the uninterrupted run; lineage and kind are recorded.
import assert from 'node:assert/strict';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { noGrad, TrainingDivergenceError, tidy } from '../engine/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { resolvePMTrainConfig } from './config.ts';
import type { TaskedComparison } from './data.ts';
import { loadPreferenceModel } from './model.ts';
import { tinyLMCheckpoint } from './test-fixtures.ts';
import { type PMTrainEvent, trainPreferenceModel } from './train.ts';

function comparisons(n: number): TaskedComparison[] {
  return Array.from({ length: n }, (_, i) => {
    const p = `\n\nHuman: what is ${i % 7} plus ${i % 5}?\n\nAssistant:`;
    return {
      record: { chosen: `${p} it is ${(i % 7) + (i % 5)}.`, rejected: `${p} no idea, sorry about that.` },
      task: i % 3 === 0 ? ('harmless' as const) : ('helpful' as const),
    };
  });
}

const weightsOf = (dir: string): Map<string, Float32Array> => {
  const { pm } = loadPreferenceModel(dir);
  const out = new Map<string, Float32Array>();
  noGrad(() =>
    tidy(() => {
      for (const [k, v] of Object.entries(pm.stateDict())) out.set(k, v.toTypedArray() as Float32Array);
    }),
  );
  return out;
};

const metricsOf = (dir: string): string[] =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { seconds: _s, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return JSON.stringify(rest);
    });

test('resume from a mid-run checkpoint ends bit-identical to the uninterrupted run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-pmresume-'));
  const data = comparisons(120);
  const tok = Tokenizer.train(
    data.flatMap((c) => [c.record.chosen, c.record.rejected]),
    { vocabSize: 300 },
  );
  // An "LM" checkpoint to start from, with a pretraining lr in its hhkit.json (PMP uses 0.1× it).
  const lmDir = tinyLMCheckpoint(dir, tok, { lr: 2e-2 });
  const out = join(dir, 'pmp');
  const config = resolvePMTrainConfig('pmp', {
    data: '(test)',
    out,
    init: lmDir,
    batchSize: 8,
    steps: 20,
    checkpointEvery: 10,
    keepCheckpoints: 3,
    dropout: 0.1,
  });
  const full = await trainPreferenceModel(config, { train: data, eval: data.slice(0, 16) });
  assert.equal(full.lr, 2e-3, 'lr = 0.1 × the LM pretraining lr');
  const finalWeights = weightsOf(join(out, 'checkpoint'));
  const finalMetrics = metricsOf(out);
  const meta = JSON.parse(readFileSync(join(out, 'checkpoint', 'hhkit.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  assert.equal(meta['kind'], 'pm');
  assert.deepEqual(meta['lineage'], [realpathSync(lmDir)]);

  // "Crash" after step 10: the latest checkpoint is step 10, step 20 never happened.
  rmSync(join(out, 'checkpoints', 'step-000020'), { recursive: true });
  rmSync(join(out, 'checkpoint'));
  symlinkSync(join('checkpoints', 'step-000010'), join(out, '.tmp-link'));
  renameSync(join(out, '.tmp-link'), join(out, 'checkpoint'));
  await assert.rejects(
    trainPreferenceModel(config, { train: data, eval: data.slice(0, 16) }),
    /already has a checkpoint/,
  );
  const resumed = await trainPreferenceModel(config, { train: data, eval: data.slice(0, 16), resume: true });
  assert.equal(resumed.resumedFrom, 10);
  assert.equal(resumed.steps, 20);
  assert.equal(resumed.lastLoss, full.lastLoss);
  const after = weightsOf(join(out, 'checkpoint'));
  assert.equal(after.size, finalWeights.size);
  for (const [k, v] of finalWeights) assert.deepEqual(after.get(k), v, `tensor ${k} differs after resume`);
  assert.deepEqual(metricsOf(out), finalMetrics);
  assert.ok(finalWeights.has('score.weight'), 'the head is saved as score.*');
});

test('precision bf16: the PM trains under bfloat16 autocast (loss falls, float32 weights); a bad precision is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-pmbf16-'));
  const data = comparisons(96);
  const tok = Tokenizer.train(
    data.flatMap((c) => [c.record.chosen, c.record.rejected]),
    { vocabSize: 300 },
  );
  const lmDir = tinyLMCheckpoint(dir, tok, { lr: 2e-2 });
  const config = resolvePMTrainConfig('finetune', {
    data: '(test)',
    out: join(dir, 'bf16'),
    init: lmDir,
    batchSize: 16,
    steps: 30,
    lrMultiplier: 0.5,
    precision: 'bf16',
  });
  const r = await trainPreferenceModel(config, { train: data, eval: data.slice(0, 32) });
  assert.ok(r.lastLoss < r.firstLoss - 0.2, `loss ${r.firstLoss} → ${r.lastLoss}`);
  for (const w of weightsOf(join(dir, 'bf16', 'checkpoint')).values()) assert.ok(w instanceof Float32Array);
  assert.throws(
    () => resolvePMTrainConfig('finetune', { data: 'x', precision: 'fp16' }),
    /precision expects/,
  );
});

/** A tiny LM checkpoint and tokenizer for `data`, in a fresh folder. */
function tinySetup(data: TaskedComparison[]): { dir: string; lmDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-pmguard-'));
  const tok = Tokenizer.train(
    data.flatMap((c) => [c.record.chosen, c.record.rejected]),
    { vocabSize: 300 },
  );
  return { dir, lmDir: tinyLMCheckpoint(dir, tok, { lr: 2e-2 }) };
}

test('training accuracy counts a tie as ½, as evaluation does', async () => {
  // chosen = rejected: the two scores of every pair are equal, so each pair is a tie.
  const data = comparisons(32).map((c) => ({ ...c, record: { ...c.record, rejected: c.record.chosen } }));
  const { dir, lmDir } = tinySetup(data);
  const accuracies: number[] = [];
  const config = resolvePMTrainConfig('finetune', {
    data: '(test)',
    out: join(dir, 'ties'),
    init: lmDir,
    batchSize: 8,
    steps: 3,
  });
  const r = await trainPreferenceModel(config, {
    train: data,
    eval: data.slice(0, 8),
    onEvent: (e) => {
      if (e.type === 'step') accuracies.push(e.accuracy);
    },
  });
  assert.deepEqual(accuracies, [0.5, 0.5, 0.5]);
  assert.equal(r.evalAccuracy, 0.5);
});

test('base lr 1e6: the PM stops at the first non-finite loss, naming the step and the last good checkpoint; nothing non-finite written', async () => {
  const data = comparisons(64);
  const { dir, lmDir } = tinySetup(data);
  const out = join(dir, 'diverge');
  const config = resolvePMTrainConfig('finetune', {
    data: '(test)',
    out,
    init: lmDir,
    batchSize: 8,
    steps: 8,
    baseLr: 1e6,
    lrMultiplier: 1,
    warmupSteps: 0,
    checkpointEvery: 1,
    keepCheckpoints: 1,
    evalEvery: 0,
  });
  let failed: TrainingDivergenceError | null = null;
  await assert.rejects(
    trainPreferenceModel(config, { train: data, eval: data.slice(0, 8) }),
    (err: Error) => {
      if (!(err instanceof TrainingDivergenceError)) return false;
      failed = err;
      return true;
    },
  );
  const err = failed as unknown as TrainingDivergenceError;
  const step = err.context.step;
  assert.ok(step >= 2, `a step before ${step} was taken and checkpointed`);
  const good = join(out, 'checkpoints', `step-${String(step - 1).padStart(6, '0')}`);
  assert.match(
    err.message,
    new RegExp(`^finetune step ${step}: the (loss|gradient norm) is (NaN|-?Infinity)`),
  );
  assert.ok(err.message.includes(`The last good checkpoint is ${good} `), err.message);
  assert.deepEqual(readdirSync(join(out, 'checkpoints')), [`step-${String(step - 1).padStart(6, '0')}`]);
  assert.equal(
    readlinkSync(join(out, 'checkpoint')),
    join('checkpoints', `step-${String(step - 1).padStart(6, '0')}`),
  );
  loadPreferenceModel(join(out, 'checkpoint')); // finite: no allowNonFinite needed
});

test('a PM resume with a changed learning rate warns, naming the old and new value', async () => {
  const data = comparisons(48);
  const { dir, lmDir } = tinySetup(data);
  const out = join(dir, 'relr');
  const base = { data: '(test)', out, init: lmDir, batchSize: 8, checkpointEvery: 2, evalEvery: 0 };
  await trainPreferenceModel(resolvePMTrainConfig('finetune', { ...base, steps: 2 }), { train: data });
  const events: PMTrainEvent[] = [];
  await trainPreferenceModel(resolvePMTrainConfig('finetune', { ...base, steps: 4, lrMultiplier: 0.005 }), {
    train: data,
    resume: true,
    onEvent: (e) => events.push(e),
  });
  const warnings = events.flatMap((e) => (e.type === 'warning' ? [e.message] : []));
  assert.equal(warnings.length, 1, JSON.stringify(events));
  assert.match(
    warnings[0]!,
    /^resuming with lr 0\.0001 .*the checkpoint's run used 0\.0002 \(baseLr 0\.02 × lrMultiplier 0\.01/,
  );
});
