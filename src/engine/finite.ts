// Non-finite guards shared by every trainer (LM/SFT, PMP/PM, distillation, PPO): a step stops on a NaN or
// ±Inf loss, gradient norm or weight with one TrainingDivergenceError naming the step and the last good
// checkpoint, before anything non-finite reaches the optimiser or the disk. Under data parallel the ranks
// agree on the loss BEFORE the backward whose gradients are all-reduced (agreeFinite): a rank that skipped
// that backward alone would pair its next all-reduce with a peer's gradient bucket (a size mismatch, or a
// hang until the timeout). After the all-reduce every rank holds the same gradient, so the gradient-norm
// check (assertFinite) needs no further agreement.
import { EXIT_DIVERGED, HhkitError } from '../util/errors.ts';
import { allReduceNumbers, getRank, getWorldSize } from './distributed.ts';
import { tidy } from './scope.ts';
import type { Tensor } from './tensor.ts';

/** Where a trainer stands, for the message of a divergence. */
export interface DivergenceContext {
  /** The command or stage: 'pretrain', 'pm', 'ppo', 'distill' … */
  trainer: string;
  /** The optimiser step being taken, 1-based (the step whose metrics line would have been written). */
  step: number;
  /** The last good checkpoint folder; '' when the run has written none yet. */
  lastGood: string;
  /** What the run started from when there is no checkpoint yet ('' or absent: a random init). */
  init?: string;
}

/**
 * Training stopped on a non-finite loss, gradient norm or weight. Nothing non-finite was stepped or
 * written; the message names the step and the last good checkpoint. The CLI exits with EXIT_DIVERGED (3).
 */
export class TrainingDivergenceError extends HhkitError {
  override name = 'TrainingDivergenceError';

  constructor(
    readonly context: DivergenceContext,
    /** What was not finite, with its value, e.g. "the loss is NaN (on 1 of 2 ranks)". */
    readonly what: string,
    /** What the trainer did about it, e.g. "stopped before the update". */
    consequence = 'training stopped before the update',
  ) {
    super(`${context.trainer} step ${context.step}: ${what}; ${consequence}. ${whereToGoBack(context)}`, {
      exitCode: EXIT_DIVERGED,
    });
  }
}

function whereToGoBack(c: DivergenceContext): string {
  if (c.lastGood) {
    return `The last good checkpoint is ${c.lastGood} (the run's checkpoint link still points at it; --resume continues from it, e.g. with a lower learning rate)`;
  }
  const from = c.init ? `the init ${c.init}` : 'a random init';
  return `No checkpoint was written yet (the run started from ${from}); start again, e.g. with a lower learning rate`;
}

const FLOAT_DTYPES = new Set(['float32', 'float64', 'float16', 'bfloat16']);

/**
 * Whether every element of `t` is finite (always true for integer and bool tensors): one isfinite + all.
 *
 * @example isAllFinite(tensor([1, Number.NaN])) // false
 */
export function isAllFinite(t: Tensor): boolean {
  if (!FLOAT_DTYPES.has(t.dtype)) return true;
  return tidy(() => t.detach().isfinite().all().item() !== 0);
}

/**
 * The first of `tensors` (name, tensor) that holds a NaN or ±Inf, with how many of its elements do; null
 * when all are finite.
 *
 * @example firstNonFinite(Object.entries(model.stateDict())) // null, or { name: 'h.0.mlp.c_fc.weight', count: 3, numel: 4096 }
 */
export function firstNonFinite(
  tensors: Iterable<readonly [string, Tensor]>,
): { name: string; count: number; numel: number } | null {
  for (const [name, t] of tensors) {
    if (isAllFinite(t)) continue;
    const count = tidy(() => t.detach().isfinite().logicalNot().sum().item());
    return { name, count, numel: t.numel };
  }
  return null;
}

/**
 * Collective (every rank calls it at the same point): sums `values` over the ranks in ONE all-reduce that
 * also counts the ranks whose first `checked` values (default: all) are not finite, and throws
 * TrainingDivergenceError on every rank when any is. Call it before the backward whose gradients are
 * all-reduced, so that every rank skips that backward together. On one process it is a local check and
 * returns a copy of `values`. `sum` replaces allReduceNumbers (e.g. a test's stand-in).
 *
 * @example
 * // loss, correct pairs and tokens of this rank's slice, summed over ranks; throws if any loss is NaN
 * const [loss, correct, tokens] = agreeFinite({ trainer: 'pm', step, lastGood }, 'the loss', [l, c, n], { checked: 1 });
 */
export function agreeFinite(
  context: DivergenceContext,
  what: string,
  values: readonly number[],
  opts: { checked?: number; sum?: (xs: number[]) => number[] } = {},
): number[] {
  const checked = values.slice(0, opts.checked ?? values.length);
  const bad = checked.some((v) => !Number.isFinite(v));
  const reduced = (opts.sum ?? allReduceNumbers)([...values, bad ? 1 : 0]);
  const badRanks = reduced.pop() ?? 0;
  if (badRanks > 0) {
    const worldSize = getWorldSize();
    const value = [...checked, ...reduced].find((v) => !Number.isFinite(v)) ?? Number.NaN;
    const mine = bad ? `, rank ${getRank()} among them` : '';
    const where = worldSize > 1 ? ` (on ${badRanks} of ${worldSize} ranks${mine})` : '';
    throw new TrainingDivergenceError(context, `${what} is ${value}${where}`);
  }
  return reduced;
}

/**
 * Throws TrainingDivergenceError when `value` is NaN or ±Inf. A local check: use it where every rank holds
 * the same value (the norm of gradients already summed over ranks), or on one process.
 *
 * @example assertFinite({ trainer: 'pretrain', step: 3, lastGood: '' }, 'the gradient norm', gradNorm);
 */
export function assertFinite(context: DivergenceContext, what: string, value: number): void {
  if (!Number.isFinite(value)) throw new TrainingDivergenceError(context, `${what} is ${value}`);
}

/**
 * Throws TrainingDivergenceError when a weight holds a NaN or ±Inf: trainers call it before writing a
 * checkpoint, so a non-finite checkpoint is never written (and never prunes a good one).
 *
 * @example assertFiniteWeights(ctx, Object.entries(model.stateDict()));
 */
export function assertFiniteWeights(
  context: DivergenceContext,
  tensors: Iterable<readonly [string, Tensor]>,
): void {
  const found = firstNonFinite(tensors);
  if (found) {
    throw new TrainingDivergenceError(
      context,
      `the weights after the update are not finite (${found.count} of ${found.numel} values of '${found.name}')`,
      'training stopped and this step was not checkpointed',
    );
  }
}

/**
 * Test hook, inert unless a test sets HHKIT_TEST_NONFINITE=STEP or STEP@RANK: at that (1-based) step, on that
 * rank (default: every rank), the loss becomes NaN (its gradient too), as a real divergence on one rank
 * would. Trainers pass every training loss through it.
 *
 * @example const loss = injectNonFinite(tokenLoss(logits, labels), step); // HHKIT_TEST_NONFINITE=2@1
 */
export function injectNonFinite(loss: Tensor, step: number): Tensor {
  const spec = process.env.HHKIT_TEST_NONFINITE;
  if (!spec) return loss;
  const [at, rank] = spec.split('@');
  if (Number(at) !== step || (rank !== undefined && Number(rank) !== getRank())) return loss;
  return loss.mul(Number.NaN);
}
