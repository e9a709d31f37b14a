// Every differentiable op against central finite differences in float64.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { type Fn, OPS } from '../../test/engine-cases.ts';
import {
  addmm,
  cat,
  dropout,
  eigh,
  inv,
  mm,
  outer,
  rand,
  randn,
  solve,
  type Tensor,
  tensor,
  tidy,
} from '../index.ts';
import { gradcheck } from './gradcheck.ts';

const fixture = JSON.parse(
  readFileSync(new URL('../../test/fixtures/engine/ops.json', import.meta.url), 'utf8'),
) as {
  cases: Record<
    string,
    { inputs: { dtype: 'float32' | 'int64' | 'bool'; shape: number[]; data: number[] }[] }
  >;
};

function check(name: string, fn: Fn, inputs: Tensor[]): void {
  const r = gradcheck(fn, inputs);
  assert.ok(r.ok, `${name}: max |analytic − numeric| = ${r.maxAbsError} at ${JSON.stringify(r.worst)}`);
}

// The golden cases, with their float inputs promoted to float64.
for (const [name, c] of Object.entries(fixture.cases)) {
  if (name === 'max_dim' || name === 'topk_values' || name === 'sort_values' || name === 'maximum') continue;
  test(`gradcheck: ${name}`, () => {
    tidy(() => {
      const inputs = c.inputs.map((j) =>
        j.dtype === 'float32'
          ? tensor(j.data, { dtype: 'float64', shape: j.shape }).requiresGrad_()
          : tensor(j.data, { dtype: j.dtype, shape: j.shape }),
      );
      // cholesky reads one triangle and its backward returns the symmetrised gradient (as torch's):
      // check it on symmetric inputs, as torch's own gradcheck does.
      const fn: Fn = name === 'cholesky' ? (a) => OPS[name]!(a.add(a.transpose(0, 1)).mul(0.5)) : OPS[name]!;
      check(name, fn, inputs);
    });
  });
}

const f64 = (...shape: number[]): Tensor => randn(shape, { dtype: 'float64' }).requiresGrad_();
const pos64 = (...shape: number[]): Tensor => rand(shape, { dtype: 'float64' }).add(0.5).requiresGrad_();
// Ops with selection (max, topk, sort, maximum) are checked on inputs without ties: distinct, spread values.
const spread = (...shape: number[]): Tensor => {
  const n = shape.reduce((a, b) => a * b, 1);
  const perm = Array.from({ length: n }, (_, i) => ((i * 7) % n) * 0.37 - n * 0.15);
  return tensor(perm, { dtype: 'float64', shape }).requiresGrad_();
};

/** A random 3×3 float64 matrix plus 3·I: safely invertible, for inv and solve. */
const wellConditioned3x3 = (): Tensor =>
  tidy(() =>
    f64(3, 3)
      .detach()
      .add(
        tensor(
          [
            [3, 0, 0],
            [0, 3, 0],
            [0, 0, 3],
          ],
          { dtype: 'float64' },
        ),
      ),
  ).requiresGrad_();

// Sums each piece with a different weight, so every split/chunk/unbind piece's gradient is checked.
const chunkAll = (a: Tensor): Tensor => {
  const pieces = [...a.split(1, 0), ...a.chunk(2, 1), ...a.split([1, 2], 1), ...a.unbind(1)];
  return cat(
    pieces.map((t, i) =>
      t
        .sum()
        .mul(i + 1)
        .reshape(1),
    ),
  );
};

const EXTRA: [string, Fn, () => Tensor[]][] = [
  ['neg', (a) => a.neg(), () => [f64(2, 3)]],
  ['expm1', (a) => a.expm1(), () => [f64(2, 3)]],
  ['sin/cos', (a) => a.sin().mul(a.cos()), () => [f64(2, 3)]],
  ['square', (a) => a.square(), () => [f64(2, 3)]],
  ['reciprocal', (a) => a.reciprocal(), () => [pos64(2, 3)]],
  ['scalar ops', (a) => a.mul(3).div(2).sub(1).add(0.5), () => [f64(2, 3)]],
  ['prod', (a) => a.prod(), () => [pos64(2, 3)]],
  ['cumprod', (a) => a.cumprod(1), () => [pos64(2, 3)]],
  ['sum/mean all', (a) => a.sum().add(a.mean()), () => [f64(2, 3)]],
  ['max/min all', (a) => a.max().sub(a.min()), () => [spread(2, 3)]],
  ['max_dim/min_dim', (a) => a.maxDim(1)[0].add(a.minDim(0, true)[0].sum()), () => [spread(3, 4)]],
  [
    'topk/sort values',
    (a) => a.topk(2, -1)[0].sum(-1).add(a.sort(0, true)[0].sum(0).sum()),
    () => [spread(3, 4)],
  ],
  [
    'maximum/minimum',
    (a, b) => a.maximum(b!).add(a.minimum(b!)),
    () => [spread(2, 3), spread(2, 3).mul(-0.9)],
  ],
  ['logsumexp dims', (a) => a.logsumexp([0, 2], true), () => [f64(2, 3, 2)]],
  ['var keepdim', (a) => a.var([0, 1], { keepdim: true }), () => [f64(2, 3)]],
  ['std unbiased', (a) => a.std(), () => [f64(2, 3)]],
  ['norm dims', (a) => a.norm(2, 1), () => [f64(2, 3)]],
  [
    'mm/addmm/outer',
    (a, b, c) =>
      mm(a, b!)
        .add(addmm(c!, a, b!))
        .sum()
        .add(outer(c!, c!).sum()),
    () => [f64(2, 3), f64(3, 2), f64(2)],
  ],
  ['inv', (a) => inv(a), () => [wellConditioned3x3()]],
  ['solve', (a, b) => solve(a, b!), () => [wellConditioned3x3(), f64(3, 2)]],
  ['eigh values', (a) => eigh(a.add(a.transpose(0, 1)))[0], () => [spread(3, 3)]],
  [
    'scatter',
    (a, s) =>
      a.scatter(
        1,
        tensor(
          [
            [0, 2],
            [1, 0],
          ],
          { dtype: 'int64' },
        ),
        s!,
      ),
    () => [f64(2, 3), f64(2, 2)],
  ],
  [
    'index_add',
    (a, s) => a.indexAdd(0, tensor([1, 0, 1], { dtype: 'int64' }), s!),
    () => [f64(2, 3), f64(3, 3)],
  ],
  ['split/chunk/unbind', (a) => chunkAll(a), () => [f64(4, 3)]],
  [
    'squeeze/unsqueeze/flatten/triu',
    (a) => a.unsqueeze(0).squeeze(0).flatten().reshape(3, 3).triu(1),
    () => [f64(3, 3)],
  ],
  ['masked_select', (a) => a.maskedSelect(a.detach().gt(0)), () => [f64(3, 3)]],
  ['dropout p=0', (a) => dropout(a, 0, true), () => [f64(2, 3)]],
  ['view/contiguous/clone', (a) => a.transpose(0, 1).contiguous().view(6).clone(), () => [f64(2, 3)]],
];

for (const [name, fn, make] of EXTRA) {
  test(`gradcheck: ${name}`, () => {
    tidy(() => check(name, fn, make()));
  });
}

test('gradcheck reports a wrong gradient', () => {
  tidy(() => {
    // x·detach(x) has gradient x, not 2x: the check must catch the mismatch with finite differences.
    const r = gradcheck((a) => a.mul(a.detach()), [f64(2, 3)]);
    assert.equal(r.ok, false);
    assert.ok(r.maxAbsError > 0.01);
  });
});
