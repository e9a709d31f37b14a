import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EpochOrder, permutation } from './epoch-order.ts';

test('epochs are seeded permutations; a resume from the position sees the same order', () => {
  const first = new EpochOrder(5, 7).take(12);
  assert.deepEqual([...first.slice(0, 5)].sort(), [0, 1, 2, 3, 4]); // an epoch is a permutation
  assert.notDeepEqual(first.slice(0, 5), first.slice(5, 10)); // each epoch reshuffled
  const resumed = new EpochOrder(5, 7);
  resumed.position = 7; // what a checkpoint stores
  assert.deepEqual(resumed.take(5), first.slice(7));
  assert.equal(resumed.position, 12);
  assert.notDeepEqual(new EpochOrder(5, 8).take(10), first.slice(0, 10));
  // The LM and PM trainers' order is unchanged from train/batches.ts's ExampleOrder (values from it), so
  // their checkpoints written before this helper existed still resume bit for bit.
  assert.deepEqual(
    new EpochOrder(10, 3).take(25),
    [6, 3, 8, 4, 0, 9, 7, 5, 1, 2, 0, 4, 6, 9, 8, 2, 1, 7, 5, 3, 6, 4, 2, 5, 8],
  );
  assert.deepEqual(
    new EpochOrder(1000, 1).slice(995, 10),
    [315, 344, 541, 427, 937, 458, 818, 806, 261, 986],
  );
  assert.throws(() => new EpochOrder(0, 1), /at least one example/);
});

test('100 prompts, batch 32: step 4 takes order₀[96..99] then order₁[0..27]; every prompt once per epoch', () => {
  const order = new EpochOrder(100, 1);
  const epoch0 = order.slice(0, 100);
  const epoch1 = order.slice(100, 100);
  assert.deepEqual(
    [...epoch0].sort((a, b) => a - b),
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.deepEqual(
    [...epoch1].sort((a, b) => a - b),
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.notDeepEqual(epoch0, epoch1);
  const step = (s: number) => order.slice((s - 1) * 32, 32); // what a trainer takes at step s
  assert.deepEqual(step(4), [...epoch0.slice(96), ...epoch1.slice(0, 28)]);
  // Steps 1–4 hand out 128 rows: each prompt once, and 28 of them a second time from the new epoch.
  const counts = new Map<number, number>();
  for (let s = 1; s <= 4; s++) for (const i of step(s)) counts.set(i, (counts.get(i) ?? 0) + 1);
  assert.equal(counts.size, 100);
  assert.deepEqual([...counts.values()].filter((c) => c === 2).length, 28);
  // Reading in any order (a resume, or PM's chunks) gives the same rows: the position is the whole state.
  assert.deepEqual(new EpochOrder(100, 1).slice(96, 32), step(4));
});

test('permutation: a seeded Fisher–Yates shuffle of 0…n−1', () => {
  const p = permutation(50, 3);
  assert.deepEqual(
    [...p].sort((a, b) => a - b),
    Array.from({ length: 50 }, (_, i) => i),
  );
  assert.deepEqual(permutation(50, 3), p);
  assert.notDeepEqual(permutation(50, 4), p);
});
