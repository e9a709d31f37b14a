import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bootstrapElo,
  ELO_PER_NAT,
  type EloComparison,
  eloWinProbability,
  fitElo,
  pmGapToElo,
  pmPredictedElo,
  tallyComparisons,
} from './elo.ts';
import { SeededRandom } from './rng.ts';

/** `n` comparisons between random distinct pairs, the winner drawn from the Elo win probability. */
function simulate(truth: Record<string, number>, n: number, seed: number): EloComparison[] {
  const ids = Object.keys(truth);
  const rng = new SeededRandom(seed);
  const out: EloComparison[] = [];
  for (let c = 0; c < n; c++) {
    const [i, j] = rng.sample(ids.length, 2) as [number, number];
    const a = ids[i]!;
    const b = ids[j]!;
    const pA = eloWinProbability(truth[a]! - truth[b]!);
    out.push({ a, b, winner: rng.uniform() < pA ? 'a' : 'b' });
  }
  return out;
}

const truth = { base: 0, distilled: 90, bestOf16: 210, ppo: 330, rambler: -160 };

test('recovers planted Elo ratings within the bootstrap interval and ~3 standard errors', () => {
  const data = simulate(truth, 6000, 1);
  const { fit, interval } = bootstrapElo(data, { anchor: 'base', samples: 300, seed: 2 });
  assert.ok(fit.converged);
  assert.equal(fit.components, 1);
  assert.equal(fit.total, 6000);
  let worst = 0;
  for (const [m, elo] of Object.entries(truth)) {
    const err = Math.abs(fit.elo[m]! - elo);
    worst = Math.max(worst, err);
    if (m === 'base') continue;
    assert.ok(err < 3 * fit.standardError[m]!, `${m}: error ${err.toFixed(1)} vs se ${fit.standardError[m]}`);
    assert.ok(
      interval[m]!.lower <= elo && elo <= interval[m]!.upper,
      `${m}: ${elo} outside ${JSON.stringify(interval[m])}`,
    );
    // The percentile interval is about ±1.96 standard errors wide.
    const width = interval[m]!.upper - interval[m]!.lower;
    assert.ok(width > 2.5 * fit.standardError[m]! && width < 5.5 * fit.standardError[m]!);
  }
  assert.ok(worst < 40, `worst recovery error ${worst}`);
  assert.equal(fit.elo.base, 0);
});

test('exact two-model MLE: 3 wins to 1 gives r = ln 3', () => {
  const fit = fitElo([{ a: 'x', b: 'y', winsA: 3, winsB: 1 }], { anchor: 'y', priorPrecision: 1e-9 });
  assert.ok(Math.abs(fit.elo.x! - ELO_PER_NAT * Math.log(3)) < 1e-4);
  // The mean-anchored version splits the gap evenly.
  const centred = fitElo([{ a: 'x', b: 'y', winsA: 3, winsB: 1 }], { anchor: null, priorPrecision: 1e-9 });
  assert.ok(Math.abs(centred.elo.x! + centred.elo.y!) < 1e-9);
});

test('the fit and the bootstrap do not depend on input order or on which side is "a"', () => {
  const data = simulate(truth, 800, 3);
  const rng = new SeededRandom(4);
  const shuffled = rng.sample(data.length, data.length).map((i) => data[i]!);
  const flipped = shuffled.map((c) => ({
    a: c.b,
    b: c.a,
    winner: c.winner === 'a' ? ('b' as const) : ('a' as const),
  }));
  const one = bootstrapElo(data, { anchor: 'base', samples: 50, seed: 9 });
  const two = bootstrapElo(flipped, { anchor: 'base', samples: 50, seed: 9 });
  assert.deepEqual(two.fit.elo, one.fit.elo);
  assert.deepEqual(two.interval, one.interval);
  // Counts are the same data as individual comparisons.
  assert.deepEqual(fitElo(tallyComparisons(data), { anchor: 'base' }).elo, one.fit.elo);
});

test('an undefeated model gets a large but finite Elo (the L2 prior)', () => {
  const data: EloComparison[] = Array.from({ length: 20 }, () => ({ a: 'champ', b: 'chump', winner: 'a' }));
  const fit = fitElo(data, { anchor: 'chump' });
  assert.ok(fit.converged);
  assert.ok(
    Number.isFinite(fit.elo.champ!) && fit.elo.champ! > 600 && fit.elo.champ! < 2500,
    `${fit.elo.champ}`,
  );
});

test('bootstrap intervals cover the truth at roughly the nominal 95% rate', () => {
  const small = { a: 0, b: 120, c: -80 };
  let covered = 0;
  let total = 0;
  for (let seed = 0; seed < 40; seed++) {
    const { interval } = bootstrapElo(simulate(small, 400, 100 + seed), { anchor: 'a', samples: 200, seed });
    for (const m of ['b', 'c'] as const) {
      total++;
      if (interval[m]!.lower <= small[m] && small[m] <= interval[m]!.upper) covered++;
    }
  }
  const rate = covered / total;
  // 80 intervals: a true rate of 0.95 gives ≥ 0.85 with probability > 0.999, 0.7 would fail.
  assert.ok(rate >= 0.85, `coverage ${rate}`);
});

test('the 174 factor: PM score gaps convert to Elo gaps with the same win probability', () => {
  assert.equal(Math.round(ELO_PER_NAT), 174);
  assert.ok(Math.abs(pmGapToElo(1) - 173.7178) < 1e-4);
  for (const gap of [-3, -0.5, 0, 0.7, 2.5]) {
    const sigmoid = 1 / (1 + Math.exp(-gap));
    assert.ok(Math.abs(eloWinProbability(pmGapToElo(gap)) - sigmoid) < 1e-12);
  }
  assert.ok(Math.abs(eloWinProbability(400) - 10 / 11) < 1e-12);
  // Soft counts σ(s_a − s_b) fitted by ML Elo give back 173.7·Δs: the two routes agree.
  const scores = { base: 0.1, mid: 0.9, top: 2.2 };
  const ids = Object.keys(scores) as (keyof typeof scores)[];
  const soft = ids.flatMap((a, i) =>
    ids.slice(i + 1).map((b) => {
      const p = 1 / (1 + Math.exp(-(scores[a] - scores[b])));
      return { a, b, winsA: 100 * p, winsB: 100 * (1 - p) };
    }),
  );
  const fit = fitElo(soft, { anchor: 'base', priorPrecision: 1e-9 });
  const predicted = pmPredictedElo(scores, 'base');
  for (const m of ids) assert.ok(Math.abs(fit.elo[m]! - predicted[m]!) < 1e-3, m);
  assert.ok(Math.abs(predicted.top! - 2.1 * ELO_PER_NAT) < 1e-9);
});

test('bad input is refused with a message', () => {
  assert.throws(() => fitElo([{ a: 'x', b: 'y', winner: 'a' }], { anchor: 'z' }), /anchor 'z'/);
  assert.throws(() => fitElo([{ a: 'x', b: 'x', winner: 'a' }]), /itself/);
  assert.throws(() => fitElo([]), /no comparisons/);
  assert.throws(() => fitElo([{ a: 'x', b: 'y', winsA: -1, winsB: 2 }]), /≥ 0/);
});
