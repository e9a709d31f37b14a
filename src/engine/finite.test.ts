// The trainers' shared non-finite guards (finite.ts), on one process; the multi-rank agreement is tested
// with 2 gloo processes in src/cli/diverge-launch.test.ts and src/cli/ppo-launch.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  agreeFinite,
  assertFinite,
  assertFiniteWeights,
  firstNonFinite,
  injectNonFinite,
  isAllFinite,
  TrainingDivergenceError,
} from './finite.ts';
import { tensor } from './ops.ts';

const ctx = { trainer: 'pretrain', step: 7, lastGood: '/runs/lm/checkpoints/step-000006' };

test('isAllFinite / firstNonFinite find NaN and ±Inf in float tensors, with a count; integers pass', () => {
  assert.equal(isAllFinite(tensor([1, 2, 3])), true);
  assert.equal(isAllFinite(tensor([1, Number.NaN])), false);
  assert.equal(isAllFinite(tensor([Number.NEGATIVE_INFINITY, 0])), false);
  assert.equal(isAllFinite(tensor([1, 2], { dtype: 'int64' })), true);
  assert.equal(isAllFinite(tensor([1, Number.POSITIVE_INFINITY]).to({ dtype: 'bfloat16' })), false);
  const tensors: [string, ReturnType<typeof tensor>][] = [
    ['a', tensor([1, 2])],
    ['b', tensor([Number.NaN, 1, Number.POSITIVE_INFINITY])],
    ['c', tensor([Number.NaN])],
  ];
  assert.deepEqual(firstNonFinite(tensors), { name: 'b', count: 2, numel: 3 });
  assert.equal(firstNonFinite(tensors.slice(0, 1)), null);
});

test('agreeFinite returns the (one-process) sums, and throws one TrainingDivergenceError naming step and checkpoint', () => {
  assert.deepEqual(agreeFinite(ctx, 'the loss', [1.5, Number.NaN], { checked: 1 }), [1.5, Number.NaN]);
  assert.throws(
    () => agreeFinite(ctx, 'the loss', [Number.NaN, 3], { checked: 1 }),
    (err: Error) =>
      err instanceof TrainingDivergenceError &&
      err.exitCode === 3 &&
      err.context.step === 7 &&
      err.message ===
        'pretrain step 7: the loss is NaN; training stopped before the update. The last good checkpoint is ' +
          "/runs/lm/checkpoints/step-000006 (the run's checkpoint link still points at it; --resume continues from it, e.g. with a lower learning rate)",
  );
  // The sum replaces the all-reduce: a NaN on a peer (its count of non-finite ranks) stops this rank too.
  const peerDiverged = (xs: number[]) => xs.map((x, i) => (i === xs.length - 1 ? x + 1 : x + Number.NaN));
  assert.throws(() => agreeFinite(ctx, 'the loss', [2], { sum: peerDiverged }), /step 7: the loss is NaN/);
  assert.throws(
    () =>
      agreeFinite({ ...ctx, lastGood: '', init: 'runs/lm/checkpoint' }, 'the reward', [
        Number.POSITIVE_INFINITY,
      ]),
    /the reward is Infinity; .*No checkpoint was written yet \(the run started from the init runs\/lm\/checkpoint\)/,
  );
  assert.throws(
    () => agreeFinite({ ...ctx, lastGood: '' }, 'the loss', [Number.NaN]),
    /No checkpoint was written yet \(the run started from a random init\)/,
  );
});

test('assertFinite and assertFiniteWeights', () => {
  assertFinite(ctx, 'the gradient norm', 3.2);
  assert.throws(
    () => assertFinite(ctx, 'the gradient norm', Number.POSITIVE_INFINITY),
    /gradient norm is Infinity/,
  );
  assertFiniteWeights(ctx, [['w', tensor([1, 2])]]);
  assert.throws(
    () => assertFiniteWeights(ctx, [['h.0.w', tensor([1, Number.NaN])]]),
    /step 7: the weights after the update are not finite \(1 of 2 values of 'h\.0\.w'\); training stopped and this step was not checkpointed/,
  );
});

test('injectNonFinite: inert unless HHKIT_TEST_NONFINITE names the step (and rank)', () => {
  const loss = tensor(2);
  const saved = process.env.HHKIT_TEST_NONFINITE;
  try {
    delete process.env.HHKIT_TEST_NONFINITE;
    assert.equal(injectNonFinite(loss, 3).item(), 2);
    process.env.HHKIT_TEST_NONFINITE = '3';
    assert.ok(Number.isNaN(injectNonFinite(loss, 3).item()));
    assert.equal(injectNonFinite(loss, 4).item(), 2);
    process.env.HHKIT_TEST_NONFINITE = '3@1'; // rank 1 only; this process is rank 0
    assert.equal(injectNonFinite(loss, 3).item(), 2);
  } finally {
    if (saved === undefined) delete process.env.HHKIT_TEST_NONFINITE;
    else process.env.HHKIT_TEST_NONFINITE = saved;
  }
});
