import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { bestOfN } from './best-of-n.ts';
import { letterReward, tinyPolicy } from './test-fixtures.ts';

test('best-of-N: reward of the kept response rises with N; KL column is log N − (N−1)/N', async () => {
  const fx = tinyPolicy(4);
  const { model } = loadCheckpoint(fx.init);
  model.eval();
  const report = await bestOfN(model, fx.tokenizer, fx.prompts.slice(0, 6), {
    ns: [16, 1, 4],
    reward: letterReward('Q'),
    gold: letterReward('Q'),
    maxNewTokens: 8,
    seed: 1,
  });
  assert.deepEqual(
    report.rows.map((r) => r.n),
    [1, 4, 16],
  );
  const [one, four, sixteen] = report.rows as [
    (typeof report.rows)[0],
    (typeof report.rows)[0],
    (typeof report.rows)[0],
  ];
  assert.ok(four.reward >= one.reward && sixteen.reward >= four.reward);
  assert.ok(sixteen.reward > one.reward + 0.02, `${one.reward} → ${sixteen.reward}`);
  assert.equal(one.kl, 0);
  assert.ok(Math.abs(sixteen.kl - (Math.log(16) - 15 / 16)) < 1e-12);
  assert.ok(report.example !== null);
});
