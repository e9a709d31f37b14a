import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashString, Rng } from './rng.ts';

test('same seed gives the same stream; different seeds differ', () => {
  const draw = (seed: number) =>
    Array.from(
      { length: 50 },
      (
        (r) => () =>
          r.nextU32()
      )(new Rng(seed)),
    );
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
});

test('forks are independent of how much the parent has drawn, and of each other', () => {
  const a = new Rng(7);
  const b = new Rng(7);
  for (let i = 0; i < 100; i++) b.next();
  assert.equal(a.fork('x').next(), b.fork('x').next());
  assert.notEqual(a.fork('x').next(), a.fork('y').next());
  assert.notEqual(hashString('helpful/train'), hashString('helpful/test'));
});

test('draws have the advertised ranges and rough moments', () => {
  const rng = new Rng(1);
  let sum = 0;
  let sumSq = 0;
  const n = 20000;
  const ints = new Set<number>();
  for (let i = 0; i < n; i++) {
    const u = rng.next();
    assert.ok(u >= 0 && u < 1);
    const z = rng.normal();
    sum += z;
    sumSq += z * z;
    ints.add(rng.int(1, 6));
  }
  assert.deepEqual([...ints].sort(), [1, 2, 3, 4, 5, 6]);
  assert.ok(Math.abs(sum / n) < 0.03, `normal mean ${sum / n}`);
  assert.ok(Math.abs(sumSq / n - 1) < 0.05, `normal variance ${sumSq / n}`);
  const counts = { a: 0, b: 0 };
  for (let i = 0; i < n; i++) counts[rng.weighted({ a: 3, b: 1 })]++;
  assert.ok(Math.abs(counts.a / n - 0.75) < 0.02, `weighted ${counts.a / n}`);
  assert.deepEqual(rng.shuffle([1, 2, 3, 4, 5]).sort(), [1, 2, 3, 4, 5]);
  assert.throws(() => rng.pick([]), /empty/);
});
