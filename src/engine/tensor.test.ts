import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  arange,
  full,
  getNumThreads,
  getRngState,
  manualSeed,
  multinomial,
  noGrad,
  ones,
  randn,
  setNumThreads,
  setRngState,
  tensor,
  tidy,
  torchVersion,
  zeros,
} from '../index.ts';

test('creation, shape, dtype and values', () => {
  tidy(() => {
    const x = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(x.shape, [2, 3]);
    assert.equal(x.dtype, 'float32');
    assert.deepEqual(x.toArray(), [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(full([2], 7, { dtype: 'int32' }).toArray(), [7, 7]);
    assert.deepEqual(arange(0, 1, 0.5).toArray(), [0, 0.5]);
    assert.equal(arange(3).dtype, 'int64');
    assert.deepEqual(tensor([true, false], { dtype: 'bool' }).toArray(), [true, false]);
    assert.equal(tensor(2.5).item(), 2.5);
    assert.deepEqual(tensor(2.5).shape, []);
    assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
  });
});

test('type promotion follows torch: integer scalars keep int64, floats promote', () => {
  tidy(() => {
    const i = arange(4);
    assert.equal(i.add(1).dtype, 'int64');
    assert.equal(i.mul(0.5).dtype, 'float32');
    assert.equal(i.div(2).dtype, 'float32'); // true division, like torch
    assert.deepEqual(i.add(1).toArray(), [1, 2, 3, 4]);
  });
});

test('16-bit floats convert and read back as float32 values', () => {
  tidy(() => {
    const x = tensor([1, 0.1, -3.5]);
    const h = x.to('float16');
    const b = x.to('bfloat16');
    assert.equal(h.dtype, 'float16');
    assert.equal(b.dtype, 'bfloat16');
    const hv = h.toTypedArray() as Float32Array;
    const bv = b.toTypedArray() as Float32Array;
    assert.ok(Math.abs(hv[1]! - 0.1) < 1e-3 && hv[1] !== 0.1);
    assert.ok(Math.abs(bv[1]! - 0.1) < 1e-2);
    assert.equal(bv[2], -3.5);
    assert.equal(h.toBytes().length, 6);
  });
});

test('manualSeed makes sampling reproducible; RNG state restores a stream exactly', () => {
  tidy(() => {
    manualSeed(42);
    const a = randn([5]).toArray();
    manualSeed(42);
    assert.deepEqual(randn([5]).toArray(), a);
    const state = getRngState();
    const next = randn([5]).toArray();
    const probs = tensor([[0.1, 0.2, 0.7]]);
    const draw = multinomial(probs, 8, true).toArray();
    setRngState(state);
    assert.deepEqual(randn([5]).toArray(), next);
    assert.deepEqual(multinomial(probs, 8, true).toArray(), draw);
    assert.notDeepEqual(randn([5]).toArray(), next);
  });
});

test('autograd: backward accumulates into .grad; noGrad records nothing', () => {
  tidy(() => {
    const w = ones([3]).requiresGrad_();
    const x = tensor([1, 2, 3]);
    w.mul(x).sum().backward();
    assert.deepEqual(w.grad!.toArray(), [1, 2, 3]);
    w.mul(x).sum().backward();
    assert.deepEqual(w.grad!.toArray(), [2, 4, 6]);
    w.grad = null;
    assert.equal(w.grad, null);
    const y = noGrad(() => w.mul(2));
    assert.equal(y.requiresGrad, false);
    assert.equal(w.mul(2).requiresGrad, true);
  });
});

test('views share memory; in-place ops write through', () => {
  tidy(() => {
    const x = zeros([2, 3]);
    x.select(0, 1).fill_(5);
    assert.deepEqual(x.toArray(), [
      [0, 0, 0],
      [5, 5, 5],
    ]);
    x.slice(1, 0, 1).add_(1);
    assert.deepEqual(x.sum().item(), 17);
  });
});

test('threads can be set (torch pool and OpenBLAS pool)', () => {
  const before = getNumThreads();
  setNumThreads(2);
  assert.equal(getNumThreads(), 2);
  setNumThreads(before);
  assert.throws(() => setNumThreads(0), /positive integer/);
  assert.match(torchVersion(), /^\d+\.\d+/);
});
