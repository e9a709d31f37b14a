// Module registration, modes, seeding, dtype moves; the layers against torch formulas; ScalarHead.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  arange,
  getRngState,
  manualSeed,
  noGrad,
  randn,
  type Tensor,
  tensor,
  tidy,
} from '../engine/index.ts';
import { GPT, gptPresets } from './gpt.ts';
import { ScalarHead } from './heads.ts';
import { Conv1D, Dropout, Linear, MLP } from './layers.ts';
import { Module } from './module.ts';

const maxDiff = (a: Tensor, b: Tensor): number => tidy(() => a.sub(b).abs().max().item());
const ids = tensor([[4, 8, 15, 16, 23, 42]], { dtype: 'int64' });

test('parameters: GPT-2 names in a fixed order, leaves with grad, tied head counted once', () => {
  const model = new GPT(gptPresets.tiny, { seed: 1 });
  const names = model.namedParameters().map(([n]) => n);
  assert.deepEqual(names.slice(0, 4), [
    'transformer.wte.weight',
    'transformer.wpe.weight',
    'transformer.h.0.ln_1.weight',
    'transformer.h.0.ln_1.bias',
  ]);
  assert.equal(names.at(-1), 'transformer.ln_f.bias');
  assert.equal(new Set(names).size, names.length);
  assert.deepEqual(
    new GPT(gptPresets.tiny, { seed: 9 }).namedParameters().map(([n]) => n),
    names,
    'same order every time',
  );
  assert.deepEqual(Object.keys(model.stateDict()), names);
  // V·C + P·C + L·(12C² + 13C) + 2C
  const { nEmbd: C, nLayer: L, vocabSize: V, nPositions: P } = gptPresets.tiny;
  assert.equal(model.numParameters(), V * C + P * C + L * (12 * C * C + 13 * C) + 2 * C);
  assert.ok(model.parameters().every((p) => p.isLeaf && p.requiresGrad));
  assert.deepEqual(model.namedBuffers(), []);
});

test('seeded init: same seed same weights, other seed differs, global generator untouched', () => {
  manualSeed(5);
  const state = getRngState().toArray();
  const a = new GPT(gptPresets.tiny, { seed: 11 });
  assert.deepEqual(getRngState().toArray(), state, 'global RNG state restored');
  const b = new GPT(gptPresets.tiny, { seed: 11 });
  const c = new GPT(gptPresets.tiny, { seed: 12 });
  assert.equal(maxDiff(a.wte, b.wte), 0);
  assert.ok(maxDiff(a.wte, c.wte) > 0);
  // GPT-2 init statistics: std 0.02, residual projections 0.02/√(2L), zero biases, unit LayerNorm.
  const big = new GPT({ ...gptPresets.tiny, nEmbd: 64, nHead: 4, vocabSize: 500 }, { seed: 1 });
  const std = (t: Tensor): number => tidy(() => t.std().item());
  assert.ok(Math.abs(std(big.wte) - 0.02) < 0.001);
  const proj = big.transformer.h.at(0).attn.c_proj.weight;
  assert.ok(Math.abs(std(proj) - 0.02 / Math.sqrt(4)) < 0.001, `c_proj std ${std(proj)}`);
  assert.equal(
    tidy(() => big.transformer.h.at(1).mlp.c_fc.bias.abs().sum().item()),
    0,
  );
  assert.equal(
    tidy(() => big.transformer.ln_f.weight.sum().item()),
    64,
  );
});

test('layers: Linear is x·Wᵀ + b with W (out, in); Conv1D is x·W + b with W (in, out); MLP uses tanh GELU', () => {
  noGrad(() =>
    tidy(() => {
      const x = randn([2, 3, 4]);
      const lin = new Linear(4, 5);
      assert.deepEqual([...lin.weight.shape], [5, 4]);
      assert.ok(maxDiff(lin.forward(x), x.matmul(lin.weight.transpose(0, 1)).add(lin.bias!)) < 1e-6);
      assert.equal(new Linear(4, 5, { bias: false }).bias, null);
      const conv = new Conv1D(4, 5);
      conv.bias.normal_();
      assert.deepEqual([...conv.weight.shape], [4, 5]);
      assert.ok(maxDiff(conv.forward(x), x.matmul(conv.weight).add(conv.bias)) < 1e-6);
      const mlp = new MLP(4, 0);
      const h = x.matmul(mlp.c_fc.weight).add(mlp.c_fc.bias);
      const gelu = h.mul(0.5).mul(
        h
          .add(h.pow(3).mul(0.044715))
          .mul(Math.sqrt(2 / Math.PI))
          .tanh()
          .add(1),
      );
      assert.ok(maxDiff(mlp.forward(x), gelu.matmul(mlp.c_proj.weight).add(mlp.c_proj.bias)) < 1e-5);
    }),
  );
});

test('Dropout: identity (the same tensor) in eval mode or with p = 0; scales kept units by 1/(1-p)', () => {
  tidy(() => {
    const x = randn([1000]).abs().add(1);
    const drop = new Dropout(0.5);
    const y = drop.forward(x);
    const zeros = tidy(() => y.eq(0).sum().item());
    assert.ok(zeros > 400 && zeros < 600);
    assert.ok(maxDiff(y.maskedFill(y.eq(0), 0), x.mul(2).maskedFill(y.eq(0), 0)) < 1e-5);
    assert.equal(drop.eval().forward(x), x);
    assert.equal(new Dropout(0).forward(x), x);
  });
  assert.throws(() => new Dropout(1), RangeError);
});

test('registration: duplicate or dotted names are refused; train(false) reaches every submodule', () => {
  class Bad extends Module {
    constructor(name: string) {
      super();
      this.param('w', tensor([1]));
      this.param(name, tensor([2]));
    }
  }
  assert.throws(() => new Bad('w'), /already registered/);
  assert.throws(() => new Bad('a.b'), /invalid name/);
  const model = new GPT(gptPresets.tiny);
  model.train(false);
  assert.ok(model.namedModules().every(([, m]) => m.training === false));
  model.train();
  assert.ok(model.namedModules().every(([, m]) => m.training));
});

test('to(dtype): parameters replaced in place of the old, fields follow, forward agrees', () => {
  const model = new GPT(gptPresets.tiny, { seed: 4 }).eval();
  const before = noGrad(() => model.forward(ids).logits);
  model.to('float64');
  assert.equal(model.wte.dtype, 'float64');
  assert.equal(model.transformer.h.at(1).attn.c_attn.weight.dtype, 'float64');
  assert.ok(model.parameters().every((p) => p.dtype === 'float64' && p.isLeaf && p.requiresGrad));
  const after = noGrad(() => model.forward(ids).logits);
  assert.ok(maxDiff(after.float(), before) < 1e-5);
  const built = new GPT(gptPresets.tiny, { seed: 4, dtype: 'float64' });
  assert.equal(maxDiff(built.wte, model.wte), 0);
});

test('ScalarHead: score reads the hidden state at each row position; forward gives one value per token', () => {
  const model = new GPT(gptPresets.tiny, { seed: 1 });
  const head = new ScalarHead(16, { seed: 2 });
  assert.deepEqual(
    head.namedParameters().map(([n, t]) => [n, [...t.shape]]),
    [
      ['weight', [1, 16]],
      ['bias', [1]],
    ],
  );
  tidy(() => {
    const batch = tensor(
      [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
      ],
      { dtype: 'int64' },
    );
    const { hidden } = model.forwardHidden(batch);
    const perToken = head.forward(hidden); // (B, T)
    assert.deepEqual([...perToken.shape], [2, 4]);
    const positions = tensor([3, 1], { dtype: 'int64' });
    const scores = head.score(hidden, positions);
    assert.deepEqual([...scores.shape], [2]);
    const expected = perToken.gather(1, positions.unsqueeze(1)).squeeze(1);
    assert.ok(maxDiff(scores, expected) < 1e-6);
    scores.sum().backward();
    assert.ok(head.weight.grad && model.wte.grad, 'gradients reach the head and the body');
    assert.throws(() => head.score(hidden, arange(3)), /positions must be \(B\)/);
  });
  assert.equal(new ScalarHead(16, { bias: false }).bias, null);
});
