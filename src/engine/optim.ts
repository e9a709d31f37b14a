// Optimisers over engine tensors: AdamW (decoupled weight decay, Loshchilov & Hutter) and SGD with momentum,
// both with per-group learning rates, and gradient-norm clipping. Updates follow torch.optim's
// single-tensor formulas exactly, so a step matches PyTorch to float rounding.
import { noGrad, stack } from './ops.ts';
import { keep, tidy } from './scope.ts';
import type { Tensor } from './tensor.ts';
import { zerosLike } from './ops.ts';
import { native } from './native.ts';

let fusedAdamW = process.env.HHKIT_FUSED_ADAMW !== '0';
/**
 * Whether AdamW steps in one native call (the default; `HHKIT_FUSED_ADAMW=0` or `setFusedAdamW(false)`: the
 * op-by-op update, for comparisons). Both compute the same update, up to float32 rounding.
 */
export function setFusedAdamW(on: boolean): void {
  fusedAdamW = on;
}

export interface ParamGroup {
  params: Tensor[];
  /** Learning rate; schedulers overwrite it between steps. */
  lr: number;
  weightDecay?: number;
}

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** Optimiser state as named tensors + numbers, for checkpoints (see safetensors.ts). */
export interface OptimizerState {
  step: number;
  tensors: Record<string, Tensor>;
  lrs: number[];
}

function toGroups(params: Tensor[] | ParamGroup[], lr: number, weightDecay: number): Required<ParamGroup>[] {
  if (params.length === 0) return [];
  const first = params[0]!;
  const groups = 'params' in first ? (params as ParamGroup[]) : [{ params: params as Tensor[], lr }];
  return groups.map((g) => ({ params: g.params, lr: g.lr ?? lr, weightDecay: g.weightDecay ?? weightDecay }));
}

/**
 * AdamW. `step()` reads each parameter's `.grad`; parameters without a gradient are skipped.
 *
 * @example
 * const opt = new AdamW(model.parameters(), { lr: 3e-4, weightDecay: 0.1 });
 * loss.backward(); opt.step(); opt.zeroGrad();
 */
export class AdamW {
  readonly groups: Required<ParamGroup>[];
  stepCount = 0;
  private readonly betas: [number, number];
  private readonly eps: number;
  private readonly expAvg = new Map<Tensor, Tensor>();
  private readonly expAvgSq = new Map<Tensor, Tensor>();

  constructor(params: Tensor[] | ParamGroup[], opts: AdamWOptions = {}) {
    this.groups = toGroups(params, opts.lr ?? 1e-3, opts.weightDecay ?? 0.01);
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
  }

  step(): void {
    this.stepCount++;
    const [beta1, beta2] = this.betas;
    const bias1 = 1 - beta1 ** this.stepCount;
    const bias2Sqrt = Math.sqrt(1 - beta2 ** this.stepCount);
    noGrad(() =>
      tidy(() => {
        for (const group of this.groups) {
          const ps: Tensor[] = [];
          const gs: Tensor[] = [];
          const ms: Tensor[] = [];
          const vs: Tensor[] = [];
          for (const p of group.params) {
            const g = p.grad;
            if (g === null) continue;
            let m = this.expAvg.get(p);
            let v = this.expAvgSq.get(p);
            if (!m || !v) {
              m = keep(zerosLike(p));
              v = keep(zerosLike(p));
              this.expAvg.set(p, m);
              this.expAvgSq.set(p, v);
            }
            if (fusedAdamW) {
              ps.push(p);
              gs.push(g);
              ms.push(m);
              vs.push(v);
              continue;
            }
            // decoupled weight decay: p ← p·(1 − lr·λ)
            if (group.weightDecay !== 0) p.mul_(1 - group.lr * group.weightDecay);
            m.lerp_(g, 1 - beta1); // m ← β1·m + (1−β1)·g
            v.mul_(beta2).addcmul_(g, g, 1 - beta2); // v ← β2·v + (1−β2)·g²
            const denom = v.sqrt().div_(bias2Sqrt).add_(this.eps);
            p.addcdiv_(m, denom, -group.lr / bias1);
          }
          // The same update in one native call (native/ops_fused.cc): one pass over each CPU float32 tensor.
          if (ps.length > 0) {
            const h = (xs: Tensor[]) => xs.map((x) => x.handle);
            const decay = 1 - group.lr * group.weightDecay;
            native.adamw_step(
              h(ps),
              h(gs),
              h(ms),
              h(vs),
              decay,
              beta1,
              beta2,
              -group.lr / bias1,
              bias2Sqrt,
              this.eps,
            );
          }
        }
      }),
    );
  }

  zeroGrad(): void {
    for (const group of this.groups) for (const p of group.params) p.grad = null;
  }

  /** Moment tensors named `m.<i>` / `v.<i>` by parameter order, the step count and each group's lr. */
  state(): OptimizerState {
    const tensors: Record<string, Tensor> = {};
    let i = 0;
    for (const group of this.groups) {
      for (const p of group.params) {
        const m = this.expAvg.get(p);
        const v = this.expAvgSq.get(p);
        if (m && v) {
          tensors[`m.${i}`] = m;
          tensors[`v.${i}`] = v;
        }
        i++;
      }
    }
    return { step: this.stepCount, tensors, lrs: this.groups.map((g) => g.lr) };
  }

  /** Restores what `state()` returned (tensors are copied in; the caller keeps ownership). */
  loadState(state: OptimizerState): void {
    this.stepCount = state.step;
    state.lrs.forEach((lr, k) => {
      const g = this.groups[k];
      if (g) g.lr = lr;
    });
    let i = 0;
    for (const group of this.groups) {
      for (const p of group.params) {
        const m = state.tensors[`m.${i}`];
        const v = state.tensors[`v.${i}`];
        if (m && v) {
          // A checkpoint is read on the CPU; the moments go where the parameter lives.
          const place = (t: Tensor): Tensor =>
            t.device === p.device ? t.clone() : t.to({ device: p.device });
          this.expAvg.set(p, keep(place(m)));
          this.expAvgSq.set(p, keep(place(v)));
        }
        i++;
      }
    }
  }
}

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  weightDecay?: number;
}

/** SGD with optional momentum and (L2) weight decay, as torch.optim.SGD. */
export class SGD {
  readonly groups: Required<ParamGroup>[];
  private readonly momentum: number;
  private readonly buffers = new Map<Tensor, Tensor>();

  constructor(params: Tensor[] | ParamGroup[], opts: SGDOptions = {}) {
    this.groups = toGroups(params, opts.lr ?? 1e-2, opts.weightDecay ?? 0);
    this.momentum = opts.momentum ?? 0;
  }

  step(): void {
    noGrad(() =>
      tidy(() => {
        for (const group of this.groups) {
          for (const p of group.params) {
            let g = p.grad;
            if (g === null) continue;
            if (group.weightDecay !== 0) g = g.add(p, group.weightDecay);
            if (this.momentum !== 0) {
              const buf = this.buffers.get(p);
              if (buf) buf.mul_(this.momentum).add_(g);
              else this.buffers.set(p, keep(g.clone()));
              g = this.buffers.get(p)!;
            }
            p.add_(g, -group.lr);
          }
        }
      }),
    );
  }

  zeroGrad(): void {
    for (const group of this.groups) for (const p of group.params) p.grad = null;
  }
}

/**
 * Scales gradients in place so their global L2 norm is at most `maxNorm` (torch's clip_grad_norm_).
 * Returns the norm before clipping.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  return noGrad(() =>
    tidy(() => {
      const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
      if (grads.length === 0) return 0;
      const total = stack(grads.map((g) => g.norm(2)))
        .norm(2)
        .item();
      const coef = maxNorm / (total + 1e-6);
      if (coef < 1) for (const g of grads) g.mul_(coef);
      return total;
    }),
  );
}
