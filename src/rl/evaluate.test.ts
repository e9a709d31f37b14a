import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { noGrad, tensor, tidy } from '../engine/index.ts';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { GPT } from '../nn/gpt.ts';
import { sequenceKL } from './evaluate.ts';
import { sampleRollout } from './rollout.ts';
import { tinyPolicy } from './test-fixtures.ts';

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const variance = (xs: number[]): number => mean(xs.map((x) => (x - mean(xs)) ** 2));

test('sequence KL: the exact estimator is KL of the next-token distributions, ≥ 0 per sample, agrees with k1 on average with less spread', async () => {
  const t = tinyPolicy(1);
  const policy = loadCheckpoint(t.init).model.eval();
  const reference = new GPT(
    { nLayer: 1, nHead: 2, nEmbd: 32, nPositions: 48, vocabSize: t.tokenizer.vocabSize, dropout: 0 },
    { seed: 2 },
  ).eval();
  const prompt = await t.tokenizer.encode(t.prompts[0]!, { allowSpecial: false });

  // One new token: the estimate is KL(π(·|prompt) ‖ π_ref(·|prompt)) whatever was drawn, computed here by hand.
  const one = await sampleRollout(policy, t.tokenizer, [prompt, prompt, prompt], {
    maxNewTokens: 1,
    seed: 3,
  });
  const exactOne = sequenceKL(policy, reference, one);
  one.dispose();
  const lastLogits = (m: typeof policy): number[] =>
    noGrad(() =>
      tidy(() => {
        const ids = tensor(BigInt64Array.from(prompt.map(BigInt)), { shape: [1, prompt.length] });
        const logits = m.forward(ids).logits;
        return Array.from(
          logits
            .select(1, prompt.length - 1)
            .logSoftmax(-1)
            .toTypedArray() as Float32Array,
        );
      }),
    );
  const lp = lastLogits(policy);
  const lr = lastLogits(reference);
  const byHand = lp.reduce((a, l, v) => a + Math.exp(l) * (l - lr[v]!), 0);
  for (const k of exactOne) assert.ok(Math.abs(k - byHand) < 1e-4 * Math.max(1, byHand), `${k} vs ${byHand}`);

  // Six new tokens, 256 samples: both estimators are unbiased for the same KL; only k1 goes below zero.
  const rows = Array.from({ length: 256 }, () => prompt);
  const r = await sampleRollout(policy, t.tokenizer, rows, { maxNewTokens: 6, seed: 5 });
  const exact = sequenceKL(policy, reference, r);
  const k1 = sequenceKL(policy, reference, r, 'fp32', 'k1');
  r.dispose();
  assert.ok(Math.min(...exact) >= 0);
  assert.ok(Math.min(...k1) < 0, 'k1 is negative on some samples');
  const se = Math.sqrt(variance(k1) / k1.length);
  assert.ok(Math.abs(mean(exact) - mean(k1)) < 4 * se, `exact ${mean(exact)} vs k1 ${mean(k1)} ± ${se}`);
  assert.ok(variance(exact) < 0.5 * variance(k1), `variance exact ${variance(exact)} vs k1 ${variance(k1)}`);
  // The same model on both sides: zero (two forwards of one model may differ in the last bits).
  const same = await sampleRollout(policy, t.tokenizer, rows.slice(0, 8), { maxNewTokens: 6, seed: 6 });
  for (const k of sequenceKL(policy, policy, same)) assert.ok(Math.abs(k) < 1e-6, `${k}`);
  same.dispose();
  for (const p of [...policy.parameters(), ...reference.parameters()]) p.dispose();
  rmSync(t.dir, { recursive: true, force: true });
});
