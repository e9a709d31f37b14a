// Synthetic data shared by the OOD tests (not part of the library).
import { type Tensor, tensor } from '../engine/index.ts';
import type { SeededRandom } from './rng.ts';

const INDEPENDENT = 30;
const WIDTH = INDEPENDENT + 2;

/**
 * Synthetic "activations" for the acceptance test (issue 8). Features 0..29 are independent; each
 * sample's independent features share a random scale in [1, 2) (a heavy-tailed nuisance like the
 * norm of real activations varying from prompt to prompt, present in every set alike). Features 30
 * and 31 are strongly correlated: u = a + e, v = a − e with Var a = 1, Var e = 0.01, so each has
 * variance ≈ 1 but (u − v)/√2 has variance 0.02. Out-of-distribution samples are shifted by `shift`
 * along that low-variance direction only.
 *
 * Why the relative score should win: plain MD² adds up the nuisance-inflated χ²-like term of the 30
 * independent features, whose spread swamps the shift; the diagonal MD² contains that same term
 * (for independent features the diagonal and full covariances agree), so full − diagonal cancels it
 * and keeps mostly the correlation violation, which the diagonal term barely sees (the shift is
 * small per feature: shift/√2 against s.d. ≈ 1).
 */
export function activations(n: number, shift: number, rng: SeededRandom): Tensor {
  const data = new Float64Array(n * WIDTH);
  for (let i = 0; i < n; i++) {
    const scale = 1 + rng.uniform();
    for (let c = 0; c < INDEPENDENT; c++) data[i * WIDTH + c] = scale * rng.normal();
    const a = rng.normal();
    const e = 0.1 * rng.normal();
    data[i * WIDTH + INDEPENDENT] = a + e + shift / Math.SQRT2;
    data[i * WIDTH + INDEPENDENT + 1] = a - e - shift / Math.SQRT2;
  }
  return tensor(data, { shape: [n, WIDTH], dtype: 'float64' });
}

/** The reference AUROC: count every (positive, negative) pair, ½ for ties. */
export function bruteForceAuroc(pos: ArrayLike<number>, neg: ArrayLike<number>): number {
  let wins = 0;
  for (let i = 0; i < pos.length; i++) {
    for (let j = 0; j < neg.length; j++) wins += pos[i]! > neg[j]! ? 1 : pos[i]! === neg[j]! ? 0.5 : 0;
  }
  return wins / (pos.length * neg.length);
}
