// forwardHidden with `readout` (the last block at one position per row, as preference models read) against
// the full forward's hidden state at those positions, for GPT-2 and every family fixture: right and left
// padding, eval and gradients; and its errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { autocast, manualSeed, noGrad, randint, type Tensor, tensor, tidy } from '../engine/index.ts';
import type { CausalLM } from './causal-lm.ts';
import { FAMILY_FIXTURES, familyFixture, maxDiff } from './families.fixture.ts';
import { GPT, gptPresets } from './gpt.ts';
import { loadCausalLM } from './hf.ts';
import { cacheFor } from './causal-lm.ts';

const MODELS: [string, () => CausalLM][] = [
  ['gpt2', () => new GPT({ ...gptPresets.tiny, nLayer: 3 }, { seed: 3 })],
  ...FAMILY_FIXTURES.map((name): [string, () => CausalLM] => [
    name,
    () => loadCausalLM(familyFixture(name)).model,
  ]),
];

/** Rows of lengths `lengths`, padded right or left to the longest: ids, mask (B, T), readout (B). */
function padded(vocab: number, lengths: number[], side: 'right' | 'left') {
  const T = Math.max(...lengths);
  const B = lengths.length;
  manualSeed(7);
  const ids = randint(1, vocab, [B, T]);
  const mask = new BigInt64Array(B * T);
  const readout = new BigInt64Array(B);
  lengths.forEach((n, b) => {
    const from = side === 'right' ? 0 : T - n;
    for (let t = from; t < from + n; t++) mask[b * T + t] = 1n;
    readout[b] = BigInt(from + n - 1);
  });
  return { ids, mask: tensor(mask, { shape: [B, T] }), readout: tensor(readout, { shape: [B] }) };
}

const picked = (hidden: Tensor, readout: Tensor): Tensor => {
  const [b, , c] = hidden.shape as [number, number, number];
  return hidden.gather(1, readout.view(b, 1, 1).expand(b, 1, c));
};

for (const [name, make] of MODELS) {
  test(`${name}: readout forward = the full forward's hidden state at the readout positions, and so are gradients`, () => {
    const model = make();
    model.eval();
    const V = model.lmConfig.vocabSize;
    for (const side of ['right', 'left'] as const) {
      const { ids, mask, readout } = padded(V, [7, 3, 5, 1], side);
      tidy(() => {
        const full = noGrad(() => picked(model.forwardHidden(ids, { attentionMask: mask }).hidden, readout));
        const fast = noGrad(() => model.forwardHidden(ids, { attentionMask: mask, readout }).hidden);
        assert.deepEqual(fast.shape, [4, 1, model.lmConfig.hiddenSize]);
        const d = maxDiff(fast, full);
        assert.ok(d <= 1e-5, `${side} padding: hidden differs by ${d}`);
      });
    }
    // Gradients of a scalar of the readout states: the same through either forward, either padding.
    for (const side of ['right', 'left'] as const) checkGrads(model, padded(V, [6, 2, 4], side), side);
    // Under bfloat16 autocast (PM training's --precision bf16): the same up to bf16 rounding.
    const { ids, mask, readout } = padded(V, [7, 3, 5, 1], 'left');
    tidy(() => {
      const bf16 = (f: () => Tensor) => noGrad(() => autocast({ device: 'cpu' }, f).float());
      const full = bf16(() => picked(model.forwardHidden(ids, { attentionMask: mask }).hidden, readout));
      const fast = bf16(() => model.forwardHidden(ids, { attentionMask: mask, readout }).hidden);
      const scale = full.abs().max().item();
      const d = maxDiff(fast, full);
      assert.ok(d <= 0.05 * Math.max(1, scale), `bf16: hidden differs by ${d} (largest |h| ${scale})`);
    });
  });
}

function checkGrads(model: CausalLM, { ids, mask, readout }: ReturnType<typeof padded>, side: string): void {
  const grads = (useReadout: boolean): Map<string, Tensor | null> => {
    for (const p of model.parameters()) p.grad?.dispose();
    model.zeroGrad();
    tidy(() => {
      const h = useReadout
        ? model.forwardHidden(ids, { attentionMask: mask, readout }).hidden
        : picked(model.forwardHidden(ids, { attentionMask: mask }).hidden, readout);
      h.pow(2).sum().backward();
    });
    // (an untied LM head gets no gradient through forwardHidden: null on both sides)
    return new Map(model.namedParameters().map(([n, p]) => [n, p.grad?.clone() ?? null]));
  };
  const a = grads(false);
  const b = grads(true);
  let worst = 0;
  for (const [n, g] of a) {
    const h = b.get(n) ?? null;
    assert.equal(h === null, g === null, `${n}: a gradient on one side only`);
    if (g && h) worst = Math.max(worst, maxDiff(h, g));
  }
  assert.ok(worst <= 1e-4, `${side} padding: gradients differ by up to ${worst}`);
}

test('readout: a clear error with a cache, with outputHiddenStates, or of the wrong shape', () => {
  const model = new GPT(gptPresets.tiny, { seed: 1 });
  const ids = randint(1, 50, [2, 4]);
  const readout = tensor(new BigInt64Array([3n, 2n]), { shape: [2] });
  assert.throws(
    () => model.forwardHidden(ids, { readout, cache: cacheFor(model.lmConfig, 2, 8) }),
    /not with a cache/,
  );
  assert.throws(() => model.forwardHidden(ids, { readout, outputHiddenStates: true }), /outputHiddenStates/);
  assert.throws(
    () => model.forwardHidden(ids, { readout: tensor(new BigInt64Array([1n]), { shape: [1] }) }),
    /readout must be \(B\) = \(2\)/,
  );
  for (const bad of [-1n, 4n])
    assert.throws(
      () => model.forwardHidden(ids, { readout: tensor(new BigInt64Array([1n, bad]), { shape: [2] }) }),
      /readout positions must lie in \[0, 4\)/,
    );
});
