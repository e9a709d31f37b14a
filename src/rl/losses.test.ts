import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradcheck } from '../engine/gradcheck.ts';
import { manualSeed, multinomial, noGrad, randn, type Tensor, tensor, tidy } from '../engine/index.ts';
import { AdaptiveKLController, FixedKLController, klEstimate, klPerToken, NegativeKLGuard } from './kl.ts';
import { clippedPolicyLoss, clippedValueLoss } from './losses.ts';
import { mulberry32 } from '../util/random.ts';

const t = (rows: number[][]) => tensor(rows, { dtype: 'float64' });

test('clipped policy loss matches hand-computed values', () => {
  tidy(() => {
    // ratios e^{0.5}=1.6487 (A=+1: clipped at 1.2), e^{−0.5}=0.6065 (A=+1: unclipped term is larger),
    // e^{0.1}=1.1052 (A=−2: unclipped), masked 4th token.
    const logp = t([[0.5, -0.5, 0.1, 3]]);
    const old = t([[0, 0, 0, 0]]);
    const adv = t([[1, 1, -2, 100]]);
    const mask = t([[1, 1, 1, 0]]);
    const out = clippedPolicyLoss(logp, old, adv, mask, 0.2);
    // per token max(−A·ρ, −A·clip(ρ)): max(−1.6487, −1.2) = −1.2; max(−0.6065, −0.8) = −0.6065; max(2.2103, 2.2103)
    const expected = (-1.2 - Math.exp(-0.5) + 2 * Math.exp(0.1)) / 3;
    assert.ok(Math.abs(out.loss.item() - expected) < 1e-9, `${out.loss.item()} vs ${expected}`);
    assert.ok(Math.abs(out.clipFraction - 1 / 3) < 1e-9);
    assert.ok(Math.abs(out.approxKL - (0.5 * (0.25 + 0.25 + 0.01)) / 3) < 1e-9);
  });
});

test('clipped value loss matches hand-computed values', () => {
  tidy(() => {
    const values = t([[1.5, 0.1]]);
    const old = t([[1, 0]]);
    const returns = t([[3, 0]]);
    const mask = t([[1, 1]]);
    const out = clippedValueLoss(values, old, returns, mask, 0.2);
    // token 0: unclipped (1.5−3)² = 2.25, clipped (1.2−3)² = 3.24 → 3.24; token 1: (0.1)² = 0.01 both
    assert.ok(Math.abs(out.loss.item() - 0.5 * ((3.24 + 0.01) / 2)) < 1e-9);
    assert.ok(Math.abs(out.clipFraction - 0.5) < 1e-9);
  });
});

test('PPO losses: autograd gradient matches finite differences', () => {
  tidy(() => {
    manualSeed(3);
    const old = randn([2, 5], { dtype: 'float64' }).mul(0.1);
    const adv = randn([2, 5], { dtype: 'float64' });
    const mask = t([
      [1, 1, 1, 1, 1],
      [1, 1, 1, 0, 0],
    ]);
    // Keep ratios away from the clip boundaries (where the loss has a kink).
    const logp = old
      .add(
        t([
          [0.05, -0.03, 0.5, -0.6, 0.02],
          [0.01, 0.4, -0.02, 0.03, 0.9],
        ]),
      )
      .detach()
      .requiresGrad_(true);
    const r1 = gradcheck((x: Tensor) => clippedPolicyLoss(x, old, adv, mask, 0.2).loss, [logp]);
    assert.ok(r1.ok, `policy loss gradcheck: max error ${r1.maxAbsError}`);
    const oldV = randn([2, 5], { dtype: 'float64' });
    const returns = randn([2, 5], { dtype: 'float64' });
    const v = oldV
      .add(
        t([
          [0.05, -0.5, 0.1, 0.7, -0.02],
          [0.01, 0.03, -0.9, 0.3, 0.1],
        ]),
      )
      .detach()
      .requiresGrad_(true);
    const r2 = gradcheck((x: Tensor) => clippedValueLoss(x, oldV, returns, mask, 0.2).loss, [v]);
    assert.ok(r2.ok, `value loss gradcheck: max error ${r2.maxAbsError}`);
  });
});

test('KL estimators: exactly 0 for identical policies; non-negative in expectation on a fixed pair; k3 ≥ 0 per token', () => {
  noGrad(() =>
    tidy(() => {
      manualSeed(11);
      const p = randn([1, 20]).softmax(-1); // policy over 20 tokens
      const q = randn([1, 20]).mul(0.8).softmax(-1); // reference
      const logp = p.log();
      const logq = q.log();
      const exact = p.mul(logp.sub(logq)).sum().item();
      const same = klPerToken(logp, logp, 'k1');
      assert.equal(same.abs().max().item(), 0);
      assert.equal(klPerToken(logp, logp, 'k3').abs().max().item(), 0);
      const samples = multinomial(p, 20000, true); // (1, S) tokens from the policy
      const lp = logp.gather(1, samples);
      const lq = logq.gather(1, samples);
      const k1 = klPerToken(lp, lq, 'k1');
      const k3 = klPerToken(lp, lq, 'k3');
      assert.ok(k1.min().item() < 0, 'k1 is negative on some single tokens');
      assert.ok(k3.min().item() >= -1e-6, 'k3 is non-negative on every token');
      const m1 = k1.mean().item();
      const m3 = k3.mean().item();
      assert.ok(m1 > 0 && m3 > 0, `means ${m1} ${m3}`);
      assert.ok(Math.abs(m1 - exact) < 0.1 * exact + 0.01, `k1 mean ${m1} vs exact ${exact}`);
      assert.ok(Math.abs(m3 - exact) < 0.1 * exact + 0.01, `k3 mean ${m3} vs exact ${exact}`);
    }),
  );
  assert.equal(klEstimate(-1.2, -1.2, 'k3'), 0);
});

test('KL controllers: fixed stays, adaptive moves towards the target', () => {
  const fixed = new FixedKLController(0.001);
  fixed.update();
  assert.equal(fixed.value, 0.001);
  const adaptive = new AdaptiveKLController(0.2, 6, 10000);
  adaptive.update(12, 256); // error clipped to +0.2
  assert.ok(Math.abs(adaptive.value - 0.2 * (1 + (0.2 * 256) / 10000)) < 1e-12);
  adaptive.update(3, 256); // error −0.5 clipped to −0.2
  assert.ok(adaptive.value < 0.2 * (1 + (0.2 * 256) / 10000));
});

test('negative-KL guard: quiet on on-policy samples whose single steps dip below zero, reports off-policy ones', () => {
  // A policy π and a reference near it over 16 tokens; sequences of 12 tokens, batches of 32 (the demo's PPO).
  const rand = mulberry32(7);
  const logSoftmax = (x: number[]): number[] => {
    const m = Math.max(...x);
    const z = Math.log(x.reduce((a, v) => a + Math.exp(v - m), 0)) + m;
    return x.map((v) => v - z);
  };
  const base = Array.from({ length: 16 }, () => 2 * rand());
  const logPi = logSoftmax(base);
  const shift = base.map(() => 0.4 * (rand() - 0.5));
  const logRef = logSoftmax(base.map((v, i) => v + shift[i]!));
  // A sampler that does not draw from π: it overshoots past the reference (π's logits moved twice as far).
  const logOff = logSoftmax(base.map((v, i) => v + 2 * shift[i]!));
  const draw = (logp: number[]): number => {
    let u = rand();
    for (let i = 0; i < logp.length; i++) {
      u -= Math.exp(logp[i]!);
      if (u <= 0) return i;
    }
    return logp.length - 1;
  };
  const batch = (from: number[]): number[] =>
    Array.from({ length: 32 }, () => {
      let k = 0;
      for (let t = 0; t < 12; t++) {
        const x = draw(from);
        k += logPi[x]! - logRef[x]!;
      }
      return k;
    });
  const onPolicy = new NegativeKLGuard();
  let dips = 0;
  for (let step = 0; step < 200; step++) {
    const kls = batch(logPi);
    if (kls.reduce((a, b) => a + b, 0) / kls.length < -0.05) dips++;
    assert.equal(onPolicy.push(kls), null, `step ${step}`);
  }
  assert.ok(
    dips >= 2,
    `single steps dip below −0.05 by noise (${dips} of 200): a per-step check would fire on them`,
  );
  // Sampled from the overshooting sampler: the estimate is below zero on average, in every window.
  const offPolicy = new NegativeKLGuard();
  const reports = Array.from({ length: 40 }, () => offPolicy.push(batch(logOff))).filter((r) => r !== null);
  assert.ok(
    reports.length >= 3 && reports.length <= 5,
    `one report per window of 8 steps, got ${reports.length}`,
  );
  assert.ok(reports[0]!.mean < -0.05 && reports[0]!.mean + 3 * reports[0]!.stderr < 0);
});
