import assert from 'node:assert/strict';
import { test } from 'node:test';
import { liveTensors, tensor } from '../engine/index.ts';
import {
  auroc,
  diagonalMahalanobis,
  fitGaussian,
  mahalanobis,
  oodAurocs,
  simplifiedRelativeMahalanobis,
} from './ood.ts';
import { SeededRandom } from './rng.ts';
import { activations, bruteForceAuroc } from './test-fixtures.ts';

test('AUROC equals the brute-force pairwise count, ties included', () => {
  const rng = new SeededRandom(1);
  for (let trial = 0; trial < 20; trial++) {
    // Small integer scores: many ties within and across classes.
    const pos = Array.from({ length: 1 + rng.int(40) }, () => rng.int(6));
    const neg = Array.from({ length: 1 + rng.int(40) }, () => rng.int(5));
    assert.ok(Math.abs(auroc(pos, neg) - bruteForceAuroc(pos, neg)) < 1e-12);
  }
  assert.equal(auroc([3, 2], [1, 2]), 0.875);
  assert.equal(auroc([1, 1], [1]), 0.5);
  assert.throws(() => auroc([], [1]), /both classes/);
});

test('simplified relative Mahalanobis beats plain Mahalanobis on a planted low-variance shift', () => {
  const rng = new SeededRandom(2);
  const train = activations(4000, 0, rng);
  const testIn = activations(1000, 0, rng);
  const testOut = activations(1000, 0.5, rng);
  using fit = fitGaussian(train);
  assert.equal(fit.shrinkage, 0, "'auto' does not shrink at N ≥ 10·C");
  const plainIn = mahalanobis(fit, testIn);
  const plainOut = mahalanobis(fit, testOut);
  const relIn = simplifiedRelativeMahalanobis(fit, testIn);
  const relOut = simplifiedRelativeMahalanobis(fit, testOut);
  const plain = auroc(plainOut, plainIn);
  const relative = auroc(relOut, relIn);
  const diagonal = auroc(diagonalMahalanobis(fit, testOut), diagonalMahalanobis(fit, testIn));
  assert.ok(Math.abs(relative - bruteForceAuroc(relOut, relIn)) < 1e-12);
  assert.ok(Math.abs(plain - bruteForceAuroc(plainOut, plainIn)) < 1e-12);
  assert.ok(relative > 0.9, `relative AUROC ${relative}`);
  assert.ok(relative > plain + 0.15, `relative ${relative} vs plain ${plain}`);
  assert.ok(diagonal < 0.6, `the diagonal distance alone should barely see the shift: ${diagonal}`);
  assert.deepEqual(oodAurocs(train, testIn, testOut), {
    mahalanobis: plain,
    diagonalMahalanobis: diagonal,
    simplifiedRelativeMahalanobis: relative,
    shrinkage: 0,
  });
  // Ledoit–Wolf over-shrinks these heavy-tailed features and fills in the low-variance direction.
  const lw = oodAurocs(train, testIn, testOut, { shrinkage: 'ledoit-wolf' });
  assert.ok(lw.shrinkage > 0.1 && lw.simplifiedRelativeMahalanobis < relative - 0.2, JSON.stringify(lw));
  for (const t of [train, testIn, testOut]) t.dispose();
});

/** Reference squared distances from plain loops and Gauss–Jordan inversion. */
function referenceDistances(rows: number[][], queries: number[][]): { full: number[]; diagonal: number[] } {
  const n = rows.length;
  const c = rows[0]!.length;
  const mean = Array.from({ length: c }, (_, j) => rows.reduce((s, r) => s + r[j]!, 0) / n);
  const cov = Array.from({ length: c }, (_, i) =>
    Array.from(
      { length: c },
      (_, j) => rows.reduce((s, r) => s + (r[i]! - mean[i]!) * (r[j]! - mean[j]!), 0) / n,
    ),
  );
  const aug = cov.map((row, i) => [...row, ...Array.from({ length: c }, (_, j) => (i === j ? 1 : 0))]);
  for (let col = 0; col < c; col++) {
    let pivot = col;
    for (let r = col + 1; r < c; r++) if (Math.abs(aug[r]![col]!) > Math.abs(aug[pivot]![col]!)) pivot = r;
    [aug[col], aug[pivot]] = [aug[pivot]!, aug[col]!];
    const p = aug[col]![col]!;
    aug[col] = aug[col]!.map((v) => v / p);
    for (let r = 0; r < c; r++) {
      if (r === col) continue;
      const f = aug[r]![col]!;
      aug[r] = aug[r]!.map((v, k) => v - f * aug[col]![k]!);
    }
  }
  const inverse = aug.map((row) => row.slice(c));
  const full = queries.map((q) => {
    const d = q.map((v, j) => v - mean[j]!);
    return d.reduce((s, di, i) => s + di * d.reduce((t, dj, j) => t + inverse[i]![j]! * dj, 0), 0);
  });
  const diagonal = queries.map((q) => q.reduce((s, v, j) => s + (v - mean[j]!) ** 2 / cov[j]![j]!, 0));
  return { full, diagonal };
}

test('distances match a loop-and-Gauss–Jordan reference (no shrinkage)', () => {
  const rng = new SeededRandom(3);
  const rows = Array.from({ length: 50 }, () => {
    const z = [rng.normal(), rng.normal(), rng.normal(), rng.normal()];
    return [z[0]!, z[0]! + 0.3 * z[1]!, 2 * z[2]! - z[0]!, 0.1 * z[3]! + z[1]!];
  });
  const queries = [
    [0, 0, 0, 0],
    [1, -1, 2, 0.5],
    [3, 3, -3, 1],
  ];
  using fit = fitGaussian(tensor(rows, { dtype: 'float64' }), { shrinkage: 0 });
  const ref = referenceDistances(rows, queries);
  const q = tensor(queries, { dtype: 'float64' });
  const full = mahalanobis(fit, q);
  const diagonal = diagonalMahalanobis(fit, q);
  const relative = simplifiedRelativeMahalanobis(fit, q);
  for (let i = 0; i < queries.length; i++) {
    assert.ok(Math.abs(full[i]! - ref.full[i]!) < 1e-8 * (1 + ref.full[i]!), `${full[i]} vs ${ref.full[i]}`);
    assert.ok(Math.abs(diagonal[i]! - ref.diagonal[i]!) < 1e-10 * (1 + ref.diagonal[i]!));
    assert.ok(Math.abs(relative[i]! - (ref.full[i]! - ref.diagonal[i]!)) < 1e-7);
  }
  q.dispose();
});

/** scikit-learn's ledoit_wolf_shrinkage, written out with loops. */
function referenceLedoitWolf(rows: number[][]): number {
  const n = rows.length;
  const p = rows[0]!.length;
  const mean = Array.from({ length: p }, (_, j) => rows.reduce((s, r) => s + r[j]!, 0) / n);
  const x = rows.map((r) => r.map((v, j) => v - mean[j]!));
  const trace = x.reduce((s, r) => s + r.reduce((t, v) => t + v * v, 0), 0) / n;
  const mu = trace / p;
  let deltaRaw = 0;
  let betaRaw = 0;
  for (let i = 0; i < p; i++) {
    for (let j = 0; j < p; j++) {
      let xtx = 0;
      let x2tx2 = 0;
      for (const r of x) {
        xtx += r[i]! * r[j]!;
        x2tx2 += r[i]! ** 2 * r[j]! ** 2;
      }
      deltaRaw += xtx ** 2;
      betaRaw += x2tx2;
    }
  }
  deltaRaw /= n * n;
  let beta = (betaRaw / n - deltaRaw) / (p * n);
  const delta = (deltaRaw - 2 * mu * trace + p * mu * mu) / p;
  beta = Math.min(beta, delta);
  return beta === 0 ? 0 : beta / delta;
}

test('fewer samples than dimensions: Ledoit–Wolf shrinkage keeps the fit finite and matches the formula', () => {
  const rng = new SeededRandom(4);
  const rows = Array.from({ length: 20 }, () => Array.from({ length: 40 }, () => rng.normal()));
  const before = liveTensors();
  const x = tensor(rows, { dtype: 'float64' });
  const fit = fitGaussian(x);
  assert.ok(Math.abs(fit.shrinkage - referenceLedoitWolf(rows)) < 1e-10, `${fit.shrinkage}`);
  assert.ok(fit.shrinkage > 0.3 && fit.shrinkage <= 1);
  const scores = simplifiedRelativeMahalanobis(fit, x);
  assert.ok(scores.every(Number.isFinite));
  assert.throws(() => fitGaussian(x, { shrinkage: 0 }), /singular; use shrinkage/);
  fit.dispose();
  x.dispose();
  assert.equal(liveTensors(), before, 'fit tensors are freed by dispose');
});
