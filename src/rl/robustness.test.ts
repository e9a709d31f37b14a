import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyseRobustness, goldSlope, type RobustnessPoint, spreadRatio } from './robustness.ts';

test('robustness analysis: early line fits with R², and the step where the PMs diverge', () => {
  // Train PM keeps rising linearly in √KL; the test PM follows it until √KL = 2, then falls.
  const points: RobustnessPoint[] = [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4].map((s, i) => ({
    step: i * 10,
    kl: s * s,
    sqrtKL: s,
    trainPM: 0.5 * s,
    testPM: s <= 2 ? 0.5 * s : 1 - 0.3 * (s - 2),
    gold: s <= 1.5 ? 0.1 * s : 0.15 - 0.05 * (s - 1.5),
    goldPM: 2 * (s <= 1.5 ? 0.1 * s : 0.15 - 0.05 * (s - 1.5)),
  }));
  const a = analyseRobustness(points, { earlyFraction: 0.5, threshold: 0.25 });
  assert.ok(a.fits.trainPM && Math.abs(a.fits.trainPM.slope - 0.5) < 1e-9 && a.fits.trainPM.r2 > 0.999);
  assert.ok(a.fits.testPM && Math.abs(a.fits.testPM.slope - 0.5) < 1e-9);
  assert.equal(a.fits.trainPM.xMax, 2);
  // gap at √KL = 2.5: 1.25 − 0.85 = 0.4 > 0.25 (at 2 it is 0)
  assert.deepEqual(a.divergence && { step: a.divergence.step, sqrtKL: a.divergence.sqrtKL }, {
    step: 50,
    sqrtKL: 2.5,
  });
  // At the largest √KL (4): train gained 2, test 1 − 0.6 = 0.4, gold (×2) 2·(0.15 − 0.125) = 0.05.
  assert.equal(a.atLargestKL?.step, 80);
  assert.ok(Math.abs(a.atLargestKL!.trainGain - 2) < 1e-9);
  assert.ok(Math.abs(a.atLargestKL!.testGain - 0.4) < 1e-9);
  assert.ok(Math.abs(a.atLargestKL!.goldGain - 0.05) < 1e-9);
  // Each PM in its own units: early (√KL ≤ 2, 4 snapshots after the start) the test PM gains what the train PM does; at
  // √KL 4 a fifth of it (0.4 of 2).
  assert.equal(a.gainFraction?.earlyPoints, 4);
  assert.ok(Math.abs(a.gainFraction!.early - 1) < 1e-9);
  assert.ok(Math.abs(a.gainFraction!.atLargestKL - 0.2) < 1e-9);
  const none = analyseRobustness(points.map((p) => ({ ...p, testPM: p.trainPM })));
  assert.equal(none.divergence, null);
});

test('goldSlope: the least-squares slope of reward on gold', () => {
  assert.ok(Math.abs(goldSlope([0.1, 1.1, 2.1], [0, 0.5, 1]) - 2) < 1e-12);
  assert.ok(Number.isNaN(goldSlope([1, 2], [0.5, 0.5])));
});

test('the test PM is compared in train-PM units: a PM that ranks alike on twice the scale is no lag the wrong way', () => {
  // The test PM tracks the train PM exactly, on twice its scale (σ ratio 0.5 puts it back).
  const points: RobustnessPoint[] = [0, 0.5, 1, 1.5, 2].map((s, i) => ({
    step: i * 10,
    kl: s * s,
    sqrtKL: s,
    trainPM: 0.5 * s,
    testPM: s,
    testPMScaled: s * spreadRatio([0, 1, 2], [0, 2, 4]),
    gold: 0,
    goldPM: 0,
  }));
  const a = analyseRobustness(points);
  assert.ok(Math.abs(a.atLargestKL!.trainGain - a.atLargestKL!.testGain) < 1e-9);
  assert.ok(a.fits.testPM && Math.abs(a.fits.testPM.slope - 0.5) < 1e-9);
  // A file from before the scaling: the raw test PM (twice the gain) is what the analysis reads.
  const old = analyseRobustness(points.map(({ testPMScaled: _, ...p }) => p));
  assert.ok(Math.abs(old.atLargestKL!.testGain - 2) < 1e-9);
  // The gain fraction reads the raw scores: twice the train PM's gain early and at the end, no lag.
  assert.ok(Math.abs(a.gainFraction!.early - 2) < 1e-9 && Math.abs(a.gainFraction!.atLargestKL - 2) < 1e-9);
  // A train PM that gained nothing gives no fraction.
  assert.equal(analyseRobustness(points.map((p) => ({ ...p, trainPM: 0 }))).gainFraction, null);
});

test('spreadRatio: σ(a)/σ(b), 1 when either is constant or too short', () => {
  assert.ok(Math.abs(spreadRatio([0, 2, 4], [0, 1, 2]) - 2) < 1e-12);
  assert.equal(spreadRatio([1, 1], [0, 1]), 1);
  assert.equal(spreadRatio([1], [2]), 1);
});

test('gainFraction: a slope through the origin over the early part, in any order, NaN snapshots skipped', () => {
  const at = (step: number, sqrtKL: number, trainPM: number, testPM: number): RobustnessPoint => ({
    step,
    kl: sqrtKL * sqrtKL,
    sqrtKL,
    trainPM,
    testPM,
    gold: 0,
    goldPM: 0,
  });
  // Early (√KL ≤ 2 of 0…4): train gains 1 and 2, test gains 1 and 3 → (1·1 + 2·3)/(1 + 4) = 1.4 (a mean of
  // ratios would read 1.25, a fitted line's slope 2); at √KL 4: 2 of 3.
  const points = [at(30, 4, 3.5, 2.2), at(10, 1, 1.5, 1.2), at(0, 0, 0.5, 0.2), at(20, 2, 2.5, 3.2)];
  const f = analyseRobustness(points, { earlyFraction: 0.5 }).gainFraction!;
  assert.ok(Math.abs(f.early - 1.4) < 1e-9, `early ${f.early}`);
  assert.equal(f.earlyPoints, 2);
  assert.ok(Math.abs(f.atLargestKL - 2 / 3) < 1e-9);
  // A snapshot whose evaluation failed (NaN) is left out, not spread through the sums.
  for (const step of [15, 40]) {
    const withNaN = analyseRobustness([...points, at(step, Number.NaN, Number.NaN, 1)], {
      earlyFraction: 0.5,
    });
    assert.ok(Math.abs(withNaN.gainFraction!.early - 1.4) < 1e-9);
    assert.ok(Math.abs(withNaN.gainFraction!.atLargestKL - 2 / 3) < 1e-9);
  }
  // The train PM back below its start at the largest KL: no fraction to give.
  assert.equal(analyseRobustness([...points.slice(1), at(30, 4, 0.4, 2.2)]).gainFraction, null);
});
