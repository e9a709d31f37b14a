// The addon's own kernels (native/ops_fused.cc) against the general ops they replace.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  arange,
  decodeAttention,
  grad,
  manualSeed,
  noGrad,
  randn,
  sampleCategorical,
  seqAttention,
  setFusedGelu,
  type Tensor,
  tensor,
  tidy,
  zeros,
} from './index.ts';

// softmax(scale · q·kᵀ, blocked → float32's lowest)·v with matmuls, each KV head repeated for its group.
function reference(q: Tensor, k: Tensor, v: Tensor, blocked: Tensor | null, scale: number): Tensor {
  const group = q.size(1) / k.size(1);
  const [b, hKV, s, d] = k.shape as [number, number, number, number];
  const rep = (x: Tensor) =>
    x
      .unsqueeze(2)
      .expand(b, hKV, group, s, d)
      .reshape(b, hKV * group, s, d);
  let att = q.matmul(rep(k).transpose(2, 3)).mul(scale);
  if (blocked) att = att.maskedFill(blocked, -3.4028234663852886e38);
  return att.softmax(-1).matmul(rep(v));
}

test('decodeAttention equals matmul attention: GQA, padding, causal, fully blocked rows, cache views, odd D', () => {
  noGrad(() =>
    tidy(() => {
      manualSeed(3);
      const cases = [
        { B: 3, H: 4, Hkv: 4, T: 1, S: 9, D: 16 },
        { B: 2, H: 8, Hkv: 2, T: 1, S: 17, D: 64 }, // grouped-query
        { B: 2, H: 6, Hkv: 3, T: 3, S: 11, D: 12 }, // several queries, D not a multiple of 8
        { B: 1, H: 2, Hkv: 1, T: 2, S: 40, D: 80 }, // D a multiple of 16, not of 32
      ];
      for (const c of cases) {
        const q = randn([c.B, c.H, c.T, c.D]);
        // k and v as the cache hands them out: narrowed views of a longer buffer
        const kBuf = randn([c.B, c.Hkv, c.S + 5, c.D]);
        const vBuf = randn([c.B, c.Hkv, c.S + 5, c.D]);
        const k = kBuf.narrow(2, 0, c.S);
        const v = vBuf.narrow(2, 0, c.S);
        const past = c.S - c.T;
        // padding (B, 1, 1, S): row 0 has none, the others lose their first keys; causal (T, S) for T > 1
        const keep = arange(c.S).unsqueeze(0).ge(arange(c.B).mul(2).unsqueeze(1)); // (B, S)
        const padding = keep.logicalNot().view(c.B, 1, 1, c.S);
        const causal = arange(c.S).gt(arange(past, c.S).unsqueeze(1)); // (T, S)
        const masks: (Tensor | null)[] = [null, padding, causal, padding.logicalOr(causal)];
        for (const blocked of masks) {
          const scale = 1 / Math.sqrt(c.D);
          const got = decodeAttention(q, k, v, blocked, scale);
          const want = reference(q, k, v, blocked, scale);
          assert.deepEqual(got.shape, [c.B, c.H, c.T, c.D]);
          const err = got.sub(want).abs().max().item();
          assert.ok(err < 1e-5, `${JSON.stringify(c)} mask ${blocked?.shape ?? 'none'}: max error ${err}`);
        }
      }
      // A fully blocked row attends uniformly (as the manual path), not NaN.
      const q = randn([1, 1, 1, 8]);
      const k = randn([1, 1, 4, 8]);
      const v = randn([1, 1, 4, 8]);
      const all = tensor([true, true, true, true], { dtype: 'bool' }).view(1, 1, 1, 4);
      const got = decodeAttention(q, k, v, all, 0.5);
      assert.ok(got.sub(v.mean(2, true)).abs().max().item() < 1e-6);
    }),
  );
});

test('decodeAttention rejects what it cannot take with a message', () => {
  tidy(() => {
    const q = randn([1, 3, 1, 8]);
    const k = randn([1, 2, 4, 8]);
    assert.throws(() => decodeAttention(q, k, k, null, 1), /multiple of the key\/value heads/);
    assert.throws(() => decodeAttention(q.to({ dtype: 'float64' }), k, k, null, 1), /float32 on the CPU/);
    assert.throws(
      () => decodeAttention(randn([1, 2, 1, 8]), k, randn([1, 2, 5, 8]), null, 1),
      /\(B, H_kv, S, D\)/,
    );
  });
});

test('sampleCategorical draws with the weights’ frequencies, never a zero weight, reproducibly', () => {
  tidy(() => {
    // Unnormalised rows; both end in a zero weight, row 1 also starts with one and has one in the middle.
    const weights = tensor([
      [1, 2, 3, 4, 0],
      [0, 5, 0, 15, 0],
    ]);
    const n = 20000;
    manualSeed(11);
    const counts = [new Array<number>(5).fill(0), new Array<number>(5).fill(0)];
    const batch = weights.repeat(n / 2, 1); // (n, 5): rows alternate
    const draws = sampleCategorical(batch).toArray() as number[][];
    draws.forEach((row, i) => {
      counts[i % 2]![row[0]!]! += 1;
    });
    const expected = [
      [0.1, 0.2, 0.3, 0.4, 0],
      [0, 0.25, 0, 0.75, 0],
    ];
    for (let r = 0; r < 2; r++) {
      for (let j = 0; j < 5; j++) {
        const p = expected[r]![j]!;
        const freq = counts[r]![j]! / (n / 2);
        if (p === 0) assert.equal(counts[r]![j], 0, `row ${r} drew index ${j} of weight 0`);
        // 5 standard errors of a frequency over 10,000 draws
        else
          assert.ok(
            Math.abs(freq - p) < 5 * Math.sqrt((p * (1 - p)) / (n / 2)),
            `row ${r}[${j}]: ${freq} vs ${p}`,
          );
      }
    }
    manualSeed(11);
    assert.deepEqual(sampleCategorical(batch).toArray(), draws);
    assert.notDeepEqual(sampleCategorical(batch).toArray(), draws);
    // A single positive weight is always drawn, wherever it is.
    const one = zeros([3, 7]);
    one.narrow(1, 6, 1).fill_(1e-30);
    assert.deepEqual(sampleCategorical(one).toArray(), [[6], [6], [6]]);
  });
});

test('sampleCategorical rejects negative, NaN and all-zero rows', () => {
  tidy(() => {
    assert.throws(() => sampleCategorical(tensor([[0.5, -0.1]])), /finite and nonnegative/);
    assert.throws(() => sampleCategorical(tensor([[Number.NaN, 1]])), /finite and nonnegative/);
    assert.throws(() => sampleCategorical(tensor([[0, 0]])), /sums to zero/);
    assert.throws(() => sampleCategorical(tensor([1, 2])), /\(B, V\) float32/);
  });
});

// GPT-2's tanh GELU in float64: 0.5·x·(1 + tanh(u)) written as x·σ(2u), which does not cancel for x < 0.
const geluExact = (x: number): number =>
  x / (1 + Math.exp(-2 * Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

// x.gelu('tanh') and its gradient with the kernel on or off.
function geluBoth(x: Tensor, fused: boolean): { y: Tensor; dx: Tensor } {
  setFusedGelu(fused);
  try {
    const leaf = x.detach().requiresGrad_();
    const y = leaf.gelu('tanh');
    const [dx] = grad([y], [leaf], { gradOutputs: [x.cos()] });
    return { y: y.detach(), dx: dx! };
  } finally {
    setFusedGelu(true);
  }
}

test("gelu('tanh') kernel: libtorch's values and gradients, closer to the exact ones where libtorch cancels", () => {
  tidy(() => {
    manualSeed(5);
    // 200,003 elements: four tasks' chunks when threaded, and a tail that is not a multiple of 8 lanes; a strided view
    for (const x of [randn([200003]).mul(4), randn([37, 19]).mul(3).transpose(0, 1)]) {
      const fused = geluBoth(x, true);
      const general = geluBoth(x, false);
      const yErr = fused.y.sub(general.y).abs().sub(general.y.abs().mul(1e-6)).max().item();
      const dErr = fused.dx.sub(general.dx).abs().sub(general.dx.abs().mul(1e-5)).max().item();
      assert.ok(yErr < 2e-6, `value: ${yErr} beyond 2e-6 + 1e-6·|y|`);
      assert.ok(dErr < 2e-6, `gradient: ${dErr} beyond 2e-6 + 1e-5·|dx|`);
    }
    // Against float64 on a grid: u is rounded to float32 before e^(−2u), whose relative error then grows as
    // 2|u| ulps (to ~140 at x = −12); 1e-5 is that bound with room, a wrong formula is off by far more.
    const grid = Array.from({ length: 2001 }, (_, i) => -12 + (i * 24) / 2000);
    const y = tensor(grid).gelu('tanh').toArray() as number[];
    let worst = 0;
    grid.forEach((x, i) => {
      const exact = geluExact(Math.fround(x));
      worst = Math.max(worst, Math.abs(y[i]! - exact) / Math.max(Math.abs(exact), 1e-30));
    });
    assert.ok(worst < 1e-5, `worst relative error on [-12, 12]: ${worst}`);
    // libtorch's 1 + tanh(u) cancels for x near -5 (30% off there); the kernel does not
    setFusedGelu(false);
    const torchAt5 = tensor([-5]).gelu('tanh').item();
    setFusedGelu(true);
    assert.ok(Math.abs(torchAt5 / geluExact(-5) - 1) > 0.1, `libtorch at -5: ${torchAt5}`);
  });
});

test("gelu('tanh') kernel: infinities and NaN as libtorch gives them; second derivatives; fallback", () => {
  tidy(() => {
    const special = tensor([
      Number.NEGATIVE_INFINITY,
      Number.POSITIVE_INFINITY,
      Number.NaN,
      -1e4,
      -0,
      0,
      1e4,
    ]);
    const fused = geluBoth(special, true);
    const general = geluBoth(special, false);
    const same = (a: number, b: number) => Object.is(a, b) || Math.abs(a - b) < 1e-30;
    const pairs = [
      [fused.y, general.y],
      [fused.dx, general.dx],
    ] as const;
    for (const [a, b] of pairs) {
      const got = a.toArray() as number[];
      const want = b.toArray() as number[];
      got.forEach((g, i) => {
        assert.ok(same(g, want[i]!), `element ${i}: ${g} vs libtorch's ${want[i]}`);
      });
    }
    // d²/dx² through the recorded backward (createGraph) equals libtorch's
    const x = randn([64]).mul(3);
    const second = (fused: boolean) => {
      setFusedGelu(fused);
      try {
        const leaf = x.detach().requiresGrad_();
        const [d1] = grad([leaf.gelu('tanh').sum()], [leaf], { createGraph: true });
        return grad([d1!.sum()], [leaf])[0]!;
      } finally {
        setFusedGelu(true);
      }
    };
    assert.ok(second(true).sub(second(false)).abs().max().item() < 1e-5);
    // Other dtypes take libtorch's op: identical results
    const x64 = x.to({ dtype: 'float64' });
    setFusedGelu(false);
    const want64 = x64.gelu('tanh');
    setFusedGelu(true);
    assert.equal(x64.gelu('tanh').sub(want64).abs().max().item(), 0);
  });
});

// The same attention through matmuls, with the causal mask of T queries that end a sequence of S keys.
function seqReference(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  blocked: Tensor | null,
  causal: boolean,
  scale: number,
) {
  const [t, s] = [q.size(2), k.size(2)];
  const mask = causal ? arange(s).gt(arange(s - t, s).unsqueeze(1)) : null; // (T, S)
  const all = mask && blocked ? blocked.logicalOr(mask) : (mask ?? blocked);
  return reference(q, k, v, all, scale);
}

test('seqAttention: the matmul path’s values and q, k, v gradients; causal, padding, fully blocked rows, odd D', () => {
  tidy(() => {
    manualSeed(5);
    const cases = [
      { B: 2, H: 3, T: 9, S: 9, D: 16 },
      { B: 3, H: 2, T: 7, S: 12, D: 12 }, // queries after 5 cached keys; D not a multiple of 8
      { B: 1, H: 4, T: 33, S: 33, D: 80 },
      { B: 2, H: 2, T: 1, S: 6, D: 8 }, // one query row (a readout)
    ];
    for (const c of cases) {
      const q = randn([c.B, c.H, c.T, c.D]);
      const k = randn([c.B, c.H, c.S, c.D]);
      const v = randn([c.B, c.H, c.S, c.D]);
      const dy = randn([c.B, c.H, c.T, c.D]);
      // padding (B, 1, 1, S): row b loses its first 2b keys (left padding), so with causal the first queries
      // of the later rows see no key at all
      const keep = arange(c.S).unsqueeze(0).ge(arange(c.B).mul(2).unsqueeze(1));
      const padding = keep.logicalNot().view(c.B, 1, 1, c.S);
      const scale = 1 / Math.sqrt(c.D);
      for (const [blocked, causal] of [
        [null, false],
        [null, true],
        [padding, false],
        [padding, true],
      ] as const) {
        const run = (f: typeof seqReference) => {
          const [ql, kl, vl] = [q, k, v].map((x) => x.detach().requiresGrad_()) as [Tensor, Tensor, Tensor];
          const y = f(ql, kl, vl, blocked, causal, scale);
          return [y, ...grad([y], [ql, kl, vl], { gradOutputs: [dy] })] as Tensor[];
        };
        const got = run((a, b, c2, m, cz, sc) => seqAttention(a, b, c2, m, cz, sc));
        const want = run(seqReference);
        ['y', 'dq', 'dk', 'dv'].forEach((name, i) => {
          const err = got[i]!.sub(want[i]!).abs().max().item();
          const tag = `${JSON.stringify(c)} ${blocked ? 'padding' : 'no padding'}${causal ? ' causal' : ''}`;
          assert.ok(err < 2e-5, `${tag}: ${name} max error ${err}`);
        });
      }
    }
  });
});

test('seqAttention: second derivatives through the recorded backward; what it rejects', () => {
  tidy(() => {
    manualSeed(6);
    const q = randn([2, 2, 5, 8]);
    const k = randn([2, 2, 5, 8]);
    const v = randn([2, 2, 5, 8]);
    const second = (f: typeof seqReference) => {
      const ql = q.detach().requiresGrad_();
      const [dq] = grad([f(ql, k, v, null, true, 0.3).pow(2).sum()], [ql], {
        createGraph: true,
        retainGraph: true,
      });
      return grad([dq!.sum()], [ql])[0]!;
    };
    const got = second((a, b, c, m, cz, sc) => seqAttention(a, b, c, m, cz, sc));
    assert.ok(got.sub(second(seqReference)).abs().max().item() < 1e-4);
    assert.throws(() => seqAttention(q.to({ dtype: 'float64' }), k, v, null, true, 1), /float32 on the CPU/);
    assert.throws(() => seqAttention(q, k.narrow(3, 0, 4), v, null, true, 1), /matching q/);
    assert.throws(() => seqAttention(q, k, v, zeros([5, 5]), true, 1), /bool tensor/);
  });
});
