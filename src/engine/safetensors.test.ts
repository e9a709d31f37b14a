import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  arange,
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  randn,
  SafetensorsError,
  saveSafetensors,
  type Tensor,
  tensor,
  tidy,
  zeros,
} from '../index.ts';

const fixtures = new URL('../../test/fixtures/engine/', import.meta.url);
const expected = JSON.parse(readFileSync(new URL('safetensors_values.json', fixtures), 'utf8')) as Record<
  string,
  { dtype: string; shape: number[]; data: number[] }
>;

// The same tensors gen_golden.py writes, built in hhkit.
function sampleTensors(): Record<string, Tensor> {
  const base = tensor(expected['f32']!.data, { shape: [3, 4] });
  return {
    f32: base,
    f64: base.to('float64').mul(2),
    f16: base.to('float16'),
    bf16: base.to('bfloat16'),
    i64: arange(-3, 5).reshape(2, 4),
    i32: arange(6).to('int32'),
    bool: tensor([true, false, true], { dtype: 'bool' }),
    u8: tensor([0, 255, 7], { dtype: 'uint8' }),
    scalar: tensor(3.5),
    empty: zeros([0, 3]),
  };
}

test('reads a file written by the PyTorch reference writer: every dtype, values exact', () => {
  tidy(() => {
    const { tensors, metadata } = loadSafetensors(new URL('python_written.safetensors', fixtures).pathname);
    assert.deepEqual(metadata, { format: 'pt', writer: 'gen_golden.py' });
    assert.deepEqual(Object.keys(tensors).sort(), Object.keys(expected).sort());
    for (const [name, want] of Object.entries(expected)) {
      const got = tensors[name]!;
      assert.deepEqual([...got.shape], want.shape, name);
      assert.equal(got.dtype, want.dtype, name);
      const values = Array.from(got.toTypedArray() as ArrayLike<number | bigint>, Number);
      assert.deepEqual(values, want.data, name);
    }
  });
});

test('hhkit writes the committed golden file byte for byte (the one gen_golden.py reads back with PyTorch)', () => {
  tidy(() => {
    const bytes = encodeSafetensors(sampleTensors(), { format: 'pt', writer: 'hhkit' });
    const golden = new URL('hhkit_written.safetensors', fixtures);
    if (process.env.HHKIT_WRITE_FIXTURES === '1') writeFileSync(golden, bytes);
    assert.deepEqual(Buffer.from(bytes), readFileSync(golden));
  });
});

test('round trip keeps names, dtypes, shapes and values', () => {
  tidy(() => {
    const dir = mkdtempSync(join(tmpdir(), 'hhkit-st-'));
    const src = { ...sampleTensors(), big: randn([64, 33]) };
    saveSafetensors(join(dir, 'm.safetensors'), src);
    const { tensors } = loadSafetensors(join(dir, 'm.safetensors'));
    for (const [name, t] of Object.entries(src)) {
      const got = tensors[name]!;
      assert.equal(got.dtype, t.dtype, name);
      assert.deepEqual(got.shape, t.shape, name);
      assert.deepEqual(Buffer.from(got.toBytes()), Buffer.from(t.toBytes()), name);
    }
  });
});

test('malformed files give errors naming the file and the problem', () => {
  const good = tidy(() => encodeSafetensors({ w: zeros([2, 2]) }));
  assert.throws(() => decodeSafetensors(good.subarray(0, 5), 'x.st'), /x\.st: .*only 5 bytes/);
  const truncated = good.subarray(0, good.length - 4);
  assert.throws(() => decodeSafetensors(truncated, 'y.st'), SafetensorsError);
  assert.throws(
    () => decodeSafetensors(truncated, 'y.st'),
    /y\.st: .*'w' data_offsets \[0, 16\] outside the data/,
  );
  const badJson = Buffer.from(good);
  badJson[9] = 0x7b; // '{{' is not JSON
  assert.throws(() => decodeSafetensors(badJson, 'z.st'), /z\.st: .*header is not JSON/);
});
