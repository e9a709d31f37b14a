// Finite-difference gradient checking (float64), like torch.autograd.gradcheck.
import { grad, noGrad, tensor } from './ops.ts';
import { tidy } from './scope.ts';
import type { Tensor } from './tensor.ts';

export interface GradcheckResult {
  ok: boolean;
  /** Largest |analytic − numeric| over all checked elements. */
  maxAbsError: number;
  /** Where the largest error was: input index and flat element index. */
  worst: { input: number; element: number; analytic: number; numeric: number } | null;
}

/**
 * Compares autograd's gradient of sum(fn(inputs) · cotangent) with central finite differences.
 * Checks the float64 inputs that have requiresGrad set (others, e.g. indices, are passed through);
 * the cotangent is a fixed pseudo-random pattern.
 *
 * @example gradcheck((x) => x.tanh(), [randn([3], { dtype: 'float64' }).requiresGrad_()])
 */
export function gradcheck(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: { eps?: number; atol?: number; rtol?: number } = {},
): GradcheckResult {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-3;
  return tidy(() => {
    const out = fn(...inputs);
    const n = out.numel;
    // a deterministic, non-uniform cotangent so every output element matters differently
    const cotValues = Float64Array.from({ length: n }, (_, i) => Math.sin(1 + 1.7 * i));
    const cot = tensor(cotValues, { dtype: 'float64', device: out.device, shape: [...out.shape] });
    const objective = (): number =>
      noGrad(() =>
        tidy(() =>
          fn(...inputs)
            .to('float64')
            .mul(cot)
            .sum()
            .item(),
        ),
      );
    const differentiable = inputs.filter((x) => x.requiresGrad);
    const analytic = grad([out.to('float64').mul(cot).sum()], differentiable);
    let maxAbsError = 0;
    let worst: GradcheckResult['worst'] = null;
    let ok = true;
    differentiable.forEach((x, k) => {
      const a = analytic[k]!.toTypedArray() as Float64Array;
      const flat = x.detach().reshape(x.numel);
      for (let i = 0; i < x.numel; i++) {
        const orig = flat.select(0, i).item();
        noGrad(() => flat.select(0, i).fill_(orig + eps));
        const plus = objective();
        noGrad(() => flat.select(0, i).fill_(orig - eps));
        const minus = objective();
        noGrad(() => flat.select(0, i).fill_(orig));
        const numeric = (plus - minus) / (2 * eps);
        const err = Math.abs(numeric - a[i]!);
        if (err > atol + rtol * Math.abs(numeric)) ok = false;
        if (err >= maxAbsError) {
          maxAbsError = err;
          worst = { input: k, element: i, analytic: a[i]!, numeric };
        }
      }
    });
    return { ok, maxAbsError, worst };
  });
}
