import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  AdamW,
  crossEntropy,
  keep,
  liveTensors,
  randint,
  randn,
  type Tensor,
  tidy,
  zeros,
} from '../index.ts';

test('tidy frees intermediates and hands back its result', () => {
  const before = liveTensors();
  const x = zeros([4]);
  const y = tidy(() => x.add(1).mul(2).exp());
  assert.equal(liveTensors(), before + 2, 'only x and the result are alive');
  assert.equal(y.isDisposed, false);
  x.dispose();
  y.dispose();
  assert.equal(liveTensors(), before);
});

test('tidy keeps tensors inside returned arrays and objects; nested scopes hand results upward', () => {
  const before = liveTensors();
  const out = tidy(() => {
    const inner = tidy(() => {
      const a = randn([2]);
      a.mul(3); // dropped
      return { a, list: [a.add(1), a.sub(1)] };
    });
    assert.equal(inner.a.isDisposed, false);
    return inner;
  });
  assert.equal(liveTensors(), before + 3);
  for (const t of [out.a, ...out.list]) t.dispose();
  assert.equal(liveTensors(), before);
});

test('keep survives scopes; a throwing scope still frees', () => {
  const before = liveTensors();
  let kept: Tensor | undefined;
  assert.throws(() =>
    tidy(() => {
      kept = keep(zeros([3]));
      zeros([3]).add(1);
      throw new Error('boom');
    }),
  );
  assert.equal(liveTensors(), before + 1);
  assert.equal(kept!.isDisposed, false);
  kept!.dispose();
  assert.equal(liveTensors(), before);
});

test('using a disposed tensor is a clear error, not a crash', () => {
  const x = zeros([2]);
  x.dispose();
  x.dispose(); // idempotent
  assert.throws(() => x.add(1), /add_scalar: argument 0: the tensor was already disposed/);
});

test('tidy refuses async functions', () => {
  assert.throws(() => tidy((async () => zeros([1])) as unknown as () => Tensor), /synchronous/);
});

test('shape errors name the op and the shapes', () => {
  tidy(() => {
    const a = zeros([2, 3]);
    const b = zeros([4, 5]);
    assert.throws(
      () => a.matmul(b),
      (e: Error & { code?: string }) =>
        e.code === 'HHKIT_TORCH' && /^matmul: .*2x3 and 4x5.*float32\[2,3\], float32\[4,5\]/.test(e.message),
    );
    assert.throws(
      () => a.add(zeros([3, 2])),
      /add: .*size of tensor a \(3\) must match.*float32\[2,3\], float32\[3,2\]/,
    );
    assert.throws(() => a.to({ device: 'nosuchdevice' }), /to_device: /);
    assert.throws(() => a.reshape(7), /reshape: shape '\[7\]' is invalid for input of size 6/);
    assert.throws(() => crossEntropy(a, zeros([2])), /cross_entropy: .*(Long|Float)/);
  });
});

test('a 10k-step forward/backward/AdamW loop keeps live tensors and RSS flat', () => {
  const w1 = randn([32, 64]).mul(0.1).requiresGrad_();
  const w2 = randn([64, 8]).mul(0.1).requiresGrad_();
  const opt = new AdamW([w1, w2], { lr: 1e-3 });
  const x = randn([16, 32]);
  const y = randint(0, 8, [16]);
  const step = (): number =>
    tidy(() => {
      const loss = crossEntropy(x.matmul(w1).gelu().matmul(w2), y);
      loss.backward();
      opt.step();
      opt.zeroGrad();
      return loss.item();
    });
  for (let i = 0; i < 1000; i++) step();
  const liveBefore = liveTensors();
  const rssBefore = process.memoryUsage().rss;
  let last = 0;
  for (let i = 0; i < 10_000; i++) last = step();
  const growthMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  assert.equal(liveTensors(), liveBefore, 'no native tensor leaked');
  assert.ok(growthMb < 16, `RSS grew ${growthMb.toFixed(1)} MiB over 10k steps`);
  assert.ok(Number.isFinite(last));
});

test('unscoped tensors are reclaimed by the GC once the event loop turns', () => {
  // 3000 × 1 MiB tensors never disposed (~6 GiB with their results): without GC awareness of native
  // memory they would all stay. Finalizers run between event-loop turns, so a synchronous loop must use
  // tidy() — the contract the leak test above checks.
  const script = fileURLToPath(new URL('./gc-pressure.fixture.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const peakMb = Number(r.stdout.trim());
  assert.ok(peakMb < 1024, `peak RSS ${peakMb} MiB`);
});

test('`using` frees a tensor at the end of its block', () => {
  const before = liveTensors();
  {
    using t = zeros([3]);
    assert.equal(liveTensors(), before + 1);
    assert.deepEqual(t.shape, [3]);
  }
  assert.equal(liveTensors(), before);
});
