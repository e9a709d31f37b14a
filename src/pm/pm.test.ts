// Preference-model unit tests: the loss (stability, gradient, λ), the end-of-context readout under
// padding, truncation, and a tiny PM learning a planted preference.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradcheck } from '../engine/gradcheck.ts';
import { noGrad, randn, tensor, tidy } from '../engine/index.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { encodeTranscripts, padSequences } from './batch.ts';
import { resolvePMTrainConfig } from './config.ts';
import { sampleComparisons, type TaskedComparison, taskOf } from './data.ts';
import { pairAgreement } from '../eval/calibration.ts';
import { correctPairs, lossWeights, preferenceLossTensor } from './loss.ts';
import { PreferenceModel } from './model.ts';
import { scoreSequences } from './score.ts';
import { trainPreferenceModel } from './train.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const WORDS = [
  'apple',
  'river',
  'stone',
  'cloud',
  'green',
  'music',
  'paper',
  'light',
  'table',
  'window',
  'garden',
  'silver',
];

/** Deterministic toy comparisons: the chosen reply contains "zebra", the rejected one does not. */
function plantedComparisons(n: number, seed: number): TaskedComparison[] {
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const phrase = (k: number) =>
    Array.from({ length: k }, () => WORDS[Math.floor(rand() * WORDS.length)]!).join(' ');
  return Array.from({ length: n }, () => {
    const prompt = `\n\nHuman: ${phrase(3)}?\n\nAssistant:`;
    const words = phrase(4 + Math.floor(rand() * 3)).split(' ');
    const at = Math.floor(rand() * words.length);
    const good = [...words.slice(0, at), 'zebra', ...words.slice(at + 1)].join(' ');
    const bad = phrase(words.length);
    return {
      record: { chosen: `${prompt} ${good}`, rejected: `${prompt} ${bad}` },
      task: 'helpful' as const,
    };
  });
}

const toyTokenizer = (): Tokenizer =>
  Tokenizer.train(
    plantedComparisons(200, 99).flatMap((c) => [c.record.chosen, c.record.rejected]),
    { vocabSize: 300 },
  );

test('loss: equals softplus(r_rej − r_chosen), finite with zero-or-unit gradients at gaps of ±1e4', () => {
  tidy(() => {
    const chosen = tensor([1e4, -1e4, 0, 2]).requiresGrad_();
    const rejected = tensor([-1e4, 1e4, 0, 0]);
    const loss = preferenceLossTensor(chosen, rejected);
    // per item: 0, 2e4, ln 2, softplus(−2); mean over 4
    const expected = (0 + 2e4 + Math.log(2) + Math.log1p(Math.exp(-2))) / 4;
    assert.ok(Number.isFinite(loss.item()));
    assert.ok(Math.abs(loss.item() - expected) < 1e-2, `loss ${loss.item()} vs ${expected}`);
    loss.backward();
    const g = chosen.grad!.toTypedArray() as Float32Array;
    // d/dr_chosen softplus(r_rej − r_chosen) / B = −σ(r_rej − r_chosen) / 4
    const want = [0, -0.25, -0.125, -1 / (1 + Math.exp(2)) / 4];
    for (const [i, x] of Array.from(g).entries()) {
      assert.ok(Math.abs(x - want[i]!) < 1e-6, `grad ${i}: ${x} vs ${want[i]}`);
    }
  });
});

test('loss: gradient matches finite differences (float64), with weights', () => {
  tidy(() => {
    const chosen = randn([5], { dtype: 'float64' }).mul(3).detach().requiresGrad_();
    const rejected = randn([5], { dtype: 'float64' }).mul(3).detach().requiresGrad_();
    const weights = tensor([1, 1, 0.5, 2, 1], { dtype: 'float64' });
    const result = gradcheck((c, r) => preferenceLossTensor(c!, r!, weights), [chosen, rejected]);
    assert.ok(result.ok, `max error ${result.maxAbsError}`);
  });
});

test('loss: λ weights harmless comparisons, L = (L_help + λ·L_harm)/B', () => {
  tidy(() => {
    const chosen = tensor([0.3, -1, 2, 0.5]);
    const rejected = tensor([0, 0.5, 1, 1]);
    const tasks = ['helpful', 'harmless', 'helpful', 'harmless'] as const;
    const per = [0.3, -1, 2, 0.5].map((c, i) => Math.log1p(Math.exp([0, 0.5, 1, 1][i]! - c)));
    const help = per[0]! + per[2]!;
    const harm = per[1]! + per[3]!;
    for (const lambda of [0, 1, 3]) {
      const l = preferenceLossTensor(chosen, rejected, tensor(lossWeights([...tasks], lambda))).item();
      assert.ok(Math.abs(l - (help + lambda * harm) / 4) < 1e-6, `λ=${lambda}: ${l}`);
    }
    const l0 = preferenceLossTensor(chosen, rejected, tensor(lossWeights([...tasks], 0))).item();
    const l3 = preferenceLossTensor(chosen, rejected, tensor(lossWeights([...tasks], 3))).item();
    assert.ok(l3 > l0 + 0.5, 'raising λ raises the loss when harmless terms are positive');
  });
});

test('loss: slices normalised by the whole batch count sum to the whole batch loss and gradient (λ = 3)', () => {
  tidy(() => {
    const chosen = tensor([0.3, -1, 2, 0.5]).requiresGrad_();
    const rejected = tensor([0, 0.5, 1, 1]);
    const w = tensor(lossWeights(['helpful', 'harmless', 'harmless', 'helpful'], 3));
    const whole = preferenceLossTensor(chosen, rejected, w);
    whole.backward();
    const wholeGrad = Array.from(chosen.grad!.toTypedArray() as Float32Array);
    chosen.grad = null;
    // a data-parallel step: two ranks with two comparisons each, both dividing by 4
    const parts = [0, 2].map((at) =>
      preferenceLossTensor(chosen.narrow(0, at, 2), rejected.narrow(0, at, 2), w.narrow(0, at, 2), 4),
    );
    for (const p of parts) p.backward();
    const sum = parts[0]!.item() + parts[1]!.item();
    assert.ok(Math.abs(sum - whole.item()) < 1e-6, `${sum} vs ${whole.item()}`);
    const grad = Array.from(chosen.grad!.toTypedArray() as Float32Array);
    for (const [i, g] of grad.entries()) assert.ok(Math.abs(g - wholeGrad[i]!) < 1e-7, `grad ${i}`);
    // each slice's own mean would double-count: the sum of the slice means is 2× the whole
    const means = [0, 2].map((at) =>
      preferenceLossTensor(chosen.narrow(0, at, 2), rejected.narrow(0, at, 2), w.narrow(0, at, 2)).item(),
    );
    assert.ok(Math.abs(means[0]! + means[1]! - 2 * whole.item()) < 1e-5);
  });
});

test('accuracy: a gap within float noise of the scores is a tie (½) in the number and tensor rules alike', () => {
  const chosen = [3, 1, 1 + 1e-7, 250, 250.001, -2, 0];
  const rejected = [1, 3, 1, 250 + 1e-4, 250, -2 - 1e-6, 1e-3];
  // 1e-7 and 1e-6 gaps are rounding (ties); 1e-4 on scores of 250 is too (tolerance 1e-5 × 250); 1e-3 is not.
  const expected = [1, 0, 0.5, 0.5, 0.5, 0.5, 0];
  assert.deepEqual(
    chosen.map((c, i) => pairAgreement(c, rejected[i]!)),
    expected,
  );
  const sum = tidy(() => correctPairs(tensor(chosen), tensor(rejected)));
  assert.equal(
    sum,
    expected.reduce((a, b) => a + b, 0),
  );
});

test('encoding: ends in END_OF_CONTEXT and keeps the end of a long transcript', async () => {
  const tok = toyTokenizer();
  const long = `\n\nHuman: ${WORDS.join(' ')} ${WORDS.join(' ')}\n\nAssistant: stone zebra`;
  const { ids, truncated } = await encodeTranscripts(tok, [long, '\n\nHuman: hi\n\nAssistant: ok'], 12);
  assert.equal(truncated, 1);
  assert.equal(ids[0]!.length, 12);
  assert.equal(ids[0]!.at(-1), tok.endOfContextId);
  assert.equal(ids[1]!.at(-1), tok.endOfContextId);
  const full = await tok.encode(long, { allowSpecial: false });
  assert.deepEqual(ids[0]!.slice(0, 11), full.slice(-11), 'the last 11 tokens, then END_OF_CONTEXT');
  // a special-token string inside a transcript is text, not a second END_OF_CONTEXT
  const sneaky = await encodeTranscripts(tok, ['\n\nHuman: <|endofcontext|>\n\nAssistant: x'], 64);
  assert.equal(
    sneaky.ids[0]!.filter((id) => id === tok.endOfContextId).length,
    1,
    JSON.stringify(sneaky.ids[0]!.map((id) => tok.idToToken(id))),
  );
});

test('readout: the score is read at END_OF_CONTEXT, the same under right/left padding and any batch', async () => {
  const tok = toyTokenizer();
  const pm = PreferenceModel.fresh(
    {
      family: 'gpt2',
      config: { nLayer: 2, nHead: 2, nEmbd: 16, nPositions: 48, vocabSize: tok.vocabSize, dropout: 0 },
    },
    3,
  ).eval();
  const texts = plantedComparisons(6, 5).flatMap((c) => [c.record.chosen, c.record.rejected]);
  texts.push('\n\nHuman: hi\n\nAssistant: ok');
  const { ids } = await encodeTranscripts(tok, texts, 48);
  assert.ok(new Set(ids.map((s) => s.length)).size > 2, 'lengths differ, so padding happens');
  const alone = ids.map((s) => noGrad(() => tidy(() => pm.scores(padSequences([s], tok.padId)).item())));
  for (const side of ['right', 'left'] as const) {
    const batch = noGrad(() =>
      tidy(() => {
        const b = padSequences(ids, tok.padId, side);
        // the readout column holds END_OF_CONTEXT in every row
        const picked = b.ids.gather(1, b.readout.unsqueeze(1)).squeeze(1).toArray() as number[];
        assert.ok(
          picked.every((id) => id === tok.endOfContextId),
          `${side}: readout on END_OF_CONTEXT`,
        );
        return Array.from(pm.scores(b).toTypedArray() as Float32Array);
      }),
    );
    for (const [i, s] of batch.entries()) {
      assert.ok(Math.abs(s - alone[i]!) < 1e-4, `${side} row ${i}: ${s} vs alone ${alone[i]}`);
    }
  }
  // length-grouped batching in scoreSequences gives the same numbers in input order
  const grouped = scoreSequences(pm, ids, tok.padId, { batchSize: 4 });
  for (const [i, s] of grouped.entries()) assert.ok(Math.abs(s - alone[i]!) < 1e-4);
  // and the score really depends on the content at the end: a different last word moves it
  assert.ok(new Set(alone.map((x) => x.toFixed(4))).size > 5);
  for (const p of pm.parameters()) p.dispose();
});

test('data: task from the record, else the file name (HH-RLHF harmless-base), and nested samples', () => {
  assert.equal(taskOf({ chosen: 'a', rejected: 'b' }, 'hh/harmless-base/train.jsonl.gz'), 'harmless');
  assert.equal(taskOf({ chosen: 'a', rejected: 'b' }, 'hh/helpful-online/train.jsonl.gz'), 'helpful');
  assert.equal(taskOf({ chosen: 'a', rejected: 'b', task: 'helpful' }, 'harmless.jsonl'), 'helpful');
  const items = Array.from({ length: 50 }, (_, i) => i);
  const small = sampleComparisons(items, 10, 1);
  const big = sampleComparisons(items, 30, 1);
  assert.equal(small.length, 10);
  assert.ok(
    small.every((x) => big.includes(x)),
    'a smaller sample is inside a larger one (same seed)',
  );
});

test('a tiny PM learns a planted preference ("contains zebra") to >95% held-out accuracy', async () => {
  const tok = toyTokenizer();
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-pm-'));
  const config = resolvePMTrainConfig('finetune', {
    data: '(planted)',
    out: join(dir, 'run'),
    nLayer: 1,
    nHead: 2,
    nEmbd: 32,
    nPositions: 32,
    batchSize: 16,
    steps: 200,
    baseLr: 1e-3,
    lrMultiplier: 3,
    warmupSteps: 10,
    checkpointEvery: 1000,
  });
  const result = await trainPreferenceModel(config, {
    tokenizer: tok,
    train: plantedComparisons(800, 1),
    eval: plantedComparisons(200, 2),
  });
  assert.ok(result.evalAccuracy > 0.95, `held-out accuracy ${result.evalAccuracy}`);
  assert.ok(result.lastLoss < result.firstLoss / 2, `loss ${result.firstLoss} → ${result.lastLoss}`);
});
