import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  AdamW,
  clipGradNorm,
  crossEntropy,
  randint,
  randn,
  SGD,
  setFusedAdamW,
  type Tensor,
  tensor,
  tidy,
} from '../index.ts';

interface J {
  shape: number[];
  data: number[];
}
interface OptimCase {
  p0: J;
  b0: J;
  grads: [J, J][];
  p: J;
  b: J;
  norms: number[];
}
const { optim } = JSON.parse(
  readFileSync(new URL('../../test/fixtures/engine/ops.json', import.meta.url), 'utf8'),
) as { optim: Record<string, OptimCase> };

const t = (j: J): Tensor => tensor(j.data, { shape: j.shape });
function assertClose(got: Tensor, want: J, what: string): void {
  const g = got.toTypedArray() as Float32Array;
  want.data.forEach((w, i) => {
    assert.ok(Math.abs(g[i]! - w) < 1e-6 * (1 + Math.abs(w)), `${what}[${i}]: ${g[i]} vs ${w}`);
  });
}

function run(c: OptimCase, make: (ps: Tensor[]) => { step(): void }, clip?: number): number[] {
  const p = t(c.p0).requiresGrad_();
  const b = t(c.b0).requiresGrad_();
  const opt = make([p, b]);
  const norms: number[] = [];
  for (const [gp, gb] of c.grads) {
    p.grad = t(gp);
    b.grad = t(gb);
    if (clip !== undefined) norms.push(clipGradNorm([p, b], clip));
    opt.step();
  }
  assertClose(p, c.p, 'weight');
  assertClose(b, c.b, 'bias');
  return norms;
}

test('AdamW with clipping matches torch.optim.AdamW + clip_grad_norm_ over 5 steps', () => {
  tidy(() => {
    const c = optim['adamw']!;
    const norms = run(
      c,
      (ps) => new AdamW(ps, { lr: 0.01, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 }),
      1.0,
    );
    norms.forEach((n, i) => {
      assert.ok(Math.abs(n - c.norms[i]!) < 1e-5, `norm ${i}: ${n} vs ${c.norms[i]}`);
    });
  });
});

test('SGD with momentum and weight decay matches torch.optim.SGD', () => {
  tidy(() => {
    run(optim['sgd_momentum']!, (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9, weightDecay: 0.01 }));
  });
});

test('per-group learning rates; state round-trips for resume', () => {
  tidy(() => {
    const a = randn([4, 4]).requiresGrad_();
    const b = randn([4]).requiresGrad_();
    const x = randn([8, 4]);
    const y = randint(0, 4, [8]);
    const lossOf = (): Tensor => crossEntropy(x.matmul(a).add(b), y);
    const opt = new AdamW(
      [
        { params: [a], lr: 0.01 },
        { params: [b], lr: 0 },
      ],
      { weightDecay: 0 },
    );
    const b0 = b.clone();
    for (let i = 0; i < 3; i++) {
      tidy(() => lossOf().backward());
      opt.step();
      opt.zeroGrad();
    }
    assert.equal(b.sub(b0).abs().max().item(), 0, 'lr 0 group did not move');
    // resume: a fresh optimiser loaded from state continues exactly like the original
    const snapshot = { a: a.detach().clone(), b: b.detach().clone(), state: opt.state() };
    const resumed = new AdamW(
      [
        { params: [snapshot.a.requiresGrad_()], lr: 0 },
        { params: [snapshot.b.requiresGrad_()], lr: 0 },
      ],
      {
        weightDecay: 0,
      },
    );
    resumed.loadState(snapshot.state);
    assert.deepEqual(
      resumed.groups.map((g) => g.lr),
      [0.01, 0],
    );
    tidy(() => lossOf().backward());
    opt.step();
    tidy(() => crossEntropy(x.matmul(snapshot.a).add(snapshot.b), y).backward());
    resumed.step();
    assert.equal(a.sub(snapshot.a).abs().max().item(), 0);
  });
});

test('training reduces the loss (AdamW on a separable problem)', () => {
  tidy(() => {
    const w = randn([6, 3]).mul(0.01).requiresGrad_();
    const x = randn([64, 6]);
    const y = x.matmul(randn([6, 3])).argmax(1);
    const opt = new AdamW([w], { lr: 0.05 });
    const first = tidy(() => crossEntropy(x.matmul(w), y).item());
    let last = first;
    for (let i = 0; i < 100; i++) {
      last = tidy(() => {
        const loss = crossEntropy(x.matmul(w), y);
        loss.backward();
        opt.step();
        opt.zeroGrad();
        return loss.item();
      });
    }
    assert.ok(last < first * 0.5, `loss ${first} → ${last}`);
  });
});

test('fused AdamW (one native call) = the op-by-op update: float32 spans with a tail, float64, a strided view', () => {
  tidy(() => {
    const make = () => [
      randn([37, 29]), // 1073 floats: 8-wide vectors and a tail of 1
      randn([5]), // tail only
      randn([6, 4]).to({ dtype: 'float64' }), // another dtype: the ATen path
      randn([6, 5]).transpose(0, 1), // a strided view (not contiguous): the ATen path
    ];
    const start = make();
    const grads = Array.from({ length: 4 }, () => make());
    const after = (fused: boolean, weightDecay: number): Float64Array[] => {
      setFusedAdamW(fused);
      try {
        // clone keeps a view's strides (torch's preserve_format), so ps[3] stays strided, with its own storage
        const ps = start.map((x) => x.clone().requiresGrad_());
        const opt = new AdamW(ps, { lr: 0.01, betas: [0.9, 0.95], eps: 1e-8, weightDecay });
        for (const g of grads) {
          ps.forEach((p, i) => {
            p.grad = g[i]!.clone();
          });
          opt.step();
        }
        return ps.map((p) =>
          Float64Array.from(p.to({ dtype: 'float64' }).contiguous().toTypedArray() as Float64Array),
        );
      } finally {
        setFusedAdamW(true);
      }
    };
    for (const wd of [0, 0.1]) {
      const a = after(false, wd);
      const b = after(true, wd);
      a.forEach((xs, i) => {
        let worst = 0;
        xs.forEach((x, j) => {
          worst = Math.max(worst, Math.abs(x - b[i]![j]!) / (1 + Math.abs(x)));
        });
        assert.ok(worst <= 1e-6, `weight decay ${wd}, tensor ${i}: fused and op-by-op differ by ${worst}`);
      });
      // and the steps moved every parameter, on both paths
      start.forEach((x, i) => {
        const before = x.to({ dtype: 'float64' }).contiguous().toTypedArray() as Float64Array;
        for (const run of [a, b])
          assert.ok(
            run[i]!.some((y, j) => y !== before[j]),
            `tensor ${i} did not move`,
          );
      });
    }
  });
});
