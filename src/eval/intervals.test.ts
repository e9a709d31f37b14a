import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  differenceOfMeans,
  excludesZero,
  mean,
  meanInterval,
  pairedDifference,
  sampleVariance,
} from './intervals.ts';
import { SeededRandom } from './rng.ts';

const draw = (n: number, seed: number, shift = 0): number[] => {
  const rng = new SeededRandom(seed);
  return Array.from({ length: n }, () => rng.normal() + shift);
};

test('a 95% mean interval has about the normal width and covers the true mean about 95% of the time', () => {
  const one = meanInterval(draw(400, 1));
  // Standard error 1/√400 = 0.05: the interval is ≈ ±1.96 · 0.05 wide.
  assert.ok(Math.abs(one.upper - one.lower - 0.196) < 0.04, `width ${one.upper - one.lower}`);
  let covered = 0;
  for (let s = 0; s < 200; s++) {
    const i = meanInterval(draw(100, 100 + s), { samples: 300, seed: s });
    if (i.lower <= 0 && 0 <= i.upper) covered++;
  }
  assert.ok(covered >= 180 && covered <= 198, `covered ${covered}/200`);
});

test('a paired difference sees a small shift that independent samples would hide', () => {
  const before = draw(256, 7);
  const after = before.map((x, i) => x + 0.1 + 0.05 * ((i % 3) - 1));
  const paired = pairedDifference(before, after);
  const exact = after.reduce((a, x, i) => a + x - before[i]!, 0) / before.length;
  assert.ok(Math.abs(paired.value - exact) < 1e-12 && Math.abs(exact - 0.1) < 0.01);
  assert.ok(excludesZero(paired), `paired [${paired.lower}, ${paired.upper}]`);
  const unpaired = differenceOfMeans(before, after);
  assert.ok(!excludesZero(unpaired), `unpaired [${unpaired.lower}, ${unpaired.upper}]`);
  assert.ok(!excludesZero(paired, -1));
  assert.throws(() => pairedDifference([1], [1, 2]), /1 values before, 2 after/);
});

test('the same seed gives the same interval', () => {
  const xs = draw(50, 3);
  assert.deepEqual(meanInterval(xs, { seed: 9 }), meanInterval(xs, { seed: 9 }));
  assert.notDeepEqual(meanInterval(xs, { seed: 9 }), meanInterval(xs, { seed: 10 }));
});

test('mean and sample variance: n − 1 in the denominator, NaN where there is too little to measure', () => {
  assert.equal(mean([1, 2, 3, 4]), 2.5);
  assert.ok(Math.abs(sampleVariance([1, 2, 3, 4]) - 5 / 3) < 1e-12);
  assert.equal(sampleVariance(new Float64Array([7, 7, 7])), 0);
  assert.ok(Number.isNaN(mean([])));
  assert.ok(Number.isNaN(sampleVariance([3])));
});
