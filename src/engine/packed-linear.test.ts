// linear()'s packed-weight path (native/ops_gemm.cc) against float64 and against libtorch's sgemm path.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  AdamW,
  linear,
  manualSeed,
  noGrad,
  packedLinearStats,
  randn,
  setPackedLinear,
  type Tensor,
  tidy,
} from './index.ts';

// Where the CPU has neither AVX2+FMA nor AVX-512 the path is off and linear() is libtorch's: nothing to test.
const off = packedLinearStats().panelColumns === 0 && 'the CPU has neither AVX2+FMA nor AVX-512F';

const maxAbs = (a: Tensor, b: Tensor): number => a.to('float64').sub(b.to('float64')).abs().max().item();

/** linear() with the path on, and whether it packed a weight for the call (the cache gained an entry). */
function packedCall(x: Tensor, w: Tensor, b: Tensor | null): { y: Tensor; packed: boolean } {
  setPackedLinear(false); // empties the cache
  setPackedLinear(true);
  const y = linear(x, w, b);
  return { y, packed: packedLinearStats().weights === 1 };
}

/** x · Wᵀ + b in float64. */
function ref64(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const y = x.to('float64').matmul(w.to('float64').transpose(0, 1));
  return b ? y.add(b.to('float64')) : y;
}

function unpacked(x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  setPackedLinear(false);
  try {
    return linear(x, w, b);
  } finally {
    setPackedLinear(true);
  }
}

test('packed linear: values within float32 rounding of float64 and of sgemm, over row, column and depth tails', {
  skip: off,
}, () => {
  manualSeed(11);
  noGrad(() =>
    tidy(() => {
      const cases: [number[], number, number, boolean][] = [
        // [x's leading shape, K, N, bias]
        [[1], 64, 48, true],
        [[5], 7, 16, true],
        [[12], 64, 32, false],
        [[13], 130, 33, true],
        [[4, 8], 128, 384, true], // (B, T, K): 32 rows
        [[31], 65, 100, false],
        [[2, 3, 17], 96, 130, true],
        [[512], 64, 40, true],
        [[3, 250], 64, 70, true], // 750 rows: four row blocks of 240, the last partial
        [[300], 520, 50, false], // 84-row blocks (x's slice of a block stays in L2); 18 columns in the last panel
      ];
      for (const [lead, k, n, withBias] of cases) {
        const x = randn([...lead, k]);
        const w = randn([n, k]).mul(0.1);
        const b = withBias ? randn([n]) : null;
        const { y, packed } = packedCall(x, w, b);
        assert.ok(packed, `${lead}×${k}→${n}: the packed path was taken`);
        assert.deepEqual(y.shape, [...lead, n]);
        const ref = ref64(x, w, b);
        const scale = ref.abs().max().item();
        const errPacked = maxAbs(y, ref);
        const errSgemm = maxAbs(unpacked(x, w, b), ref);
        assert.ok(errPacked <= 1e-6 * scale * Math.sqrt(k), `${lead}×${k}→${n}: ${errPacked} from float64`);
        assert.ok(
          errPacked <= 4 * errSgemm + 1e-6 * scale,
          `${lead}×${k}→${n}: ${errPacked} vs sgemm's ${errSgemm}`,
        );
      }
    }),
  );
});

test('packed linear: a transposed view (GPT-2 Conv1D), a strided x and a column slice of a weight', {
  skip: off,
}, () => {
  manualSeed(12);
  noGrad(() =>
    tidy(() => {
      const wIn = randn([96, 80]); // (in, out) as Conv1D stores it
      const x = randn([20, 192]).narrow(1, 0, 96); // rows 192 apart
      const b = randn([80]);
      const { y, packed } = packedCall(x, wIn.transpose(0, 1), b);
      assert.ok(packed);
      assert.ok(maxAbs(y, unpacked(x, wIn.transpose(0, 1), b)) < 1e-4);
      const big = randn([64, 100]);
      const slice = big.narrow(1, 10, 50); // (64, 50) with row stride 100
      const x2 = randn([9, 50]);
      const r = packedCall(x2, slice, null);
      assert.ok(r.packed);
      assert.ok(maxAbs(r.y, unpacked(x2, slice, null)) < 1e-4);
    }),
  );
});

test('packed linear: the cache follows the weight through in-place updates and AdamW steps, and drops freed weights', {
  skip: off,
}, () => {
  manualSeed(13);
  const x = randn([8, 64]);
  const w = randn([96, 64]).requiresGrad_();
  const b = randn([96]).requiresGrad_();
  const opt = new AdamW([w, b], { lr: 0.05 });
  // linear() without autograd, checked against the weight as it is now.
  const current = (what: string): Tensor =>
    noGrad(() => {
      const y = linear(x, w, b);
      assert.ok(maxAbs(y, ref64(x, w, b)) < 1e-4, `${what}: matches the current weight`);
      return y;
    });
  setPackedLinear(false);
  setPackedLinear(true);
  for (let step = 0; step < 3; step++) {
    const out = current(`step ${step}`); // packs, then reuses until the weight changes
    const again = noGrad(() => linear(x, w, b));
    assert.equal(packedLinearStats().weights, 1);
    assert.equal(maxAbs(out, again), 0);
    // With autograd the call takes libtorch's path and carries a graph.
    const loss = linear(x, w, b).pow(2).mean();
    loss.backward();
    opt.step();
    opt.zeroGrad();
    tidy(() => {
      const moved = current(`after step ${step}`);
      assert.ok(maxAbs(moved, out) > 1e-3, `step ${step}: the output moved with the update`);
    });
    out.dispose();
    again.dispose();
    loss.dispose();
  }
  noGrad(() => w.mul_(0.5)); // an in-place op outside the optimiser
  current('after mul_').dispose();
  // Freed weights leave the cache; fresh tensors (which may reuse the memory) are packed anew.
  for (let i = 0; i < 4; i++) {
    tidy(() => {
      const wi = randn([64, 64]);
      const yi = noGrad(() => linear(x, wi, null));
      assert.ok(maxAbs(yi, ref64(x, wi, null)) < 1e-4, `fresh weight ${i}`);
    });
  }
  assert.equal(packedLinearStats().weights, 1, 'only w is still cached');
  for (const t of [x, w, b]) t.dispose();
});

test('packed linear: gradients, more than 16384 rows, float64 and narrow outputs take libtorch', {
  skip: off,
}, () => {
  manualSeed(14);
  tidy(() => {
    setPackedLinear(false);
    setPackedLinear(true);
    const w = randn([64, 32]).requiresGrad_();
    const x = randn([10, 32]);
    const y = linear(x, w, null);
    assert.ok(y.requiresGrad, 'with a weight that needs a gradient the result has a graph');
    y.sum().backward();
    assert.ok(maxAbs(w.grad!, x.sum(0).unsqueeze(0).expand(64, 32)) < 1e-4);
    noGrad(() => {
      linear(randn([16385, 32]), w, null);
      linear(randn([4, 32], { dtype: 'float64' }), w.to('float64'), null);
      linear(randn([4, 32]), randn([8, 32]), null); // fewer than 16 columns
    });
    assert.equal(packedLinearStats().weights, 0);
  });
});

// The AVX2 kernel (16 columns a panel) and the budget, each in a child process that reads its setting at load.
if (process.env.HHKIT_PACKED_LINEAR_CHILD !== '1') {
  const child = (env: Record<string, string>, pattern: string) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, HHKIT_PACKED_LINEAR_CHILD: '1', ...env };
    delete childEnv.NODE_TEST_CONTEXT; // a plain run that prints its own TAP, not a subtest stream
    const args = ['--import', 'tsx', '--test-reporter=tap', `--test-name-pattern=${pattern}`];
    return spawnSync(process.execPath, [...args, fileURLToPath(import.meta.url)], {
      encoding: 'utf8',
      env: childEnv,
    });
  };

  test('packed linear: the AVX2 kernel passes the same tests (HHKIT_PACKED_LINEAR_ISA=avx2)', {
    skip: off,
  }, () => {
    const r = child({ HHKIT_PACKED_LINEAR_ISA: 'avx2' }, 'packed linear|panel columns');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /# pass 5\b/); // the four above and the columns check
    assert.match(r.stdout, /# fail 0\b/);
  });

  test('packed linear: with HHKIT_PACKED_LINEAR_MB=0 nothing is packed and linear() still answers', {
    skip: off,
  }, () => {
    const r = child({ HHKIT_PACKED_LINEAR_MB: '0' }, 'budget');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /# pass 1\b/);
  });
} else {
  test('panel columns as the child was told', { skip: off }, () => {
    const { panelColumns } = packedLinearStats();
    const want = process.env.HHKIT_PACKED_LINEAR_ISA === 'avx2' ? 16 : panelColumns;
    assert.ok(panelColumns === want && panelColumns > 0, `${panelColumns} columns a panel`);
  });
  test('budget of 0 bytes: libtorch answers every call', { skip: off }, () => {
    manualSeed(15);
    tidy(() => {
      const x = randn([8, 64]);
      const w = randn([96, 64]);
      const y = noGrad(() => linear(x, w, null));
      assert.equal(packedLinearStats().budgetBytes, 0);
      assert.equal(packedLinearStats().weights, 0);
      assert.ok(maxAbs(y, ref64(x, w, null)) < 1e-4);
    });
  });
}
