import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gae, penalisedRewards, whiten } from './advantages.ts';
import { bestOfNKL } from './kl.ts';

const close = (a: ArrayLike<number>, b: readonly number[], tol = 1e-9) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < tol, `[${i}] ${a[i]} vs ${b[i]}`);
};

test('GAE matches a hand-computed example (γ=1, λ=0.95), masked tail ignored', () => {
  // Row 0: 3 tokens, V = [0.5, 1, 2], r = [0, 0, 3].
  //   δ2 = 3 − 2 = 1;       A2 = 1
  //   δ1 = 0 + 2 − 1 = 1;   A1 = 1 + 0.95·1 = 1.95
  //   δ0 = 0 + 1 − 0.5 = 0.5; A0 = 0.5 + 0.95·1.95 = 2.3525
  // Row 1: 1 token then padding: V = [1], r = [−1] → A = −2.
  const values = { values: [0.5, 1, 2, 1, 9, 9], mask: [1, 1, 1, 1, 0, 0], B: 2, N: 3 };
  const { advantages, returns } = gae(values, [0, 0, 3, -1, 5, 5], 1, 0.95);
  close(advantages, [2.3525, 1.95, 1, -2, 0, 0]);
  close(returns, [2.8525, 2.95, 3, -1, 0, 0]);
});

test('GAE with γ<1 and λ=0 is the one-step TD error', () => {
  const { advantages } = gae({ values: [1, 2], mask: [1, 1], B: 1, N: 2 }, [0.5, 1], 0.9, 0);
  close(advantages, [0.5 + 0.9 * 2 - 1, 1 - 2]);
});

test('whiten: zero mean, unit (unbiased) variance over unmasked entries; shiftMean=false keeps the mean', () => {
  const w = whiten([1, 2, 3, 100], [1, 1, 1, 0]);
  close(w, [-1, 0, 1, 0], 1e-6); // mean 2, unbiased var 1
  const kept = whiten([1, 2, 3, 100], [1, 1, 1, 0], false);
  close(kept, [1, 2, 3, 0], 1e-6);
  const w2 = whiten([2, 4, 6, 8], [1, 1, 1, 1]);
  const sd = Math.sqrt(20 / 3); // unbiased variance of [2,4,6,8] is 20/3
  close(w2, [-3 / sd, -1 / sd, 1 / sd, 3 / sd], 1e-6);
});

test('whiten across ranks: two shards with summed statistics whiten as the concatenation', () => {
  const shards = [
    { values: [1, 2, 3, 100], mask: [1, 1, 1, 0] },
    { values: [7, -4, 0.5, 9, 2], mask: [1, 1, 1, 1, 0] },
  ];
  const kept = (s: { values: number[]; mask: number[] }) => s.values.filter((_, i) => s.mask[i]);
  const mean = [...kept(shards[0]!), ...kept(shards[1]!)].reduce((a, b) => a + b, 0) / 7;
  // What the other rank contributes to each of whiten's two reductions: [count, sum], then [Σ (x − mean)²].
  const contribution = (s: { values: number[]; mask: number[] }) => [
    [kept(s).length, kept(s).reduce((a, b) => a + b, 0)],
    [kept(s).reduce((a, x) => a + (x - mean) ** 2, 0)],
  ];
  for (const shiftMean of [true, false]) {
    const whole = whiten(
      shards.flatMap((s) => s.values),
      shards.flatMap((s) => s.mask),
      shiftMean,
    );
    const sharded = [0, 1].flatMap((rank) => {
      const other = contribution(shards[1 - rank]!);
      const shard = shards[rank]!;
      const sumWithOther = (xs: number[]) => xs.map((x, i) => x + other[xs.length === 2 ? 0 : 1]![i]!);
      return Array.from(whiten(shard.values, shard.mask, shiftMean, sumWithOther));
    });
    close(sharded, Array.from(whole), 1e-12);
  }
});

test('penalised rewards: −λ·KL per token, score added on the last response token', () => {
  const r = penalisedRewards([0.5, 0.1, 0.2, 1, 1, 1], [1, 1, 0, 1, 0, 0], [2, -1], 2, 3, 0.1);
  close(r, [-0.05, -0.01 + 2, 0, -0.1 - 1, 0, 0]);
});

test('best-of-N analytic KL = log N − (N−1)/N', () => {
  close(
    [bestOfNKL(1), bestOfNKL(4), bestOfNKL(16), bestOfNKL(64)],
    [0, Math.log(4) - 0.75, Math.log(16) - 15 / 16, Math.log(64) - 63 / 64],
  );
  assert.ok(Math.abs(bestOfNKL(64) - 3.1746) < 1e-3);
  assert.throws(() => bestOfNKL(0), RangeError);
});
