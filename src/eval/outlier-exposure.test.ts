import assert from 'node:assert/strict';
import { test } from 'node:test';
import { liveTensors } from '../engine/index.ts';
import { auroc } from './ood.ts';
import { fewShotOutlierExposure, trainOutlierProbe } from './outlier-exposure.ts';
import { SeededRandom } from './rng.ts';
import { activations } from './test-fixtures.ts';

test('few-shot outlier exposure: AUROC rises with the number of outlier examples', () => {
  const rng = new SeededRandom(5);
  const inDistribution = activations(600, 0, rng);
  const outlierPool = activations(50, 0.5, rng);
  const testIn = activations(300, 0, rng);
  const testOut = activations(300, 0.5, rng);
  const before = liveTensors();
  const results = fewShotOutlierExposure(
    { inDistribution, outlierPool, testIn, testOut },
    { seeds: 5, seed: 1 },
  );
  assert.equal(liveTensors(), before, 'probes free their tensors');
  assert.deepEqual(
    results.map((r) => [r.shots, r.aurocs.length]),
    [
      [1, 5],
      [2, 5],
      [5, 5],
      [10, 5],
    ],
  );
  const [one, two, five, ten] = results.map((r) => r.mean) as [number, number, number, number];
  assert.ok(ten > 0.9, `M=10 AUROC ${ten}`);
  assert.ok(ten > five && five > two + 0.1 && ten > one + 0.2, JSON.stringify(results.map((r) => r.mean)));
  for (const t of [inDistribution, outlierPool, testIn, testOut]) t.dispose();
});

test('the Newton probe converges in a few iterations and separates well-separated classes perfectly', () => {
  const rng = new SeededRandom(6);
  const inDistribution = activations(200, 0, rng);
  const outliers = activations(20, 3, rng);
  using probe = trainOutlierProbe(inDistribution, outliers, { l2: 1e-2 });
  assert.ok(probe.converged && probe.iterations < 20, `${probe.iterations} iterations`);
  const heldOutIn = activations(100, 0, rng);
  const heldOutOut = activations(100, 3, rng);
  assert.equal(auroc(probe.score(heldOutOut), probe.score(heldOutIn)), 1);
  for (const t of [inDistribution, outliers, heldOutIn, heldOutOut]) t.dispose();
});
