import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { hashString } from '../world/rng.ts';
import { bestOfN } from './best-of-n.ts';
import { letterReward, tinyPolicy } from './test-fixtures.ts';

test('best-of-N by a noisy proxy raises a gold score the selection never sees; KL column is log N − (N−1)/N', async () => {
  const fx = tinyPolicy(4);
  const { model } = loadCheckpoint(fx.init);
  model.eval();
  const gold = letterReward('Q');
  // The proxy: gold plus noise fixed per response text, so the kept response is not chosen by gold itself
  // (max over nested subsets is monotone only in the selecting score, not in this one).
  const noise = (r: string) => (hashString(r) % 1000) / 1000 - 0.5;
  const proxy = (p: string[], rs: string[]) => gold(p, rs).map((g, i) => g + 0.05 * noise(rs[i]!));
  const report = await bestOfN(model, fx.tokenizer, fx.prompts.slice(0, 8), {
    ns: [16, 1, 4],
    reward: proxy,
    gold,
    maxNewTokens: 8,
    seed: 1,
  });
  assert.deepEqual(
    report.rows.map((r) => r.n),
    [1, 4, 16],
  );
  const [one, , sixteen] = report.rows as [(typeof report.rows)[0], unknown, (typeof report.rows)[0]];
  assert.ok(sixteen.gold > one.gold + 0.02, `gold ${one.gold} → ${sixteen.gold}`);
  // Per-prompt golds are the kept responses' and average to the row's gold.
  for (const row of report.rows) {
    assert.equal(row.golds.length, 8);
    assert.ok(Math.abs(row.golds.reduce((a, b) => a + b, 0) / 8 - row.gold) < 1e-12);
  }
  assert.equal(one.kl, 0);
  assert.ok(Math.abs(sixteen.kl - (Math.log(16) - 15 / 16)) < 1e-12);
  assert.ok(report.example !== null);
});
