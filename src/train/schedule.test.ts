import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, resolveLMTrainConfig } from './config.ts';
import { learningRate } from './schedule.ts';

const s = { lr: 1e-3, minLr: 1e-4, warmupSteps: 10, decaySteps: 110 };
const close = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);

test('warmup is linear from lr/warmup to lr', () => {
  close(learningRate(0, s), 1e-4);
  close(learningRate(4, s), 5e-4);
  close(learningRate(9, s), 1e-3);
});

test('cosine decay: peak at the end of warmup, midpoint halfway, minLr at and after decaySteps', () => {
  close(learningRate(10, s), 1e-3);
  close(learningRate(60, s), 1e-4 + 0.5 * 9e-4); // progress ½ → cos(π/2) = 0
  close(learningRate(35, s), 1e-4 + 0.5 * (1 + Math.cos(Math.PI / 4)) * 9e-4);
  close(learningRate(110, s), 1e-4);
  close(learningRate(500, s), 1e-4);
  for (let step = 11; step < 110; step++) assert.ok(learningRate(step, s) < learningRate(step - 1, s));
});

test('no warmup starts at the peak', () => {
  close(learningRate(0, { ...s, warmupSteps: 0 }), 1e-3);
});

test('config: defaults merged once, strings from a command line converted, typos and bad values rejected', () => {
  const c = resolveLMTrainConfig({ data: 'x.jsonl', 'batch-size': '4', lr: 3e-4, lossOn: 'assistant' });
  assert.equal(c.batchSize, 4);
  assert.equal(c.lr, 3e-4);
  assert.equal(c.lossOn, 'assistant');
  assert.equal(c.nLayer, 4);
  assert.throws(() => resolveLMTrainConfig({ data: 'x', batchsize: 4 }), /unknown option 'batchsize'/);
  assert.throws(() => resolveLMTrainConfig({ data: 'x', steps: 'ten' }), /steps expects a number/);
  assert.throws(() => resolveLMTrainConfig({ data: 'x', nEmbd: 30, nHead: 4 }), /divisible/);
  assert.throws(() => resolveLMTrainConfig({ data: 'x', lossOn: 'human' }), ConfigError);
  assert.throws(() => resolveLMTrainConfig({}), /data is required/);
});
