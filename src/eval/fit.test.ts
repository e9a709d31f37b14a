import assert from 'node:assert/strict';
import { test } from 'node:test';
import { earlyRange, fitEarlyLine, fitLine, predictLine } from './fit.ts';
import { SeededRandom } from './rng.ts';

test('an exact line is recovered with R² = 1, also far from the origin', () => {
  const x = [1e8, 1e8 + 1, 1e8 + 2, 1e8 + 3];
  const fit = fitLine(
    x,
    x.map((v) => 3 - 0.5 * (v - 1e8)),
  );
  assert.ok(Math.abs(fit.slope + 0.5) < 1e-12);
  assert.ok(Math.abs(predictLine(fit, 1e8 + 10) - -2) < 1e-6);
  assert.equal(fit.r2, 1);
  assert.deepEqual([fit.n, fit.xMin, fit.xMax], [4, 1e8, 1e8 + 3]);
});

test('noisy data: slope within 3 standard errors, R² matches 1 − SS_res/SS_tot computed directly', () => {
  const rng = new SeededRandom(3);
  const x = Array.from({ length: 200 }, () => 10 * rng.uniform());
  const y = x.map((v) => 1 + 2 * v + rng.normal());
  const fit = fitLine(x, y);
  assert.ok(Math.abs(fit.slope - 2) < 3 * fit.slopeStandardError);
  const my = y.reduce((s, v) => s + v, 0) / y.length;
  const ssRes = y.reduce((s, v, i) => s + (v - predictLine(fit, x[i]!)) ** 2, 0);
  const ssTot = y.reduce((s, v) => s + (v - my) ** 2, 0);
  assert.ok(Math.abs(fit.r2 - (1 - ssRes / ssTot)) < 1e-12);
  assert.ok(fit.r2 > 0.9);
});

test('the early fit ignores the bend of an over-optimised curve', () => {
  // reward = 0.8·√KL until √KL = 5, then it falls (over-optimisation of the train PM).
  const x = Array.from({ length: 40 }, (_, i) => i * 0.25);
  const y = x.map((v) => (v <= 5 ? 0.8 * v : 4 - 1.5 * (v - 5)));
  const early = fitEarlyLine(x, y, { maxX: 5 });
  assert.ok(Math.abs(early.slope - 0.8) < 1e-12 && early.r2 > 0.999999);
  assert.equal(early.xMax, 5);
  assert.ok(fitLine(x, y).r2 < 0.5);
  assert.deepEqual(earlyRange([4, 1, 9, 2], { maxX: 3 }), [1, 3]);
  assert.deepEqual(earlyRange([4, 1, 9, 2], { firstK: 3 }), [1, 3, 0]);
  assert.deepEqual(earlyRange([0, 10, 4, 6]), [0, 2]);
});

test('degenerate inputs throw', () => {
  assert.throws(() => fitLine([1], [1]), /at least 2/);
  assert.throws(() => fitLine([2, 2], [1, 3]), /slope is undefined/);
  assert.throws(() => fitLine([1, 2], [1]), /2 x values but 1/);
  assert.throws(() => fitLine([1, Number.NaN], [1, 2]), /non-finite/);
});
