import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  accuracyByGroup,
  accuracyByScoreLevel,
  calibrationCurve,
  humanTurns,
  preferenceAccuracy,
  preferenceLoss,
  type ScoredComparison,
} from './calibration.ts';
import { SeededRandom } from './rng.ts';

/**
 * Comparisons whose true preference probability is σ(gap), scored by a PM that reports
 * `confidence · gap`: confidence 1 is perfectly calibrated, > 1 over-confident.
 */
function synthetic(n: number, confidence: number, seed: number): ScoredComparison[] {
  const rng = new SeededRandom(seed);
  return Array.from({ length: n }, () => {
    const gap = Math.abs(2 * rng.normal());
    const higherWins = rng.uniform() < 1 / (1 + Math.exp(-gap));
    const hi = confidence * gap;
    return higherWins ? { chosen: hi, rejected: 0 } : { chosen: 0, rejected: hi };
  });
}

test('a calibrated PM has small ECE, an over-confident one large, and rescaling fixes it', () => {
  const calibrated = calibrationCurve(synthetic(20000, 1, 1), { bins: 10 });
  const overconfident = calibrationCurve(synthetic(20000, 4, 1), { bins: 10 });
  assert.ok(calibrated.ece < 0.02, `calibrated ECE`);
  assert.ok(overconfident.ece > 0.1, `over-confident ECE ${overconfident.ece}`);
  // Same labels, so the same accuracy: calibration is about confidence, not ranking.
  assert.equal(overconfident.accuracy, calibrated.accuracy);
  const rescaled = calibrationCurve(synthetic(20000, 4, 1), { bins: 10, scale: 0.25 });
  assert.ok(rescaled.ece < 0.02);
  // Over-confidence shows where the gaps are small; at huge gaps both sides are ≈ 1.
  for (const b of overconfident.bins) if (b.meanGap < 6) assert.ok(b.predicted > b.accuracy + 0.02);
  assert.equal(
    calibrated.bins.reduce((s, b) => s + b.count, 0),
    20000,
  );
});

test('bins: width bins split [0, max], quantile bins have equal counts, the last bin keeps its edge', () => {
  const data = [0, 0.5, 1, 1.5, 2, 3, 4].map((g) => ({ chosen: g, rejected: 0 }));
  const width = calibrationCurve(data, { bins: 4 });
  assert.deepEqual(
    width.bins.map((b) => [b.lower, b.upper, b.count]),
    [
      [0, 1, 2],
      [1, 2, 2],
      [2, 3, 1],
      [3, 4, 2],
    ],
  );
  // The zero gap is a tie: accuracy ½, predicted ½.
  assert.equal(width.bins[0]!.accuracy, 0.75);
  assert.equal(width.bins[0]!.predicted, (0.5 + 1 / (1 + Math.exp(-0.5))) / 2);
  const q = calibrationCurve(synthetic(1000, 1, 2), { bins: 4, binning: 'quantile' });
  assert.deepEqual(
    q.bins.map((b) => b.count),
    [250, 250, 250, 250],
  );
  // Gaps beyond maxGap go in the last bin.
  const capped = calibrationCurve(data, { bins: 2, maxGap: 2 });
  assert.deepEqual(
    capped.bins.map((b) => b.count),
    [2, 5],
  );
});

test('accuracy counts ties as ½; the loss is the stable log(1 + e^(r_rej − r_cho))', () => {
  const data = [
    { chosen: 1, rejected: 0 },
    { chosen: 0, rejected: 2 },
    { chosen: 3, rejected: 3 },
  ];
  assert.equal(preferenceAccuracy(data), 1.5 / 3);
  assert.ok(Math.abs(preferenceLoss([{ chosen: 0, rejected: 0 }]) - Math.LN2) < 1e-15);
  assert.equal(preferenceLoss([{ chosen: 0, rejected: 1000 }]), 1000);
  assert.ok(preferenceLoss([{ chosen: 1000, rejected: 0 }]) < 1e-300);
  assert.throws(() => preferenceAccuracy([{ chosen: Number.NaN, rejected: 0 }]), /NaN/);
});

test('accuracy vs score level finds the planted drop at high scores', () => {
  const rng = new SeededRandom(5);
  // Noise on the gap grows with the level, so high-scoring pairs are ranked less reliably.
  const data = Array.from({ length: 4000 }, () => {
    const level = 4 * rng.uniform();
    const gap = 0.5 + (0.3 + level) * rng.normal();
    return { chosen: level + gap / 2, rejected: level - gap / 2 };
  });
  const bins = accuracyByScoreLevel(data, 4);
  assert.equal(bins.length, 4);
  assert.ok(bins[0]!.meanScore < bins[3]!.meanScore);
  assert.ok(bins[0]!.accuracy > bins[3]!.accuracy + 0.1, JSON.stringify(bins.map((b) => b.accuracy)));
});

test('per-group accuracy: numeric groups sort numerically; turns come from the transcript parser', () => {
  const rows = [
    { chosen: 1, rejected: 0, turns: 10, task: 'helpful' },
    { chosen: 0, rejected: 1, turns: 2, task: 'harmless' },
    { chosen: 1, rejected: 0, turns: 2, task: 'harmless' },
  ];
  const byTurns = accuracyByGroup(rows, (r) => r.turns);
  assert.deepEqual(
    byTurns.map((g) => [g.group, g.count, g.accuracy]),
    [
      ['2', 2, 0.5],
      ['10', 1, 1],
    ],
  );
  assert.deepEqual(
    accuracyByGroup(rows, (r) => r.task).map((g) => g.group),
    ['harmless', 'helpful'],
  );
  assert.equal(humanTurns('\n\nHuman: hi\n\nAssistant: hello\n\nHuman: 2+2?\n\nAssistant: 4'), 2);
  assert.equal(humanTurns('Human: hi\n\nAssistant: hello'), 1);
});
