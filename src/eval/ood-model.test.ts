import assert from 'node:assert/strict';
import { test } from 'node:test';
import { liveTensors } from '../engine/index.ts';
import { GPT, gptPresets } from '../nn/index.ts';
import { evaluateOodDetection, layerActivations } from './ood-model.ts';
import { SeededRandom } from './rng.ts';

// Toy prompts: in-distribution ones use tokens 0–24 only, out-of-distribution ones tokens 25–49,
// which the in-distribution fit never sees — a planted, separable signal.
function prompts(n: number, low: number, high: number, rng: SeededRandom): number[][] {
  return Array.from({ length: n }, () =>
    Array.from({ length: 3 + rng.int(6) }, () => low + rng.int(high - low)),
  );
}

const model = new GPT(gptPresets.tiny, { seed: 3 });

test('layerActivations: one (N, C) tensor per layer; mean pooling ignores padding; last = last token', () => {
  const rows = [[1, 2, 3, 4], [5], [6, 7]];
  const [mean0, meanL] = layerActivations(model, rows, { layers: [0, 2], batchSize: 2 });
  assert.deepEqual(mean0!.shape, [3, 16]);
  // Row 1 alone vs inside a padded batch: the same pooled vector.
  const [alone] = layerActivations(model, [[5]], { layers: [2] });
  const a = alone!.toTypedArray() as Float32Array;
  const b = (meanL!.toTypedArray() as Float32Array).subarray(16, 32);
  for (let c = 0; c < 16; c++) assert.ok(Math.abs(a[c]! - b[c]!) < 1e-5, `column ${c}: ${a[c]} vs ${b[c]}`);
  const [last] = layerActivations(model, rows, { layers: [2], pool: 'last' });
  const [lastAlone] = layerActivations(model, [[6, 7]], { layers: [2], pool: 'last' });
  const l1 = (last!.toTypedArray() as Float32Array).subarray(32, 48);
  const l2 = lastAlone!.toTypedArray() as Float32Array;
  for (let c = 0; c < 16; c++) assert.ok(Math.abs(l1[c]! - l2[c]!) < 1e-5);
  assert.equal(model.training, true, 'the model is put back in its mode');
  for (const t of [mean0, meanL, alone, last, lastAlone]) t!.dispose();
  assert.throws(() => layerActivations(model, rows, { layers: [3] }), /layer 3 not in 0…2/);
});

test('evaluateOodDetection: per-layer AUROCs, a planted separable signal is found, few-shot curve', () => {
  const rng = new SeededRandom(1);
  const benign = prompts(200, 0, 25, rng);
  const harmful = prompts(60, 25, 50, rng);
  const before = liveTensors();
  const report = evaluateOodDetection(model, benign, harmful, { shots: [1, 2, 5], seeds: 3 });
  assert.equal(liveTensors(), before, 'no tensor leaks');
  assert.deepEqual(
    report.layers.map((l) => l.layer),
    [0, 1, 2],
  );
  for (const l of report.layers) {
    for (const v of [l.mahalanobis, l.simplifiedRelativeMahalanobis]) assert.ok(v >= 0 && v <= 1);
  }
  const best = Math.max(
    ...report.layers.map((l) => Math.max(l.mahalanobis, l.simplifiedRelativeMahalanobis)),
  );
  assert.ok(best > 0.9, `best AUROC ${best}`);
  assert.deepEqual(
    report.fewShot.map((f) => f.shots),
    [1, 2, 5],
  );
  assert.equal(report.fewShot[0]!.aurocs.length, 3);
  assert.ok(report.fewShot.at(-1)!.mean > 0.8, `5-shot AUROC ${report.fewShot.at(-1)!.mean}`);
  assert.deepEqual(report.counts, { fit: 100, testIn: 100, testOut: 50, outlierPool: 10 });

  // Control: two samples of the same distribution are not separable.
  const same = evaluateOodDetection(model, prompts(200, 0, 25, rng), prompts(60, 0, 25, rng), {
    shots: [],
  });
  const sameBest = Math.max(...same.layers.map((l) => l.mahalanobis));
  assert.ok(sameBest < 0.8, `same-distribution AUROC ${sameBest}`);
  assert.deepEqual(same.fewShot, []);
});
