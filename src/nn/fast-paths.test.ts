// Issue 9's speed knobs on whatever libtorch this build has: bf16 autocast (CPU here, CUDA on GPU builds),
// fused attention where torch ≥ 2.0 provides it (else a clear error and the manual path), TF32 switch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  allowTF32,
  autocast,
  autocastEnabled,
  builtWithCuda,
  noGrad,
  randn,
  resolveDevice,
  scaledDotProductAttention,
  sdpaAvailable,
  setAllowTF32,
  tensor,
  tidy,
} from '../engine/index.ts';
import { fusedAttention, setFusedAttention } from './attention.ts';
import { GPT } from './gpt.ts';

test('autocast runs matmuls in bfloat16 inside and float32 outside, and restores the switch', () => {
  tidy(() => {
    const a = randn([4, 8]);
    const b = randn([8, 3]);
    assert.equal(autocastEnabled('cpu'), false);
    const inside = autocast({ device: 'cpu' }, () => {
      assert.equal(autocastEnabled('cpu'), true);
      return a.matmul(b);
    });
    assert.equal(inside.dtype, 'bfloat16');
    assert.equal(autocastEnabled('cpu'), false);
    assert.equal(a.matmul(b).dtype, 'float32');
    // bf16 keeps ~3 significant digits: close to the float32 product, not equal to it
    const err = inside.float().sub(a.matmul(b)).abs().max().item();
    assert.ok(err > 0 && err < 0.1, `bf16 error ${err}`);
    assert.throws(
      () =>
        autocast({ device: 'cpu' }, () => {
          throw new Error('boom');
        }),
      /boom/,
    );
    assert.equal(autocastEnabled('cpu'), false, 'restored after a throw');
  });
});

test('a GPT under bf16 autocast gives float32 parameters and logits close to float32', () => {
  const model = new GPT(
    { nLayer: 2, nHead: 2, nEmbd: 32, nPositions: 16, vocabSize: 50, dropout: 0 },
    { seed: 3 },
  );
  noGrad(() =>
    tidy(() => {
      const ids = tensor([[1, 2, 3, 4, 5, 6]], { dtype: 'int64' });
      const full = model.forward(ids).logits;
      const half = autocast({ device: 'cpu' }, () => model.forward(ids).logits);
      assert.equal(half.dtype, 'bfloat16');
      const err = half.float().sub(full).abs().max().item();
      const scale = full.abs().max().item();
      assert.ok(err < 0.05 * scale, `bf16 logits off by ${err} (scale ${scale})`);
      for (const p of model.parameters()) assert.equal(p.dtype, 'float32');
    }),
  );
});

test('fused attention: equal to the manual path where torch has it, a clear error where it does not', () => {
  const q = randn([2, 2, 5, 4]);
  if (!sdpaAvailable()) {
    assert.equal(fusedAttention(), false);
    assert.throws(() => scaledDotProductAttention(q, q, q), /needs libtorch 2\.0 or newer/);
    assert.throws(() => setFusedAttention(true), /needs libtorch 2\.0/);
    return;
  }
  const model = new GPT(
    { nLayer: 1, nHead: 2, nEmbd: 16, nPositions: 16, vocabSize: 30, dropout: 0 },
    { seed: 5 },
  );
  noGrad(() =>
    tidy(() => {
      const ids = tensor(
        [
          [0, 0, 7, 8, 9],
          [1, 2, 3, 4, 5],
        ],
        { dtype: 'int64' },
      );
      const attentionMask = tensor(
        [
          [0, 0, 1, 1, 1],
          [1, 1, 1, 1, 1],
        ],
        { dtype: 'bool' },
      );
      const run = (on: boolean) => {
        setFusedAttention(on);
        return [model.forward(ids).logits, model.forward(ids, { attentionMask }).logits];
      };
      const [fusedCausal, fusedPadded] = run(true);
      const [manualCausal, manualPadded] = run(false);
      setFusedAttention(true);
      assert.ok(fusedCausal!.sub(manualCausal!).abs().max().item() < 1e-5);
      // padding query rows differ by design (uniform vs masked); compare real positions
      const real = (t: typeof fusedPadded) => t!.narrow(1, 2, 3);
      assert.ok(real(fusedPadded).sub(real(manualPadded)).abs().max().item() < 1e-5);
    }),
  );
});

test('device specs: auto is cpu without a GPU, cuda asks clearly, TF32 switch round-trips', () => {
  if (!builtWithCuda()) {
    assert.equal(resolveDevice('auto'), 'cpu');
    assert.throws(() => resolveDevice('cuda'), /built against a CPU-only libtorch/);
  }
  assert.throws(() => resolveDevice('tpu'), /expected auto, cpu, cuda or cuda:N/);
  const before = allowTF32();
  setAllowTF32(!before);
  assert.equal(allowTF32(), !before);
  setAllowTF32(before);
});
