import assert from 'node:assert/strict';
import { test } from 'node:test';
import { meanInterval } from './intervals.ts';
import { SeededRandom } from './rng.ts';
import { studentCdf, studentQuantile, tMeanInterval, welchDifference } from './student.ts';

test("Student's t quantiles match the printed table (two-sided 95% and 99%), and the normal for large df", () => {
  // t(0.975) and t(0.995) for df 1, 2, 4, 10, 30 (any statistics table), then the normal's 1.960.
  const table: [number, number, number][] = [
    [1, 12.706, 63.657],
    [2, 4.303, 9.925],
    [4, 2.776, 4.604],
    [10, 2.228, 3.169],
    [30, 2.042, 2.75],
  ];
  for (const [df, t975, t995] of table) {
    assert.ok(Math.abs(studentQuantile(0.975, df) - t975) < 5e-4, `df ${df}: ${studentQuantile(0.975, df)}`);
    assert.ok(Math.abs(studentQuantile(0.995, df) - t995) < 5e-3, `df ${df}: ${studentQuantile(0.995, df)}`);
  }
  assert.ok(Math.abs(studentQuantile(0.975, 1e6) - 1.96) < 1e-3);
  assert.ok(Math.abs(studentQuantile(0.025, 4) + 2.776) < 5e-4, 'symmetric');
  // df 1 is the Cauchy: P(T ≤ 1) = 3/4 exactly; a fractional df lies between its neighbours.
  assert.ok(Math.abs(studentCdf(1, 1) - 0.75) < 1e-12);
  assert.ok(Math.abs(studentCdf(-1, 1) - 0.25) < 1e-12, 'the lower tail');
  // df 2 has a closed form: F(t) = 1/2 + t / (2√(2 + t²)).
  for (const x of [-3, -0.5, 0.7, 4]) {
    assert.ok(Math.abs(studentCdf(x, 2) - (0.5 + x / (2 * Math.sqrt(2 + x * x)))) < 1e-12, `df 2 at ${x}`);
  }
  // A fractional df (Welch's): t(0.975; 7.5) = 2.33304 (scipy.stats.t.ppf), between its neighbours.
  assert.ok(Math.abs(studentQuantile(0.975, 7.5) - 2.33304) < 1e-5, `${studentQuantile(0.975, 7.5)}`);
  const mid = studentQuantile(0.975, 2.5);
  assert.ok(mid < studentQuantile(0.975, 2) && mid > studentQuantile(0.975, 3));
  assert.throws(() => studentQuantile(1, 3), /p must lie in \(0, 1\)/);
  assert.throws(() => studentQuantile(0.9, 0), /df must be positive/);
});

test('with 3 runs the t interval covers the mean ~95% of the time, where the bootstrap of the runs does not', () => {
  const rng = new SeededRandom(11);
  let t = 0;
  let boot = 0;
  const trials = 400;
  for (let i = 0; i < trials; i++) {
    const runs = [rng.normal(), rng.normal(), rng.normal()];
    const a = tMeanInterval(runs);
    const b = meanInterval(runs, { samples: 200, seed: i });
    if (a.lower <= 0 && 0 <= a.upper) t++;
    if (b.lower <= 0 && 0 <= b.upper) boot++;
  }
  assert.ok(t >= 0.9 * trials && t <= 0.99 * trials, `t covered ${t}/${trials}`);
  assert.ok(boot < 0.85 * trials, `bootstrap covered ${boot}/${trials}`);
});

test("Welch's interval: the difference of means, by hand, and a point where the runs have no spread", () => {
  const a = [0.77, 0.8, 0.76];
  const b = [0.85, 0.87, 0.85, 0.86];
  const w = welchDifference(a, b);
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const v = (xs: number[]) => xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1) / xs.length;
  const df = (v(a) + v(b)) ** 2 / (v(a) ** 2 / 2 + v(b) ** 2 / 3);
  const half = studentQuantile(0.975, df) * Math.sqrt(v(a) + v(b));
  assert.ok(Math.abs(w.value - (mean(b) - mean(a))) < 1e-12);
  assert.ok(Math.abs(w.upper - w.value - half) < 1e-12 && Math.abs(w.value - w.lower - half) < 1e-12);
  assert.equal(w.n, 3);
  // Equal variances and sizes: Welch's df is 2(n − 1), so the half-width uses t(4) here.
  const e = welchDifference([0, 1, 2], [1, 2, 3]);
  assert.ok(Math.abs(e.upper - e.value - studentQuantile(0.975, 4) * Math.sqrt(2 / 3)) < 1e-9);
  // No spread in one set: the other's alone sets the width, with its n − 1 degrees of freedom.
  const z = welchDifference([1, 1, 1], [0, 1, 2]);
  assert.ok(Math.abs(z.upper - z.value - studentQuantile(0.975, 2) * Math.sqrt(1 / 3)) < 1e-9);
  // One run each: nothing measures the spread, the interval is the difference itself.
  assert.deepEqual(welchDifference([0.7], [0.8]), {
    value: 0.8 - 0.7,
    lower: 0.8 - 0.7,
    upper: 0.8 - 0.7,
    level: 0.95,
    n: 1,
  });
  assert.deepEqual(tMeanInterval([2]), { value: 2, lower: 2, upper: 2, level: 0.95, n: 1 });
  assert.throws(() => welchDifference([], [1]), /empty/);
});
