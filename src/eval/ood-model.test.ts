import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cat, liveTensors, type Tensor } from '../engine/index.ts';
import { GPT, gptPresets } from '../nn/index.ts';
import {
  evaluateOodActivations,
  evaluateOodDetection,
  layerActivations,
  splitOodPrompts,
} from './ood-model.ts';
import { SeededRandom } from './rng.ts';
import { activations } from './test-fixtures.ts';

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
  assert.deepEqual(report.counts, {
    fit: 100,
    validationIn: 50,
    validationOut: 25,
    testIn: 50,
    testOut: 25,
    outlierPool: 10,
  });
  const chosen = report.layers.find((l) => l.layer === report.bestLayer)!;
  const bestValidation = Math.max(...report.layers.map((l) => l.validation.simplifiedRelativeMahalanobis));
  assert.equal(chosen.validation.simplifiedRelativeMahalanobis, bestValidation);

  // Control: two samples of the same distribution are not separable.
  const same = evaluateOodDetection(model, prompts(200, 0, 25, rng), prompts(60, 0, 25, rng), {
    shots: [],
  });
  const sameBest = Math.max(...same.layers.map((l) => l.mahalanobis));
  assert.ok(sameBest < 0.8, `same-distribution AUROC ${sameBest}`);
  assert.deepEqual(same.fewShot, []);
});

test('splitOodPrompts: fit, validation, test and the exposure pool are disjoint and cover every prompt', () => {
  const rng = new SeededRandom(9);
  for (let trial = 0; trial < 200; trial++) {
    const nIn = 10 + rng.int(300);
    const nOut = 2 + rng.int(120);
    const shots = [1 + rng.int(3), 5, 10].slice(0, rng.int(4));
    const s = splitOodPrompts(nIn, nOut, { shots, seed: trial, fitFraction: 0.3 + 0.4 * rng.uniform() });
    const what = JSON.stringify({ nIn, nOut, shots, trial });
    const inParts = [s.fit, s.validationIn, s.testIn];
    const outParts = [s.outlierPool, s.validationOut, s.testOut];
    assert.deepEqual(
      inParts.flat().sort((a, b) => a - b),
      Array.from({ length: nIn }, (_, i) => i),
      what,
    );
    assert.deepEqual(
      outParts.flat().sort((a, b) => a - b),
      Array.from({ length: nOut }, (_, i) => i),
      what,
    );
    assert.ok(s.fit.length >= 2 && s.validationIn.length >= 1 && s.testIn.length >= 1, what);
    assert.ok(s.validationOut.length >= 1 && s.testOut.length >= 1, what);
    // Every usable shot count can be drawn from the pool alone, never from the test split.
    for (const m of s.shots) assert.ok(m <= s.outlierPool.length, what);
    if (s.shots.length === 0) assert.equal(s.outlierPool.length, 0, what);
  }
  assert.throws(() => splitOodPrompts(3, 10), /need ≥ 2 in-distribution prompts to fit/);
  assert.throws(() => splitOodPrompts(100, 1), /need ≥ 2 out-of-distribution prompts/);
  assert.throws(() => splitOodPrompts(100, 10, { validationFraction: 1 }), /validationFraction must be in/);
});

/** Rows of `parts` (index lists into N rows) filled from per-part generators, as one (N, C) tensor. */
function assemble(n: number, parts: [number[], (k: number) => Tensor][]): Tensor {
  const rows: Tensor[] = new Array(n);
  for (const [index, make] of parts) {
    const block = make(index.length);
    index.forEach((row, k) => {
      rows[row] = block.narrow(0, k, 1);
    });
  }
  return cat(rows, 0);
}

test('the best layer is chosen on the validation split and reported on the test split', () => {
  // Two layers built so that the validation-best and test-best layers differ. Layer 0: the
  // validation harmful rows carry the planted low-variance shift, the test ones do not. Layer 1: a
  // weak shift on validation, a strong one on test. Choosing on validation must pick layer 0 and
  // report its (near-chance) test AUROC; choosing on test would pick layer 1 and report ~1.
  const rng = new SeededRandom(11);
  const nIn = 400;
  const nOut = 120;
  const opts = { shots: [1, 5], seeds: 2, seed: 4, shrinkage: 0 }; // N ≥ 10·C: no shrinkage needed
  const s = splitOodPrompts(nIn, nOut, opts);
  const benign = (k: number) => activations(k, 0, rng);
  const harmful = (shift: number) => (k: number) => activations(k, shift, rng);
  const inActs = [0, 1].map(() => assemble(nIn, [[[...s.fit, ...s.validationIn, ...s.testIn], benign]]));
  const outActs = [
    assemble(nOut, [
      [s.outlierPool, harmful(0.5)],
      [s.validationOut, harmful(0.5)],
      [s.testOut, harmful(0)],
    ]),
    assemble(nOut, [
      [s.outlierPool, harmful(0.5)],
      [s.validationOut, harmful(0.15)],
      [s.testOut, harmful(0.8)],
    ]),
  ];
  const before = liveTensors();
  const report = evaluateOodActivations(inActs, outActs, [0, 1], opts);
  assert.equal(liveTensors(), before, 'no tensor leaks');
  const [l0, l1] = report.layers as [(typeof report.layers)[0], (typeof report.layers)[0]];
  const srm = (l: typeof l0) => ({
    validation: l.validation.simplifiedRelativeMahalanobis,
    test: l.simplifiedRelativeMahalanobis,
  });
  const info = JSON.stringify({ layer0: srm(l0), layer1: srm(l1) });
  assert.ok(
    l0.validation.simplifiedRelativeMahalanobis > l1.validation.simplifiedRelativeMahalanobis + 0.1,
    info,
  );
  assert.ok(l1.simplifiedRelativeMahalanobis > l0.simplifiedRelativeMahalanobis + 0.3, info);
  assert.equal(report.bestLayer, 0, `the validation-best layer: ${info}`);
  assert.deepEqual(report.selection, { split: 'validation', score: 'simplifiedRelativeMahalanobis' });
  assert.ok(
    l0.simplifiedRelativeMahalanobis < 0.65,
    `the test AUROC of the chosen layer is near chance: ${info}`,
  );
  // Few-shot exposure runs at the chosen layer and scores the test split (no shift there: ~chance).
  assert.deepEqual(
    report.fewShot.map((f) => f.shots),
    [1, 5],
  );
  assert.ok(
    report.fewShot.every((f) => f.mean < 0.7),
    JSON.stringify(report.fewShot),
  );
  for (const t of [...inActs, ...outActs]) t.dispose();
});

test('few-shot exposure draws its outliers from the pool, never from the test split it is scored on', () => {
  // Harmful rows come from the benign distribution: nothing tells them apart, so a probe trained on
  // pool rows scores the test split at chance. Had the exposed rows been test rows, the probe would
  // score those very rows highest (10 of the 20 test harmful rows) and the AUROC would rise well above.
  const rng = new SeededRandom(12);
  const inActs = [activations(400, 0, rng)];
  const outActs = [activations(60, 0, rng)];
  const report = evaluateOodActivations(inActs, outActs, [0], { shots: [10], seeds: 5, shrinkage: 0 });
  assert.deepEqual([report.counts.outlierPool, report.counts.testOut], [20, 20]);
  const [ten] = report.fewShot;
  assert.ok(ten!.mean < 0.62, `10-shot AUROC on indistinguishable data: ${JSON.stringify(ten)}`);
  for (const t of [...inActs, ...outActs]) t.dispose();
});
